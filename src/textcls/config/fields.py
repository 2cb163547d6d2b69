"""The value types config schemas are written in: YAML values taken as they are, never coerced.

``Int`` refuses ``True`` and ``"3"``; ``Number`` takes ints and floats (not bools or strings) and keeps an
int an int (``epochs: 2`` stays 2); ``List`` refuses tuples. Constraints go on with ``Field(gt=0)``, choices
with ``Literal``; the messages are derived from them (:mod:`textcls.config.adapter`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, Strict, StrictBool, StrictStr, ValidationError, WrapValidator
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticKnownError

from textcls.config.adapter import Expect, Style, rule, to_params_error

__all__ = ["CONFIG", "Bool", "Expect", "Field", "Int", "List", "NonEmptyStr", "Number", "StageName", "Str",
           "distinct", "empty_if_null", "rule", "schema"]

CONFIG = ConfigDict(extra="forbid")  # unknown keys fail


def schema(cls):
    """A config section: a frozen pydantic dataclass whose fields are the only keys allowed. Built in code
    (``TrainParams(lr=...)``, ``dataclasses.replace``), a bad value is a ParamsError too, naming the field."""
    cls = dataclass(frozen=True, config=CONFIG)(cls)
    init, names = cls.__init__, [f.name for f in dataclasses.fields(cls)]
    style = Style(source=cls.__name__, root_unknown=f"Unknown key {{name!r}} for {cls.__name__}. Valid keys: {{valid}}.")

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        if len(args) <= len(names) and not set(names[:len(args)]) & set(kwargs):
            args, kwargs = (), {**dict(zip(names, args)), **kwargs}  # errors then name the field
        try:
            init(self, *args, **kwargs)
        except ValidationError as err:
            raise to_params_error(err, cls, kwargs, style=style) from None

    cls.__init__ = __init__
    return cls


def _number(value: Any, handler):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticKnownError("float_type")
    handler(value)  # the constraints (gt, le, ...)
    return value  # as written: an int stays an int


Int = Annotated[int, Strict()]
Number = Annotated[float, WrapValidator(_number)]
Bool = StrictBool
Str = StrictStr
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
List = Annotated[list, Strict()]  # a list of anything; a typed one: Annotated[list[X], Strict()]


def distinct(values: list) -> bool:
    return len(set(values)) == len(values)


def _stage_name(name: Any) -> Any:
    if not (isinstance(name, str) and name and not set(name) & set("-/@ .")):
        raise ValueError("keyed by names without '-', '/', '@', '.' or spaces (they become DVC stage names)")
    return name


StageName = Annotated[str, BeforeValidator(_stage_name)]  # an entry name: it becomes DVC stage names and paths
empty_if_null = BeforeValidator(lambda value: {} if value is None else value)  # `tokenizer:` with nothing under it

