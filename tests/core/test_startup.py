"""What gd-doctor imports: no HTTP library unless a check needs the network, no CLI framework
for --version. Each case runs the real command in a subprocess and lists ``sys.modules`` at
exit; speed itself is shown by benchmarks/bench.py, never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "tests" / "fixtures" / "roots" / "al2023-x86_64" / "root"
HTTP_MODULES = ("requests", "urllib3", "http.client", "ssl", "urllib.request")

# Runs `python -m gd_doctor ARGS` and writes the module names to the file named by argv[1].
WRAPPER = """
import atexit, json, runpy, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["gd-doctor", *sys.argv[2:]]
runpy.run_module("gd_doctor", run_name="__main__")
"""


def _modules(tmp_path: Path, args: Sequence[str]) -> List[str]:
    out = tmp_path / "modules.json"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
        # a live run must not reach IMDS even if a check slipped past --skip
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9",
    }
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return list(json.loads(out.read_text()))


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--skip", "imds,network", "--format", "json", "--timeout", "30"],
        ["check", "--skip", "imds,network", "--root", str(ROOT), "--format", "json"],
        ["check", "--root", str(ROOT), "--format", "json"],
    ],
    ids=["live", "root-skipping", "root"],
)
def test_a_run_without_network_checks_imports_no_http_library(
    tmp_path: Path, args: List[str]
) -> None:
    modules = _modules(tmp_path, args)
    assert "gd_doctor.pipeline" in modules  # the run really ran
    assert [m for m in HTTP_MODULES if m in modules] == []


# What a live run has no use for: the journal's Python wrapper (the C reader is read directly;
# the wrapper loads logging), ctypes (openat2 for a root other than "/"),
# the bundle and fleet modules.
LIVE_UNNEEDED = ("systemd.journal", "logging", "ctypes", "gd_doctor.bundle", "gd_doctor.fleet")


def test_a_live_run_loads_nothing_it_does_not_use(tmp_path: Path) -> None:
    modules = _modules(tmp_path, ["check", "--skip", "imds,network", "--format", "json"])
    assert "gd_doctor.pipeline" in modules
    assert [m for m in LIVE_UNNEEDED if m in modules] == []


def test_version_imports_no_cli_framework_nor_checks(tmp_path: Path) -> None:
    modules = _modules(tmp_path, ["--version"])
    assert "gd_doctor.entry" in modules
    unwanted = ("typer", "click", "gd_doctor.cli", "gd_doctor.checks", *HTTP_MODULES)
    assert [m for m in unwanted if m in modules] == []


def test_version_names_the_knowledge_base_date_the_reports_carry() -> None:
    # the newest date of every dated knowledge file, findings/ included: a file updated alone
    # (bottlerocket.json, findings/time.json) moves the date of --version and of the reports
    import json

    import gd_doctor
    from gd_doctor.knowledge import HERE, knowledge_date

    dated = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(HERE.rglob("*.json"))]
    dates = [str(d["date"]) for d in dated if isinstance(d, dict) and "date" in d]
    assert len(dates) >= 15
    assert gd_doctor.knowledge_date() == knowledge_date() == max(dates)
