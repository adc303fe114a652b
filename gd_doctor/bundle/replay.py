"""Reading a bundle safely and replaying it: a Host whose ports answer from the recording.

Nothing of the archive is executed, and nothing is written outside one private temporary
directory (mode 0700) that :class:`OpenedBundle` removes. Members are read directly (never
``extractall``): only regular files with plain relative names are accepted, each no larger than
the manifest says and the caps allow, each matching the manifest's size and SHA-256. Links are
re-created from the manifest's ``links`` table only, inside that directory; the RootFS over it
resolves every path inside the root, so a link can never lead out.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from gd_doctor.bundle.codec import decode, decode_list
from gd_doctor.bundle.record import ROOT_TOKEN, normalise_key
from gd_doctor.bundle.write import FORMAT
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
from gd_doctor.redact import neutralise_controls, redact

MAX_ARCHIVE = 64 << 20  # the compressed file
MAX_MEMBER = 16 << 20
MAX_TOTAL = 96 << 20  # all members decompressed
MAX_MEMBERS = 20000
NOT_RECORDED = "not recorded in the bundle"
_FIXED = ("MANIFEST.json", "report.json", "answers.json")


class BundleRefused(Exception):
    """The file is not a bundle gd-doctor can replay; the message says why."""


def _check_name(name: str) -> str:
    # A backslash is a plain character on Linux: systemd's escaped unit names hold one
    # (system-systemd\x2dcryptsetup.slice).
    if not name or "\x00" in name:
        raise BundleRefused(f"member {name!r}: not a plain name")
    if name.startswith("/"):
        raise BundleRefused(f"member {name!r}: an absolute name")
    parts = name.split("/")
    if any(p in ("..", ".", "") for p in parts):
        raise BundleRefused(f"member {name!r}: a name that leaves its directory")
    if name not in _FIXED and parts[0] != "root":
        raise BundleRefused(f"member {name!r}: not part of a gd-doctor bundle")
    return name


def read_members(path: Path) -> Dict[str, bytes]:
    """Every member's bytes, after the archive passed every structural test."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except OSError as exc:
        raise BundleRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    if magic != b"\x1f\x8b":
        raise BundleRefused(f"{path} is not a gzip file")
    if size > MAX_ARCHIVE:
        raise BundleRefused(f"{path} is larger than {MAX_ARCHIVE >> 20} MiB")
    out: Dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for n, info in enumerate(tar):
                if n >= MAX_MEMBERS:
                    raise BundleRefused(f"more than {MAX_MEMBERS} members")
                name = _check_name(info.name)
                if info.issym() or info.islnk():
                    raise BundleRefused(f"member {name!r}: a link member (links are refused)")
                if not info.isreg():
                    raise BundleRefused(f"member {name!r}: not a regular file")
                if info.size > MAX_MEMBER:
                    raise BundleRefused(
                        f"member {name!r}: {info.size} bytes, more than {MAX_MEMBER >> 20} MiB"
                    )
                total += info.size
                if total > MAX_TOTAL:
                    raise BundleRefused(f"members larger than {MAX_TOTAL >> 20} MiB together")
                if name in out:
                    raise BundleRefused(f"member {name!r} appears twice")
                member = tar.extractfile(info)
                data = member.read(info.size + 1) if member is not None else b""
                if len(data) != info.size:
                    raise BundleRefused(f"member {name!r}: truncated")
                out[name] = data
    except BundleRefused:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BundleRefused(f"{path} is not a readable tar archive ({exc})") from None
    return out


