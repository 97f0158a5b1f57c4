"""Declared config parameters: each registry parameter's type, range and choices, next to its default.

`Param` is the declaration (the registry writes `kernel_size=Param(int, 8, min=1, max=128)`), and
`validate` checks and coerces one override (`--set KEY=VALUE`, `--weights X`) against it, raising
`BadParameter` with one line that names the config, the key, the bad value and what is expected, e.g.

    --set kernel_size=-5 for drawing: kernel_size must be an integer in [1, 128] (default 8)

Values may arrive parsed from JSON (the CLI's `--set` tries JSON first) or as the raw text; both are
accepted when they mean exactly one value of the declared kind ("3" for an int, 3.0 for an int, 3 for a
float), nothing else is guessed: a bool is not an int, 8.5 and "8.0" are not ints, NaN is no number.
Importing this module imports nothing heavy.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

KINDS = ("int", "float", "str", "bool", "path", "any")
_KIND_NAMES = {int: "int", float: "float", str: "str", bool: "bool"}
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NULL_TEXT = ("null", "none")


class BadParameter(ValueError):
    """An override that is not a valid value (or not a parameter) of the chosen config(s); one line."""

    def __init__(self, message: str, *, configs: tuple[str, ...] = (), key: str | None = None,
                 value: Any = None, flag: str | None = None):
        super().__init__(message)
        self.configs, self.key, self.value, self.flag = tuple(configs), key, value, flag

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Param:
    """One config parameter: its kind, default and valid domain.

    kind: int, float, str, bool, "path" (a non-empty string naming a file, folder or Hub id; whether it
    exists is the config's preflight's business) or "any" (not checked: for entries made outside the
    registry). min/max bound numbers (inclusive unless min_exclusive/max_exclusive); choices lists the
    only values allowed; odd requires an odd integer; nullable also allows None (JSON null);
    fixed marks a parameter that is part of the config's name (severity) and cannot be overridden.
    """

    kind: Any
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    odd: bool = False
    nullable: bool = False
    min_exclusive: bool = False
    max_exclusive: bool = False
    fixed: bool = False
    help: str = ""

    def __post_init__(self) -> None:
        kind = _KIND_NAMES.get(self.kind, self.kind)
        if kind not in KINDS:
            raise TypeError(f"Param kind must be one of int, float, str, bool, 'path', 'any', not {self.kind!r}")
        object.__setattr__(self, "kind", kind)
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))

    # ---- what the domain is, in words ---------------------------------------------------------------

    def expected(self) -> str:
        """The domain as a phrase: 'an integer in [1, 128]', "one of 'sobel', 'forward'", 'a path or null'."""
        if self.choices is not None:
            text = "one of " + ", ".join(_show(c) for c in self.choices)
        else:
            text = {
                "int": "an odd integer" if self.odd else "an integer",
                "float": "a number",
                "str": "a string",
                "bool": "true or false",
                "path": "a non-empty path or name",
                "any": "any value",
            }[self.kind]
            bounds = self._bounds()
            if bounds:
                text += " " + bounds
        if self.nullable:
            text += " or null"
        return text

    def _bounds(self) -> str:
        lo, hi = self.min, self.max
        if lo is None and hi is None:
            return ""
        if lo is not None and hi is not None:
            return f"in {'(' if self.min_exclusive else '['}{_num(lo)}, {_num(hi)}{')' if self.max_exclusive else ']'}"
        if lo is not None:
            return f"{'>' if self.min_exclusive else '>='} {_num(lo)}"
        return f"{'<' if self.max_exclusive else '<='} {_num(hi)}"

    def describe(self) -> str:
        """One line for `shift-hub list --params`: the domain, and the help text if any."""
        text = f"fixed by the config name, {self.expected()}" if self.fixed else self.expected()
        return text + (f"; {self.help}" if self.help else "")

    # ---- checking ---------------------------------------------------------------------------------

    def coerce(self, value: Any) -> Any:
        """The value as this kind, or ValueError (no message needed: `validate` writes it)."""
        if value is None or (isinstance(value, str) and self.kind not in ("str", "path", "any")
                             and value.strip().lower() in _NULL_TEXT):
            if self.nullable or self.kind == "any":
                return None
            raise ValueError
        if self.kind == "any":
            return value
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            raise ValueError
        if self.kind == "int":
            value = _as_int(value)
        elif self.kind == "float":
            value = _as_float(value)
        else:  # str, path
            if not isinstance(value, str):
                raise ValueError
            if self.kind == "path" and (not value.strip() or "\x00" in value or "\n" in value):
                raise ValueError
        if self.choices is not None:
            if value not in self.choices or type(value) is bool:
                raise ValueError
            return value
        if self.odd and value % 2 != 1:
            raise ValueError
        if self.min is not None and (value < self.min or (self.min_exclusive and value == self.min)):
            raise ValueError
        if self.max is not None and (value > self.max or (self.max_exclusive and value == self.max)):
            raise ValueError
        return value


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise ValueError
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    raise ValueError


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise ValueError
    if not math.isfinite(number):
        raise ValueError
    return number


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _show(value: Any, limit: int = 80) -> str:
    """A value as the user would type it, on one line: bare text for plain strings, JSON otherwise."""
    if isinstance(value, str) and value and value.isprintable() and value == value.strip() and value.lower() not in (
            "null", "none", "true", "false"):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=True)
        except (TypeError, ValueError):
            text = repr(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flag_for(key: str, value: Any) -> str:
    """How the override was given on the command line: `--weights X` or `--set KEY=VALUE`."""
    return f"--weights {_show(value)}" if key == "weights" else f"--set {_show(key)}={_show(value)}"


def _names(configs) -> str:
    configs = list(configs)
    return ", ".join(configs[:6]) + (f" (+{len(configs) - 6} more)" if len(configs) > 6 else "")


def validate(spec_name: str | tuple[str, ...] | list[str], key: str, value: Any, param: Param) -> Any:
    """`value` checked against `param` and coerced (an int-valued 8.0 -> 8, 3 -> 3.0 for a float, "3" -> 3).

    Raises BadParameter, one line naming the flag, the config(s), the key, the value and the domain:
    `--set kernel_size=-5 for drawing: kernel_size must be an integer in [1, 128] (default 8)`.
    `spec_name` may be several configs sharing the same declaration (their names are listed).
    """
    configs = (spec_name,) if isinstance(spec_name, str) else tuple(spec_name)
    where = f"{flag_for(key, value)} for {_names(configs)}"
    if param.fixed:
        raise BadParameter(f"{where}: {key} is part of the config name ({_show(param.default)} here) and cannot be "
                           "overridden; choose the config with the value you want",
                           configs=configs, key=key, value=value, flag=flag_for(key, value))
    try:
        return param.coerce(value)
    except (ValueError, TypeError, OverflowError):
        raise BadParameter(f"{where}: {key} must be {param.expected()} (default {_show(param.default)})",
                           configs=configs, key=key, value=value, flag=flag_for(key, value)) from None


def describe_params(params: Mapping[str, Any], declared: Mapping[str, Param]) -> list[str]:
    """`KEY = DEFAULT  (domain; help)` per parameter, for `shift-hub list --params CONFIG`."""
    lines = []
    for key, default in params.items():
        param = declared.get(key)
        lines.append(f"{key} = {default!r}" + (f"  ({param.describe()})" if param is not None else ""))
    return lines


__all__ = ["BadParameter", "Param", "validate", "describe_params", "flag_for", "KINDS"]
