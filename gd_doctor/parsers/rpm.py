"""Parse ``rpm -q --qf ...`` and ``rpm -V`` output for one package.

Typical ``rpm -V`` input (format from rpm(8), "VERIFY OPTIONS")::

    S.5....T.  c /etc/amazon-guardduty-agent/config.yaml
    missing     /opt/aws/amazon-guardduty-agent/bin/amazon-guardduty-agent

Each line is an 8- or 9-character attribute string (S size, M mode, 5 digest, D device,
L link, U user, G group, T mtime, P capabilities; ``.`` passed, ``?`` not tested), an optional
file attribute marker (``c`` config, ``d`` doc, ``g`` ghost, ``l`` license, ``r`` readme), and the
path; or ``missing`` and the path. Changed configuration files are normal; changed or missing
binaries are not.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.patterns import lazy

RPM_QUERY_FORMAT = "%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}\\n"
_VERIFY = lazy(r"^(missing|[.?SM5DLUGTP]{8,9})\s+(?:([cdglr])\s+)?(/.*)$")


@dataclass(frozen=True)
class RpmPackage:
    name: str
    version: str
    release: str
    arch: str


@dataclass(frozen=True)
class VerifyProblem:
    """One file ``rpm -V`` reported."""

    flags: str  # "missing" or the attribute string
    kind: str  # "c", "d", ... or ""
    path: str

    @property
    def serious(self) -> bool:
        """Missing, or content/size/mode changed on a file that is not configuration."""
        if self.kind in ("c", "d", "g", "l", "r"):
            return False
        return self.flags == "missing" or any(ch in self.flags for ch in "S5M")


def parse_rpm_query(text: str) -> Optional[RpmPackage]:
    """Parse ``rpm -q --qf RPM_QUERY_FORMAT``; None for "package X is not installed".

    >>> parse_rpm_query("amazon-guardduty-agent|1.9.2|1|x86_64\\n").version
    '1.9.2'
    >>> parse_rpm_query("package amazon-guardduty-agent is not installed\\n") is None
    True
    """
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and all(parts[:2]):
            return RpmPackage(*parts)
    return None


def parse_rpm_verify(text: str) -> Tuple[List[VerifyProblem], List[str]]:
    """``rpm -V`` lines into problems, plus the lines that did not parse.

    >>> probs, junk = parse_rpm_verify("S.5....T.  c /etc/x.yaml\\nmissing     /usr/bin/agent\\n")
    >>> [(p.path, p.serious) for p in probs], junk
    ([('/etc/x.yaml', False), ('/usr/bin/agent', True)], [])
    """
    problems: List[VerifyProblem] = []
    other: List[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _VERIFY.match(line.strip())
        if m:
            problems.append(VerifyProblem(m.group(1), m.group(2) or "", m.group(3)))
        else:
            other.append(line.strip())
    return problems, other


# Tags and types of an rpm header (rpm's include/rpm/rpmtag.h).
_TAG_NAME, _TAG_VERSION, _TAG_RELEASE, _TAG_EPOCH, _TAG_ARCH = 1000, 1001, 1002, 1003, 1022
_TYPE_INT32, _TYPE_STRING, _TYPE_I18NSTRING = 4, 6, 9
_MAX_INDEX_ENTRIES = 100_000


@dataclass(frozen=True)
class RpmHeader:
    """What gd-doctor reads from one installed package's header in the rpm database."""

    name: str
    version: str
    release: str
    arch: str
    epoch: Optional[int] = None


def parse_rpm_header(blob: bytes) -> Optional[RpmHeader]:
    """One header as the rpm database stores it (the ``blob`` of ``rpmdb.sqlite``'s
    ``Packages`` table): big-endian index count and data size, 16-byte index entries (tag,
    type, offset, count), then the data. None when it is not a well-formed header.

    >>> import struct
    >>> data = b"amazon-guardduty-agent\\x001.9.2\\x001\\x00x86_64\\x00"
    >>> offs = [0, 23, 29, 31]
    >>> idx = b"".join(struct.pack(">iIiI", t, 6, o, 1)
    ...                for t, o in zip((1000, 1001, 1002, 1022), offs))
    >>> h = parse_rpm_header(struct.pack(">II", 4, len(data)) + idx + data)
    >>> h.name, h.version, h.release, h.arch, h.epoch
    ('amazon-guardduty-agent', '1.9.2', '1', 'x86_64', None)
    >>> parse_rpm_header(b"\\xff" * 40) is None
    True
    """
    if len(blob) < 8:
        return None
    count, size = struct.unpack(">II", blob[:8])
    start = 8 + 16 * count
    if count > _MAX_INDEX_ENTRIES or start + size > len(blob):
        return None
    data = blob[start : start + size]
    strings: Dict[int, str] = {}
    epoch: Optional[int] = None
    for i in range(count):
        tag, typ, off, _n = struct.unpack(">iIiI", blob[8 + 16 * i : 24 + 16 * i])
        if off < 0 or off >= size:
            continue
        if tag in (_TAG_NAME, _TAG_VERSION, _TAG_RELEASE, _TAG_ARCH) and typ in (
            _TYPE_STRING,
            _TYPE_I18NSTRING,
        ):
            end = data.find(b"\x00", off)
            raw = data[off : end if end >= 0 else size]
            strings[tag] = raw.decode("utf-8", errors="replace")
        elif tag == _TAG_EPOCH and typ == _TYPE_INT32 and off + 4 <= size:
            epoch = struct.unpack(">i", data[off : off + 4])[0]
    if not strings.get(_TAG_NAME) or _TAG_VERSION not in strings:
        return None
    return RpmHeader(
        strings[_TAG_NAME],
        strings[_TAG_VERSION],
        strings.get(_TAG_RELEASE, ""),
        strings.get(_TAG_ARCH, ""),
        epoch,
    )
