"""The one exception type a stage turns into a clear, traceback-free message."""


class TextclsError(Exception):
    """A problem the user can fix: the message names the thing and the fix.

    Stage scripts catch it at the top level, print ``error: <message>`` to stderr
    and exit with status 1, leaving no partial output behind.
    """


class ParamsError(TextclsError, ValueError):
    """A value in params.yaml is missing, unknown or of the wrong type/range."""


class DataError(TextclsError, ValueError):
    """An input data file is malformed, empty or inconsistent."""


class ModelSourceError(TextclsError):
    """A model or tokenizer cannot be found or loaded safely."""
