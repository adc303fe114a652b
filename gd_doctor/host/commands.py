"""Running read-only commands (systemctl, dpkg-query, rpm, journalctl) with timeouts.

gd-doctor never runs a command that changes the host; every argv that reaches
:class:`SubprocessRunner` is a query. Output is captured up to a limit so a runaway command cannot
exhaust memory, and the locale is forced to C so the parsers see the output they were written for.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Mapping, Optional, Protocol, Sequence, Tuple

MAX_OUTPUT = 16 * 1024 * 1024


@dataclass(frozen=True)
class CommandResult:
    """What a command did. ``problem`` is set when it could not run or did not finish."""

    argv: Tuple[str, ...]
    returncode: Optional[int]
    stdout: str = ""
    stderr: str = ""
    problem: Optional[str] = None  # "not found", "timed out after 5.0 s", "unavailable: ..."

    @property
    def ok(self) -> bool:
        return self.problem is None and self.returncode == 0


class CommandRunner(Protocol):
    """Runs one read-only command and never raises for the command's own failures."""

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult: ...


class SubprocessRunner:
    """Runs commands on the live host."""

    def __init__(self, env: Optional[Mapping[str, str]] = None) -> None:
        base = dict(env if env is not None else os.environ)
        base.update({"LC_ALL": "C", "LANG": "C", "SYSTEMD_PAGER": "", "PAGER": "cat"})
        base.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        self._env = base

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        args = tuple(argv)
        try:
            proc = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=max(timeout, 0.05),
                env=self._env,
                check=False,
            )
        except FileNotFoundError:
            return CommandResult(args, None, problem="not found")
        except PermissionError:
            return CommandResult(args, None, problem="permission denied")
        except subprocess.TimeoutExpired:
            return CommandResult(args, None, problem=f"timed out after {timeout:.1f} s")
        except OSError as exc:
            return CommandResult(args, None, problem=f"could not run: {exc.strerror or exc}")
        return CommandResult(
            args,
            proc.returncode,
            proc.stdout[:MAX_OUTPUT].decode("utf-8", errors="replace"),
            proc.stderr[:MAX_OUTPUT].decode("utf-8", errors="replace"),
        )


class UnavailableRunner:
    """Stands in for the live host's commands when gd-doctor analyses a root (``--root``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        return CommandResult(tuple(argv), None, problem=f"unavailable: {self.reason}")
