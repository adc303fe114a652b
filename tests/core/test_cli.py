"""The command line, through typer's runner and through real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from typer.testing import CliRunner

from gd_doctor import __version__
from gd_doctor.checks import ALL_CHECKS
from gd_doctor.cli import app, main
from gd_doctor.knowledge import knowledge_date
from tests.hostkit import validate_report, write_tree

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _root(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "root",
        {
            "/etc/os-release": 'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nVERSION_ID="2023"\n'
            'PRETTY_NAME="Amazon Linux 2023.6.20241010"\n',
            "/proc/sys/kernel/osrelease": "6.1.112-124.190.amzn2023.x86_64\n",
        },
    )


def _python(args: List[str], **env: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
        cwd=str(REPO),
        check=False,
    )


def test_version_names_tool_and_knowledge_date() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.stdout.strip() == f"gd-doctor {__version__} (knowledge base {knowledge_date()})"


def test_help_documents_exit_codes() -> None:
    res = runner.invoke(app, ["check", "--help"])
    assert res.exit_code == 0
    assert "3 gd-doctor itself failed" in " ".join(res.stdout.split())


def test_checks_lists_every_registered_check() -> None:
    res = runner.invoke(app, ["checks", "--format", "json"])
    assert res.exit_code == 0
    assert [c["id"] for c in json.loads(res.stdout)] == [c.id for c in ALL_CHECKS]


def test_explain_exit_codes() -> None:
    ok = runner.invoke(app, ["explain", "Agent", "disconnected"])
    assert ok.exit_code == 0 and "Row 3 [agent-disconnected]" in ok.stdout
    unknown = runner.invoke(app, ["explain", "the kettle is cold"])
    assert unknown.exit_code == 1 and "No coverage issue matches" in unknown.stdout


def test_check_on_a_root_writes_a_valid_json_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    res = runner.invoke(
        app, ["check", "--root", str(_root(tmp_path)), "--format", "json", "--output", str(out)]
    )
    assert res.exit_code in (0, 1), res.output
    doc = validate_report(res.stdout)
    assert doc["host"]["live"] is False
    assert validate_report(out.read_text()) == {**doc}
    assert all(
        c["skip_reason"] == "UNAVAILABLE_WITH_ROOT"
        for c in doc["checks"]
        if c["status"] == "skip" and "live" in c["summary"]
    )


def test_output_file_is_json_whatever_stdout_shows(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    res = runner.invoke(
        app, ["check", "--root", str(_root(tmp_path)), "--format", "ssm", "-o", str(out)]
    )
    assert res.stdout.startswith("gd-doctor: ")
    assert res.stdout.rstrip().endswith(f"full report: {out}")
    validate_report(out.read_text())


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--format", "xml"],
        ["check", "--only", "no-such-check"],
        ["check", "--timeout", "0"],
        ["check", "--since", "yesterday-ish"],
        ["check", "--root", "/no/such/dir"],
        ["bogus"],
    ],
)
def test_usage_errors_exit_2(args: List[str]) -> None:
    assert runner.invoke(app, args).exit_code == 2


def test_internal_failure_exits_3_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import gd_doctor.pipeline

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(gd_doctor.pipeline, "run_checks", explode)
    with pytest.raises(SystemExit) as exc:
        main(["check", "--root", str(_root(tmp_path))])
    assert exc.value.code == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and "Traceback" not in err


def test_real_subprocess_run_on_a_root(tmp_path: Path) -> None:
    proc = _python(["-m", "gd_doctor", "check", "--root", str(_root(tmp_path)), "--format", "json"])
    assert proc.returncode in (0, 1), proc.stderr
    validate_report(proc.stdout)
    assert "Traceback" not in proc.stderr


def test_ascii_only_stdout_gets_ascii_symbols(tmp_path: Path) -> None:
    proc = _python(
        ["-m", "gd_doctor", "check", "--root", str(_root(tmp_path))], PYTHONIOENCODING="ascii"
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stdout.isascii()
    assert proc.stdout.split()[1] in ("HEALTHY", "UNHEALTHY", "UNKNOWN")


def test_cli_works_without_rich() -> None:
    code = (
        "import sys; sys.modules['rich'] = None; from gd_doctor.cli import main; main(sys.argv[1:])"
    )
    helped = _python(["-c", code, "check", "--help"])
    assert helped.returncode == 0, helped.stderr
    assert "--format" in helped.stdout
    usage = _python(["-c", code, "check", "--no-such-option"])
    assert usage.returncode == 2
    assert "No such option" in usage.stderr


@pytest.mark.parametrize(
    "args, option, words",
    [
        (["--timeout", "nan"], "--timeout", "finite"),
        (["--timeout", "inf"], "--timeout", "finite"),
        (["--timeout", "-1"], "--timeout", "greater than 0"),
        (["--since", "99999999999d"], "--since", "at most 3650 days"),
        (["--since", "0h"], "--since", "more than 0"),
        (["--since", "1800-01-01T00:00:00Z"], "--since", "more than 3650 days ago"),
        (["--since", "9" * 5000], "--since", "too long"),
        (["--output", "/dev/null"], "--output", "not a regular file"),
        (["--output", "/nonexistent-dir/report.json"], "--output", "does not exist"),
    ],
)
def test_nonsense_options_are_refused_before_any_check(
    tmp_path: Path, args: List[str], option: str, words: str
) -> None:
    res = runner.invoke(app, ["check", "--root", str(_root(tmp_path)), *args])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert option in out and words in out, out


def test_output_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    res = _python(["-m", "gd_doctor", "check", "--root", str(_root(tmp_path)), "-o", str(fifo)])
    assert res.returncode == 2 and "not a regular file" in res.stderr


def test_output_file_is_private(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    res = runner.invoke(app, ["check", "--root", str(_root(tmp_path)), "-o", str(out)])
    assert res.exit_code in (0, 1), res.output
    assert (out.stat().st_mode & 0o777) == 0o600
    validate_report(out.read_text())


def test_version_needs_no_cli_framework() -> None:
    """``gd-doctor --version`` (the entry point) answers without importing typer or click."""
    code = (
        "import sys\n"
        "from gd_doctor.entry import main\n"
        "try:\n    main(['--version'])\n"
        "except SystemExit as e:\n    assert e.code == 0\n"
        "print(sorted(m for m in ('typer', 'click', 'requests', 'psutil') if m in sys.modules))\n"
    )
    res = _python(["-c", code])
    assert res.returncode == 0, res.stderr
    first, last = res.stdout.splitlines()[0], res.stdout.splitlines()[-1]
    assert first == f"gd-doctor {__version__} (knowledge base {knowledge_date()})"
    assert last == "[]"


def test_entry_point_hands_everything_else_to_the_cli() -> None:
    res = _python(["-m", "gd_doctor", "checks"])
    assert res.returncode == 0 and "platform.os" in res.stdout
