"""What only the running kernel can say: ``uname`` (machine and release).

Used only when the host is live and its root is this machine's own ``/``: with ``--root`` (or a
test's fake root) the answer must come from files under the root, never from the machine that
runs gd-doctor.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from gd_doctor.host import Host


def _uname(host: Host) -> Optional[os.uname_result]:
    if not (host.live and host.fs.is_live):
        return None
    try:
        return os.uname()
    except OSError:
        return None


def machine(host: Host) -> Optional[str]:
    """``uname -m`` of the live host, or None when the host is a root or a fake."""
    u = _uname(host)
    return u.machine if u else None


def kernel_release(host: Host) -> Optional[str]:
    """``uname -r`` of the live host, or None when the host is a root or a fake."""
    u = _uname(host)
    return u.release if u else None
