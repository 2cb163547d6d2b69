"""pydantic's ValidationError -> the one-line ParamsError every config file reports (sklearn style):

    The 'models.bert.lr' parameter must be a number > 0. Got -1.0 instead.

The message names the full key path, what the value must be and what it got (credentials in a URL
masked). What the value must be is read from the schema: its type, its pydantic constraints
(``Field(gt=0)``), its ``Literal`` choices, or, where those would not say it, an :class:`Expect`
phrase or the text of a :func:`rule`. A validator that looks at several fields raises :class:`Invalid`
(naming the key relative to its place), or a finished ParamsError, which is passed on unchanged.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Annotated, Any, Callable, Literal, Optional

import annotated_types as at
from pydantic import AfterValidator, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from textcls.errors import ParamsError

URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")  # the user:password@ part of a URL
HIDDEN = "<not shown: it may be a secret>"
_UNSET = object()


def redact(value: Any) -> Any:
    """Errors echo the offending value; credentials inside a URL are not echoed."""
    return URL_CREDENTIALS.sub("***@", value) if isinstance(value, str) else value


@dataclasses.dataclass(frozen=True)
class Expect:
    """``Annotated`` metadata: what the value must be, in words, for any error of the value or of its items
    (the innermost Expect wins; fields of a nested dataclass speak for themselves)."""

    phrase: str
    secret: bool = False  # never echo the value (it may be a key)


class Invalid(ValueError):
    """Raised by a validator: the value at ``field`` (dotted, relative to the validator) must be ``expected``."""

    def __init__(self, expected: str, field: Optional[str] = None, got: Any = _UNSET):
        super().__init__(expected)
        self.expected, self.field, self.got = expected, field, got


def rule(check: Callable[[Any], bool], expected: str) -> AfterValidator:
    """``Annotated`` metadata: the value must pass ``check``; else it "must be ``expected``"."""

    def run(value):
        if not check(value):
            raise ValueError(expected)
        return value

    return AfterValidator(run)


@dataclasses.dataclass(frozen=True)
class Style:
    """How one file's messages read."""

    subject: str = "parameter"  # The 'x' <subject> must be ...
    source: str = "params.yaml"
    root_unknown: str = "Unknown section {name!r} in {source}. Valid sections: {valid}."  # valid: sorted
    missing_as_none: bool = False  # a missing key reads "must be ... Got None" instead of "Missing key"


PARAMS = Style()


def validate(tp: Any, raw: Any, where: str = "", style: Style = PARAMS) -> Any:
    """``raw`` validated as ``tp`` (a dataclass: null reads as an empty mapping); ``where`` prefixes the keys."""
    if raw is None and dataclasses.is_dataclass(tp):
        raw = {}
    try:
        return _adapter(tp).validate_python(raw)
    except ValidationError as err:
        raise to_params_error(err, tp, raw, where, style) from None


_ADAPTERS: dict[int, tuple[Any, TypeAdapter]] = {}


def _adapter(tp: Any) -> TypeAdapter:
    hit = _ADAPTERS.get(id(tp))
    if hit is None or hit[0] is not tp:
        hit = _ADAPTERS[id(tp)] = (tp, TypeAdapter(tp))
    return hit[1]


_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")
_PRIORITY = {**dict.fromkeys(_UNKNOWN, 1), "missing": 2}  # reported first: keys are checked before values


def _priority(e: dict) -> int:
    return 0 if e["loc"][-1:] == ("[key]",) else _PRIORITY.get(e["type"], 3)  # an entry's name before its content


def to_params_error(err: ValidationError, tp: Any, raw: Any, where: str = "", style: Style = PARAMS) -> ParamsError:
    """The first problem of ``err`` (raised validating ``raw`` as ``tp``) as one ParamsError."""
    errors = sorted(err.errors(include_url=False), key=_priority)
    first = errors[0]
    if first["type"] in _UNKNOWN:  # several unknown keys of one mapping: name the first in sorted order
        first = min((e for e in errors if e["type"] in _UNKNOWN and e["loc"][:-1] == first["loc"][:-1]),
                    key=lambda e: str(e["loc"][-1]))
    return ParamsError(_message(first, tp, raw, where, style))


def must_be(key: str, expected: str, got: Any, style: Style = PARAMS) -> str:
    return f"The {key!r} {style.subject} must be {expected}. Got {redact(got)!r} instead."


def _join(*parts: Any) -> str:
    return ".".join(str(p) for p in parts if p not in ("", None))


