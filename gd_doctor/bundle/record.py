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
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from gd_doctor.host import Host
from gd_doctor.host.commands import CommandResult, CommandRunner
from gd_doctor.host.fs import RootFS
from gd_doctor.host.imds import ImdsClient, ImdsReply
from gd_doctor.host.journal import JournalEntry, JournalSource, JournalUnavailable
from gd_doctor.host.net import DnsAnswer, HttpsProbe, Network, TcpResult
from gd_doctor.host.packages import PackageQuery
from gd_doctor.host.procs import ProcessInfo, ProcessTable, ProcessUnavailable
from gd_doctor.host.units import UnitResolver
from gd_doctor.redact import redact

MAX_CALLS = 5000  # answers kept per run: a runaway loop must not grow the bundle without end
MAX_PATHS = 20000
ROOT_TOKEN = "<root>"
# The part of gd-doctor's own environment a bundle keeps: what the host layer reads (proxies,
# the IMDS switches, CA bundles, the Region). PATH, SSH_CONNECTION, user names... stay home.
_KEPT_ENV = re.compile(
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


@dataclass
class Recorder:
    """Thread-safe notes of one run (the checks run on several threads)."""

    paths: Dict[str, bool] = field(default_factory=dict)  # path -> listed as a directory
    links: Set[str] = field(default_factory=set)
    calls: List[Call] = field(default_factory=list)
    attrs: Dict[str, Optional[str]] = field(default_factory=dict)
    env: Dict[str, str] = field(default_factory=dict)
    dropped: int = 0
    started: Optional[datetime] = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def path(self, abs_path: str, listed: bool = False) -> None:
        with self.lock:
            if abs_path in self.paths or len(self.paths) < MAX_PATHS:
                self.paths[abs_path] = self.paths.get(abs_path, False) or listed
            else:
                self.dropped += 1

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
        self.recorder.path(abs_path, listed=bool(flags & os.O_DIRECTORY))
        return super()._open(abs_path, flags)

    def readlink(self, abs_path: str) -> Optional[str]:
        self.recorder.link(abs_path)
        return super().readlink(abs_path)


class _Recording:
    def __init__(self, inner: Any, rec: Recorder, port: str, root_real: str) -> None:
        self._inner = inner
        self._rec = rec
        self._port = port
        self._root = root_real

    def __getattr__(self, name: str) -> Any:  # description, endpoint, has_token...
        return getattr(self._inner, name)

    def _note(self, key: Any, kind: str, answer: Any = None, raised: Optional[str] = None) -> None:
        self._rec.call(Call(self._port, normalise_key(key, self._root), kind, answer, raised))

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


class RecordingRunner(_Recording):
    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        try:
            res: CommandResult = self._inner.run(argv, timeout=timeout)
        except Exception as exc:  # the port's own bug: replay raises it again, by its name
            self._note(list(argv), "command", raised=f"{type(exc).__name__}\n{exc}")
            raise
        self._note(list(argv), "command", res)
        return res


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
        try:
            entries: List[JournalEntry] = self._inner.read(
                units=units, since=since, kernel=kernel, timeout=timeout, max_entries=max_entries
            )
        except JournalUnavailable as exc:
            self._note(key, "journal-entry", raised=str(exc))
            raise
        self._note(key, "journal-entry", list(entries))
        return entries


class RecordingImds(_Recording):
    def fetch_token(self, *, timeout: float) -> ImdsReply:
        reply: ImdsReply = self._inner.fetch_token(timeout=timeout)
        self._note(["PUT"], "imds", replace(reply, text=""))  # the token never leaves the client
        return reply

    def get(self, path: str, *, timeout: float, use_token: bool = True) -> ImdsReply:
        reply: ImdsReply = self._inner.get(path, timeout=timeout, use_token=use_token)
        self._note(["GET", path, use_token], "imds", reply)
        return reply


class RecordingNetwork(_Recording):
    def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
        ans: DnsAnswer = self._inner.resolve(name, timeout=timeout)
        self._note(["resolve", name], "dns", ans)
        return ans

    def tcp_connect(self, address: str, port: int, *, timeout: float) -> TcpResult:
        res: TcpResult = self._inner.tcp_connect(address, port, timeout=timeout)
        self._note(["tcp", address, port], "tcp", res)
        return res

    def https_probe(
        self,
        address: str,
        port: int,
        server_name: str,
        *,
        timeout: float,
        proxy_url: Optional[str] = None,
    ) -> HttpsProbe:
        res: HttpsProbe = self._inner.https_probe(
            address, port, server_name, timeout=timeout, proxy_url=proxy_url
        )
        self._note(["https", address, port, server_name, proxy_url], "https", res)
        return res


class RecordingProcesses(_Recording):
    def get(self, pid: int, *, cpu_interval: float = 0.0) -> Optional[ProcessInfo]:
        try:
            info: Optional[ProcessInfo] = self._inner.get(pid, cpu_interval=cpu_interval)
        except ProcessUnavailable as exc:
            self._note(["get", pid], "process", raised=str(exc))
            raise
        self._note(["get", pid], "process", info)
        return info

    def find(self, name_prefix: str) -> List[int]:
        try:
            pids: List[int] = list(self._inner.find(name_prefix))
        except ProcessUnavailable as exc:
            self._note(["find", name_prefix], "pids", raised=str(exc))
            raise
        self._note(["find", name_prefix], "pids", pids)
        return pids


def recording_host(host: Host) -> Tuple[Host, Recorder]:
    """``host`` with every port recorded; run the pipeline on the result, then write the bundle
    from the recorder."""
    rec = Recorder(started=host.clock.now())
    fs = RecordingFS(host.fs.root, recorder=rec)
    object.__setattr__(fs, "resolver", host.fs.resolver)
    root_real = os.path.realpath(host.fs.root)
    run: CommandRunner = RecordingRunner(host.run, rec, "run", root_real)  # type: ignore[assignment]
    tools_inner = getattr(host.packages, "tools", None)
    tools: Optional[CommandRunner] = (
        RecordingRunner(tools_inner, rec, "tools", root_real)  # type: ignore[assignment]
        if tools_inner is not None
        else None
    )
    journal: JournalSource = RecordingJournal(host.journal, rec, "journal", root_real)  # type: ignore[assignment]
    imds: ImdsClient = RecordingImds(host.imds, rec, "imds", root_real)  # type: ignore[assignment]
    net: Network = RecordingNetwork(host.net, rec, "net", root_real)  # type: ignore[assignment]
    procs: ProcessTable = RecordingProcesses(host.procs, rec, "procs", root_real)  # type: ignore[assignment]
    rec.attrs = {
        "journal": getattr(host.journal, "description", None),
        "net": getattr(host.net, "description", None),
        "procs": getattr(host.procs, "description", None),
        "imds_endpoint": getattr(host.imds, "endpoint", None),
        "tools": "yes" if tools_inner is not None else None,
        "region": host.settings.region,
        "endpoint_url": host.settings.endpoint_url,
    }
    rec.env = {k: redact(v) for k, v in host.env.items() if _KEPT_ENV.match(k)}
    wrapped = replace(
        host,
        fs=fs,
        run=run,
        journal=journal,
        imds=imds,
        net=net,
        procs=procs,
        units=UnitResolver(fs),
        packages=PackageQuery(
            fs, run, live=host.packages.live, tools=tools, timeout=host.packages.timeout
        ),
    )
    # Host.close() closes run and journal; the tools runner (rpm on a root) is closed here too.
    return wrapped, rec
