"""Parse systemd unit files and drop-ins (``[Section]`` and ``Key=value`` lines).

The host's one systemd layer (:mod:`gd_doctor.host.units`) finds the unit file and its drop-ins
with systemd's precedence and merges what this module parses with :func:`collect_settings`
(later files win; an empty assignment resets the list), live and under ``--root``.

Typical input (the AWS troubleshooting page names both memory directives)::

    [Service]
    MemoryLimit=256M
    MemoryMax=256M

Lines that are not ``Key=value`` inside a section are kept as syntax errors (systemd ignores them
with a warning too), so a broken file gives a clear result instead of an exception.
"""

from __future__ import annotations

import re
import shlex
from typing import Dict, List, Optional, Sequence, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.parsers.numbers import scaled

_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class UnitFile:
    """One parsed file: ordered assignments per section, and the lines systemd would reject."""

    path: str
    assignments: Tuple[Tuple[str, str, str], ...] = ()  # (section, key, value)
    errors: Tuple[str, ...] = ()

    def values(self, section: str, key: str) -> List[str]:
        return [v for s, k, v in self.assignments if s == section and k == key]


def parse_unit_file(text: str, path: str = "") -> UnitFile:
    """Parse one unit file or drop-in.

    >>> u = parse_unit_file("[Unit]\\nDescription=x\\n[Service]\\nMemoryMax=128M\\n"
    ...                     "ExecStart=/bin/a \\\\\\n  --flag\\nthis is junk\\n", "x.service")
    >>> u.values("Service", "MemoryMax"), u.values("Service", "ExecStart"), u.errors
    (['128M'], ['/bin/a --flag'], ('x.service:7: not a Key=value line: this is junk',))
    """
    section = ""
    out: List[Tuple[str, str, str]] = []
    errors: List[str] = []
    lines = text.replace("\x00", "").splitlines()
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].strip()
        i += 1
        # A trailing backslash continues the line (systemd.syntax(7)).
        while line.endswith("\\") and i < len(lines):
            line = line[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]+", key.strip()) or not section:
            errors.append(f"{path}:{lineno}: not a Key=value line: {line[:200]}")
            continue
        out.append((section, key.strip(), value.strip()))
    return UnitFile(path, tuple(out), tuple(errors))


def _env_words(value: str) -> List[Tuple[str, str]]:
    try:
        words = shlex.split(value)
    except ValueError:
        words = value.split()
    return [(n, v) for n, s, v in (w.partition("=") for w in words) if s and n]


def parse_size(value: Optional[str], total_memory: Optional[int] = None) -> Optional[int]:
    """A systemd size (``128M``, ``1G``, ``50%``, ``infinity``) in bytes; None when unlimited
    or unknown. Percentages need the machine's memory.

    >>> parse_size("128M"), parse_size("1G"), parse_size("infinity"), parse_size("50%", 1000)
    (134217728, 1073741824, None, 500)
    """
    if not value:
        return None
    value = value.strip()
    if value.endswith("%"):
        if total_memory is None:
            return None
        percent = scaled(value[:-1], 1000)
        return None if percent is None else total_memory * percent // 100_000
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", value, re.IGNORECASE)
    if not m:
        return None
    return scaled(m.group(1), _SIZE_UNITS[m.group(2).upper()])


def collect_settings(files: Sequence[UnitFile]) -> Dict[str, Tuple[str, ...]]:
    """Every ``Section.Key`` of a unit and its drop-ins (in systemd's order) with its values
    since the last empty assignment: an empty ``Key=`` resets a list (``ExecStart=``,
    ``Environment=``) and a single setting (``MemoryMax=``) alike, so the last value is the
    effective one and a list is what systemd keeps.

    >>> base = parse_unit_file("[Service]\\nExecStart=/bin/a\\nMemoryMax=1G\\n")
    >>> drop = parse_unit_file("[Service]\\nExecStart=\\nExecStart=/bin/b\\nMemoryMax=\\n")
    >>> collect_settings([base, drop])
    {'Service.ExecStart': ('/bin/b',)}
    """
    out: Dict[str, List[str]] = {}
    for unit in files:
        for section, key, value in unit.assignments:
            name = f"{section}.{key}"
            if value == "":
                out.pop(name, None)
            else:
                out.setdefault(name, []).append(value)
    return {k: tuple(v) for k, v in out.items()}


def settings_sources(files: Sequence[UnitFile]) -> Dict[str, str]:
    """``Section.Key`` -> the file of its last non-empty assignment (an empty one resets)."""
    out: Dict[str, str] = {}
    for unit in files:
        for section, key, value in unit.assignments:
            name = f"{section}.{key}"
            if value:
                out[name] = unit.path
            else:
                out.pop(name, None)
    return out


def split_unit_name(name: str) -> Tuple[str, str]:
    stem, dot, suffix = name.rpartition(".")
    return (stem, suffix) if dot else (name, "")


def template_of(name: str) -> Optional[str]:
    stem, suffix = split_unit_name(name)
    prefix, at, instance = stem.partition("@")
    return f"{prefix}@.{suffix}" if at and instance else None


def dash_prefixes(name: str) -> List[str]:
    """``foo-bar-baz.service`` -> ``foo-bar-.service``, ``foo-.service`` (dropin.c)."""
    stem, suffix = split_unit_name(name)
    prefix, at, instance = stem.partition("@")
    out: List[str] = []
    work = prefix
    while True:
        cut = work.rstrip("-") if work.endswith("-") else work
        dash = cut.rfind("-")
        if dash <= 0:
            return out
        work = cut[: dash + 1]
        out.append(f"{work}{'@' + instance if at else ''}.{suffix}")
