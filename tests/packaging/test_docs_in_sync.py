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


@pytest.mark.parametrize("command", ["check", "checks", "explain"])
def test_man_page_documents_every_option(command: str) -> None:
    documented = set(re.findall(r"\\-\\-([a-z][a-z\\-]*)", MAN))
    documented = {"--" + o.replace("\\-", "-") for o in documented}
    assert _long_options(command) - documented == set()


def _completion_var(name: str) -> Set[str]:
    m = re.search(rf'local {name}="([^"]*)"', COMPLETION)
    assert m, f"no {name} in the completion"
    return set(m.group(1).split())


@pytest.mark.parametrize("command", ["check", "checks", "explain"])
def test_completion_offers_every_option(command: str) -> None:
    # the words completed after "gd-doctor <command>", from its case branch
    m = re.search(rf"\n\s*{command}\)\s*\n(.*?);;", COMPLETION, re.S)
    assert m, f"no completion branch for {command}"
    branch = m.group(1)
    offered = set(re.findall(r"--[a-z][a-z-]*", branch))
    if "$check_opts" in branch:
        offered |= _completion_var("check_opts")
    assert _long_options(command) - offered == set()


def test_bare_gd_doctor_completes_the_options_of_check() -> None:
    # bare gd-doctor means gd-doctor check, so its options complete at the top level too
    top = COMPLETION.split("*)", 1)[1]
    assert "$check_opts" in top.split(";;")[0]


def test_completion_offers_every_check_id_category_and_issue_id() -> None:
    from gd_doctor.checks import ALL_CHECKS
    from gd_doctor.knowledge import all_coverage_issues

    assert _completion_var("check_ids") == {c.id for c in ALL_CHECKS}
    assert _completion_var("categories") == {c.category for c in ALL_CHECKS}
    assert _completion_var("issue_ids") == set(all_coverage_issues())  # both tables


def _man_paragraph(option: str) -> str:
    """The .TP paragraph of the man page that documents ``option``."""
    escaped = option.replace("-", "\\-")
    for para in MAN.split(".TP\n"):
        head = para.split("\n", 1)[0]
        if re.search(rf"{re.escape(escaped)}(?![a-z\\-])", head):
            return para
    raise AssertionError(f"{option} has no paragraph in the man page")


def test_man_page_gives_every_option_of_check_its_default() -> None:
    for option in sorted(_long_options("check") - {"--help"}):
        para = _man_paragraph(option)
        assert re.search(r"\[[^\]]+\]\s*$", para.split(".SH")[0].strip()), (option, para)


def test_man_page_names_the_files_the_run_command_document_writes() -> None:
    run = (TOP / "packaging" / "ssm" / "run.sh").read_text(encoding="utf-8")
    m = re.search(r"GD_DOCTOR_REPORT=\$\{GD_DOCTOR_REPORT:-([^}]+)\}", run)
    assert m, "run.sh no longer names its report file"
    files = MAN.split(".SH FILES", 1)[1].split(".SH ", 1)[0]
    assert m.group(1).replace("-", "\\-") in files or m.group(1) in files
    install = (TOP / "packaging" / "ssm" / "install.sh").read_text(encoding="utf-8")
    tmp = re.search(r"mktemp -d (/tmp/[^ )]+)", install)
    assert tmp, "install.sh no longer makes its temporary directory with mktemp"
    assert tmp.group(1).replace("-", "\\-") in files or tmp.group(1) in files


def test_man_page_states_the_exit_codes_of_the_cli() -> None:
    from gd_doctor.cli import EXIT_CODES_HELP

    for code in ("0", "1", "2", "3"):
        assert f".B {code}\n" in MAN
    assert "unknown" in MAN and "unknown" in EXIT_CODES_HELP


def _vendored(name: str) -> str:
    lock = (TOP / "packaging" / "vendor.lock").read_text(encoding="utf-8")
    m = re.search(rf"^{re.escape(name)}==([0-9][^ \\]*)", lock, re.M)
    assert m, f"{name} is not in vendor.lock"
    return m.group(1)


def _minor(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) + 1}"


def test_pip_install_resolves_the_vendored_typer_and_click() -> None:
    # pip install . must give the behaviour of the packages: the same typer (and, on the Python
    # 3.9 floor that the vendored wheels target, the same click), within their minor version.
    py = (TOP / "pyproject.toml").read_text(encoding="utf-8")
    typer_v, click_v = _vendored("typer"), _vendored("click")
    assert f'"typer>={typer_v},<{_minor(typer_v)}"' in py
    assert f"\"click>={click_v},<{_minor(click_v)}; python_version < '3.10'\"" in py


def test_readme_first_command_works_as_printed_on_stock_distributions() -> None:
    readme = (TOP / "README.md").read_text(encoding="utf-8")
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    first = block.splitlines()[0]
    # Debian and Ubuntu ship python3 without venv/ensurepip: the command installs python3-venv
    # there (and only there), after refreshing the package lists of a fresh instance.
    assert "apt-get update" in first and "apt-get install -y" in first and "python3-venv" in first
    assert "command -v apt-get" in first
    assert "python3 -m venv" in first and re.search(r"pip install (-q )?\.", first)
    # It says gd-doctor needs root, so it runs it with sudo.
    assert "sudo /tmp/gd-doctor/bin/gd-doctor" in first
