"""Typed parameters for tasks, mixers and training specs.

Tasks, specs and mixer options are frozen dataclasses. `check_params` turns user input (CLI
`key=value`, TOML) into typed values, and rejects unknown keys and wrong types with a one-line
error that names the field and what it accepts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from slabench.errors import SlabenchError


@dataclass(frozen=True)
class Param:
    name: str
    type: Any  # a Python type, or a typing.Literal[...] of allowed values
    default: Any
    help: str = ""

    def describe_type(self) -> str:
        return _describe(self.type)


def _describe(t: Any) -> str:
    """A type as the user writes its values: 'a' | 'b', list of int, int | 'auto'."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is list:  # list[int].__name__ is "list": name the element type too
        return f"list of {_describe(args[0])}"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_describe(a) for a in args)
    return "None" if t is type(None) else getattr(t, "__name__", str(t))


def dataclass_params(cls: type) -> list[Param]:
    """The fields of a (frozen) dataclass as `Param`s; help text comes from field metadata."""
    hints = typing.get_type_hints(cls, include_extras=False)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name.startswith("_"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        out.append(Param(f.name, hints[f.name], default, f.metadata.get("help", "")))
    return out


def coerce(where: str, param: Param, value: Any) -> Any:
    """Convert `value` (a Python value or a CLI string) to `param.type`, or raise one line."""
    t = param.type
    if typing.get_origin(t) is Literal:
        allowed = typing.get_args(t)
        if value not in allowed:
            raise SlabenchError(
                f"{where}: {param.name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}"
            )
        return value
    if typing.get_origin(t) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        t = args[0]
    if t in (bool, int, float) and isinstance(value, str):
        # A quoted number in TOML ("100") is a typo as likely as not: say so instead of guessing.
        # CLI values arrive here already parsed by `parse_assignments`.
        raise SlabenchError(f"{where}: {param.name}={value!r} is a string; expected {param.describe_type()}")
    try:
        if t is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if t is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if t is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if t is str:
            return str(value)
    except (TypeError, ValueError):
        raise SlabenchError(f"{where}: {param.name}={value!r} is not a valid {param.describe_type()}") from None
    return value


def check_params(where: str, params: list[Param], given: dict[str, Any]) -> dict[str, Any]:
    """Typed values for `given`; unknown keys raise an error listing the known ones."""
    known = {p.name: p for p in params}
    for key in given:
        if key not in known:
            raise SlabenchError(f"{where}: unknown parameter '{key}'; known: {', '.join(known) or '(none)'}")
    return {k: coerce(where, known[k], v) for k, v in given.items()}


def parse_assignments(items: tuple[str, ...] | list[str], where: str = "--set") -> dict[str, Any]:
    """`["a=1", "b=x", "c=true"]` -> `{"a": 1, "b": "x", "c": True}` for CLI flags: a value is
    read as a TOML literal (as in a grid file), else kept as a bare string."""
    from slabench.config import tomllib  # the stdlib's, or tomli before Python 3.11

    out = {}
    for item in items:
        if "=" not in item:
            raise SlabenchError(f"{where}: '{item}' is not of the form key=value")
        k, v = (x.strip() for x in item.split("=", 1))
        try:
            out[k] = tomllib.loads(f"v = {v}")["v"]
        except tomllib.TOMLDecodeError:
            out[k] = v
    return out


def require(ok: bool, where: str, message: str) -> None:
    """Raise a one-line validation error unless `ok`."""
    if not ok:
        raise SlabenchError(f"{where}: {message}")
