"""Inputs that make no sense are refused with exit 2 and a message naming the option, before
any check runs; near misses get a suggestion; bare ``gd-doctor`` takes check's options."""

from __future__ import annotations

import io
from pathlib import Path
from typing import List

import pytest
from typer.testing import CliRunner

import gd_doctor.pipeline
from gd_doctor.cli import _use_color, app
from tests.hostkit import make_host, validate_report, write_tree

runner = CliRunner()


def _root(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "root",
        {
            "/etc/os-release": 'NAME="Amazon Linux"\nID="amzn"\nVERSION_ID="2023"\n'
            'PRETTY_NAME="Amazon Linux 2023"\n',
            "/proc/sys/kernel/osrelease": "6.1.112-124.190.amzn2023.x86_64\n",
        },
    )


@pytest.fixture
def no_checks_may_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal must come before any check: running one would fail the test (exit 3)."""

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a check ran although the input was refused")

    monkeypatch.setattr(gd_doctor.pipeline, "run_checks", explode)


REFUSALS = [
    (["--only", "platform.os", "--skip", "platform"], "--only/--skip", "leave no check to run"),
    (["--skip", "platform,imds,agent,ssm,network"], "--only/--skip", "leave no check to run"),
    (["--only", "platfrom"], "--only", "did you mean 'platform'"),
    (["--skip", "agent.unt"], "--skip", "did you mean 'agent.unit'"),
    (["--only", "kettle"], "--only", "neither a check id nor a category"),
    (["--output", "json"], "--output", "did you mean --format json?"),
    (["--output", "ssm"], "--output", "did you mean --format ssm?"),
    (["-o", "TEXT"], "--output", "did you mean --format text?"),
    (["--output", "-", "--format", "text"], "--output", "cannot be combined with --format text"),
    (["--region", "us-east-1x"], "--region", "not a Region name"),
    (["--region", "US-EAST-1"], "--region", "not a Region name"),
    (["--region", "us-east-1; rm -rf /"], "--region", "not a Region name"),
    (["--region", ""], "--region", "not a Region name"),
    (["--imds-endpoint", "169.254.169.254"], "--imds-endpoint", "needs a scheme"),
    (["--imds-endpoint", "ftp://169.254.169.254"], "--imds-endpoint", "http:// or https://"),
    (["--imds-endpoint", "http://169.254.169.254:99999"], "--imds-endpoint", "invalid port"),
    (["--imds-endpoint", "http://u:p@169.254.169.254"], "--imds-endpoint", "credentials"),
    (["--imds-endpoint", "http://169.254.169.254/latest?x"], "--imds-endpoint", "base URL"),
    (["--imds-endpoint", "http://a b"], "--imds-endpoint", "not a URL"),
    (["--endpoint-url", "https://"], "--endpoint-url", "no host name"),
    (["--endpoint-url", "gopher://guardduty-data"], "--endpoint-url", "http:// or https://"),
    (["--endpoint-url", "host:notaport"], "--endpoint-url", "invalid port"),
    (["--timeout", "nan"], "--timeout", "finite"),
    (["--since", "yesterday"], "--since", "use a duration"),
    # the long s folds to "s" under a case-blind regex: it once crashed the run (exit 3)
    (["--since", "24\u017f"], "--since", "use a duration"),
    (["--since", "5.h"], "--since", "use a duration"),
]


@pytest.mark.parametrize("args, option, words", REFUSALS, ids=[" ".join(r[0]) for r in REFUSALS])
def test_nonsense_is_refused_with_exit_2_naming_the_option(
    tmp_path: Path, no_checks_may_run: None, args: List[str], option: str, words: str
) -> None:
    res = runner.invoke(app, ["check", "--root", str(_root(tmp_path)), *args])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert f"Invalid value for {option}" in out and words in out, out


def test_root_without_etc_is_refused_unless_forced(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    res = runner.invoke(app, ["check", "--root", str(bare)])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "Invalid value for --root" in out and "no etc/" in out and "--force" in out
    forced = runner.invoke(app, ["check", "--root", str(bare), "--force", "--format", "json"])
    assert forced.exit_code in (0, 1), forced.output
    assert "no etc/ directory" in forced.output  # still warned
    assert '"verdict"' in forced.output


def test_check_ids_and_categories_are_case_insensitive(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["check", "--root", str(_root(tmp_path)), "--only", "PLATFORM.Kernel", "-f", "json"]
    )
    assert res.exit_code in (0, 1), res.output
    doc = validate_report(res.stdout)
    ran = {c["id"] for c in doc["checks"]}
    assert "platform.kernel" in ran and not any(c.startswith("agent.") for c in ran)


def test_output_dash_is_the_json_report_on_stdout(tmp_path: Path) -> None:
    res = runner.invoke(app, ["check", "--root", str(_root(tmp_path)), "--output", "-"])
    assert res.exit_code in (0, 1), res.output
    doc = validate_report(res.stdout)
    assert doc["host"]["live"] is False
    assert not (Path.cwd() / "-").exists()


@pytest.mark.parametrize("args", [["--format", "json"], ["-f", "json", "-v"]])
def test_options_of_check_work_at_the_top_level(tmp_path: Path, args: List[str]) -> None:
    res = runner.invoke(app, [*args, "--root", str(_root(tmp_path))])
    assert res.exit_code in (0, 1), res.output
    validate_report(res.stdout)


def test_bare_verbose_lists_every_check_with_fact_bullets(tmp_path: Path) -> None:
    res = runner.invoke(app, ["-v", "--root", str(_root(tmp_path))])
    assert res.exit_code in (0, 1), res.output
    assert "platform.kernel" in res.stdout and "• release: 6.1.112" in res.stdout
    assert "data: {" not in res.stdout


def test_top_level_help_and_version_stay_top_level() -> None:
    helped = runner.invoke(app, ["--help"])
    assert helped.exit_code == 0 and "Commands:" in helped.stdout
    assert "Examples:" in helped.stdout and "gd-doctor explain --list" in helped.stdout
    # whole one-line descriptions: no command's summary is cut with "..."
    commands = helped.stdout.split("Commands:")[1].split("Examples:")[0]
    assert "..." not in commands, commands


@pytest.mark.parametrize(
    "value, tty, expected",
    [
        ("", True, True),
        ("1", True, False),
        ("0", True, False),
        (None, True, True),
        (None, False, False),
    ],
)
def test_no_color_set_but_empty_keeps_colour(
    monkeypatch: pytest.MonkeyPatch, value: object, tty: bool, expected: bool
) -> None:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    monkeypatch.delenv("TERM", raising=False)
    if value is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", str(value))
    monkeypatch.setattr("sys.stdout", Stream())
    assert _use_color(False) is expected


def test_region_contradicting_the_identity_document_is_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gd_doctor.host import Host
    from gd_doctor.host.imds import HttpImds
    from tests.fakes.imds import FakeImds

    with FakeImds(tokens="required") as fake:
        host = make_host(_root(tmp_path), imds=HttpImds(fake.url), live=True)
        monkeypatch.setattr(Host, "live_host", classmethod(lambda cls, settings: host))
        res = runner.invoke(app, ["check", "--region", "eu-west-1", "--format", "json"])
        same = runner.invoke(app, ["check", "--region", "us-east-1", "--format", "json"])
    assert res.exit_code in (0, 1), res.output
    out = " ".join(res.output.split())
    assert "warning: --region eu-west-1 contradicts the instance identity document" in out
    assert "says us-east-1" in out
    assert "contradicts" not in same.output


def test_ssm_output_never_points_to_a_report_file_that_was_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gd_doctor.cli

    out = tmp_path / "report.json"
    monkeypatch.setattr(gd_doctor.cli, "_write_report_file", lambda path, text: "disk full")
    res = runner.invoke(
        app, ["check", "--root", str(_root(tmp_path)), "--format", "ssm", "-o", str(out)]
    )
    assert res.exit_code == 3
    assert f"full report: {out}" not in res.output
    assert "full report: run with --output FILE (JSON)" in res.output
    assert "gd-doctor: disk full" in res.output
    # click 8.1's runner mixes stderr into the output; the SSM first line is
    # the first line that is not the write error.
    first = next(line for line in res.output.splitlines() if "disk full" not in line)
    assert first.startswith("gd-doctor: ") and len(first.split()) == 7, first
