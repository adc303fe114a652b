"""RootFS under hostile roots: both resolvers (openat2 and the component walk) keep every path
inside the root, refuse special files without opening them, and bound listings and walks."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

from gd_doctor.host import fs as fs_mod
from gd_doctor.host.fs import RootFS
from tests.faults.hostile import mknod_works

RESOLVERS = ["openat2", "walk"]
SECRET = "outside-secret-7d1f"


def _usable(resolver: str) -> None:
    if resolver == "openat2" and not fs_mod.openat2_available():
        pytest.skip("this kernel has no openat2 (Linux < 5.6) or a seccomp filter blocks it")


@pytest.fixture(params=RESOLVERS)
def resolver(request: pytest.FixtureRequest) -> str:
    _usable(request.param)
    return str(request.param)


@pytest.fixture
def world(tmp_path: Path) -> Tuple[Path, Path]:
    """(root, outside): the secret lives outside; the root has its own etc/real."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text(SECRET + "\n")
    (outside / "sub").mkdir()
    (outside / "sub" / "file").write_text(SECRET)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "real").write_text("inside\n")
    (root / "tmp").mkdir()
    return root, outside


def _fs(root: Path, resolver: str) -> RootFS:
    return RootFS.with_resolver(root, resolver)


def _ln(root: Path, rel: str, target: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, p)


def test_absolute_link_is_re_anchored_at_the_root(world: Tuple[Path, Path], resolver: str) -> None:
    root, outside = world
    _ln(root, "etc/to-secret", str(outside / "secret"))
    _ln(root, "etc/to-real", "/etc/real")
    fs = _fs(root, resolver)
    assert fs.read("/etc/to-secret").problem == "missing"
    assert fs.read("/etc/to-real").text == "inside\n"  # /etc/real of the captured system


def test_relative_link_never_climbs_above_the_root(world: Tuple[Path, Path], resolver: str) -> None:
    root, outside = world
    climb = "../" * 20
    _ln(root, "etc/rel-secret", climb + str(outside / "secret").lstrip("/"))
    _ln(root, "etc/rel-real", climb + "etc/real")
    fs = _fs(root, resolver)
    assert fs.read("/etc/rel-secret").problem == "missing"
    assert fs.read("/etc/rel-real").text == "inside\n"


def test_dotdot_in_the_path_itself_stays_inside(world: Tuple[Path, Path], resolver: str) -> None:
    root, outside = world
    fs = _fs(root, resolver)
    climb = "/.." * 20 + str(outside / "secret")
    assert fs.read(climb).problem == "missing"
    assert fs.read("/../../../etc/real").text == "inside\n"
    assert fs.read("/etc/../../etc/./real").text == "inside\n"


def test_dotdot_after_a_link_goes_to_the_links_target_parent(
    world: Tuple[Path, Path], resolver: str
) -> None:
    root, _ = world
    (root / "usr/lib/x").mkdir(parents=True)
    (root / "usr/lib/marker").write_text("lib\n")
    _ln(root, "etc/libx", "/usr/lib/x")
    assert _fs(root, resolver).read("/etc/libx/../marker").text == "lib\n"  # as the kernel does


def test_directory_links_out_are_not_listed_or_read(
    world: Tuple[Path, Path], resolver: str
) -> None:
    root, outside = world
    _ln(root, "var/log/agent", str(outside))
    _ln(root, "var/log/agent-rel", "../../" * 10 + str(outside).lstrip("/"))
    fs = _fs(root, resolver)
    for d in ("/var/log/agent", "/var/log/agent-rel"):
        assert fs.listdir(d) is None and fs.listdir_problem(d) == "missing"
        assert not fs.is_dir(d) and fs.glob(d, "*") == []
        assert fs.read(f"{d}/secret").problem == "missing"
        assert fs.walk(d).files == []


def test_link_loops_and_long_chains(world: Tuple[Path, Path], resolver: str) -> None:
    root, _ = world
    _ln(root, "etc/loop-a", "loop-b")
    _ln(root, "etc/loop-b", "/etc/loop-a")
    for i in range(60):
        _ln(root, f"etc/chain{i}", f"chain{i + 1}")
    os.symlink("real", root / "etc/chain60")
    fs = _fs(root, resolver)
    loop = fs.read("/etc/loop-a")
    assert loop.problem is not None and "symbolic links" in loop.problem
    assert fs.read("/etc/chain30").text == "inside\n"  # 31 links: within the kernel's 40
    assert "symbolic links" in (fs.read("/etc/chain0").problem or "")  # 61 links
    assert fs.stat("/etc/loop-a") is None and not fs.exists("/etc/loop-a")


