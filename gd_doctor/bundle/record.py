"""Recording proxies over a Host's ports: what every check read, and what the live ports said.

:func:`recording_host` wraps a Host so that one ordinary run notes each path the checks opened
(files, directories, links) and each answer of the command runner, the journal, IMDS, the
network and the process table. The bundle writer (write.py) then copies exactly those paths and
stores exactly those answers; replay (replay.py) puts them back behind the same ports.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.commands import CommandResult, CommandRunner
from gd_doctor.host.fs import DEFAULT_MAX_BYTES, MAX_DIR_ENTRIES, DirListing, FileRead, RootFS
from gd_doctor.host.imds import ImdsClient, ImdsReply
from gd_doctor.host.journal import JournalEntry, JournalSource
from gd_doctor.host.net import DnsAnswer, HttpsProbe, Network, TcpResult
from gd_doctor.host.packages import PackageQuery
from gd_doctor.host.platform import uname
from gd_doctor.host.procs import ProcessInfo, ProcessTable
from gd_doctor.host.units import UnitResolver
from gd_doctor.patterns import lazy

MAX_CALLS = 5000  # answers kept per run: a runaway loop must not grow the bundle without end
MAX_PATHS = 20000
# Bytes of the files the run read, kept as it first read them: pseudo-files (/proc, /sys: size
# 0, their content is of the moment; the agent's /proc/PID may be gone when the bundle is
# written) and regular files up to PIN_FILE_CAP (a log being written reads the same for every
# check of the run and for the bundle).
SNAPSHOT_CAP = 48 << 20
PIN_FILE_CAP = 4 << 20  # larger files are read live (the bundle keeps their newest 4 MiB)
ROOT_TOKEN = "<root>"
# The part of gd-doctor's own environment a bundle keeps: what the host layer reads (proxies,
# the IMDS switches, CA bundles, the Region). PATH, SSH_CONNECTION, user names... stay home.
_KEPT_ENV = lazy(
    r"^(?:https?_proxy|no_proxy|all_proxy|AWS_EC2_METADATA_\w+|AWS_CA_BUNDLE|"
    r"REQUESTS_CA_BUNDLE|AWS_REGION|AWS_DEFAULT_REGION)$",
    re.IGNORECASE,
)


@dataclass
class Call:
    """One port call: ``key`` identifies it (timeouts left out), ``answer`` is what came back
    (a dataclass, a list of them, a PID list, None) or ``raised`` the message of the port's
    own "cannot read" exception."""

    port: str
    key: Any
    kind: str
    answer: Any = None
    raised: Optional[str] = None
    at: Optional[datetime] = None  # the host's wall clock when the answer came


@dataclass
class Recorder:
    """Thread-safe notes of one run (the checks run on several threads)."""

    paths: Dict[str, bool] = field(default_factory=dict)  # path -> listed as a directory
    found: Set[str] = field(default_factory=set)  # paths that opened at least once
    links: Set[str] = field(default_factory=set)
    # What the run saw, so that the bundle holds the same even when the host moved on before
    # it was written: each listing's names, each regular file's size when the run opened it,
    # the bytes of pseudo-files.
    listings: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    sizes: Dict[str, int] = field(default_factory=dict)
    snapshots: Dict[str, bytes] = field(default_factory=dict)
    snapshot_bytes: int = 0
    calls: List[Call] = field(default_factory=list)
    attrs: Dict[str, Optional[str]] = field(default_factory=dict)
    env: Dict[str, str] = field(default_factory=dict)
    dropped: int = 0
    started: Optional[datetime] = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def path(self, abs_path: str, listed: bool = False, found: bool = True) -> None:
        with self.lock:
            if abs_path in self.paths or len(self.paths) < MAX_PATHS:
                self.paths[abs_path] = self.paths.get(abs_path, False) or listed
                if found:
                    self.found.add(abs_path)
            else:
                self.dropped += 1

    def listing(self, abs_path: str, names: Tuple[str, ...]) -> None:
        with self.lock:
            if abs_path in self.listings or len(self.listings) < MAX_PATHS:
                self.listings[abs_path] = tuple(
                    sorted(set(self.listings.get(abs_path, ())) | set(names))
                )

    def size(self, abs_path: str, size: int) -> None:
        with self.lock:
            if abs_path in self.sizes or len(self.sizes) < MAX_PATHS:
                # read twice while growing: the larger view, so neither read loses its lines
                self.sizes[abs_path] = max(size, self.sizes.get(abs_path, 0))

    def snapshot(self, abs_path: str, data: bytes) -> bool:
        """Keep ``data`` as the run's view of ``abs_path`` (the first read wins); False when
        over the cap."""
        with self.lock:
            if abs_path in self.snapshots:
                return True
            if self.snapshot_bytes + len(data) > SNAPSHOT_CAP:
                return False
            self.snapshots[abs_path] = data
            self.snapshot_bytes += len(data)
            return True

    def link(self, abs_path: str) -> None:
        with self.lock:
            if len(self.links) < MAX_PATHS:
                self.links.add(abs_path)

    def call(self, item: Call) -> None:
        with self.lock:
            if len(self.calls) < MAX_CALLS:
                self.calls.append(item)
            else:
                self.dropped += 1


def normalise_key(value: Any, root_real: str) -> Any:
    """A call's key with this machine's path of the root replaced by a token, so a replay over
    another directory finds the same key (``rpm --dbpath <root>/var/lib/rpm``)."""
    if isinstance(value, str):
        if root_real not in ("", "/") and root_real in value:
            return value.replace(root_real, ROOT_TOKEN)
        return value
    if isinstance(value, (list, tuple)):
        return [normalise_key(v, root_real) for v in value]
    if isinstance(value, dict):
        return {k: normalise_key(v, root_real) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class RecordingFS(RootFS):
    """A RootFS that notes every path resolved through it (every read goes through ``_open``)."""

    recorder: Recorder = field(default_factory=Recorder, compare=False)

    def _open(self, abs_path: str, flags: int) -> int:
        listed = bool(flags & os.O_DIRECTORY)
        try:
            fd = super()._open(abs_path, flags)
        except OSError:
            # tried and missing (or unreadable): a file that appears later is not the run's
            self.recorder.path(abs_path, listed=listed, found=False)
            raise
        self.recorder.path(abs_path, listed=listed)
        return fd

    def _open_regular(self, abs_path: str) -> Tuple[int, os.stat_result]:
        fd, st = super()._open_regular(abs_path)
        self.recorder.size(abs_path, st.st_size)
        return fd, st

    def _pinned(self, abs_path: str) -> Optional[bytes]:
        """The file's bytes as the run first read them, for every later read too: a log the
        agent keeps writing reads the same for every check of the run, and the bundle holds
        exactly that. None: not pinned (a pseudo-file, too large, unreadable, over the cap)."""
        pinned = self.recorder.snapshots.get(abs_path)
        if pinned is not None and self.recorder.sizes.get(abs_path, 0) > 0:
            return pinned
        try:
            fd, st = self._open_regular(abs_path)
        except OSError:
            return None  # the plain read says why
        try:
            if not 0 < st.st_size <= PIN_FILE_CAP:
                return None
            data = _read_exactly(fd, st.st_size)
        except OSError:
            return None
        finally:
            os.close(fd)
        self.recorder.sizes[abs_path] = len(data)
        return data if self.recorder.snapshot(abs_path, data) else None

    def read_bytes(
        self, abs_path: str, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> Tuple[bytes, FileRead]:
        pinned = self._pinned(abs_path)
        if pinned is not None:
            return pinned[:max_bytes], FileRead(abs_path, truncated=len(pinned) > max_bytes)
        data, res = super().read_bytes(abs_path, max_bytes)
        if res.problem is None and not res.truncated and self.recorder.sizes.get(abs_path) == 0:
            self.recorder.snapshot(abs_path, data)  # a pseudo-file: its content of the moment
        return data, res

    def read_tail(self, abs_path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> FileRead:
        pinned = self._pinned(abs_path)
        if pinned is None:
            return super().read_tail(abs_path, max_bytes)
        start = max(0, len(pinned) - max_bytes)
        data = pinned[start:] if max_bytes > 0 else b""
        return FileRead(
            abs_path,
            text=data.decode("utf-8", errors="replace"),
            truncated=start > 0,
            binary=b"\x00" in data[-8192:],
        )

    def open_binary(self, abs_path: str) -> Tuple[Optional[IO[bytes]], Optional[str]]:
        pinned = self._pinned(abs_path)
        memfd = getattr(os, "memfd_create", None)
        if pinned is None or memfd is None:
            return super().open_binary(abs_path)
        # a file of memory, not of the host: readers fstat it (a growing log's size) and seek
        fd = memfd("gd-doctor-pinned", getattr(os, "MFD_CLOEXEC", 0))
        fh = os.fdopen(fd, "w+b")
        fh.write(pinned)
        fh.seek(0)
        return fh, None

    def list_dir(self, abs_path: str, limit: int = MAX_DIR_ENTRIES) -> DirListing:
        listing = super().list_dir(abs_path, limit)
        if not listing.problem:
            self.recorder.listing(abs_path, listing.names)
        return listing

    def readlink(self, abs_path: str) -> Optional[str]:
        self.recorder.link(abs_path)
        return super().readlink(abs_path)


def _read_exactly(fd: int, size: int) -> bytes:
    chunks: List[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def raised_text(exc: BaseException) -> str:
    """How a port's exception is recorded: its class name, a newline, its message. Replay
    raises one of that name again (the port's own "cannot read" class where it has one), so
    the check's row says the same."""
    return f"{type(exc).__name__}\n{exc}"


class _Recording:
    def __init__(
        self, inner: Any, rec: Recorder, port: str, root_real: str, now: Callable[[], datetime]
    ) -> None:
        self._inner = inner
        self._rec = rec
        self._port = port
        self._root = root_real
        self._now = now

    def __getattr__(self, name: str) -> Any:  # description, endpoint, has_token...
        return getattr(self._inner, name)

    def _note(self, key: Any, kind: str, answer: Any = None, raised: Optional[str] = None) -> None:
        call = Call(self._port, normalise_key(key, self._root), kind, answer, raised, self._now())
        self._rec.call(call)

    def _call(
        self, key: Any, kind: str, ask: Callable[[], Any], keep: Callable[[Any], Any] = lambda a: a
    ) -> Any:
        """Ask the live port; note its answer (``keep`` of it) or whatever it raised."""
        try:
            answer = ask()
        except Exception as exc:
            self._note(key, kind, raised=raised_text(exc))
            raise
        self._note(key, kind, keep(answer))
        return answer

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


class RecordingRunner(_Recording):
    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        answer: CommandResult = self._call(
            list(argv), "command", lambda: self._inner.run(argv, timeout=timeout)
        )
        return answer


class RecordingJournal(_Recording):
    def read(
        self,
        *,
        units: Sequence[str],
        since: datetime,
        kernel: bool,
        timeout: float,
        max_entries: int,
    ) -> List[JournalEntry]:
        # ``since`` is left out of the key: replay runs at the recorded time, the live run's
        # window was computed a few milliseconds later or earlier.
        key = {"units": list(units), "kernel": kernel, "max_entries": max_entries}
        entries: List[JournalEntry] = self._call(
            key,
            "journal-entry",
            lambda: list(
                self._inner.read(
                    units=units,
                    since=since,
                    kernel=kernel,
                    timeout=timeout,
                    max_entries=max_entries,
                )
            ),
        )
        return entries


class RecordingImds(_Recording):
    def fetch_token(self, *, timeout: float) -> ImdsReply:
        answer: ImdsReply = self._call(
            ["PUT"],
            "imds",
            lambda: self._inner.fetch_token(timeout=timeout),
            lambda r: replace(r, text=""),  # the token never leaves the client
        )
        return answer

    def get(self, path: str, *, timeout: float, use_token: bool = True) -> ImdsReply:
        answer: ImdsReply = self._call(
            ["GET", path, use_token],
            "imds",
            lambda: self._inner.get(path, timeout=timeout, use_token=use_token),
        )
        return answer


class RecordingNetwork(_Recording):
    def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
        answer: DnsAnswer = self._call(
            ["resolve", name], "dns", lambda: self._inner.resolve(name, timeout=timeout)
        )
        return answer

    def tcp_connect(self, address: str, port: int, *, timeout: float) -> TcpResult:
        answer: TcpResult = self._call(
            ["tcp", address, port],
            "tcp",
            lambda: self._inner.tcp_connect(address, port, timeout=timeout),
        )
        return answer

    def https_probe(
        self,
        address: str,
        port: int,
        server_name: str,
        *,
        timeout: float,
        proxy_url: Optional[str] = None,
    ) -> HttpsProbe:
        answer: HttpsProbe = self._call(
            ["https", address, port, server_name, proxy_url],
            "https",
            lambda: self._inner.https_probe(
                address, port, server_name, timeout=timeout, proxy_url=proxy_url
            ),
        )
        return answer


class RecordingProcesses(_Recording):
    def get(self, pid: int, *, cpu_interval: float = 0.0) -> Optional[ProcessInfo]:
        answer: Optional[ProcessInfo] = self._call(
            ["get", pid], "process", lambda: self._inner.get(pid, cpu_interval=cpu_interval)
        )
        return answer

    def find(self, name_prefix: str) -> List[int]:
        answer: List[int] = self._call(
            ["find", name_prefix], "pids", lambda: list(self._inner.find(name_prefix))
        )
        return answer


def recording_host(host: Host) -> Tuple[Host, Recorder]:
    """``host`` with every port recorded; run the pipeline on the result, then write the bundle
    from the recorder."""
    rec = Recorder(started=host.clock.now())
    fs = RecordingFS(host.fs.root, recorder=rec)
    # The run's wall clock stands still at its start, as the replay's will (FixedClock of the
    # recorded time): every window and age of the run is then the replay's to the microsecond.
    # Durations and deadlines keep the monotonic clock.
    clock = FixedClock(rec.started or host.clock.now())
    kernel = uname(host)
    object.__setattr__(fs, "resolver", host.fs.resolver)
    root_real = os.path.realpath(host.fs.root)
    now = host.clock.now  # the host's own clock: when each answer came (time skew)
    run: CommandRunner = RecordingRunner(host.run, rec, "run", root_real, now)  # type: ignore[assignment]
    tools_inner = getattr(host.packages, "tools", None)
    tools: Optional[CommandRunner] = (
        RecordingRunner(tools_inner, rec, "tools", root_real, now)  # type: ignore[assignment]
        if tools_inner is not None
        else None
    )
    journal: JournalSource = RecordingJournal(host.journal, rec, "journal", root_real, now)  # type: ignore[assignment]
    imds: ImdsClient = RecordingImds(host.imds, rec, "imds", root_real, now)  # type: ignore[assignment]
    net: Network = RecordingNetwork(host.net, rec, "net", root_real, now)  # type: ignore[assignment]
    procs: ProcessTable = RecordingProcesses(host.procs, rec, "procs", root_real, now)  # type: ignore[assignment]
    rec.attrs = {
        "journal": getattr(host.journal, "description", None),
        "net": getattr(host.net, "description", None),
        "procs": getattr(host.procs, "description", None),
        "imds_endpoint": getattr(host.imds, "endpoint", None),
        "tools": "yes" if tools_inner is not None else None,
        "region": host.settings.region,
        "endpoint_url": host.settings.endpoint_url,
        "uname_machine": kernel.machine,
        "uname_release": kernel.release,
    }
    # kept as read: the writer redacts them, counting what it masks
    rec.env = {k: v for k, v in host.env.items() if _KEPT_ENV.match(k)}
    wrapped = replace(
        host,
        fs=fs,
        run=run,
        journal=journal,
        imds=imds,
        net=net,
        procs=procs,
        clock=clock,
        uname=kernel,
        units=UnitResolver(fs),
        packages=PackageQuery(
            fs, run, live=host.packages.live, tools=tools, timeout=host.packages.timeout
        ),
    )
    # Host.close() closes run and journal; the tools runner (rpm on a root) is closed here too.
    return wrapped, rec
