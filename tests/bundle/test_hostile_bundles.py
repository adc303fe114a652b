"""Hostile archives are refused with a clear message and a non-zero exit; nothing is written
outside the private temporary directory; size caps and window cuts are in the manifest."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from gd_doctor.bundle import BundleRefused, make_bundle, open_bundle
from gd_doctor.checks.base import Options
from gd_doctor.cli import app
from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.settings import HostSettings
from tests.hostkit import FIXTURES, NOW, cli_runner, make_host, write_tree

ROOT = FIXTURES / "roots" / "ubuntu2204" / "root"


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    out = tmp_path / "good.tar.gz"
    make_bundle(Host.from_root(ROOT, HostSettings()), out)
    return out


def _members(path: Path) -> Dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]


def _pack(
    path: Path,
    members: Dict[str, bytes],
    extra: Optional[List[tarfile.TarInfo]] = None,
    fix_manifest: bool = True,
) -> Path:
    if fix_manifest and "MANIFEST.json" in members:
        manifest = json.loads(members["MANIFEST.json"])
        manifest["items"] = [
            {
                **{i["name"]: i for i in manifest["items"]}.get(n, {}),
                "name": n,
                "size": len(d),
                "sha256": hashlib.sha256(d).hexdigest(),
            }
            for n, d in members.items()
            if n != "MANIFEST.json"
        ]
        members = {**members, "MANIFEST.json": json.dumps(manifest).encode()}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    path.write_bytes(buf.getvalue())
    return path


def _refused(path: Path, words: str) -> None:
    with pytest.raises(BundleRefused) as exc:
        open_bundle(path)
    assert words in str(exc.value)
    res = cli_runner().invoke(app, ["check", "--bundle", str(path)])
    assert res.exit_code == 3
    assert "bundle refused" in res.stderr and words in res.stderr


def test_not_gzip(tmp_path: Path) -> None:
    p = tmp_path / "x.tar.gz"
    p.write_bytes(b"PK\x03\x04 a zip file")
    _refused(p, "not a gzip file")


def test_not_tar(tmp_path: Path) -> None:
    p = tmp_path / "x.tar.gz"
    p.write_bytes(gzip.compress(b"just text, no tar header " * 100))
    _refused(p, "not a readable tar archive")


def test_no_manifest(tmp_path: Path, good: Path) -> None:
    m = _members(good)
    del m["MANIFEST.json"]
    _refused(_pack(tmp_path / "x.tar.gz", m), "no MANIFEST.json")


def test_manifest_lies_about_a_hash(tmp_path: Path, good: Path) -> None:
    m = _members(good)
    m["root/etc/os-release"] = m["root/etc/os-release"].replace(b"Ubuntu", b"Ubunto")
    _refused(_pack(tmp_path / "x.tar.gz", m, fix_manifest=False), "hash does not match")


def test_manifest_lies_about_a_size(tmp_path: Path, good: Path) -> None:
    m = _members(good)
    m["root/etc/os-release"] += b"X=1\n"
    _refused(_pack(tmp_path / "x.tar.gz", m, fix_manifest=False), "size does not match")


def test_truncated_archive(tmp_path: Path, good: Path) -> None:
    p = tmp_path / "x.tar.gz"
    data = good.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _refused(p, "not a readable tar archive")


def test_ten_gigabyte_member(tmp_path: Path, good: Path) -> None:
    """The header claims 10 GB: refused before one byte of it is read."""
    m = _members(good)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in m.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        big = tarfile.TarInfo("root/var/log/huge.log")
        big.size = 10 * 10**9
        tar.addfile(big)  # header only: the stream ends where the data should start
    p = tmp_path / "x.tar.gz"
    p.write_bytes(buf.getvalue())
    _refused(p, "more than 16 MiB")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_link_members(tmp_path: Path, good: Path, kind: bytes) -> None:
    link = tarfile.TarInfo("root/etc/shadow")
    link.type = kind
    link.linkname = "/etc/shadow"
    _refused(_pack(tmp_path / "x.tar.gz", _members(good), [link]), "link member")


@pytest.mark.parametrize(
    "name,words",
    [
        ("../../etc/passwd", "leaves its directory"),
        ("root/../../etc/passwd", "leaves its directory"),
        ("/etc/passwd", "absolute name"),
    ],
)
def test_escaping_names(tmp_path: Path, good: Path, name: str, words: str) -> None:
    m = _members(good)
    m[name] = b"root:x:0:0::/root:/bin/sh\n"
    _refused(_pack(tmp_path / "x.tar.gz", m), words)


@pytest.mark.parametrize("fmt,version", [(99, "9.0"), (0, "0.0.1")], ids=["newer", "older"])
def test_other_format(tmp_path: Path, good: Path, fmt: int, version: str) -> None:
    """A bundle of a newer or older gd-doctor: refused, naming its format and version."""
    m = _members(good)
    manifest = json.loads(m["MANIFEST.json"])
    manifest["format"] = fmt
    manifest["tool_version"] = version
    m["MANIFEST.json"] = json.dumps(manifest).encode()
    _refused(
        _pack(tmp_path / "x.tar.gz", m, fix_manifest=False),
        f"bundle format {fmt} (gd-doctor {version}); this gd-doctor reads format 1",
    )


def test_manifest_link_out_of_the_root_stays_inside(tmp_path: Path, good: Path) -> None:
    """A manifest link to /etc/passwd resolves inside the replay root (RESOLVE_IN_ROOT): the
    host's passwd is never read, and nothing appears outside the private directory."""
    m = _members(good)
    manifest = json.loads(m["MANIFEST.json"])
    manifest["links"]["root/etc/hostname"] = "../../../../../../etc/passwd"
    m.pop("root/etc/hostname", None)
    m["MANIFEST.json"] = json.dumps(manifest).encode()
    p = _pack(tmp_path / "x.tar.gz", m)
    before = set(os.listdir(tempfile.gettempdir()))
    with open_bundle(p) as b:
        host_text = Host.from_root(b.root, HostSettings()).fs.read_text("/etc/hostname")
        assert host_text is None or "root:x:0" not in host_text
        assert b.tmp.parent == Path(tempfile.gettempdir())
        assert stat_mode(b.tmp) == 0o700
    assert set(os.listdir(tempfile.gettempdir())) == before


