"""The man page and the bash completion name every option the CLI has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Set

import click
import pytest
import typer

from gd_doctor.cli import app

TOP = Path(__file__).resolve().parents[2]
MAN = (TOP / "packaging" / "gd-doctor.1").read_text(encoding="utf-8")
COMPLETION = (TOP / "packaging" / "gd-doctor.bash-completion").read_text(encoding="utf-8")


def _long_options(command: str) -> Set[str]:
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    cmd = group.commands[command]
    return {o for p in cmd.params for o in p.opts if o.startswith("--")}


@pytest.mark.parametrize("command", ["check", "checks"])
def test_man_page_documents_every_option(command: str) -> None:
    documented = set(re.findall(r"\\-\\-([a-z][a-z\\-]*)", MAN))
    documented = {"--" + o.replace("\\-", "-") for o in documented}
    assert _long_options(command) - documented == set()


@pytest.mark.parametrize("command", ["check", "checks"])
def test_completion_offers_every_option(command: str) -> None:
    # the words completed after "gd-doctor <command>", from its case branch
    m = re.search(rf"\n\s*{command}\)\s*\n\s*opts=\"([^\"]*)\"", COMPLETION)
    assert m, f"no completion branch for {command}"
    offered = set(m.group(1).split())
    assert _long_options(command) - offered == set()


def test_man_page_states_the_exit_codes_of_the_cli() -> None:
    from gd_doctor.cli import EXIT_CODES_HELP

    for code in ("0", "1", "2", "3"):
        assert f".B {code}\n" in MAN
    assert "unknown" in MAN and "unknown" in EXIT_CODES_HELP
