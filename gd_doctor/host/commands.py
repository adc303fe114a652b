"""Running read-only commands (systemctl, dpkg-query, rpm, journalctl) with timeouts.

gd-doctor never runs a command that changes the host; every argv that reaches
:class:`SubprocessRunner` is a query. The locale is forced to C so the parsers see the output
they were written for.

A command is never trusted to behave: each runs in its own process group (its own session), its
output is read while it runs and only up to a limit (a command printing a GiB costs no more than
the limit), and at its timeout, at the limit, when it exits and at the end of the run
(:meth:`SubprocessRunner.close`) the whole group is killed, so neither the command nor a child
it left behind outlives gd-doctor. As root, ``rpm`` runs in a read-only mount namespace
(:mod:`gd_doctor.host.readonly`): its SQLite database would otherwise be opened for writing.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import replace
from typing import IO, Dict, Mapping, Optional, Protocol, Sequence, Set, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.host import readonly

MAX_OUTPUT = 16 * 1024 * 1024  # stdout kept per command
MAX_STDERR = 1024 * 1024
CHUNK = 64 * 1024
EXIT_GRACE = 0.2  # after the command exits: how long a child holding its pipes may still write
REAP_WAIT = 2.0  # after SIGKILL: how long to wait for the kernel to reap (a D-state process)


@dataclass(frozen=True)
class CommandResult:
    """What a command did. ``problem`` is set when it could not run or did not finish.

    ``truncated``: the output reached the limit, the command was stopped there and its exit
    status is unknown (``returncode`` None); the output holds the first bytes.
    """

    argv: Tuple[str, ...]
    returncode: Optional[int]
    stdout: str = ""
    stderr: str = ""
    problem: Optional[str] = None  # "not found", "timed out after 5.0 s", "unavailable: ..."
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None and self.returncode == 0


class CommandRunner(Protocol):
    """Runs one read-only command and never raises for the command's own failures."""

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult: ...

    def close(self) -> None:
        """The end of the run: stop every command still running and refuse new ones."""
        ...


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone (or a setuid child we may not signal; never the case here)


def _leader_exited(pid: int) -> bool:
    """True once the command itself has exited; it stays a zombie (WNOWAIT), so its PID,
    which is also the group's id, cannot be reused while we still signal the group."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


class _Output:
    """One pipe's bytes, kept up to a cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.over = False

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if len(chunk) > room:
            self.over = True
        self.data += chunk[: max(0, room)]


class SubprocessRunner:
    """Runs commands on the live host."""

    def __init__(
        self,
        env: Optional[Mapping[str, str]] = None,
        *,
        max_output: int = MAX_OUTPUT,
        max_stderr: int = MAX_STDERR,
        readonly_sandbox: bool = True,
    ) -> None:
        base = dict(env if env is not None else os.environ)
        base.update({"LC_ALL": "C", "LANG": "C", "SYSTEMD_PAGER": "", "PAGER": "cat"})
        base.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        self._env = base
        self._max_output = max_output
        self._max_stderr = max_stderr
        self._lock = threading.Lock()
        self._groups: Set[int] = set()  # process groups of commands not yet reaped
        self._closed = False
        self._sandbox = readonly_sandbox  # rpm in a read-only mount namespace (readonly.py)
        self._euid = os.geteuid()

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        args = tuple(argv)
        spawn = args
        if self._sandbox and readonly.needs_sandbox(args, self._euid):
            wrapped = readonly.sandboxed(args, self._env)
            if wrapped is None:
                return CommandResult(args, None, problem="not found")
            spawn = tuple(wrapped)
        with self._lock:  # close() cannot slip between the spawn and the bookkeeping
            if self._closed:
                return CommandResult(args, None, problem="not run: the run is over")
            try:
                proc = subprocess.Popen(
                    spawn,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=self._env,
                    start_new_session=True,
                    close_fds=True,
                )
            except FileNotFoundError:
                return CommandResult(args, None, problem="not found")
            except PermissionError:
                return CommandResult(args, None, problem="permission denied")
            except OSError as exc:
                return CommandResult(args, None, problem=f"could not run: {exc.strerror or exc}")
            self._groups.add(proc.pid)
        try:
            res = self._collect(proc, args, max(timeout, 0.05))
        finally:
            self._finish(proc)
        problem = readonly.launcher_problem(res.returncode, res.stderr) if spawn != args else None
        return replace(res, returncode=None, problem=problem) if problem else res

    def _collect(
        self, proc: subprocess.Popen[bytes], args: Tuple[str, ...], timeout: float
    ) -> CommandResult:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _Output(self._max_output), _Output(self._max_stderr)
        outputs: Dict[int, _Output] = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
        deadline = time.monotonic() + timeout
        timed_out = False
        with selectors.DefaultSelector() as sel:
            for pipe in (proc.stdout, proc.stderr):
                sel.register(pipe, selectors.EVENT_READ)
            while sel.get_map():
                now = time.monotonic()
                if now >= deadline:
                    timed_out = True
                    break
                if _leader_exited(proc.pid):
                    # A child may hold the pipes open for ever: read what is there, briefly.
                    deadline = min(deadline, now + EXIT_GRACE)
                for key, _ in sel.select(min(deadline - now, 0.05)):
                    chunk = os.read(key.fd, CHUNK)
                    if chunk:
                        outputs[key.fd].add(chunk)
                    else:
                        sel.unregister(key.fileobj)
                if out.over or err.over:
                    break
            exited = _leader_exited(proc.pid)
        while not (exited or timed_out or out.over or err.over):
            # Both pipes closed, the command still runs: wait for its exit, up to the timeout.
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            time.sleep(min(left, 0.02))
            exited = _leader_exited(proc.pid)
        _kill_group(proc.pid)  # the leader is not reaped yet, so the group id is still ours
        returncode = proc.wait(REAP_WAIT) if exited else None
        stdout = out.data.decode("utf-8", errors="replace")
        stderr = err.data.decode("utf-8", errors="replace")
        if out.over or err.over:
            return CommandResult(args, None, stdout, stderr, truncated=True)
        if timed_out and not exited:
            return CommandResult(
                args, None, stdout, stderr, problem=f"timed out after {timeout:.1f} s"
            )
        return CommandResult(args, returncode, stdout, stderr)

    def _finish(self, proc: subprocess.Popen[bytes]) -> None:
        """Kill what is left of the group, forget it, then reap the command and close pipes."""
        with self._lock:
            _kill_group(proc.pid)
            self._groups.discard(proc.pid)
        try:
            proc.wait(REAP_WAIT)
        except subprocess.TimeoutExpired:
            pass  # SIGKILL is pending (uninterruptible sleep); nothing more can be done
        for pipe in (proc.stdout, proc.stderr):
            _close(pipe)

    def close(self) -> None:
        """Kill every command (and its children) still running; later calls are refused."""
        with self._lock:
            self._closed = True
            for pgid in self._groups:
                _kill_group(pgid)

    @property
    def running(self) -> int:
        """How many commands are running now (tests, and the fault summary)."""
        with self._lock:
            return len(self._groups)


def _close(pipe: Optional[IO[bytes]]) -> None:
    if pipe is not None:
        try:
            pipe.close()
        except OSError:
            pass


class UnavailableRunner:
    """Stands in for the live host's commands when gd-doctor analyses a root (``--root``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        return CommandResult(tuple(argv), None, problem=f"unavailable: {self.reason}")

    def close(self) -> None:
        """Nothing runs, nothing to stop."""