def stat_mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def test_size_cap_cuts_the_largest_log_first_and_says_so(tmp_path: Path) -> None:
    big = "".join(
        f"2026-11-30T11:{m:02d}:00Z INFO line {n} " + "x" * 80 + "\n"
        for m in range(60)
        for n in range(400)
    )
    small = "2026-11-30T11:59:00Z ERROR dispatch failure: Connection refused (os error 111)\n"
    host = make_host(
        tmp_path / "root",
        files={
            "/var/log/amzn-guardduty-agent/agent.log": big,
            "/var/log/amzn-guardduty-agent/agent.1.log": small,
        },
        commands={},
        clock=FixedClock(NOW),
    )
    from gd_doctor.checks import agent_logs

    out = tmp_path / "b.tar.gz"
    made = make_bundle(
        host,
        out,
        total_cap=512 << 10,
        checks=agent_logs.CHECKS,
        options=Options(since=timedelta(hours=24)),
    )
    items = {i["name"]: i for i in made.manifest["items"]}
    cut = items["root/var/log/amzn-guardduty-agent/agent.log"]
    assert cut["cut"] == "cap" and cut["size"] < cut["original_size"]
    assert items["root/var/log/amzn-guardduty-agent/agent.1.log"]["cut"] is None
    assert sum(i["size"] for i in items.values()) <= 512 << 10
    assert _members(out)["root/var/log/amzn-guardduty-agent/agent.log"].endswith(b"x" * 80 + b"\n")


def _windowed_host(tmp_path: Path, old_lines: int) -> Tuple[Host, str, str]:
    old = "".join(
        f"2026-11-2{n % 3}T10:{n % 60:02d}:00Z INFO old line {n} " + "y" * 80 + "\n"
        for n in range(old_lines)
    )
    new = "2026-11-30T11:00:00Z ERROR dispatch failure: Connection refused (os error 111)\n"
    host = make_host(
        tmp_path / "root",
        files={"/var/log/amzn-guardduty-agent/agent.log": old + new},
        commands={},
        clock=FixedClock(NOW),
    )
    return host, old, new


def test_window_cut_comes_first_when_the_cap_needs_it(tmp_path: Path) -> None:
    """Over the cap, the lines stamped before the window go first, and the manifest says so;
    every line of the window stays."""
    from gd_doctor.checks import agent_logs

    host, old, new = _windowed_host(tmp_path, 3600)
    assert len(old) > 300 << 10
    made = make_bundle(
        host,
        tmp_path / "b.tar.gz",
        checks=agent_logs.CHECKS,
        total_cap=512 << 10,
        options=Options(since=timedelta(hours=24)),
    )
    item = {i["name"]: i for i in made.manifest["items"]}[
        "root/var/log/amzn-guardduty-agent/agent.log"
    ]
    assert item["cut"] == "window" and item["size"] == len(new)
    assert item["original_size"] == len(old) + len(new)
    assert made.manifest["window_start"].startswith("2026-11-29T12:00")
    assert (
        _members(tmp_path / "b.tar.gz")["root/var/log/amzn-guardduty-agent/agent.log"]
        == new.encode()
    )


