"""Kernel release strings (``/proc/sys/kernel/osrelease``, ``uname -r``).

Typical input: ``6.1.112-124.190.amzn2023.x86_64`` (Amazon Linux 2023), ``5.15.0-1051-aws``
(Ubuntu). AWS's support table lists major.minor only, so gd-doctor compares the leading ``X.Y``
(guardduty.md 1.2).
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

from gd_doctor.patterns import lazy

_RELEASE = lazy(r"^\s*(\d{1,3})\.(\d{1,3})(?:\.(\d{1,6}))?")


class KernelVersion(NamedTuple):
    """The leading numbers of a kernel release; ``release`` keeps the full string."""

    major: int
    minor: int
    patch: Optional[int] = None
    release: str = ""

    @property
    def major_minor(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def key(self) -> Tuple[int, int]:
        return (self.major, self.minor)


def parse_kernel_release(text: str) -> Optional[KernelVersion]:
    """The version in a kernel release string, or None when it does not start with X.Y.

    >>> k = parse_kernel_release("6.1.112-124.190.amzn2023.x86_64\\n")
    >>> k.major_minor, k.patch, k.release
    ('6.1', 112, '6.1.112-124.190.amzn2023.x86_64')
    >>> parse_kernel_release("5.15.0-1051-aws").key
    (5, 15)
    >>> parse_kernel_release("garbage") is None
    True
    """
    m = _RELEASE.match(text)
    if m is None:
        return None
    patch = int(m.group(3)) if m.group(3) is not None else None
    return KernelVersion(int(m.group(1)), int(m.group(2)), patch, text.strip().split()[0])


def parse_major_minor(text: str) -> Optional[Tuple[int, int]]:
    """``"5.10"`` -> ``(5, 10)``; for the support matrix's kernel entries.

    >>> parse_major_minor("5.10"), parse_major_minor("x")
    ((5, 10), None)
    """
    k = parse_kernel_release(text)
    return k.key if k else None
