"""``dmesg --time-format=iso --kernel``: the kernel ring buffer with wall-clock times.

The ring buffer holds the kernel's messages since boot whether or not journald keeps them (a
volatile journal, journald inside a container, or ``Storage=none`` lose them), so it is a second
source for cgroup OOM kills of the agent.
"""

from __future__ import annotations

from datetime import datetime
from typing import List, NamedTuple, Optional

from gd_doctor.patterns import lazy

_LINE = lazy(
    r"^(?P<date>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:[,.](?P<frac>\d{1,6}))?(?P<tz>[+-]\d\d:?\d\d)"
    r"\s(?P<msg>.*)$"
)


class KernelLine(NamedTuple):
    """One line of the ring buffer."""

    timestamp: datetime
    message: str


def _when(date: str, frac: Optional[str], tz: str) -> Optional[datetime]:
    tz = tz if ":" in tz else f"{tz[:3]}:{tz[3:]}"
    micro = (frac or "0").ljust(6, "0")[:6]
    try:
        return datetime.fromisoformat(f"{date}.{micro}{tz}")
    except ValueError:
        return None


def parse_dmesg_iso(text: str) -> List[KernelLine]:
    """Lines with a parsable ISO time; anything else (continuations, garbage) is skipped.

    Typical input (util-linux 2.38, a cgroup OOM kill of the agent)::

        2026-11-30T14:13:32,628402+00:00 amazon-guarddut invoked oom-killer: gfp_mask=0xcc0(...
        2026-11-30T14:13:32,628925+00:00 Memory cgroup out of memory: Killed process 14499 (...

    >>> lines = parse_dmesg_iso(
    ...     "2026-11-30T14:13:32,628925+00:00 Memory cgroup out of memory: Killed process 14499 "
    ...     "(amazon-guarddut) total-vm:174204kB\\nnot a line\\n")
    >>> lines[0].timestamp.isoformat(), lines[0].message[:31], len(lines)
    ('2026-11-30T14:13:32.628925+00:00', 'Memory cgroup out of memory: Ki', 1)
    """
    out: List[KernelLine] = []
    for raw in text.splitlines():
        m = _LINE.match(raw)
        if not m:
            continue
        when = _when(m.group("date"), m.group("frac"), m.group("tz"))
        if when is not None:
            out.append(KernelLine(when, m.group("msg")))
    return out
