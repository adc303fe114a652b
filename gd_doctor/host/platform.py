"""What only the running kernel can say: ``uname`` (machine and release).

Used only when the host is live and its root is this machine's own ``/``: with ``--root`` (or a
test's fake root) the answer must come from files under the root, never from the machine that
runs gd-doctor. A Host may carry the answers instead (``Host.uname``): a support bundle's replay
answers what the recorded run's kernel said.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from gd_doctor.frozen import dataclass

if TYPE_CHECKING:
    from gd_doctor.host import Host


@dataclass(frozen=True)
class Uname:
    """The two answers of ``uname`` the checks use; None where the kernel was not asked."""

    machine: Optional[str] = None
    release: Optional[str] = None


def uname(host: Host) -> Uname:
    """The host's kernel answers: recorded ones, the live kernel's, or none (a root)."""
    if host.uname is not None:
        return host.uname
    if not (host.live and host.fs.is_live):
        return Uname()
    try:
        u = os.uname()
    except OSError:
        return Uname()
    return Uname(u.machine, u.release)


def machine(host: Host) -> Optional[str]:
    """``uname -m`` of the live host, or None when the host is a root or a fake."""
    return uname(host).machine


def kernel_release(host: Host) -> Optional[str]:
    """``uname -r`` of the live host, or None when the host is a root or a fake."""
    return uname(host).release
