"""An invocation makes only the click commands it needs (gd_doctor/cli/lazy.py), and what it
makes is what typer's own all-at-once conversion makes.

These tests hold the typer behaviour lazy.py relies on (typer is pinned; a typer upgrade that
changes it fails here): a one-command typer app converts to the same click command as that
command inside a group of several, a sub-app the same as inside its parent, and the group's
class receives its commands in click's ``Group.commands`` mapping.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import click
import pytest
import typer
from typer.testing import CliRunner

import gd_doctor.cli
from gd_doctor.cli import app, commands
from gd_doctor.cli.click_text import DefaultToCheck
from gd_doctor.cli.lazy import LazyCommands

TOP = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _eager_app() -> typer.Typer:
    """gd-doctor's app as typer alone builds it: every command registered on the app itself,
    all converted at once by ``typer.main.get_command``."""
    eager = copy.copy(app)
    eager.info = copy.copy(app.info)
    eager.info.cls = DefaultToCheck
    eager.registered_commands = []
    eager.registered_groups = []
    for register in commands.declared.values():
        register(eager)
    return eager


def _groups() -> Iterator[click.Group]:
    lazy = typer.main.get_command(app)
    eager = typer.main.get_command(_eager_app())
    assert isinstance(lazy, click.Group) and isinstance(eager, click.Group)
    assert isinstance(lazy.commands, LazyCommands)
    assert not isinstance(eager.commands, LazyCommands)
    yield lazy
    yield eager


def _info(group: click.Group) -> Dict[str, Any]:
    with click.Context(group, info_name="gd-doctor") as ctx:
        return group.to_info_dict(ctx)


def test_lazy_commands_are_those_typer_makes_all_at_once() -> None:
    lazy, eager = _groups()
    assert list(lazy.commands) == list(eager.commands)
    assert list(eager.commands) == ["check", "checks", "explain", "bundle", "timeline", "fleet"]
    # every command, option, argument, help text and sub-command, as click describes them
    assert _info(lazy) == _info(eager)


def _all_help_runs() -> List[List[str]]:
    eager = typer.main.get_command(_eager_app())
    assert isinstance(eager, click.Group)
    runs = [["--help"], ["chek"], ["fleet", "sumary"], ["fleet"]]
    for name, command in eager.commands.items():
        runs.append([name, "--help"])
        if isinstance(command, click.Group):
            runs.extend([name, sub, "--help"] for sub in command.commands)
    return runs


@pytest.mark.parametrize("args", _all_help_runs(), ids=" ".join)
def test_help_and_errors_are_those_of_the_eager_app(args: List[str]) -> None:
    lazy = runner.invoke(app, args, prog_name="gd-doctor", env={"COLUMNS": "80"})
    eager = runner.invoke(_eager_app(), args, prog_name="gd-doctor", env={"COLUMNS": "80"})
    assert (lazy.output, lazy.exit_code) == (eager.output, eager.exit_code)
    assert lazy.output.strip()  # the help or the error itself, not an empty pass


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """The names of the commands an invocation makes, in order."""
    names: List[str] = []
    real = commands.make

    def make(name: str) -> click.Command:
        names.append(name)
        return real(name)

    monkeypatch.setattr(commands, "make", make)
    return names


@pytest.mark.parametrize(
    "args, expected",
    [
        (["checks"], ["checks"]),
        (["check", "--help"], ["check"]),
        (["-v", "--help"], ["check"]),  # bare gd-doctor's options are check's
        (["fleet", "--help"], ["fleet"]),
        (["chek"], []),  # the suggestion needs the names only
        (["--version"], []),
        (["--help"], ["check", "checks", "explain", "bundle", "timeline", "fleet"]),
    ],
    ids=" ".join,
)
def test_an_invocation_makes_only_the_commands_it_needs(
    made: List[str], args: List[str], expected: List[str]
) -> None:
    res = runner.invoke(app, args, prog_name="gd-doctor")
    assert res.exit_code in (0, 2), res.output
    assert made == expected


def test_a_check_run_makes_check_alone(
    made: List[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: List[Dict[str, Any]] = []
    monkeypatch.setattr(gd_doctor.cli, "run_check", lambda **kw: seen.append(kw) or 0)
    res = runner.invoke(app, ["--format", "json", "--skip", "imds,network"])
    assert res.exit_code == 0, res.output
    assert made == ["check"]
    assert seen and seen[0]["skip"] == ["imds,network"]


def test_a_command_is_made_once_per_group() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group) and isinstance(group.commands, LazyCommands)
    first = group.commands["checks"]
    assert group.commands.get("checks") is first and group.commands.made() == ["checks"]
    assert "fleet" in group.commands and group.commands.made() == ["checks"]
    assert group.commands.get("nope") is None and "nope" not in group.commands


def test_a_check_run_imports_neither_fleet_nor_bundle_commands() -> None:
    code = (
        "import sys\n"
        "from gd_doctor.cli import main\n"
        "try:\n"
        "    main(['check', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m in ('gd_doctor.fleet.command', 'gd_doctor.cli.bundle_commands')"
        " if m in sys.modules]\n"
        "print('LOADED', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=TOP, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout, done.stdout
