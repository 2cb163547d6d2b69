"""Extensions from outside the package: ``TEXTCLS_PLUGINS=pkg.mod1,pkg.mod2`` names modules to import
before params are validated (and before a model kind is looked up). Such a module registers what it
adds: a model kind (:func:`textcls.kinds.register` + :func:`textcls.config.params.register_kind_schema`) or an
inference variant (:func:`textcls.serving.backends.register_variant`). Like any code, a plugin runs with your
permissions: name only modules you trust. The variable is read by every stage, so set it for
`dvc repro` as a whole (and list the plugin's file among the stages' deps if it lives in the repo)."""

from __future__ import annotations

import importlib
import os

from textcls.errors import TextclsError

_loaded: set[str] = set()


def load() -> None:
    """Import every module ``TEXTCLS_PLUGINS`` names (once each)."""
    for name in (n.strip() for n in os.environ.get("TEXTCLS_PLUGINS", "").split(",")):
        if not name or name in _loaded:
            continue
        _loaded.add(name)
        try:
            importlib.import_module(name)
        except ImportError as err:
            _loaded.discard(name)
            raise TextclsError(f"TEXTCLS_PLUGINS names {name!r}, which cannot be imported ({err}). Fix: put the "
                               "module on PYTHONPATH (or install it), or remove it from TEXTCLS_PLUGINS.") from None
