"""Network namespaces for the simulator: made by the test, no route out, always removed.

A :class:`SimNetwork` is one namespace ``gdsim-<pid>-<n>`` (the creator's PID is in the name so a
later run can remove what a killed run left behind, see :func:`remove_stale`) holding:

* ``lo`` up, with the service addresses as /32s: IMDS ``169.254.169.254``, the VPC resolver, the
  endpoint and proxy addresses the scenario serves;
* ``eth0``/``bh0``, a veth pair whose both ends stay inside the namespace, with the instance's
  private address on ``eth0`` and a default route to a gateway whose MAC nobody has: every other
  address (a public endpoint IP, a private IP where nothing listens because a security group
  drops it) is a black hole, so connects hang until their timeout, as they would on EC2.

Nothing is ever routed to this machine's network. The namespace, its ``/etc/netns/NAME`` folder
and every process started with :meth:`SimNetwork.spawn` are removed on exit, also on exceptions,
KeyboardInterrupt and SIGTERM (the runner turns SIGTERM into an exception).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

PREFIX = "gdsim-"
NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
GATEWAY = "10.0.0.1"
BOGUS_MAC = "02:00:00:00:00:01"
IP_TIMEOUT = 10.0
_counter = itertools.count(1)


class NetnsError(RuntimeError):
    """The namespace could not be made as asked."""


def netns_unavailable_reason() -> Optional[str]:
    """Why a network namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip tool is missing (apt-get install iproute2)"
    return None


def _ip(*args: str, netns: Optional[str] = None, check: bool = True) -> str:
    argv = ["ip"] + (["-n", netns] if netns else []) + list(args)
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=IP_TIMEOUT, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def _pids_in_netns(name: str) -> List[int]:
    proc = subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True, timeout=IP_TIMEOUT
    )
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def delete_netns(name: str) -> None:
    """Kill what still runs in ``name``, delete it and its /etc/netns folder (idempotent)."""
    if (NETNS_DIR / name).exists():
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = _pids_in_netns(name)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline:
                pids = [p for p in pids if Path(f"/proc/{p}").exists()]
                time.sleep(0.1)
        _ip("netns", "delete", name, check=False)
    shutil.rmtree(ETC_NETNS / name, ignore_errors=True)


def remove_stale() -> List[str]:
    """Remove ``gdsim-<pid>-*`` namespaces whose creating process is gone; returns their names."""
    removed: List[str] = []
    names = [p.name for p in NETNS_DIR.glob(PREFIX + "*")] if NETNS_DIR.is_dir() else []
    names += [p.name for p in ETC_NETNS.glob(PREFIX + "*")] if ETC_NETNS.is_dir() else []
    for name in sorted(set(names)):
        m = re.match(rf"{PREFIX}(\d+)-\d+$", name)
        if m and Path(f"/proc/{m.group(1)}").exists():
            continue
        delete_netns(name)
        removed.append(name)
    return removed


class SimNetwork:
    """One simulated VPC as seen from one instance. Use as a context manager."""

    def __init__(self, local_ip: str = "10.0.0.15") -> None:
        self.name = f"{PREFIX}{os.getpid()}-{next(_counter)}"
        self.local_ip = local_ip
        self.procs: List[subprocess.Popen[bytes]] = []
        self._made = False

    # -- set-up

    def create(self, lo_addresses: Sequence[str] = ()) -> SimNetwork:
        reason = netns_unavailable_reason()
        if reason:
            raise NetnsError(reason)
        _ip("netns", "add", self.name)
        self._made = True
        n = self.name
        _ip("link", "set", "lo", "up", netns=n)
        for addr in dict.fromkeys(lo_addresses):
            _ip("addr", "add", f"{addr}/32", "dev", "lo", netns=n)
        # The black hole: a veth pair inside the namespace, default route via a gateway whose
        # MAC answers nowhere. Packets leave eth0 and are dropped by bh0 (wrong MAC).
        _ip("link", "add", "eth0", "type", "veth", "peer", "name", "bh0", netns=n)
        _ip("link", "set", "eth0", "address", "0e:1a:2b:3c:4d:5e", netns=n)
        _ip("link", "set", "eth0", "up", netns=n)
        _ip("link", "set", "bh0", "up", netns=n)
        _ip("addr", "add", f"{self.local_ip}/32", "dev", "eth0", netns=n)
        _ip("route", "add", GATEWAY, "dev", "eth0", netns=n)
        _ip(
            "neigh", "add", GATEWAY, "lladdr", BOGUS_MAC, "dev", "eth0", "nud", "permanent", netns=n
        )
        _ip("route", "add", "default", "via", GATEWAY, "dev", "eth0", netns=n)
        return self

    def routes(self) -> str:
        return _ip("route", "show", netns=self.name)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Optional[str] = None,
        env: Optional[dict] = None,
        log: Optional[Path] = None,
    ) -> subprocess.Popen[bytes]:  # type: ignore[type-arg]
        """Start ``argv`` inside the namespace; it is killed when the network is closed."""
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.name, *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
        self.procs.append(proc)
        return proc

    def exec(self, argv: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace and wait for it."""
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    # -- tear-down

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs.clear()
        if self._made:
            delete_netns(self.name)
            self._made = False

    def __enter__(self) -> SimNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def sim_network(
    lo_addresses: Sequence[str] = (), local_ip: str = "10.0.0.15"
) -> Iterator[SimNetwork]:
    """A created :class:`SimNetwork` that is removed on exit, whatever happens."""
    net = SimNetwork(local_ip)
    try:
        net.create(lo_addresses)
        yield net
    finally:
        net.close()
