"""The real CLI in a real terminal at 80x24: the screen left behind must be actionable.

An SRE runs ``sudo gd-doctor`` over SSH in a small terminal; whatever scrolled away is lost. The
last screen must still hold the verdict and the top cause (issue 12). Two terminals drive the
real ``python -m gd_doctor``: tmux (a real terminal emulator, whose screen we read back with
``capture-pane``) and a bare pseudo-terminal from :mod:`pty` (which also proves the report
wraps to the terminal's width, not to a guess).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import List

import pytest

from gd_doctor.report.text import short_cause

TOP = Path(__file__).resolve().parents[2]
CASE = "tests/fixtures/roots/centos7-unsupported/root"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLS, ROWS = 80, 24


def _top_cause() -> str:
    """The first finding's title, from the JSON report of the same root."""
    proc = subprocess.run(
        [sys.executable, "-m", "gd_doctor", "check", "--root", CASE, "--format", "json"],
        cwd=TOP,
        env={**os.environ, "PYTHONPATH": str(TOP)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    doc = json.loads(proc.stdout)
    problems = [f for f in doc["findings"] if f["severity"] == "fail"]
    return short_cause(problems[0]["title"])


def _flat(lines: List[str]) -> str:
    return " ".join(" ".join(lines).split())


def _assert_actionable(screen: List[str]) -> None:
    text = _flat(screen)
    assert "UNHEALTHY" in text, "\n".join(screen)
    assert f"Top cause: {_top_cause()}" in text, "\n".join(screen)
    assert "[row 5 kernel-lower]" in text and "gd-doctor explain 5" in text


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_last_screen_in_tmux_holds_verdict_and_top_cause(tmp_path: Path) -> None:
    sock = tmp_path / "tmux.sock"
    conf = tmp_path / "tmux.conf"
    # No status line (the pane is then the whole 80x24 screen); keep the pane after the exit,
    # as a shell would keep the screen under its next prompt.
    conf.write_text("set -g status off\nset -g remain-on-exit on\n")
    tmux = ["tmux", "-S", str(sock), "-f", str(conf)]
    command = (
        f"cd {TOP} && exec env -u NO_COLOR PYTHONPATH={TOP} {sys.executable} "
        f"-m gd_doctor check --root {CASE}"
    )
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", str(COLS), "-y", str(ROWS), "-s", "t", command],
        check=True,
        timeout=20,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            dead = subprocess.run(
                [*tmux, "list-panes", "-t", "t", "-F", "#{pane_dead} #{pane_dead_status}"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.split()
            if dead and dead[0] == "1":
                break
            time.sleep(0.2)
        else:
            pytest.fail("gd-doctor did not finish within 60 s in tmux")
        if len(dead) > 1:  # pane_dead_status is tmux >= 2.6
            assert dead[1] == "1"  # exit code: problems found
        screen = subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "t"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.splitlines()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)
    assert len(screen) <= ROWS
    assert all(len(line) <= COLS for line in screen)
    _assert_actionable(screen)
    print("\n".join(screen))


def _screen_rows(output: str, cols: int) -> List[str]:
    """The rows a terminal shows for ``output`` (a line longer than ``cols`` takes more)."""
    rows: List[str] = []
    for line in ANSI.sub("", output).replace("\r\n", "\n").split("\n"):
        line = line.replace("\r", "")
        rows.extend([line[i : i + cols] for i in range(0, len(line), cols)] or [""])
    return rows


def test_last_screen_in_a_pty_holds_verdict_and_top_cause() -> None:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gd_doctor", "check", "--root", CASE],
        cwd=TOP,
        env={**env, "PYTHONPATH": str(TOP), "TERM": "xterm"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    chunks: List[bytes] = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=60) == 1
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    output = b"".join(chunks).decode("utf-8")
    assert "\x1b[31m" in output  # a terminal gets colour
    rows = _screen_rows(output, COLS)
    assert all(len(ANSI.sub("", r)) <= COLS for r in rows)
    # The prompt after the exit takes the last row: the report keeps ROWS - 1.
    last_screen = rows[-ROWS:]
    _assert_actionable(last_screen)
    # The wrap follows the terminal: no report line is longer than 80 columns except one word.
    for line in ANSI.sub("", output).splitlines():
        assert len(line) <= COLS or len(line) - len(line.split()[-1]) <= 12, line
