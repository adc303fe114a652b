"""systemd's manager configuration (``/etc/systemd/system.conf`` and its ``system.conf.d`` drop-ins)
and unit files, as far as resource limits go.

Typical input (``/etc/systemd/system.conf`` of Debian 12, systemd 252; every line is a comment
until an administrator sets one)::

    [Manager]
    #LogLevel=info
    #DefaultLimitMEMLOCK=8M
    DefaultLimitMEMLOCK=32M:32M

systemd.syntax(7): ``[Section]`` headers, ``Key=Value`` lines, ``#`` and ``;`` comments, a trailing
backslash continues a line, and a later assignment of the same key overrides an earlier one.
Limits (systemd.exec(5), ``LimitMEMLOCK=``) are ``soft[:hard]``: a size with an optional base-1024
suffix (K, M, G, T, P, E) or ``infinity``.
"""

from __future__ import annotations

import re
from typing import Dict, NamedTuple, Optional, Tuple

from gd_doctor.parsers.numbers import scaled
from gd_doctor.patterns import lazy

Sections = Dict[str, Dict[str, str]]

_SUFFIX = {
    "": 1,
    "K": 1 << 10,
    "M": 1 << 20,
    "G": 1 << 30,
    "T": 1 << 40,
    "P": 1 << 50,
    "E": 1 << 60,
}
_SIZE = lazy(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPE]?)(?:i?B)?\s*$", re.IGNORECASE)


def parse_systemd_conf(text: str) -> Sections:
    """Sections -> keys -> the last value assigned.

    >>> conf = parse_systemd_conf('''[Manager]
    ... #LogLevel=info
    ... #DefaultLimitMEMLOCK=8M
    ... DefaultLimitMEMLOCK=32M:32M
    ... ''')
    >>> conf["Manager"]["DefaultLimitMEMLOCK"]
    '32M:32M'
    >>> parse_systemd_conf("\\x00 garbage")
    {}
    """
    sections: Sections = {}
    current: Optional[str] = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            sections.setdefault(current, {})
            continue
        if current is None or "=" not in line:
            continue
        key, value = line.split("=", 1)
        sections[current][key.strip()] = value.strip()
    return sections


class LimitSetting(NamedTuple):
    """A parsed ``soft[:hard]`` limit; ``None`` means infinity."""

    soft: Optional[int]
    hard: Optional[int]

    def at_least(self, minimum: int) -> bool:
        return all(v is None or v >= minimum for v in (self.soft, self.hard))


def _size(text: str) -> Tuple[bool, Optional[int]]:
    """(valid, bytes or None for infinity)."""
    text = text.strip()
    if text.lower() == "infinity":
        return True, None
    m = _SIZE.match(text)
    if m is None:
        return False, None
    value = scaled(m.group(1), _SUFFIX[m.group(2).upper()])
    return value is not None, value


def parse_limit(value: str) -> Optional[LimitSetting]:
    """``"32M:32M"``, ``"8M"`` (soft = hard), ``"infinity"``; None when invalid or empty.

    An empty assignment resets the setting to systemd's default, so it yields None too.

    >>> parse_limit("32M:32M")
    LimitSetting(soft=33554432, hard=33554432)
    >>> parse_limit("64K")
    LimitSetting(soft=65536, hard=65536)
    >>> parse_limit("8M:infinity")
    LimitSetting(soft=8388608, hard=None)
    >>> parse_limit("lots") is None, parse_limit("") is None
    (True, True)
    """
    if not value.strip():
        return None
    soft_text, _, hard_text = value.partition(":")
    ok_soft, soft = _size(soft_text)
    ok_hard, hard = _size(hard_text) if hard_text else (ok_soft, soft)
    if not (ok_soft and ok_hard):
        return None
    return LimitSetting(soft, hard)
