"""``/proc/<pid>/limits``: the resource limits of one process.

Typical input (``cat /proc/self/limits`` on Debian 12, kernel 6.1; columns are padded with
spaces and the unit column is empty for counts)::

    Limit                     Soft Limit           Hard Limit           Units
    Max cpu time              unlimited            unlimited            seconds
    Max locked memory         8388608              8388608              bytes
    Max nice priority         0                    0

gd-doctor reads ``Max locked memory`` of the GuardDuty agent (guardduty.md 1.3: at least 32 MiB
soft and hard on kernels 5.10 and older).
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional

from gd_doctor.patterns import lazy

MAX_LOCKED_MEMORY = "Max locked memory"

# The limit name holds single spaces; the columns are separated by two or more spaces, but a
# long name can leave a single one, so match the numeric columns from the right instead.
_ROW = lazy(
    r"^(?P<name>\S.*?)\s+(?P<soft>unlimited|\d+)\s+(?P<hard>unlimited|\d+)(?:\s+(?P<units>\S+))?\s*$"
)


class Limit(NamedTuple):
    """One row: ``None`` stands for ``unlimited``."""

    soft: Optional[int]
    hard: Optional[int]
    units: str = ""

    def at_least(self, minimum: int) -> bool:
        """True when both soft and hard limits are unlimited or >= ``minimum``.

        >>> Limit(33554432, None, "bytes").at_least(32 * 1024 * 1024)
        True
        >>> Limit(8388608, 8388608, "bytes").at_least(32 * 1024 * 1024)
        False
        """
        return all(v is None or v >= minimum for v in (self.soft, self.hard))


def _value(text: str) -> Optional[int]:
    return None if text == "unlimited" else int(text)


def parse_proc_limits(text: str) -> Dict[str, Limit]:
    """Rows by limit name; the header and lines that are not limit rows are ignored.

    >>> text = '''Limit                     Soft Limit           Hard Limit           Units
    ... Max cpu time              unlimited            unlimited            seconds
    ... Max locked memory         8388608              8388608              bytes
    ... Max nice priority         0                    0
    ... '''
    >>> limits = parse_proc_limits(text)
    >>> limits["Max locked memory"]
    Limit(soft=8388608, hard=8388608, units='bytes')
    >>> limits["Max cpu time"].soft is None
    True
    >>> limits["Max nice priority"]
    Limit(soft=0, hard=0, units='')
    >>> parse_proc_limits("garbage\\x00\\n")
    {}
    """
    rows: Dict[str, Limit] = {}
    for line in text.splitlines():
        m = _ROW.match(line.strip())
        if m is None or m.group("name") == "Limit":
            continue
        rows[m.group("name")] = Limit(
            _value(m.group("soft")), _value(m.group("hard")), m.group("units") or ""
        )
    return rows
