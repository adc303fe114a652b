"""Real systemd in a throw-away container, for gd-doctor's tests.

A Debian root made with ``debootstrap --variant=minbase`` (systemd, dbus, python3, ...) is built
once into a cache (``$GD_DOCTOR_CACHE``, default ``/var/cache/gd-doctor-tests``) by the prepare
step, which is the only step that needs the network::

    python -m tests.harness.container prepare [--suite bookworm ...]

Tests then boot it with ``booted_container()``. Each container gets a private overlay: the cached
root is the read-only lower layer, the writable upper layer lives in a fresh temp dir, and the
overlay is mounted inside a private mount namespace (``unshare --mount``) that only
``systemd-nspawn`` and its container live in. Nothing is ever written to the cache or to this
machine's own filesystem outside that temp dir; when the last process of the container goes away,
the mount goes with it. systemd runs only as PID 1 of the container, never on this machine.

Example::

    from tests.harness.container import booted_container, ensure_base_root, standin_agent_files

    root = ensure_base_root("bookworm")
    with booted_container(root, files=standin_agent_files("exit-unreachable")) as c:
        out = c.run(["systemctl", "show", "amazon-guardduty-agent", "-p", "NRestarts"])
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Union

DEFAULT_CACHE = "/var/cache/gd-doctor-tests"
CACHE_ENV = "GD_DOCTOR_CACHE"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
MIRROR_ENV = "GD_DOCTOR_MIRROR"
#: Packages in every cached root. python3-systemd lets tests use journal.Reader inside.
BASE_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-systemd",
    "iproute2",
    "procps",
)
KNOWN_SUITES: tuple[str, ...] = ("bullseye", "bookworm", "trixie")
STAMP_NAME = "gd-doctor-root.json"
STANDIN_DIR = Path(__file__).resolve().parent / "standin"
AGENT_UNIT = "amazon-guardduty-agent.service"
AGENT_UNIT_PATH = "/lib/systemd/system/amazon-guardduty-agent.service"
AGENT_BIN_PATH = "/opt/aws/amazon-guardduty-agent/bin/amazon-guardduty-agent"
STANDIN_MODE_PATH = "/etc/gd-doctor-standin/mode"
STANDIN_MODES: tuple[str, ...] = ("run", "exit-unreachable", "oom", "crash-signal")
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REQUIRED_TOOLS: tuple[str, ...] = ("systemd-nspawn", "nsenter", "unshare", "mount")

DEBOOTSTRAP_TIMEOUT = 1800.0
BOOT_TIMEOUT = 90.0
SHUTDOWN_TIMEOUT = 30.0


class HarnessError(RuntimeError):
    """The container harness could not do what was asked."""


# --------------------------------------------------------------------------------------------
# Files written into a container before it boots


@dataclass(frozen=True)
class File:
    """A file to create in the container (``content`` as text or bytes, with a mode)."""

    content: str | bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Symlink:
    """A symbolic link to create in the container (e.g. ``Symlink("/dev/null")`` to mask)."""

    target: str


#: What may be given as the value of ``files``: text, bytes, File, Symlink, or None to delete a
#: file that exists in the base root (written as an overlayfs whiteout).
FileSpec = Union[str, bytes, File, Symlink, None]


def _container_rel(path: str) -> str:
    if not path.startswith("/"):
        raise HarnessError(f"container paths must be absolute: {path!r}")
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise HarnessError(f"bad container path: {path!r}")
    return "/".join(parts)


def _resolve_parent(lower: Path, rel: str) -> str:
    """Resolve symlinks in the parent directories of ``rel`` as the container would see them
    (e.g. ``/lib -> usr/lib`` on merged-/usr roots), staying inside ``lower``."""
    parts = rel.split("/")
    done: list[str] = []
    todo = parts[:-1]
    hops = 0
    while todo:
        part = todo.pop(0)
        candidate = lower.joinpath(*done, part)
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise HarnessError(f"too many symlinks resolving {rel}")
            link = os.readlink(candidate)
            if link.startswith("/"):
                done = []
            todo = [p for p in link.split("/") if p and p != "."] + todo
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        done.append(part)
    return "/".join([*done, parts[-1]])


def _write_into(upper: Path, lower: Path, path: str, spec: FileSpec) -> None:
    """Write one file into the overlay's upper dir (never into ``lower``)."""
    rel = _resolve_parent(lower, _container_rel(path))
    target = upper / rel
    # Parent directories: create them in the upper layer; copy the owner/mode of an existing
    # lower dir so the merged view keeps its permissions.
    parts = rel.split("/")[:-1]
    cur_u, cur_l = upper, lower
    for part in parts:
        cur_u, cur_l = cur_u / part, cur_l / part
        if not cur_u.exists():
            cur_u.mkdir()
            if cur_l.is_dir():
                st = cur_l.stat()
                os.chown(cur_u, st.st_uid, st.st_gid)
                os.chmod(cur_u, stat.S_IMODE(st.st_mode))
    if target.is_symlink() or target.exists():
        target.unlink()
    if spec is None:
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlayfs whiteout
        return
    if isinstance(spec, Symlink):
        os.symlink(spec.target, target)
        return
    if isinstance(spec, File):
        data, mode = spec.content, spec.mode
    else:
        data, mode = spec, 0o644
    raw = data.encode("utf-8") if isinstance(data, str) else data
    target.write_bytes(raw)
    os.chmod(target, mode)


