"""Help texts and usage errors are the same whatever click the install got (issue 12 section 6).

The packages vendor click 8.1.8 (Python 3.9); ``pip install .`` on Python >= 3.10 gets click
>= 8.2.1. This test compares the real command's output with one golden text that every click
version must print; the Python 3.9 chroot run (tests/packaging/test_install.py
``test_suite_on_python39``) runs it under click 8.1.8, the development environment under the
newest click. Regenerate after a deliberate change of a help text (and review the diff):

    GD_DOCTOR_UPDATE_GOLDEN=1 python -m pytest tests/core/test_cli_text.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

TOP = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden" / "cli.txt"
UPDATE = os.environ.get("GD_DOCTOR_UPDATE_GOLDEN") == "1"

# What differed between click 8.1.8 and click 8.2 to 8.5 before gd-doctor worded it itself: the
# usage line and the hint under an error, unknown commands and options with their suggestions,
# an argument's help.
RUNS: List[List[str]] = [
    ["--help"],
    ["check", "--help"],
    ["explain", "--help"],
    ["fleet", "summary", "--help"],
    ["chek"],
    ["fleet", "sumary"],
    ["check", "--verbos"],
    ["--verbos"],
    ["check", "--only", "agent.unti"],
    ["check", "--format", "yaml"],
    ["explain"],
]


def _run(args: List[str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TYPER_", "COLUMNS"))}
    # this checkout first; a PYTHONPATH that brings another click stays behind it
    path = os.pathsep.join(p for p in (str(TOP), os.environ.get("PYTHONPATH")) if p)
    env.update(COLUMNS="80", LC_ALL="C.UTF-8", PYTHONPATH=path, PYTHONIOENCODING="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "gd_doctor", *args],
        cwd=TOP,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    return f"$ gd-doctor {' '.join(args)}\n{done.stdout}{done.stderr}[exit {done.returncode}]\n"


def test_help_and_usage_errors_match_the_text_every_click_prints() -> None:
    text = "\n".join(_run(args) for args in RUNS)
    if UPDATE or not GOLDEN.exists():
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "help or usage text changed: review, then GD_DOCTOR_UPDATE_GOLDEN=1 (see this module)"
    )


def test_one_suggestion_per_error_in_gd_doctors_words() -> None:
    text = GOLDEN.read_text(encoding="utf-8")
    assert "Error: No such command 'chek' (did you mean 'check' or 'checks'?)." in text
    assert "Error: No such option --verbos (did you mean --verbose?)." in text
    assert text.count("Did you mean") == 0  # neither click's nor typer's own suggestion
    assert "Try 'gd-doctor -h'" not in text and "Try 'gd-doctor --help' for help." in text
    assert "Usage: gd-doctor [OPTIONS] [COMMAND] [ARGS]..." in text
    assert "Positional arguments:" not in text  # click 8.5's section beside typer's
    explain = text[text.index("$ gd-doctor explain --help") :]
    assert "[TEXT]...  A row number or id as reports print them" in explain
