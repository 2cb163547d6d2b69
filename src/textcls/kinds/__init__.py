"""Model kinds, one module each, in one registry (:mod:`textcls.kinds.base`): ``get(card["kind"])``."""

from textcls.config import plugins
from textcls.kinds.base import REGISTRY, ModelKind, get, register
from textcls.kinds import embedding, tfidf, transformer  # noqa: E402,F401  (each registers itself)

plugins.load()  # kinds (and variants) of TEXTCLS_PLUGINS

__all__ = ["REGISTRY", "ModelKind", "get", "register"]