# --------------------------------------------------------------------------------------------
# The stand-in agent


def standin_unit_text(memory: str = "128M", extra_service_lines: Sequence[str] = ()) -> str:
    """The stand-in's unit file, with ``MemoryLimit=``/``MemoryMax=`` set to ``memory``."""
    template = (STANDIN_DIR / "amazon-guardduty-agent.service").read_text(encoding="utf-8")
    return template.replace("@MEMORY@", memory).replace(
        "@EXTRA@\n", "".join(line + "\n" for line in extra_service_lines)
    )


def standin_agent_files(
    mode: str = "run",
    *,
    memory: str | None = None,
    enabled: bool = True,
    extra_service_lines: Sequence[str] = (),
    dropins: Mapping[str, str] | None = None,
) -> dict[str, FileSpec]:
    """Files that install the stand-in agent as ``amazon-guardduty-agent.service``.

    ``mode`` is one of ``STANDIN_MODES``. ``memory`` defaults to 128M (32M for ``oom``).
    ``dropins`` maps a drop-in file name (``"50-proxy.conf"``) to its text; they go to
    ``/etc/systemd/system/amazon-guardduty-agent.service.d/``.
    """
    if mode not in STANDIN_MODES:
        raise HarnessError(f"unknown stand-in mode {mode!r}; expected one of {STANDIN_MODES}")
    if memory is None:
        memory = "32M" if mode == "oom" else "128M"
    files: dict[str, FileSpec] = {
        AGENT_BIN_PATH: File((STANDIN_DIR / "amazon-guardduty-agent").read_bytes(), 0o755),
        AGENT_UNIT_PATH: standin_unit_text(memory, extra_service_lines),
        STANDIN_MODE_PATH: mode + "\n",
    }
    if enabled:
        files["/etc/systemd/system/multi-user.target.wants/" + AGENT_UNIT] = Symlink(
            AGENT_UNIT_PATH
        )
    for name, text in (dropins or {}).items():
        files[f"/etc/systemd/system/{AGENT_UNIT}.d/{name}"] = text
    return files


# --------------------------------------------------------------------------------------------
# Can a container run here?


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def root_dir(suite: str = "bookworm") -> Path:
    """Where the cached root of ``suite`` lives (it may not exist yet)."""
    return cache_dir() / "roots" / suite


