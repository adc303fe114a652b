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

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

RPM_QUERY_FORMAT = "%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}\\n"
_VERIFY = re.compile(r"^(missing|[.?SM5DLUGTP]{8,9})\s+(?:([cdglr])\s+)?(/.*)$")


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
