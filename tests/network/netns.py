"""A network namespace made by the test: loopback, a black hole, servers created inside it.

:func:`make_netns` gives a namespace ``gdnet-<pid>-<n>`` with ``lo`` up, the given /32 addresses
on ``lo``, and a veth pair whose both ends stay inside, with a default route to a neighbour MAC
nobody has: every other address is a black hole (connects hang until their timeout). Its
``/etc/netns/<name>/resolv.conf`` is what ``ip netns exec`` shows the tool as /etc/resolv.conf.

:func:`inside` runs a factory in a thread that has joined the namespace (``setns``), so the
sockets a fake server binds there belong to the namespace, while the test keeps running outside.
Nothing is routed to this machine's network; the namespace and its folder are always removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, TypeVar

CLONE_NEWNET = 0x40000000
BLACK_HOLE = "10.254.0.2"
T = TypeVar("T")
_counter = itertools.count(1)


def unavailable_reason() -> Optional[str]:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip tool is missing (iproute2)"
    return None


def _ip(*args: str, ns: Optional[str] = None) -> None:
    argv = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    subprocess.run(argv, check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def make_netns(addresses: Sequence[str] = (), resolv_conf: str = "") -> Iterator[str]:
    name = f"gdnet-{os.getpid()}-{next(_counter)}"
    etc = Path("/etc/netns") / name
    try:
        _ip("netns", "add", name)
        _ip("link", "set", "lo", "up", ns=name)
        for addr in addresses:
            _ip("addr", "add", f"{addr}/32", "dev", "lo", ns=name)
        _ip("link", "add", "bh0", "type", "veth", "peer", "name", "bh1", ns=name)
        _ip("link", "set", "bh0", "up", ns=name)
        _ip("link", "set", "bh1", "up", ns=name)
        _ip("addr", "add", "10.254.0.1/30", "dev", "bh0", ns=name)
        _ip(
            "neigh",
            "add",
            BLACK_HOLE,
            "lladdr",
            "02:00:00:00:00:01",
            "dev",
            "bh0",
            "nud",
            "permanent",
            ns=name,
        )
        _ip("route", "add", "default", "via", BLACK_HOLE, ns=name)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(resolv_conf or f"nameserver {BLACK_HOLE}\n")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        shutil.rmtree(etc, ignore_errors=True)


def inside(ns: str, factory: Callable[[], T]) -> T:
    """Call ``factory`` in a thread that joined ``ns``; sockets it binds live in ``ns``."""
    box: dict = {}  # type: ignore[type-arg]

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                box["error"] = OSError(ctypes.get_errno(), "setns failed")
                return
            box["value"] = factory()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc
        finally:
            os.close(fd)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def exec_in(
    ns: str,
    argv: Sequence[str],
    env: Optional[dict] = None,  # type: ignore[type-arg]
    timeout: float = 60,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """Run a command inside ``ns`` (with its /etc/netns files bind-mounted)."""
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        **(env or {}),
    }
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