def test_magic_looking_proc_links_stay_inside(world: Tuple[Path, Path], resolver: str) -> None:
    root, outside = world
    _ln(root, "proc/self", "4242")
    _ln(root, "proc/4242/root", "/")
    _ln(root, "etc/os-release", "/proc/self/root" + str(outside / "secret"))
    assert _fs(root, resolver).read("/etc/os-release").problem == "missing"


def _fifo(root: Path, rel: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(p)


@pytest.mark.parametrize("rel", ["etc/os-release", "proc/sys/kernel/osrelease", "sys/x/y"])
def test_fifo_is_refused_without_blocking(
    world: Tuple[Path, Path], resolver: str, rel: str
) -> None:
    root, _ = world
    _fifo(root, rel)
    fs = _fs(root, resolver)
    start = time.monotonic()
    assert fs.read(f"/{rel}").problem == "not a regular file"
    assert fs.read_tail(f"/{rel}").problem == "not a regular file"
    assert fs.read_bytes(f"/{rel}")[1].problem == "not a regular file"
    assert fs.open_binary(f"/{rel}") == (None, "not a regular file")
    assert fs.host_path(f"/{rel}") == (None, "not a regular file")
    assert fs.read_text(f"/{rel}") is None
    assert time.monotonic() - start < 1.0


def test_fifo_is_never_opened(world: Tuple[Path, Path], resolver: str) -> None:
    """A FIFO opened for reading (even non-blocking) lets a non-blocking writer in; no read
    of RootFS may do that."""
    root, _ = world
    _fifo(root, "etc/fifo")
    fs = _fs(root, resolver)
    opened: List[bool] = []
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            try:
                fd = os.open(root / "etc/fifo", os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO  # no reader: what we want
                time.sleep(0.001)
                continue
            opened.append(True)
            os.close(fd)

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(200):
            fs.read("/etc/fifo")
            fs.read_tail("/etc/fifo")
            fs.open_binary("/etc/fifo")
    finally:
        stop.set()
        t.join()
    assert opened == []


def test_live_root_refuses_a_fifo_too(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    start = time.monotonic()
    assert RootFS().read(str(tmp_path / "fifo")).problem == "not a regular file"
    assert time.monotonic() - start < 1.0


def test_socket_is_refused(world: Tuple[Path, Path], resolver: str) -> None:
    import socket

    root, _ = world
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(root / "etc/sock"))
        assert _fs(root, resolver).read("/etc/sock").problem == "not a regular file"


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_nodes_are_refused(world: Tuple[Path, Path], resolver: str) -> None:
    root, _ = world
    if not mknod_works(root):
        pytest.skip("mknod is not permitted here")
    os.mknod(root / "etc/zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    os.mknod(root / "etc/tty", stat.S_IFCHR | 0o600, os.makedev(5, 0))
    fs = _fs(root, resolver)
    for p in ("/etc/zero", "/etc/tty"):
        assert fs.read(p).problem == "not a regular file"
        assert fs.open_binary(p) == (None, "not a regular file")
    st = fs.stat("/etc/zero")
    assert st is not None and stat.S_ISCHR(st.st_mode)  # metadata is fine: a masked unit


def test_masked_unit_link_to_dev_null_without_a_captured_dev(
    world: Tuple[Path, Path], resolver: str
) -> None:
    root, _ = world
    _ln(root, "etc/systemd/system/x.service", "/dev/null")
    st = _fs(root, resolver).stat("/etc/systemd/system/x.service")
    assert st is not None and stat.S_ISCHR(st.st_mode)
    assert _fs(root, resolver).read("/etc/systemd/system/x.service").problem == "missing"


def test_host_path_is_resolved_and_inside(world: Tuple[Path, Path], resolver: str) -> None:
    root, outside = world
    (root / "var/log/journal/m").mkdir(parents=True)
    (root / "var/log/journal/m/system.journal").write_bytes(b"x")
    _ln(root, "var/log/journal/m/link.journal", "/var/log/journal/m/system.journal")
    _ln(root, "var/log/journal/m/out.journal", str(outside / "secret"))
    fs = _fs(root, resolver)
    real = os.path.realpath(root / "var/log/journal/m/system.journal")
    assert fs.host_path("/var/log/journal/m/link.journal") == (real, None)
    assert fs.host_path("/var/log/journal/m/out.journal") == (None, "missing")


def test_listing_is_capped_with_a_count(world: Tuple[Path, Path], resolver: str) -> None:
    root, _ = world
    d = root / "many"
    d.mkdir()
    for i in range(fs_mod.MAX_DIR_ENTRIES + 500):
        (d / f"f{i:06d}").write_bytes(b"")
    listing = _fs(root, resolver).list_dir("/many")
    assert len(listing.names) == fs_mod.MAX_DIR_ENTRIES and listing.left_out == 500
    assert listing.names[0] == "f000000"  # sorted before the cut: the same names every run
    assert len(_fs(root, resolver).listdir("/many") or []) == fs_mod.MAX_DIR_ENTRIES


def test_walk_visits_each_directory_once(world: Tuple[Path, Path], resolver: str) -> None:
    root, _ = world
    d = root / "var/log/agent"
    d.mkdir(parents=True)
    (d / "agent.log").write_text("x\n")
    for i in range(100):
        os.symlink(".", d / f"self{i}")
        os.symlink("..", d / f"up{i}")
        os.symlink("/", d / f"top{i}")
        os.symlink("agent.log", d / f"same{i}.log")
    start = time.monotonic()
    walk = _fs(root, resolver).walk("/var/log/agent", max_depth=5)
    assert time.monotonic() - start < 5
    files = [p for p, _ in walk.files]
    assert files.count("/var/log/agent/agent.log") == 1
    assert "/etc/real" in {p.replace("/var/log/agent/top0", "") for p in files} or any(
        p.endswith("/etc/real") for p in files
    )  # the root's own files, reached through "/" re-anchored
    assert len(files) == len(set(files)) and len(files) < 10


def test_walk_caps_files_with_a_count(world: Tuple[Path, Path], resolver: str) -> None:
    root, _ = world
    d = root / "logs"
    d.mkdir()
    for i in range(300):
        (d / f"{i:03d}.log").write_bytes(b"")
    walk = _fs(root, resolver).walk("/logs", max_files=100)
    assert len(walk.files) == 100 and walk.left_out == 200


def test_both_resolvers_agree(world: Tuple[Path, Path]) -> None:
    """A differential check over a tree of awkward links: the walk does what openat2 does."""
    _usable("openat2")
    root, outside = world
    (root / "usr/share/zoneinfo").mkdir(parents=True)
    (root / "usr/share/zoneinfo/UTC").write_text("TZif\n")
    (root / "run/systemd/resolve").mkdir(parents=True)
    (root / "run/systemd/resolve/stub-resolv.conf").write_text("nameserver 127.0.0.53\n")
    links = {
        "etc/localtime": "/usr/share/zoneinfo/UTC",
        "etc/resolv.conf": "../run/systemd/resolve/stub-resolv.conf",
        "etc/abs-out": str(outside / "secret"),
        "etc/rel-out": "../" * 9 + str(outside / "secret").lstrip("/"),
        "etc/dir": "/usr/share",
        "etc/loop": "loop",
        "etc/dangling": "/nonexistent/x",
        "etc/via-file": "/etc/real/x",
    }
    for rel, target in links.items():
        _ln(root, rel, target)
    paths = [f"/{rel}" for rel in links] + [
        "/etc/dir/zoneinfo/UTC",
        "/etc/dir/../etc/real",
        "/../etc/real",
        "/etc/real/",
        "/",
        "/etc",
    ]

    def view(fs: RootFS, p: str) -> Tuple[Optional[str], Optional[str], Optional[List[str]]]:
        r = fs.read(p)
        return r.problem, r.text, fs.listdir(p)

    a, w = _fs(root, "openat2"), _fs(root, "walk")
    for p in paths:
        assert view(a, p) == view(w, p), p


def test_without_openat2_the_walk_is_used(
    world: Tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSYS (Linux < 5.6) or EPERM (a seccomp filter) from openat2: RootFS falls back."""
    root, outside = world
    _ln(root, "etc/out", str(outside / "secret"))
    from gd_doctor.host import inroot

    inroot.openat2_available.cache_clear()

    def enosys(*args: object) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(inroot, "openat2", enosys)
    try:
        assert not fs_mod.openat2_available()
        fs = RootFS(root)
        assert not fs.uses_openat2
        assert fs.read("/etc/real").text == "inside\n" and fs.read("/etc/out").problem == "missing"
    finally:
        inroot.openat2_available.cache_clear()


def test_live_pseudo_files_are_read_whole() -> None:
    """/proc files are regular files of size 0: read to the end (or the cap), tails too."""
    live = RootFS()
    status = live.read("/proc/self/status")
    assert status.ok and "Pid:" in (status.text or "")
    tail = live.read_tail("/proc/self/status", max_bytes=64)
    assert tail.ok and tail.truncated and len(tail.text or "") <= 64
    assert (status.text or "").endswith(tail.text or "-")


def _tree(root: Path) -> Iterator[Tuple[str, float]]:
    for dirpath, _, files in os.walk(root):
        for f in files:
            yield os.path.join(dirpath, f), os.lstat(os.path.join(dirpath, f)).st_mtime


def test_reads_change_nothing_in_the_root(world: Tuple[Path, Path], resolver: str) -> None:
    root, _ = world
    before = dict(_tree(root))
    fs = _fs(root, resolver)
    for p in ("/etc/real", "/etc", "/missing", "/etc/real/x"):
        fs.read(p), fs.stat(p), fs.listdir(p), fs.walk(p), fs.host_path(p)
    assert dict(_tree(root)) == before


def test_a_naive_walk_over_self_links_stops(world: Tuple[Path, Path], resolver: str) -> None:
    """A caller walking with listdir/is_dir (not fs.walk) through 60 links back to the same
    directory, 4 levels deep: 60^4 listings, unless the same directory is refused after a few."""
    root, _ = world
    d = root / "var/lib/x"
    d.mkdir(parents=True)
    for i in range(60):
        os.symlink(".", d / f"d{i}")
    fs = _fs(root, resolver)
    listings = 0
    stack = [("/var/lib/x", 0)]
    start = time.monotonic()
    while stack:
        folder, level = stack.pop()
        names = fs.listdir(folder)
        if names is None:
            assert "listed too often" in (fs.list_dir(folder).problem or "")
            continue
        listings += 1
        stack += [
            (f"{folder}/{n}", level + 1) for n in names if level < 4 and fs.is_dir(f"{folder}/{n}")
        ]
    assert listings <= fs_mod.MAX_RELISTS and time.monotonic() - start < 5


def test_a_nul_byte_in_a_path_is_a_problem_not_a_crash(
    world: Tuple[Path, Path], resolver: str
) -> None:
    root, _ = world
    fs = _fs(root, resolver)
    assert fs.read("/etc/real\x00/../../x").problem == "unreadable: the path holds a NUL byte"
    assert fs.stat("/etc/real\x00") is None and fs.listdir("/etc\x00") is None
    assert RootFS().read("/etc/hostname\x00").problem == "unreadable: the path holds a NUL byte"


@pytest.fixture
def other_mount_ns(tmp_path: Path) -> Iterator[Tuple[int, Path]]:
    """(pid, dir): a process in a private mount namespace with a tmpfs at ``dir`` holding
    ``etc/os-release``; this namespace sees ``dir`` empty. Like a container's root, it is
    reachable from here only through the ``/proc/PID/root`` magic link (whose readlink says
    ``/``)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (
        'mount -t tmpfs gdt "$1" && mkdir -p "$1/etc" "$1/var/log" && '
        'echo ID=inside > "$1/etc/os-release" && echo j > "$1/var/log/j" && '
        'ln -s /etc/os-release "$1/var/log/link" && echo ready && exec sleep 60'
    )
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(mnt)],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            pytest.skip("could not mount a tmpfs in a private mount namespace")
        yield proc.pid, mnt
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_root_behind_proc_pid_root_is_that_namespace(
    other_mount_ns: Tuple[int, Path], resolver: str
) -> None:
    """A booted container's root is /proc/PID/root: realpath() of it is "/" (this machine),
    yet the kernel, following the magic link, lands in the container's root. RootFS must read
    the container's files, not this machine's ones of the same name."""
    pid, mnt = other_mount_ns
    assert not (mnt / "etc").exists()  # this namespace sees the mount point empty
    fs = _fs(Path(f"/proc/{pid}/root{mnt}"), resolver)
    assert not fs.is_live and fs.confined
    assert fs.read("/etc/os-release").text == "ID=inside\n"
    assert fs.read("/var/log/link").text == "ID=inside\n"
    assert fs.listdir("/etc") == ["os-release"]
    real, problem = fs.host_path("/var/log/link")
    assert problem is None and real is not None
    assert Path(real).read_text() == "ID=inside\n"  # this machine's name for the same file
    assert real.startswith(f"/proc/{pid}/root{mnt}/")
