"""What every parser may raise, and a JSON reader that hostile input cannot break.

A parser returns a typed value, or a typed "could not parse" value; the few that raise raise a
:class:`ParseError` subclass, which their callers catch. Nothing else may escape a parser: not
``RecursionError`` from deep JSON nesting, not ``ValueError`` from Python's 4,300-digit limit on
int(), not ``OverflowError`` from impossible dates.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 64
MAX_JSON_CHARS = 8 * 1024 * 1024


class ParseError(ValueError):
    """The input is not what the parser reads; the message says why."""


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """The nesting depth of JSON text, counted without recursion (strings skipped); stops
    counting just past ``limit``.

    >>> json_depth('{"a": [1, {"b": "[[["}]}')
    3
    """
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def loads_json(
    text: str, *, max_depth: int = MAX_JSON_DEPTH, max_chars: int = MAX_JSON_CHARS
) -> Any:
    """``json.loads`` with bounded size and depth; every failure is a :class:`ParseError`.

    >>> loads_json('{"a": 1}')
    {'a': 1}
    >>> loads_json("[" * 10000)
    Traceback (most recent call last):
    ...
    gd_doctor.parsers.errors.ParseError: JSON nested deeper than 64 levels
    """
    if len(text) > max_chars:
        raise ParseError(f"JSON larger than {max_chars} characters")
    if json_depth(text, max_depth) > max_depth:
        raise ParseError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError covers the int-digits limit too
        raise ParseError(f"not JSON: {str(exc)[:120]}") from None
