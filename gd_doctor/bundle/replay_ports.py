"""The replay ports: a Host whose commands, journal, IMDS, network probes and processes answer
from a bundle's recording (and raise again, by name, what the recorded run saw raised)."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, Tuple

from gd_doctor.bundle.codec import decode, decode_list
from gd_doctor.bundle.record import normalise_key
from gd_doctor.bundle.replay import NOT_RECORDED, OpenedBundle
from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.commands import CommandResult
from gd_doctor.host.fs import RootFS
from gd_doctor.host.imds import TOKEN_PATH, ImdsReply
from gd_doctor.host.journal import JournalEntry, JournalUnavailable
from gd_doctor.host.net import DnsAnswer, HttpsProbe, TcpResult
from gd_doctor.host.packages import PackageQuery
from gd_doctor.host.platform import Uname
from gd_doctor.host.procs import ProcessInfo, ProcessUnavailable
from gd_doctor.host.settings import HostSettings
from gd_doctor.host.units import UnitResolver


class Answers:
    """The recorded calls by port and key; a key asked again gets the next recorded answer,
    then the last one again."""

    def __init__(self, doc: Dict[str, Any], root_real: str) -> None:
        self._root = root_real
        self._by: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
        self._seen: Dict[Tuple[str, str], int] = {}
        self._lock = threading.Lock()  # the checks ask from several threads
        calls = doc.get("calls")
        for c in calls if isinstance(calls, list) else []:
            if isinstance(c, dict) and isinstance(c.get("port"), str):
                k = (c["port"], json.dumps(c.get("key"), sort_keys=True))
                self._by.setdefault(k, []).append(c)
        attrs = doc.get("attrs")
        self.attrs: Dict[str, Any] = attrs if isinstance(attrs, dict) else {}

    def journal_entries(self) -> List[JournalEntry]:
        seen: Dict[Tuple[str, str], JournalEntry] = {}
        for (port, _key), calls in self._by.items():
            for c in calls if port == "journal" else []:
                for e in decode_list("journal-entry", c.get("answer")):
                    if isinstance(e, JournalEntry):
                        seen.setdefault((e.timestamp.isoformat(), e.message), e)
        return sorted(seen.values(), key=lambda e: e.timestamp)

    def take(self, port: str, key: Any) -> Optional[Dict[str, Any]]:
        k = (port, json.dumps(normalise_key(key, self._root), sort_keys=True))
        found = self._by.get(k)
        if not found:
            return None
        with self._lock:
            n = self._seen.get(k, 0)
            self._seen[k] = n + 1
        return found[min(n, len(found) - 1)]


def _recorded_error(name: str) -> type:
    """An exception class of the recorded name (the check's ERROR row names its type)."""
    safe = name if name.isidentifier() else "RecordedError"
    return type(safe, (RuntimeError,), {"__module__": __name__})


def _reraise(got: Dict[str, Any], unavailable: Optional[type] = None) -> None:
    """Raise what the live port raised, if it did: its own "cannot read" class (the checks
    catch it) or one of the recorded name. ``name\nmessage`` (record.raised_text), or a bare
    message of the port's "cannot read" class."""
    if "raised" not in got:
        return
    name, sep, message = str(got["raised"]).partition("\n")
    if unavailable is not None and (not sep or name == unavailable.__name__):
        raise unavailable(message if sep else name)
    raise _recorded_error(name)(message)


class ReplayRunner:
    def __init__(self, answers: Answers, port: str, root_real: str) -> None:
        self._a = answers
        self._port = port
        self._root = root_real

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        got = self._a.take(self._port, list(argv))
        if got is not None:
            _reraise(got)
        res = decode("command", got.get("answer")) if got else None
        if not isinstance(res, CommandResult):
            return CommandResult(tuple(argv), None, problem=f"unavailable: {NOT_RECORDED}")
        return CommandResult(
            tuple(argv), res.returncode, res.stdout, res.stderr, res.problem, res.truncated
        )

    def close(self) -> None:
        """Nothing runs."""


class ReplayJournal:
    def __init__(self, answers: Answers) -> None:
        self._a = answers
        self._all = answers.journal_entries()
        self.description = f"{answers.attrs.get('journal') or 'journal'}"

    def read(
        self,
        *,
        units: Sequence[str],
        since: datetime,
        kernel: bool,
        timeout: float,
        max_entries: int,
    ) -> List[JournalEntry]:
        got = self._a.take(
            "journal", {"units": list(units), "kernel": kernel, "max_entries": max_entries}
        )
        if got is None:
            raise JournalUnavailable(NOT_RECORDED)
        _reraise(got, JournalUnavailable)
        return [
            e
            for e in decode_list("journal-entry", got.get("answer"))
            if isinstance(e, JournalEntry)
        ]

    def all_entries(self) -> List[JournalEntry]:
        """Every recorded entry once (the timeline reads them all)."""
        return list(self._all)


class ReplayImds:
    def __init__(self, answers: Answers) -> None:
        self._a = answers
        endpoint = answers.attrs.get("imds_endpoint")
        self.endpoint: Optional[str] = endpoint if isinstance(endpoint, str) else None

    def fetch_token(self, *, timeout: float) -> ImdsReply:
        got = self._a.take("imds", ["PUT"])
        if got is not None:
            _reraise(got)
        res = decode("imds", got.get("answer")) if got else None
        if isinstance(res, ImdsReply):
            return res
        return ImdsReply("PUT", TOKEN_PATH, None, problem=f"unavailable: {NOT_RECORDED}")

    def get(self, path: str, *, timeout: float, use_token: bool = True) -> ImdsReply:
        got = self._a.take("imds", ["GET", path, use_token])
        if got is not None:
            _reraise(got)
        res = decode("imds", got.get("answer")) if got else None
        if isinstance(res, ImdsReply):
            return res
        return ImdsReply("GET", path, None, problem=f"unavailable: {NOT_RECORDED}")


class ReplayNetwork:
    def __init__(self, answers: Answers) -> None:
        self._a = answers
        self.description = f"{answers.attrs.get('net') or 'network'}"

    def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
        got = self._a.take("net", ["resolve", name])
        if got is not None:
            _reraise(got)
        res = decode("dns", got.get("answer")) if got else None
        return (
            res
            if isinstance(res, DnsAnswer)
            else DnsAnswer(name, problem=f"unavailable: {NOT_RECORDED}")
        )

    def tcp_connect(self, address: str, port: int, *, timeout: float) -> TcpResult:
        got = self._a.take("net", ["tcp", address, port])
        if got is not None:
            _reraise(got)
        res = decode("tcp", got.get("answer")) if got else None
        if isinstance(res, TcpResult):
            return res
        return TcpResult(address, port, "error", f"unavailable: {NOT_RECORDED}")

    def https_probe(
        self,
        address: str,
        port: int,
        server_name: str,
        *,
        timeout: float,
        proxy_url: Optional[str] = None,
    ) -> HttpsProbe:
        got = self._a.take("net", ["https", address, port, server_name, proxy_url])
        if got is not None:
            _reraise(got)
        res = decode("https", got.get("answer")) if got else None
        if isinstance(res, HttpsProbe):
            return res
        return HttpsProbe(address, port, server_name, "error", f"unavailable: {NOT_RECORDED}")


class ReplayProcesses:
    def __init__(self, answers: Answers) -> None:
        self._a = answers
        self.description = f"{answers.attrs.get('procs') or 'process table'}"

    def get(self, pid: int, *, cpu_interval: float = 0.0) -> Optional[ProcessInfo]:
        got = self._a.take("procs", ["get", pid])
        if got is None:
            raise ProcessUnavailable(NOT_RECORDED)
        _reraise(got, ProcessUnavailable)
        res = decode("process", got.get("answer"))
        return res if isinstance(res, ProcessInfo) else None

    def find(self, name_prefix: str) -> List[int]:
        got = self._a.take("procs", ["find", name_prefix])
        if got is None:
            raise ProcessUnavailable(NOT_RECORDED)
        _reraise(got, ProcessUnavailable)
        pids = got.get("answer")
        return [p for p in pids if isinstance(p, int)] if isinstance(pids, list) else []


def replay_host(b: OpenedBundle, settings: Optional[HostSettings] = None) -> Host:
    """A Host over the unpacked root/ whose live ports answer from the recording, at the
    recorded time."""
    fs = RootFS(b.root)
    root_real = os.path.realpath(b.root)
    answers = Answers(b.answers, root_real)
    run = ReplayRunner(answers, "run", root_real)
    tools = ReplayRunner(answers, "tools", root_real) if answers.attrs.get("tools") else None
    env_doc = b.answers.get("env")
    env = {str(k): str(v) for k, v in env_doc.items()} if isinstance(env_doc, dict) else {}
    region, endpoint = answers.attrs.get("region"), answers.attrs.get("endpoint_url")
    given = HostSettings(
        region=region if isinstance(region, str) else None,
        endpoint_url=endpoint if isinstance(endpoint, str) else None,
        env=env,
    )
    live = bool(b.manifest.get("live", False))
    host = b.manifest.get("host") or {}
    machine, release = answers.attrs.get("uname_machine"), answers.attrs.get("uname_release")
    return Host(
        fs=fs,
        run=run,
        journal=ReplayJournal(answers),
        imds=ReplayImds(answers),
        net=ReplayNetwork(answers),
        procs=ReplayProcesses(answers),
        clock=FixedClock(b.recorded_at),
        units=UnitResolver(fs),
        packages=PackageQuery(fs, run, live=live, tools=tools),
        live=live,
        euid=int(host.get("euid", 0)) if isinstance(host.get("euid", 0), int) else 0,
        env=env,
        settings=settings or given,
        uname=Uname(
            machine if isinstance(machine, str) else None,
            release if isinstance(release, str) else None,
        ),
    )


__all__ = ["replay_host"]