def root_info(root: Path) -> dict[str, str] | None:
    """The stamp written when a cached root was completed, or None if it is not complete."""
    try:
        data = json.loads((root.parent / f"{root.name}.{STAMP_NAME}").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def prepared_root(suite: str = "bookworm") -> Path | None:
    """The cached root of ``suite`` if the prepare step built it, else None (never builds)."""
    root = root_dir(suite)
    return root if root_info(root) is not None and root.is_dir() else None


def container_unavailable_reason(suite: str | None = "bookworm") -> str | None:
    """Why a real systemd container cannot run here, or None if it can.

    Checks: Linux, root, the tools (systemd-nspawn from systemd-container, nsenter, unshare),
    overlayfs, and (if ``suite`` is given) that the cached root was prepared. Use it as
    ``pytest.mark.skipif(reason := container_unavailable_reason(), reason=...)``.
    """
    if not sys.platform.startswith("linux"):
        return "real systemd containers need Linux"
    if os.geteuid() != 0:
        return "real systemd containers need root (systemd-nspawn, overlay mounts)"
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        return (
            "missing tools: "
            + ", ".join(missing)
            + " (apt-get install systemd-container util-linux mount)"
        )
    try:
        with open("/proc/filesystems", encoding="ascii") as f:
            if "overlay" not in f.read():
                return "the kernel has no overlay filesystem"
    except OSError:
        return "cannot read /proc/filesystems"
    if suite is not None and prepared_root(suite) is None:
        return (
            f"the cached {suite} root is not prepared in {cache_dir()} "
            f"(run: python -m tests.harness.container prepare --suite {suite})"
        )
    return None


def can_run_containers(suite: str | None = "bookworm") -> bool:
    return container_unavailable_reason(suite) is None


# --------------------------------------------------------------------------------------------
# Building the cached root (network needed, prepare step only)


def _run(
    argv: Sequence[str],
    timeout: float,
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        list(argv),
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is subprocess.PIPE else None,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env=dict(env) if env is not None else None,
        check=False,
    )
    if check and proc.returncode != 0:
        tail = (proc.stdout or b"")[-3000:].decode("utf-8", "replace")
        raise HarnessError(f"{' '.join(argv)} failed with {proc.returncode}:\n{tail}")
    return proc


@contextlib.contextmanager
def _flock(path: Path, timeout: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise HarnessError(f"timed out waiting for lock {path}") from exc
                time.sleep(1.0)
        yield
    finally:
        os.close(fd)


def _dpkg_version(root: Path, package: str) -> str:
    proc = _run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f=${Version}", package],
        60,
        check=False,
    )
    return proc.stdout.decode().strip() if proc.returncode == 0 else ""


def _customize_root(root: Path, suite: str) -> None:
    """Small, documented changes to the fresh debootstrap root."""
    (root / "etc/hostname").write_text("gd-doctor-test\n", encoding="ascii")
    # Every container gets its own machine-id at boot time (see booted_container); the cached one
    # is a fixed placeholder so the root never looks like a first boot.
    (root / "etc/machine-id").write_text("0" * 31 + "1\n", encoding="ascii")
    # Persistent journal, so tests can read journal files from the container's root.
    (root / "var/log/journal").mkdir(parents=True, exist_ok=True)
    # Nothing in the containers may try to reach the network or wait for it.
    for unit in (
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "systemd-networkd-wait-online.service",
    ):
        link = root / "etc/systemd/system" / unit
        if not link.exists() and not link.is_symlink():
            link.symlink_to("/dev/null")
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def ensure_base_root(
    suite: str = "bookworm",
    *,
    packages: Sequence[str] = BASE_PACKAGES,
    mirror: str | None = None,
    lock_timeout: float = DEBOOTSTRAP_TIMEOUT + 60,
) -> Path:
    """Return the cached minbase root of ``suite``, building it once if it is missing.

    Building needs the network (debootstrap from ``$GD_DOCTOR_MIRROR`` or deb.debian.org) and
    root; it happens under a file lock, so parallel callers wait for one build. The root is built
    in a scratch dir next to it and renamed into place, then a stamp file marks it complete.
    """
    root = root_dir(suite)
    if prepared_root(suite) is not None:
        return root
    if os.geteuid() != 0:
        raise HarnessError("building the cached root needs root")
    if shutil.which("debootstrap") is None:
        raise HarnessError("debootstrap is missing (apt-get install debootstrap)")
    cache = cache_dir()
    with _flock(cache / "locks" / f"{suite}.lock", lock_timeout):
        if prepared_root(suite) is not None:
            return root
        build = root.parent / f".{suite}.build-{os.getpid()}"
        stamp = root.parent / f"{root.name}.{STAMP_NAME}"
        for stale in (build, root):
            if stale.exists():
                shutil.rmtree(stale)
        root.parent.mkdir(parents=True, exist_ok=True)
        debs = cache / "debs" / suite
        debs.mkdir(parents=True, exist_ok=True)
        url = mirror or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
        argv = [
            "debootstrap",
            "--variant=minbase",
            "--include=" + ",".join(packages),
            f"--cache-dir={debs}",
            suite,
            str(build),
            url,
        ]
        log_path = cache / f"debootstrap-{suite}.log"
        try:
            with open(log_path, "wb") as log:
                proc = _run(argv, DEBOOTSTRAP_TIMEOUT, check=False, stdout=log)
            if proc.returncode != 0:
                tail = log_path.read_bytes()[-3000:].decode("utf-8", "replace")
                raise HarnessError(f"debootstrap {suite} failed ({proc.returncode}):\n{tail}")
            _customize_root(build, suite)
            info = {
                "suite": suite,
                "mirror": url,
                "packages": ",".join(packages),
                "systemd": _dpkg_version(build, "systemd"),
                "python3": _dpkg_version(build, "python3"),
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            os.rename(build, root)
            tmp_stamp = stamp.with_name(stamp.name + ".tmp")
            tmp_stamp.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
            os.rename(tmp_stamp, stamp)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
    return root


# --------------------------------------------------------------------------------------------
# Booting a container


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pids_in_pidns(pid1: int) -> list[int]:
    """PIDs (as seen here) of every process in the PID namespace of ``pid1``."""
    try:
        ns = os.readlink(f"/proc/{pid1}/ns/pid")
    except OSError:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == ns:
                    pids.append(int(name))
            except OSError:
                continue
    return sorted(pids)


def _find_pid1(nspawn_pid: int) -> int | None:
    """The container's PID 1: a descendant of systemd-nspawn in another PID namespace."""
    try:
        own = os.readlink(f"/proc/{nspawn_pid}/ns/pid")
    except OSError:
        return None
    todo = [nspawn_pid]
    while todo:
        pid = todo.pop()
        for child in _children(pid):
            try:
                if os.readlink(f"/proc/{child}/ns/pid") != own:
                    return child
            except OSError:
                continue
            todo.append(child)
    return None


@dataclass
class Container:
    """A booted container. Only valid inside ``booted_container()``."""

    pid1: int
    nspawn_pid: int
    machine: str
    upper: Path  # writable overlay layer on this machine (what the container changed)
    lower: Path  # the cached root, read-only
    console_log: Path
    machine_id: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The container's root as seen from this machine (``/proc/PID1/root``), while it runs."""
        return Path(f"/proc/{self.pid1}/root")

    def path(self, container_path: str) -> Path:
        """A path inside the running container, reachable from this machine."""
        return self.root / _container_rel(container_path)

    def run(
        self,
        argv: Sequence[str],
        timeout: float = 30.0,
        *,
        check: bool = False,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        """Run ``argv`` inside the container (all its namespaces) with a clean environment."""
        full_env = {
            "PATH": CONTAINER_PATH,
            "LANG": "C.UTF-8",
            "SYSTEMD_PAGER": "",
            "SYSTEMD_COLORS": "0",
            "TERM": "dumb",
        }
        full_env.update(self.env)
        full_env.update(env or {})
        cmd = ["nsenter", "-t", str(self.pid1), "-a", "--", "/usr/bin/env", "-i"]
        cmd += [f"{k}={v}" for k, v in full_env.items()]
        cmd += list(argv)
        return subprocess.run(
            cmd,
            input=input.decode() if text and input is not None else input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=check,
            text=text,
        )

    def systemctl_show(self, unit: str = AGENT_UNIT, props: Sequence[str] = ()) -> dict[str, str]:
        """``systemctl show UNIT [-p ...]`` parsed into a dict."""
        argv = ["systemctl", "show", unit]
        if props:
            argv += ["-p", ",".join(props)]
        out = self.run(argv, check=True).stdout
        result: dict[str, str] = {}
        for line in out.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                result[key] = value
        return result

    def wait_for(
        self,
        predicate: Callable[[dict[str, str]], bool],
        timeout: float = 30.0,
        interval: float = 0.5,
        what: str = "condition",
    ) -> dict[str, str]:
        """Poll ``systemctl show`` of the agent unit until ``predicate(props)`` is true."""
        deadline = time.monotonic() + timeout
        props: dict[str, str] = {}
        while time.monotonic() < deadline:
            props = self.systemctl_show()
            if predicate(props):
                return props
            time.sleep(interval)
        raise HarnessError(f"timed out after {timeout}s waiting for {what}; last: {props}")


def _wait_running(c: Container, nspawn: subprocess.Popen, timeout: float) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if nspawn.poll() is not None:
            raise HarnessError(
                f"systemd-nspawn exited with {nspawn.returncode} during boot; console:\n"
                + _tail(c.console_log)
            )
        try:
            proc = c.run(["systemctl", "is-system-running"], timeout=10)
            last = (proc.stdout + proc.stderr).strip()
            if proc.stdout.strip() in ("running", "degraded"):
                return
        except subprocess.TimeoutExpired:
            last = "systemctl is-system-running timed out"
        time.sleep(0.3)
    raise HarnessError(
        f"container did not finish booting in {timeout}s (last: {last!r}); console:\n"
        + _tail(c.console_log)
    )


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_bytes()[-n:].decode("utf-8", "replace")
    except OSError:
        return "<no console log>"


def _terminate(nspawn: subprocess.Popen, pid1: int | None, timeout: float) -> None:  # type: ignore[type-arg]
    """Power the container off (SIGTERM to nspawn = clean shutdown), then force if needed."""
    if nspawn.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            nspawn.send_signal(signal.SIGTERM)
        try:
            nspawn.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    if nspawn.poll() is None:
        # Killing PID 1 of a PID namespace kills every process in it.
        if pid1 is not None and _pid_alive(pid1):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid1, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(nspawn.pid, signal.SIGKILL)
        nspawn.wait(timeout=30)
    elif pid1 is not None and _pid_alive(pid1):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid1, signal.SIGKILL)
    if pid1 is not None:
        deadline = time.monotonic() + 10
        while _pid_alive(pid1) and time.monotonic() < deadline:
            time.sleep(0.1)
    # Reap anything left in nspawn's process group (it runs in its own session).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(nspawn.pid, signal.SIGKILL)


@contextlib.contextmanager
def booted_container(
    root_template: Path | str | None = None,
    *,
    units: Mapping[str, str] | None = None,
    files: Mapping[str, FileSpec] | None = None,
    enable: Sequence[str] = (),
    network_namespace: str | None = None,
    bind_ro: Mapping[str, str] | None = None,
    boot_timeout: float = BOOT_TIMEOUT,
    shutdown_timeout: float = SHUTDOWN_TIMEOUT,
    keep_upper: Path | None = None,
    memory_limit: int | None = None,
    kmsg: bool = False,
) -> Iterator[Container]:
    """Boot a throw-away container from ``root_template`` (default: the prepared bookworm root).

    * ``units``: unit file name -> text, written to ``/etc/systemd/system/NAME``.
    * ``files``: absolute container path -> text/bytes/File/Symlink/None (None deletes).
    * ``enable``: unit names to symlink into ``multi-user.target.wants``.
    * ``network_namespace``: name of a namespace in ``/run/netns`` the test made (else
      ``--private-network``: the container has only its own loopback).
    * ``bind_ro``: host path -> container path, read-only bind mounts (e.g. the source tree).
    * ``keep_upper``: if given, the overlay's upper dir is copied there before cleanup.
    * ``memory_limit``: bytes; puts the whole container into a memory cgroup of its own made on
      this machine (cgroup-v1 hosts only, where nspawn does not delegate the memory controller, so
      the unit's ``MemoryMax=`` is not enforced inside). The cgroup is removed on exit.
    * ``kmsg``: bind this machine's ``/dev/kmsg`` into the container so its journald records
      kernel messages (``_TRANSPORT=kernel``, e.g. OOM kills). The container then sees all kernel
      messages of this machine, and its early boot messages may land in this machine's kernel log.

    Boots ``systemd-nspawn --register=no --keep-unit`` with the container's systemd as PID 1,
    waits for ``systemctl is-system-running`` to say running/degraded, yields a ``Container``,
    and on exit (normal, exception or KeyboardInterrupt) powers it off and removes the temp dir.
    """
    if root_template is None:
        prepared = prepared_root("bookworm")
        if prepared is None:
            raise HarnessError(container_unavailable_reason("bookworm") or "no prepared root")
        lower = prepared
    else:
        lower = Path(root_template).resolve()
    if not (lower / "sbin/init").exists() and not (lower / "lib/systemd/systemd").exists():
        raise HarnessError(f"{lower} does not look like a systemd root")
    reason = container_unavailable_reason(None)
    if reason is not None:
        raise HarnessError(reason)
    if network_namespace is not None and not Path("/run/netns", network_namespace).exists():
        raise HarnessError(f"network namespace /run/netns/{network_namespace} does not exist")

    tmp = Path(tempfile.mkdtemp(prefix="gd-doctor-ct-"))
    memcg: Path | None = None
    nspawn: subprocess.Popen | None = None  # type: ignore[type-arg]
    pid1: int | None = None
    console: IO[bytes] | None = None
    try:
        upper, work, merged = tmp / "upper", tmp / "work", tmp / "merged"
        for d in (upper, work, merged):
            d.mkdir()
        os.chmod(upper, stat.S_IMODE(lower.stat().st_mode))
        machine_id = uuid.uuid4().hex
        machine = "gdct-" + machine_id[:8]
        all_files: dict[str, FileSpec] = {"/etc/machine-id": machine_id + "\n"}
        for name, text in (units or {}).items():
            all_files[f"/etc/systemd/system/{name}"] = text
        for name in enable:
            all_files[f"/etc/systemd/system/multi-user.target.wants/{name}"] = Symlink(
                f"/etc/systemd/system/{name}"
                if units and name in units
                else f"/lib/systemd/system/{name}"
            )
        all_files.update(files or {})
        for path, spec in all_files.items():
            _write_into(upper, lower, path, spec)

        console_log = tmp / "console.log"
        console = open(console_log, "wb")
        nspawn_argv = [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--boot",
            "--console=pipe",
            f"--machine={machine}",
            f"--uuid={machine_id}",
            "--directory",
            str(merged),
        ]
        if network_namespace is None:
            nspawn_argv.append("--private-network")
        else:
            nspawn_argv.append(f"--network-namespace-path=/run/netns/{network_namespace}")
        if kmsg:
            nspawn_argv.append("--bind=/dev/kmsg")
        for host_path, ct_path in (bind_ro or {}).items():
            nspawn_argv.append(f"--bind-ro={Path(host_path).resolve()}:{ct_path}")
        mount_opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
        # The overlay lives in a private mount namespace owned by this process tree only.
        script = 'mount -t overlay -o "$1" gd-doctor-ct "$2" && shift 2 && exec "$@"'
        argv = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            mount_opts,
            str(merged),
            *nspawn_argv,
        ]
        if memory_limit is not None:
            memcg = _make_memcg(tmp.name, memory_limit)
        nspawn = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + boot_timeout
        while pid1 is None:
            if nspawn.poll() is not None:
                raise HarnessError(
                    f"systemd-nspawn exited with {nspawn.returncode}; console:\n"
                    + _tail(console_log)
                )
            if time.monotonic() > deadline:
                raise HarnessError(
                    "container PID 1 did not appear; console:\n" + _tail(console_log)
                )
            pid1 = _find_pid1(nspawn.pid)
            if pid1 is None:
                time.sleep(0.02)
        container = Container(
            pid1=pid1,
            nspawn_pid=nspawn.pid,
            machine=machine,
            upper=upper,
            lower=lower,
            console_log=console_log,
            machine_id=machine_id,
        )
        # wait for PID 1 to exec systemd before entering its namespaces
        while True:
            try:
                exe = os.readlink(f"/proc/{pid1}/exe")
            except OSError:
                exe = ""
            if "systemd" in exe:
                break
            if time.monotonic() > deadline or nspawn.poll() is not None:
                raise HarnessError(f"PID 1 did not become systemd; console:\n{_tail(console_log)}")
            time.sleep(0.1)
        _wait_running(container, nspawn, max(5.0, deadline - time.monotonic()))
        if memcg is not None:
            # systemd-nspawn attaches the container to its own cgroups while it starts, so the
            # container's processes are moved in once it has booted; what they start later
            # inherits the memory cgroup. A unit meant to be OOM-killed should be started after.
            for pid in _pids_in_pidns(pid1):
                with contextlib.suppress(OSError):
                    (memcg / "cgroup.procs").write_text(str(pid), encoding="ascii")
        yield container
    finally:
        try:
            if nspawn is not None:
                if nspawn.stdin is not None:
                    with contextlib.suppress(OSError):
                        nspawn.stdin.close()
                _terminate(nspawn, pid1, shutdown_timeout)
        finally:
            if console is not None:
                console.close()
            if keep_upper is not None:
                with contextlib.suppress(OSError):
                    shutil.copytree(tmp / "upper", keep_upper, symlinks=True)
            _remove_tree(tmp)
            if memcg is not None:
                _remove_memcg(memcg)


def _v1_memory_cgroup_root() -> Path | None:
    """This process's cgroup-v1 memory cgroup directory, or None (cgroup v2 or no memory)."""
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory")
            cg = base / path.lstrip("/")
            return cg if (cg / "memory.limit_in_bytes").exists() else None
    return None


def _make_memcg(name: str, limit: int) -> Path:
    parent = _v1_memory_cgroup_root()
    if parent is None:
        raise HarnessError(
            "memory_limit needs a cgroup-v1 memory hierarchy on this machine; on cgroup v2 the "
            "container's systemd enforces MemoryMax= itself"
        )
    cg = parent / name
    cg.mkdir()
    try:
        (cg / "memory.limit_in_bytes").write_text(str(limit), encoding="ascii")
    except OSError:
        cg.rmdir()
        raise
    return cg


def _remove_memcg(cg: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            for child in sorted(cg.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if child.is_dir():
                    child.rmdir()
            cg.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _remove_tree(tmp: Path) -> None:
    merged = tmp / "merged"
    # The overlay was mounted in a private namespace; if it ever leaks here, detach it first.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        if os.path.ismount(merged):
            _run(["umount", "--lazy", str(merged)], 30, check=False)
    shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# CLI: python -m tests.harness.container prepare|status|shell


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.container")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_prep = sub.add_parser("prepare", help="build the cached debootstrap root(s) (needs network)")
    p_prep.add_argument("--suite", action="append", help="suite(s), default: bookworm")
    p_prep.add_argument(
        "--optional",
        action="append",
        default=[],
        help="suite(s) to try but not fail on (e.g. bullseye, trixie)",
    )
    sub.add_parser("status", help="say whether containers can run here and what is cached")
    p_boot = sub.add_parser("smoke", help="boot a container with the stand-in and print its state")
    p_boot.add_argument("--suite", default="bookworm")
    p_boot.add_argument("--mode", default="exit-unreachable", choices=STANDIN_MODES)
    args = parser.parse_args(argv)

    if args.cmd == "prepare":
        rc = 0
        for suite in args.suite or ["bookworm"]:
            t0 = time.monotonic()
            root = ensure_base_root(suite)
            info = root_info(root) or {}
            print(f"{suite}: {root} systemd {info.get('systemd')} ({time.monotonic() - t0:.0f}s)")
        for suite in args.optional:
            try:
                root = ensure_base_root(suite)
            except (HarnessError, subprocess.SubprocessError, OSError) as exc:
                print(f"{suite}: not available: {str(exc).splitlines()[0]}", file=sys.stderr)
                continue
            print(f"{suite}: {root} systemd {(root_info(root) or {}).get('systemd')}")
        return rc
    if args.cmd == "status":
        print(f"cache: {cache_dir()}")
        for suite in KNOWN_SUITES:
            root = prepared_root(suite)
            print(f"  {suite}: " + (json.dumps(root_info(root)) if root else "not prepared"))
        reason = container_unavailable_reason()
        print("containers: " + ("available" if reason is None else f"unavailable: {reason}"))
        return 0 if reason is None else 1
    if args.cmd == "smoke":
        root = prepared_root(args.suite)
        if root is None:
            print(f"{args.suite} not prepared", file=sys.stderr)
            return 1
        with booted_container(root, files=standin_agent_files(args.mode)) as c:
            time.sleep(5)
            for key, value in c.systemctl_show(
                props=("ActiveState", "SubState", "Result", "NRestarts", "MainPID", "MemoryMax")
            ).items():
                print(f"{key}={value}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(_main())
