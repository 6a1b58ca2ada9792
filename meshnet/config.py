"""Typed, validated scenario tables.

Each TOML table is described by a frozen dataclass whose fields carry their own checks in
``metadata`` (see :func:`option`). :func:`parse_table` turns a ``dict`` from ``tomllib`` into
that dataclass, rejecting unknown keys with the nearest valid key suggested and naming the file,
the key, what was expected and what was found in every error.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Laser:
...     terminals: int = option(3, min=1, doc="laser heads per satellite")
...     rate_gbps: float = option(100.0, min=0.0, min_inclusive=False)
>>> parse_table(Laser, {"terminals": 4}, "links", "demo.toml")
Laser(terminals=4, rate_gbps=100.0)
>>> parse_table(Laser, {"terminal": 4}, "links", "demo.toml")
Traceback (most recent call last):
...
meshnet.errors.ScenarioError: demo.toml: unknown key [links].terminal; did you mean 'terminals'?
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import MISSING, field
from datetime import UTC, datetime
from typing import Any

from .errors import MeshnetError, ScenarioError
from .timegrid import parse_epoch

_NONE = type(None)

#: Largest magnitude any number in a scenario may have. No physical quantity meshnet models
#: comes near it (bit rates reach ~1e12 bps, model sizes ~1e13 bytes, FLOP rates ~1e15 per
#: second); ``1e30`` or a 20-digit integer is a typo, and would overflow int64 nanoseconds or
#: array sizes downstream. Non-finite numbers (``inf``, ``nan``) are rejected everywhere.
MAX_MAGNITUDE = 1e18


def option(default: Any = MISSING, *, min: float | None = None, max: float | None = None,
           min_inclusive: bool = True, choices=None, doc: str = "", default_factory=MISSING):
    """A dataclass field with validation metadata.

    Parameters
    ----------
    default : object
        Default value; leave out for a required key.
    min, max : float, optional
        Bounds for numbers (``min`` is exclusive when ``min_inclusive`` is false).
    choices : iterable of str, or callable returning one, optional
        Allowed values for strings (for example a registry's names).
    doc : str
        One line shown by ``meshnet info`` style listings and in error messages.
    """
    meta = {"min": min, "max": max, "min_inclusive": min_inclusive, "choices": choices,
            "doc": doc}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def _type_name(tp) -> str:
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if tp is datetime:
        return "an ISO 8601 instant"
    if tp is str:
        return "a string"
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return "a list"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not _NONE)
    if dataclasses.is_dataclass(tp):
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _found(value) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({type(value).__name__})"


def _table_name(key: str) -> str:
    """``[traffic].compute`` -> ``traffic.compute`` (the name of a nested table)."""
    if key.startswith("["):
        close = key.index("]")
        return key[1:close] + key[close + 1:]
    return key


def _coerce(tp, value, key: str, where: str):
    """Check ``value`` against type ``tp``; return it coerced (int -> float where asked)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and _NONE in args:
            return None
        tables = [a for a in args if dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and len(tables) == 1:
            # A table given for an optional table: its own errors are the helpful ones.
            return parse_table(tables[0], value, _table_name(key), where)
        errors = []
        for arg in args:
            if arg is _NONE:
                continue
            try:
                return _coerce(arg, value, key, where)
            except ScenarioError as exc:
                errors.append(exc)
        raise ScenarioError(f"{where}: [{key}] expected {_type_name(tp)}, found {_found(value)}")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{where}: {key} expected a number, found {_found(value)}")
        check_number(value, key, where)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where}: {key} expected an integer, found {_found(value)}")
        check_number(value, key, where)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: {key} expected true or false, found {_found(value)}")
        return value
    if tp is datetime:
        # TOML has native datetimes; a quoted ISO 8601 string is accepted too.
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str):
            try:
                return parse_epoch(value)
            except ValueError:
                pass
        raise ScenarioError(
            f"{where}: {key} expected an ISO 8601 UTC instant such as 2026-02-23T00:00:00Z, "
            f"found {_found(value)}")
    if tp is str:
        if not isinstance(value, str):
            raise ScenarioError(f"{where}: {key} expected a string, found {_found(value)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ScenarioError(f"{where}: {key} expected a list, found {_found(value)}")
        (item_tp, *rest) = typing.get_args(tp) or (Any,)
        if origin is tuple and rest and rest[0] is not Ellipsis:
            raise TypeError("only tuple[T, ...] is supported in scenario tables")
        items = []
        for i, item in enumerate(value):
            if dataclasses.is_dataclass(item_tp):
                items.append(parse_table(item_tp, item, _table_name(f"{key}[{i}]"), where))
            elif item_tp is Any:
                items.append(item)
            else:
                items.append(_coerce(item_tp, item, f"{key}[{i}]", where))
        return tuple(items)
    if dataclasses.is_dataclass(tp):
        return parse_table(tp, value, _table_name(key), where)
    if tp is Any:
        return value
    raise TypeError(f"unsupported field type {tp!r} for {key}")


def check_number(value, key: str, where: str) -> None:
    """Reject ``inf``, ``nan`` and magnitudes above :data:`MAX_MAGNITUDE` for ``key``.

    Examples
    --------
    >>> check_number(float("nan"), "[links].range_km", "demo.toml")
    Traceback (most recent call last):
    ...
    meshnet.errors.ScenarioError: demo.toml: [links].range_km must be a finite number, found nan
    """
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite:
        raise ScenarioError(f"{where}: {key} must be a finite number, found {value}")
    if abs(value) > MAX_MAGNITUDE:
        raise ScenarioError(f"{where}: {key} = {value:.3g} is beyond any sensible value "
                            f"(|value| <= {MAX_MAGNITUDE:g}); check the units and exponent")


def check_input_file(path, what: str, missing_ok: bool = False) -> None:
    """Refuse a missing, special (FIFO, device, socket), unreadable or binary input file.

    ``os.stat`` is used before any ``open`` so a FIFO never blocks the reader; a regular file
    whose first 64 KiB hold a NUL byte is binary, not one of meshnet's text formats.

    Raises
    ------
    MeshnetError
        Naming ``path`` and what was expected of it.
    """
    import os
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        if missing_ok:  # the caller's own message for a missing file says more
            return
        raise MeshnetError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise MeshnetError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise MeshnetError(f"{path}: is a directory, expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise MeshnetError(f"{path}: not a regular file (a FIFO, device or socket); "
                           f"give a {what}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise MeshnetError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if b"\0" in head:
        raise MeshnetError(f"{path}: binary data (NUL bytes), expected a {what} (text)")


def check_text(data: bytes, path, what: str) -> str:
    """Decode ``data`` as UTF-8 text, refusing binary content in one line."""
    if b"\0" in data[:65536]:
        raise MeshnetError(f"{path}: binary data, expected a {what} (text)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MeshnetError(f"{path}: not UTF-8 text at byte {exc.start}; expected a {what}"
                           ) from None


def parse_table(cls, table, name: str, where: str):
    """Validate a TOML table against dataclass ``cls`` and build it.

    Parameters
    ----------
    cls : type
        A dataclass whose fields were declared with :func:`option` (plain fields work too).
    table : dict
        The parsed TOML table.
    name : str
        The table's dotted name, for messages (``"links"``, ``"constellation.shells[0]"``).
    where : str
        The file the table came from, for messages.

    Raises
    ------
    ScenarioError
        Unknown key (with the nearest valid key), missing key, wrong type or out-of-range value.
    """
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: [{name}] expected a table, found {_found(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in table:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else (
                "valid keys: " + ", ".join(sorted(fields)))
            raise ScenarioError(f"{where}: unknown key [{name}].{key}; {hint}")
    values = {}
    for fname, f in fields.items():
        dotted = f"[{name}].{fname}"
        if fname not in table:
            if f.default is MISSING and f.default_factory is MISSING:
                doc = f.metadata.get("doc", "")
                raise ScenarioError(
                    f"{where}: missing key {dotted}" + (f" ({doc})" if doc else ""))
            continue
        value = _coerce(hints[fname], table[fname], dotted, where)
        _check_range(value, f.metadata, dotted, where)
        values[fname] = value
    obj = cls(**values)
    post = getattr(obj, "validate", None)
    if callable(post):
        post(name, where)
    return obj


def _check_range(value, meta, dotted: str, where: str) -> None:
    if not meta or value is None:
        return
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if lo is not None:
            ok = value >= lo if meta.get("min_inclusive", True) else value > lo
            if not ok:
                rel = ">=" if meta.get("min_inclusive", True) else ">"
                raise ScenarioError(
                    f"{where}: {dotted} must be {rel} {lo}, found {value}")
        if hi is not None and value > hi:
            raise ScenarioError(f"{where}: {dotted} must be <= {hi}, found {value}")
    choices = meta.get("choices")
    if choices is not None and isinstance(value, str):
        # A callable may return a list whose ``in`` accepts more (plugin specs).
        allowed = choices() if callable(choices) else list(choices)
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else "choose one of: " + ", ".join(
                allowed)
            raise ScenarioError(f"{where}: {dotted} = '{value}' is not known; {hint}")


class Registry:
    """Policies registered by name (topology, routing, allocation, traffic).

    Examples
    --------
    >>> routing = Registry("routing policy")
    >>> @routing.register("shortest_delay")
    ... def shortest(snapshot): ...
    >>> routing.names()
    ['shortest_delay']
    """

    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, Any] = {}

    def register(self, name: str):
        def deco(obj):
            if name in self._items:
                raise ValueError(f"{self.what} '{name}' registered twice")
            self._items[name] = obj
            return obj

        return deco

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str):
        if name not in self._items:
            close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else "choose one of: " + ", ".join(
                self.names())
            raise ScenarioError(f"unknown {self.what} '{name}'; {hint}")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        return name in self._items
