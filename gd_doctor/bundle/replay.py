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
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from gd_doctor.bundle.write import FORMAT
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