def _message(e: dict, tp: Any, raw: Any, where: str, style: Style) -> str:
    loc, kind = tuple(e["loc"]), e["type"]
    error = (e.get("ctx") or {}).get("error")
    if isinstance(error, ParamsError):
        return str(error)
    if isinstance(error, Invalid):
        field = tuple(error.field.split(".")) if error.field else ()
        got = _dig(e["input"], field, None) if error.got is _UNSET else error.got
        return must_be(_join(where, *loc, *field), error.expected, got, style)
    if kind in _UNKNOWN:
        parent, valid = loc[:-1], _field_names(_walk(tp, loc[:-1])[-1].bare)
        if not where and not parent:
            return style.root_unknown.format(name=loc[-1], source=style.source, valid=", ".join(sorted(valid)),
                                             fields=", ".join(valid))
        at_key = _join(where, *parent)
        return (f"Unknown key {at_key}.{loc[-1]!r} in {style.source}. "
                f"Valid keys under {at_key!r}: {', '.join(sorted(valid))}.")
    is_key = len(loc) >= 2 and loc[-1] == "[key]"
    path = loc[:-2] if is_key else loc
    nodes = _walk(tp, path)
    if kind == "missing" and not style.missing_as_none:
        return f"Missing key {_join(where, *loc)!r} in {style.source}: add it ({_type_name(nodes[-1])})."
    got = None if kind == "missing" else e["input"]
    if is_key:
        key_node = _node(_args(nodes[-1].bare, (Any,))[0])
        expect = _expect(key_node)
        if expect is not None:
            return must_be(_join(where, *path), expect.phrase, HIDDEN if expect.secret else got, style)
    for i in range(len(nodes) - 1, -1, -1):  # the innermost Expect above the error, inside its dataclass
        if i < len(nodes) - 1 and dataclasses.is_dataclass(nodes[i].bare):
            break
        expect = _expect(nodes[i])
        if expect is not None:
            value = HIDDEN if expect.secret else (got if i == len(path) and not is_key else _dig(raw, path[:i], got))
            return must_be(_join(where, *path[:i]), expect.phrase, value, style)
    if is_key:
        expected = str(error) if error is not None else f"keyed by {_phrase(kind, e, key_node)}"
    else:
        expected = str(error) if error is not None else _phrase(kind, e, nodes[-1])
    return must_be(_join(where, *path), expected, got, style)


# --------------------------------------------------------------------------- reading the schema


@dataclasses.dataclass
class _Node:
    """A value's type as declared: the bare type, its constraints and markers, and whether null is allowed."""

    bare: Any
    metas: list
    nullable: bool = False


def _node(tp: Any, metas: Any = ()) -> _Node:
    node = _Node(tp, [])
    _add_metas(node, metas)
    while True:
        origin = typing.get_origin(node.bare)
        if origin is Annotated:
            _add_metas(node, node.bare.__metadata__)
            node.bare = node.bare.__origin__
        elif origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(node.bare):
            rest = [a for a in typing.get_args(node.bare) if a is not type(None)]
            node.nullable = True
            if len(rest) != 1:
                return node
            node.bare = rest[0]
        else:
            return node


def _add_metas(node: _Node, metas: Any) -> None:
    for meta in metas:
        node.metas.extend(meta.metadata if isinstance(meta, FieldInfo) else [meta])


def _args(tp: Any, default: tuple) -> tuple:
    return typing.get_args(tp) or default


def _fields(cls: Any) -> dict[str, tuple[Any, list]]:
    declared = getattr(cls, "__pydantic_fields__", None)
    if declared is not None:
        return {name: (info.annotation, info.metadata) for name, info in declared.items()}
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: (hints[f.name], []) for f in dataclasses.fields(cls)}


def _field_names(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init] if dataclasses.is_dataclass(cls) else []


def _walk(tp: Any, loc: tuple) -> list[_Node]:
    """The declared type of ``tp`` and of each value on the way to ``loc`` (``nodes[i]``: at ``loc[:i]``)."""
    nodes = [_node(tp)]
    for part in loc:
        bare, origin = nodes[-1].bare, typing.get_origin(nodes[-1].bare)
        if dataclasses.is_dataclass(bare) and part in _fields(bare):
            nodes.append(_node(*_fields(bare)[part]))
        elif origin is dict:
            nodes.append(_node(_args(bare, (Any, Any))[1]))
        elif origin is list:
            nodes.append(_node(_args(bare, (Any,))[0]))
        else:
            nodes.append(_Node(Any, []))
    return nodes


def _dig(value: Any, path: tuple, default: Any) -> Any:
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return default
    return value


def _expect(node: _Node) -> Optional[Expect]:
    return next((m for m in reversed(node.metas) if isinstance(m, Expect)), None)


def _type_name(node: _Node) -> str:
    bare, origin = node.bare, typing.get_origin(node.bare)
    if typing.get_origin(bare) in (typing.Union, types.UnionType):
        name = " or ".join(_type_name(_node(a)) for a in typing.get_args(bare) if a is not type(None))
    elif origin is Literal:
        name = f"one of {typing.get_args(bare)}"
    else:
        name = getattr(origin or bare, "__name__", str(bare))
    return f"{name} or null" if node.nullable else name


_BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _phrase(kind: str, e: dict, node: _Node) -> str:
    """What the value must be, from its declared type and constraints."""
    if kind == "literal_error" and typing.get_origin(node.bare) is Literal:
        return f"one of {typing.get_args(node.bare)}"
    if dataclasses.is_dataclass(node.bare):
        return "a mapping"
    if kind.endswith(("_type", "_parsing")) or kind == "missing":
        return f"of type {_type_name(node)}"
    if kind in _BOUNDS:
        what = "an integer" if node.bare is int else "a number"
        return f"{what} {_bounds(node.metas)}{' or null' if node.nullable else ''}"
    if kind == "string_too_short" and e["ctx"].get("min_length") == 1:
        return "a non-empty string"
    if kind == "too_short" and e["ctx"].get("min_length") == 1:
        return f"a non-empty {_type_name(node)}"
    return f"valid ({e['msg']})"


def _bounds(metas: list) -> str:
    """``> 0``, ``>= 8``, ``in [0, 1)``: the constraints as the messages write them."""
    low = high = None
    for m in metas:
        if isinstance(m, (at.Gt, at.Ge)):
            low = ("(", ">", m.gt) if isinstance(m, at.Gt) else ("[", ">=", m.ge)
        elif isinstance(m, (at.Lt, at.Le)):
            high = (")", "<", m.lt) if isinstance(m, at.Lt) else ("]", "<=", m.le)
    if low and high:
        return f"in {low[0]}{low[2]}, {high[2]}{high[0]}"
    bound = low or high
    return f"{bound[1]} {bound[2]}" if bound else "in range"
