"""``/etc/os-release`` (or ``/usr/lib/os-release``) and ``/etc/system-release``.

Typical input (Amazon Linux 2023, as the distribution ships it)::

    NAME="Amazon Linux"
    VERSION="2023"
    ID="amzn"
    ID_LIKE="fedora"
    VERSION_ID="2023"
    PRETTY_NAME="Amazon Linux 2023"

os-release is a shell-compatible list of ``KEY=value`` assignments (os-release(5)): values may be
unquoted, or in single or double quotes; inside double quotes a backslash escapes ``"``, ``\\``,
``$`` and `````. Lines that are not assignments and comments are ignored, so any text parses.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Dict, Mapping, NamedTuple, Optional, Tuple

from gd_doctor.patterns import lazy

_ASSIGNMENT = lazy(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_DQ_ESCAPES = {'"', "\\", "$", "`"}


def _unquote(raw: str) -> str:
    """The value of one assignment's right-hand side, shell-style (no expansion)."""
    out = []
    i = 0
    raw = raw.rstrip()
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            i += 1
            while i < len(raw) and raw[i] != '"':
                if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in _DQ_ESCAPES:
                    i += 1
                out.append(raw[i])
                i += 1
            i += 1  # closing quote (or end of a truncated line)
        elif ch == "'":
            end = raw.find("'", i + 1)
            end = len(raw) if end < 0 else end
            out.append(raw[i + 1 : end])
            i = end + 1
        elif ch == "\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
        elif ch.isspace() or ch == "#":
            break  # unquoted whitespace ends the word; the rest is a comment or junk
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class OsRelease(NamedTuple):
    """The identifying fields; ``fields`` holds every assignment found."""

    id: str = ""
    version_id: str = ""
    name: str = ""
    pretty_name: str = ""
    id_like: Tuple[str, ...] = ()
    fields: Mapping[str, str] = MappingProxyType({})

    @property
    def known(self) -> bool:
        """True when the file named a distribution at all."""
        return bool(self.id or self.name)


def parse_os_release(text: str) -> OsRelease:
    """Parse os-release text; never raises.

    >>> al2023 = parse_os_release('''NAME="Amazon Linux"
    ... VERSION="2023"
    ... ID="amzn"
    ... ID_LIKE="fedora"
    ... VERSION_ID="2023"
    ... PLATFORM_ID="platform:al2023"
    ... PRETTY_NAME="Amazon Linux 2023"
    ... ''')
    >>> al2023.id, al2023.version_id, al2023.pretty_name, al2023.id_like
    ('amzn', '2023', 'Amazon Linux 2023', ('fedora',))
    >>> odd = parse_os_release("ID=ubuntu\\nVERSION_ID='22.04'\\nNAME=\\"A \\\\\\"B\\\\\\"\\"")
    >>> odd.version_id, odd.name
    ('22.04', 'A "B"')
    >>> parse_os_release("\\x00garbage").known
    False
    """
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        m = _ASSIGNMENT.match(line)
        if m:
            fields[m.group(1)] = _unquote(m.group(2))
    return OsRelease(
        id=fields.get("ID", "").strip().lower(),
        version_id=fields.get("VERSION_ID", "").strip(),
        name=fields.get("NAME", "").strip(),
        pretty_name=fields.get("PRETTY_NAME", "").strip(),
        id_like=tuple(fields.get("ID_LIKE", "").lower().split()),
        fields=fields,
    )


_SYSTEM_RELEASE = lazy(r"^\s*(?P<name>.+?)\s+release\s+(?P<version>[0-9][0-9.]*)", re.I)

# Names /etc/system-release uses, mapped to os-release IDs (for hosts without os-release).
_SYSTEM_RELEASE_IDS = (
    ("amazon linux", "amzn"),
    ("centos stream", "centos"),
    ("centos", "centos"),
    ("red hat enterprise linux", "rhel"),
    ("rocky linux", "rocky"),
    ("almalinux", "almalinux"),
    ("oracle linux", "ol"),
    ("fedora", "fedora"),
)


def parse_system_release(text: str) -> Optional[OsRelease]:
    """``/etc/system-release`` (one line) as an OsRelease, or None when it is not one.

    >>> parse_system_release("Amazon Linux release 2 (Karoo)\\n").id
    'amzn'
    >>> r = parse_system_release("CentOS Linux release 7.9.2009 (Core)")
    >>> r.id, r.version_id, r.pretty_name
    ('centos', '7', 'CentOS Linux release 7.9.2009 (Core)')
    >>> parse_system_release("garbage") is None
    True
    """
    line = text.strip().splitlines()[0] if text.strip() else ""
    m = _SYSTEM_RELEASE.match(line)
    if m is None:
        return None
    name = m.group("name").strip()
    version = m.group("version")
    os_id = next((i for prefix, i in _SYSTEM_RELEASE_IDS if name.lower().startswith(prefix)), "")
    if os_id in ("centos",) and not name.lower().startswith("centos stream"):
        version = version.split(".")[0]  # os-release says VERSION_ID="7" for 7.9.2009
    return OsRelease(id=os_id, version_id=version, name=name, pretty_name=line.strip())
