"""Spec strings: ``name:key=value,key=value`` (e.g. ``adam:lr=1e-3,betas=0.9/0.999``).

One parser serves optimizers, schedules, averaging and tracking options. Values are parsed as
bool (true/false), int, float, a tuple of numbers separated by '/', or left as a string.
A flag's value is read by :func:`parse_bool`, which accepts only true/false and 1/0: ``maximize=no``
is an error naming the key, never a truthy string. A spec is at most ``MAX_SPEC_LENGTH`` characters.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_SPEC_LENGTH = 1000  # characters; a spec is typed by a person, not a data file


@dataclass(frozen=True)
class Spec:
    """A parsed spec: a name and its keyword arguments, printable back as the same string."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.kwargs:
            return self.name
        return self.name + ":" + ",".join(f"{k}={format_value(v)}" for k, v in self.kwargs.items())


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "/".join(format_value(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_value(text: str) -> Any:
    """'true' -> True, '3' -> 3, '1e-3' -> 0.001, '0.9/0.999' -> (0.9, 0.999), else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if "/" in text:
        return tuple(parse_value(part) for part in text.split("/"))
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text.strip()
    return number


def parse_bool(key: str, value: Any) -> bool:
    """A flag: True/False, 1/0 or the strings true/false/1/0 (any case); else ValueError naming ``key``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(f"{key}={format_value(value) if isinstance(value, (int, float, tuple)) else value!r} "
                     "must be true or false (or 1/0)")


def parse_spec(text: str, kind: str = "spec") -> Spec:
    """Parse ``name:key=value,...``; raise ValueError naming the malformed part."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty {kind}: expected 'name' or 'name:key=value,...'")
    if len(text) > MAX_SPEC_LENGTH:
        raise ValueError(f"{kind} is {len(text)} characters long; at most {MAX_SPEC_LENGTH} allowed")
    name, colon, rest = text.strip().partition(":")
    name = name.strip()
    if not _NAME.match(name):
        raise ValueError(f"malformed {kind} {text!r}: bad name {name!r}")
    kwargs: dict[str, Any] = {}
    if colon and not rest.strip():
        raise ValueError(f"malformed {kind} {text!r}: expected key=value after ':'")
    if rest.strip():
        for item in rest.split(","):
            key, eq, raw = item.partition("=")
            key = key.strip()
            if not eq or not _KEY.match(key) or not raw.strip():
                raise ValueError(f"malformed {kind} {text!r}: expected key=value, got {item!r}")
            if key in kwargs:
                raise ValueError(f"malformed {kind} {text!r}: {key!r} given twice")
            value = parse_value(raw)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"malformed {kind} {text!r}: {key}={raw} is not a finite number")
            kwargs[key] = value
    return Spec(name, kwargs)