def verify(members: Dict[str, bytes]) -> Dict[str, Any]:
    """The manifest, after every member matched its size and hash and every listed item was
    present."""
    raw = members.get("MANIFEST.json")
    if raw is None:
        raise BundleRefused("the archive has no MANIFEST.json: not a gd-doctor bundle")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BundleRefused("MANIFEST.json is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("tool") != "gd-doctor":
        raise BundleRefused("MANIFEST.json is not a gd-doctor manifest")
    if manifest.get("format") != FORMAT:
        raise BundleRefused(
            f"bundle format {manifest.get('format')!r} (gd-doctor "
            f"{manifest.get('tool_version')}); this gd-doctor reads format {FORMAT}"
        )
    items = manifest.get("items")
    if not isinstance(items, list):
        raise BundleRefused("MANIFEST.json lists no items")
    listed: Dict[str, Dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BundleRefused("MANIFEST.json has a malformed item")
        listed[item["name"]] = item
    for name, data in members.items():
        if name == "MANIFEST.json":
            continue
        item = listed.get(name)
        if item is None:
            raise BundleRefused(f"member {name!r} is not in the manifest")
        if item.get("size") != len(data):
            raise BundleRefused(f"member {name!r}: its size does not match the manifest")
        if item.get("sha256") != hashlib.sha256(data).hexdigest():
            raise BundleRefused(f"member {name!r}: its hash does not match the manifest")
    missing = sorted(set(listed) - set(members))
    if missing:
        raise BundleRefused(f"the archive lacks {len(missing)} listed item(s), e.g. {missing[0]!r}")
    for name in ("report.json", "answers.json"):
        if name not in members:
            raise BundleRefused(f"the archive has no {name}")
    return manifest


@dataclass
class OpenedBundle:
    """A verified bundle unpacked into a private temporary directory."""

    path: Path
    manifest: Dict[str, Any]
    answers: Dict[str, Any]
    report: Dict[str, Any]
    tmp: Path
    root: Path
    problems: List[str] = field(default_factory=list)

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "OpenedBundle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def recorded_at(self) -> datetime:
        try:
            at = datetime.fromisoformat(str(self.manifest.get("recorded_at")))
        except ValueError:
            at = datetime.now(timezone.utc)
        return at if at.tzinfo else at.replace(tzinfo=timezone.utc)

    def describe(self) -> str:
        host = self.manifest.get("host") or {}
        who = str(host.get("hostname") or host.get("instance_id") or "an unnamed host")
        who = neutralise_controls(redact(who))[:120]  # the manifest is the bundle's word
        return f"replay of bundle {self.path.name}: {who}, recorded {self.recorded_at.isoformat()}"


def _json(members: Dict[str, bytes], name: str) -> Dict[str, Any]:
    try:
        value = json.loads(members[name].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BundleRefused(f"{name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise BundleRefused(f"{name} is not a JSON object")
    return value


def _safe_rel(name: str) -> Optional[str]:
    """``root/etc/x`` -> ``etc/x``; None for anything that is not a plain name under root/."""
    if not isinstance(name, str) or not name.startswith("root/"):
        return None
    try:
        _check_name(name)
    except BundleRefused:
        return None
    return name[len("root/") :]


def _mkparents(root: Path, rel: str) -> Optional[Path]:
    """The parent directory of ``rel`` under ``root``, made of real directories only."""
    cur = root
    for part in rel.split("/")[:-1]:
        cur = cur / part
        if cur.is_symlink() or (cur.exists() and not cur.is_dir()):
            return None
        cur.mkdir(mode=0o700, exist_ok=True)
    return cur


def _write_new(target: Path, data: bytes, mode: int) -> bool:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        # fchmod on the descriptor just created: no path lookup, so no link
        # can redirect it (lchmod is missing on Linux before Python 3.10).
        os.fchmod(fh.fileno(), (mode & 0o777) | 0o400)
    return True


def open_bundle(path: Path) -> OpenedBundle:
    """Read, verify and unpack ``path``; raises :class:`BundleRefused`."""
    members = read_members(path)
    manifest = verify(members)
    answers = _json(members, "answers.json")
    report = _json(members, "report.json")
    tmp = Path(tempfile.mkdtemp(prefix="gd-doctor-replay-"))
    os.chmod(tmp, 0o700)
    root = tmp / "root"
    root.mkdir(mode=0o700)
    opened = OpenedBundle(path, manifest, answers, report, tmp, root)
    try:
        _unpack(opened, members)
    except BaseException:
        opened.close()
        raise
    return opened


def _unpack(b: OpenedBundle, members: Dict[str, bytes]) -> None:
    """Directories first, then the files, the stand-ins, the links, and last the empty
    stand-ins that keep each recorded directory listing whole."""
    dirs = b.manifest.get("dirs") or {}
    dirs = dirs if isinstance(dirs, dict) else {}
    made: Dict[str, Path] = {}
    for name in sorted(dirs):
        rel = _safe_rel(str(name) + "/x")
        parent = None if rel is None else _mkparents(b.root, rel)
        if parent is not None:
            made[str(name)] = parent
    meta = {i["name"]: i for i in b.manifest["items"] if isinstance(i, dict)}
    for name, data in members.items():
        rel = _safe_rel(name)
        if rel is None:
            continue
        info = meta.get(name, {})
        mode = info.get("mode", 0o644)
        if not _place(b, rel, data, mode if isinstance(mode, int) else 0o644):
            continue
        mtime = info.get("mtime")
        if isinstance(mtime, (int, float)):
            os.utime(b.root / rel, (mtime, mtime), follow_symlinks=False)
    standins = b.manifest.get("standins") or []
    for name in standins if isinstance(standins, list) else []:
        rel = _safe_rel(name)
        if rel is not None:
            _place(b, rel, b"", 0o644)
    links = b.manifest.get("links") or {}
    for name, target in links.items() if isinstance(links, dict) else []:
        rel = _safe_rel(name)
        if rel is None or not isinstance(target, str) or "\x00" in target or len(target) > 4096:
            b.problems.append(f"{name!r}: link skipped")
            continue
        parent = _mkparents(b.root, rel)
        try:
            if parent is None:
                raise OSError
            os.symlink(target, parent / rel.rsplit("/", 1)[-1])
        except OSError:
            b.problems.append(f"{name}: link skipped (its path is taken)")
    for name, parent in made.items():
        names = dirs.get(name)
        for entry in names[:2000] if isinstance(names, list) else []:
            if isinstance(entry, str) and entry and "/" not in entry and entry not in (".", ".."):
                p = parent / entry
                if not os.path.lexists(p):
                    # listed by the run, never opened by it: an empty stand-in keeps the listing
                    _write_new(p, b"", 0o644)


def _place(b: OpenedBundle, rel: str, data: bytes, mode: int) -> bool:
    parent = _mkparents(b.root, rel)
    if parent is None or not _write_new(parent / rel.rsplit("/", 1)[-1], data, mode):
        b.problems.append(f"root/{rel}: skipped (its path is taken)")
        return False
    return True


# --- the replay ports ---------------------------------------------------------------------


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


__all__ = ["ROOT_TOKEN", "BundleRefused", "OpenedBundle", "open_bundle", "posixpath", "replay_host"]
