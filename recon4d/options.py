"""Typed options: ``-O STAGE.KEY=VALUE`` parsed against the field of a config dataclass (STYLE §15).

A value from the command line is a string; it is turned into the field's declared type:

    bool              true/false, yes/no, on/off, 1/0 (any case)
    int, float        decimal literals (an int field refuses 2.5 and "'8'")
    str, Path         as given
    Literal[...]      one of the listed values
    Enum              a member's name or value
    X | None          none/null → None, else X
    tuple[X, ...]     "1,2,3", "[1, 2, 3]" or "(1, 2, 3)", each item parsed as X
    list, dict, Any   JSON (a bare tuple/list/dict or Any: JSON if it parses, else as given)

Values that are already Python objects (a config file, a library caller) are checked against
the same type. A wrong value raises :class:`OptionError` naming the option, what it expects
and the value given; :func:`build_config` also turns the config's own ``ValueError`` /
``TypeError`` checks into one.

    build_config(LiftConfig, {"erode_px": "2"}, "lift")   -> LiftConfig(erode_px=2, ...)
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

from recon4d.errors import OptionError, Recon4dError

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_NONE = frozenset({"none", "null"})


class _Mismatch(Exception):
    """A value does not parse as a type; ``expected`` says what would."""

    def __init__(self, expected: str):
        super().__init__(expected)
        self.expected = expected


def _describe(tp) -> str:
    """A reader's name for a type: "an integer", "true or false", "one of 'a', 'b'"..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return "true or false (also yes/no, on/off, 1/0)"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.name) for m in tp)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or none" if type(None) in args else "")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a comma-separated list of {_plural(args[0])}"
        return f"{len(args)} comma-separated values ({', '.join(_describe(a) for a in args)})"
    return f"a value of type {getattr(tp, '__name__', tp)} (JSON)"


def _plural(tp) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}.get(tp, _describe(tp))


def _split_sequence(value: str) -> list:
    text = value.strip()
    if text.startswith("[") or text.startswith("("):
        try:
            parsed = json.loads("[" + text[1:-1] + "]") if text.startswith("(") else json.loads(text)
        except json.JSONDecodeError:
            parsed = [item.strip() for item in text[1:-1].split(",") if item.strip()]
        return list(parsed)
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_value(tp, value: Any) -> Any:
    """``value`` (a command-line string or a Python object) as type ``tp``; raises _Mismatch."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    text = value.strip() if isinstance(value, str) else None
    if tp is Any or tp is object or tp in (tuple, list, dict):
        # Untyped (a bare ``tuple`` may also hold a path the config resolves itself): JSON if
        # it parses, else the value as given, left to the config's own checks.
        if text is None:
            return value
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (text is not None and text.lower() in _NONE)):
            return None
        options = [a for a in args if a is not type(None)]
        # A value that already has one of the types keeps it (a string stays a string for
        # ``tuple[str, ...] | str``); otherwise the first type it parses as wins.
        options.sort(key=lambda a: not isinstance(value, typing.get_origin(a) or a)
                     if isinstance(typing.get_origin(a) or a, type) else True)
        for option in options:
            try:
                return parse_value(option, value)
            except _Mismatch:
                continue
        raise _Mismatch(_describe(tp))
    if origin is typing.Literal:
        for allowed in args:
            if value == allowed or (text is not None and text == str(allowed)):
                return allowed
        raise _Mismatch(_describe(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if value is member or value == member.value or (text is not None and text in (member.name, str(member.value))):
                return member
        raise _Mismatch(_describe(tp))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise _Mismatch(_describe(tp))
    if tp in (int, float):
        return _parse_number(tp, value, text)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch(_describe(tp))
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _Mismatch("a path")
    if origin is tuple:
        items = _split_sequence(value) if text is not None else value
        if not isinstance(items, (list, tuple)):
            raise _Mismatch(_describe(tp))
        if not args:
            return tuple(items)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse_value(args[0], item) for item in items)
        if len(items) != len(args):
            raise _Mismatch(_describe(tp))
        return tuple(parse_value(a, item) for a, item in zip(args, items))
    if text is not None and (origin in (list, dict) or tp in (list, dict)):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise _Mismatch(_describe(tp)) from None
    container = origin or tp
    if isinstance(container, type) and not isinstance(value, container):
        raise _Mismatch(_describe(tp))
    return value


def _parse_number(tp, value: Any, text: str | None) -> int | float:
    """An int or float field's value: numbers of the right kind, or their decimal spelling."""
    if isinstance(value, bool):
        raise _Mismatch(_describe(tp))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if tp is float:
            return float(value)
        if isinstance(value, int) or value.is_integer():
            return int(value)
        raise _Mismatch(_describe(tp))
    if text is None:
        raise _Mismatch(_describe(tp))
    try:
        parsed = tp(text)
    except ValueError:
        raise _Mismatch(_describe(tp)) from None
    if tp is float and math.isnan(parsed):
        raise _Mismatch(_describe(tp))
    return parsed


def option_fields(config_cls) -> dict[str, Any]:
    """Field name → resolved type of a config dataclass (string annotations evaluated)."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(config_cls) if f.init}


def parse_options(config_cls, options: dict | None, what: str, extra: tuple[str, ...] = (),
                  prefix: str = "", error: type[Recon4dError] = OptionError) -> dict:
    """``options`` with each value parsed as its field's type in ``config_cls``.

    Names in ``extra`` (handled by the caller) pass through unparsed. Raises OptionError for
    unknown names (listing the valid ones) and for values that do not parse; ``what`` names
    the thing configured ("the pi3 reconstructor") and ``prefix`` the command-line spelling
    ("recon.") in the message; ``error`` is the exception class raised.
    """
    fields = option_fields(config_cls)
    options = dict(options or {})
    valid = sorted(set(fields) | set(extra))
    unknown = sorted(set(options) - set(fields) - set(extra))
    if unknown:
        raise error(f"unknown option(s) {[prefix + name for name in unknown]} for {what}; valid options are "
                    f"{[prefix + name for name in valid]}.")
    parsed = {}
    for name, value in options.items():
        if name in extra:
            parsed[name] = value
            continue
        try:
            parsed[name] = parse_value(fields[name], value)
        except _Mismatch as mismatch:
            how = f"; write it as -O {prefix}{name}=VALUE with VALUE {mismatch.expected}" if prefix else ""
            if how and isinstance(value, str) and value.strip()[:1] in ("'", '"'):
                how += " (without quotes: the shell's quoting is not part of the value)"
            raise error(f"{what}: option {prefix}{name} must be {mismatch.expected}, got {value!r}{how}.") from None
    return parsed


def build_config(config_cls, options: dict | None, what: str, extra: tuple[str, ...] = (),
                 prefix: str = "", error: type[Recon4dError] = OptionError):
    """``config_cls(**parse_options(...))`` without the ``extra`` names; the config's own checks
    (``__post_init__``) that raise ValueError or TypeError become ``error`` too."""
    parsed = parse_options(config_cls, options, what, extra, prefix, error)
    parsed = {k: v for k, v in parsed.items() if k not in extra}
    try:
        return config_cls(**parsed)
    except Recon4dError:
        raise
    except (ValueError, TypeError) as exc:
        raise error(f"bad option for {what}: {exc}") from None