def test_no_window_cut_while_everything_fits(tmp_path: Path) -> None:
    """The checks read a log's older lines too (its last entry, earlier signatures): under the
    cap the bundle keeps them, so the replay sees what the run saw."""
    from gd_doctor.checks import agent_logs
    from tests.bundle.conftest import bundle_and_replay, comparable, differences

    host, old, new = _windowed_host(tmp_path, 30)
    made, again = bundle_and_replay(
        host,
        tmp_path / "b.tar.gz",
        checks=agent_logs.CHECKS,
        options=Options(since=timedelta(hours=24)),
    )
    item = {i["name"]: i for i in made.manifest["items"]}[
        "root/var/log/amzn-guardduty-agent/agent.log"
    ]
    assert item["cut"] is None and item["size"] == len(old) + len(new)
    assert differences(comparable(made.run), comparable(again)) == []


def test_cli_bundle_writes_a_private_file(tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    res = cli_runner().invoke(app, ["bundle", "--root", str(ROOT), "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "bundle written to" in res.stdout and oct(out.stat().st_mode & 0o777) == "0o600"
    res = cli_runner().invoke(app, ["check", "--bundle", str(out), "--format", "json"])
    assert res.exit_code in (0, 1), res.output
    assert json.loads(res.stdout)["host"]["root"].startswith("replay of bundle b.tar.gz")


def test_redact_more_is_consistent(tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    made = make_bundle(Host.from_root(ROOT, HostSettings()), out, redact_more=True)
    texts = {k: v.decode(errors="replace") for k, v in _members(out).items()}
    hostname = (ROOT / "etc/hostname").read_text().strip()
    assert all(hostname not in t for t in texts.values())
    assert made.manifest["redactions"].get("hostname", 0) >= 1
    assert made.manifest["host"]["hostname"] == "host-1"
    assert "host-1" in texts["root/etc/hostname"]


def _as_nobody(argv: List[str]) -> Dict[str, Any]:
    """``gd-doctor ARGV`` in a child process that dropped root for nobody (65534): what a
    non-root user gets. Everything is imported before the fork (nobody may not read the
    interpreter's own library)."""
    runner = cli_runner()
    warm = Path(tempfile.mkdtemp(prefix="gd-doctor-warm-"))
    try:
        runner.invoke(app, ["bundle", "--root", str(ROOT), "--output", str(warm / "w.tar.gz")])
        runner.invoke(app, ["timeline", "--root", str(ROOT)])
    finally:
        shutil.rmtree(warm)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            res = runner.invoke(app, argv)
            os.write(
                w,
                json.dumps({"code": res.exit_code, "out": res.stdout, "err": res.stderr}).encode(),
            )
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r) as fh:
        got: Dict[str, Any] = json.loads(fh.read() or "{}")
    return got


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_nothing_readable_as_a_non_root_user(tmp_path: Path) -> None:
    """A root whose directories only root may read, bundled by nobody: a clear message, exit
    3, no file left behind; the host is not changed."""
    work = Path(tempfile.mkdtemp(prefix="gd-doctor-nobody-"))
    try:
        os.chmod(work, 0o777)
        root = work / "root"
        write_tree(root, {"/etc/os-release": "ID=ubuntu\n", "/var/log/syslog": "x\n"})
        for d in ("etc", "var"):
            os.chmod(root / d, 0o700)
        before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        got = _as_nobody(["bundle", "--root", str(root), "--output", str(work / "b.tar.gz")])
        assert got["code"] == 3, got
        assert "nothing could be read on this host (run as root?)" in got["err"]
        assert sorted(os.listdir(work)) == ["root"]
        assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before
    finally:
        shutil.rmtree(work)


def test_empty_window_is_refused_clearly(tmp_path: Path) -> None:
    res = cli_runner().invoke(
        app,
        ["bundle", "--root", str(ROOT), "--since", "0m", "--output", str(tmp_path / "b.tar.gz")],
    )
    # a usage error goes to stderr (kept apart from stdout by the runner on every click)
    assert res.exit_code == 2 and "the window must be more than 0" in res.stderr
    assert not (tmp_path / "b.tar.gz").exists()


def test_timeline_with_nothing_in_the_window_says_so(tmp_path: Path) -> None:
    """Nothing happened in a one-second window of a root without a journal: the sources that
    could not be read are named, and with no event and a source unread, the exit is 3."""
    res = cli_runner().invoke(app, ["timeline", "--root", str(ROOT), "--since", "1s"])
    assert res.exit_code == 3, res.output
    assert "(0 events)" in res.stdout and "No event in the window" in res.stdout
    assert "note: journal:" in res.stdout
