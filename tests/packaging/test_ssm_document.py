"""The Run Command document: structure, parameters, its shell, and how its steps behave."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.packaging.conftest import PACKAGING

SSM = PACKAGING / "ssm"
DOC_PATH = SSM / "gd-doctor-run.json"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DOC_PATH.read_text(encoding="utf-8"))
    return data


def step(doc: dict[str, Any], name: str) -> dict[str, Any]:
    for s in doc["mainSteps"]:
        if s["name"] == name:
            return s  # type: ignore[no-any-return]
    raise AssertionError(f"no step {name}")


def test_document_is_generated_from_the_scripts() -> None:
    p = subprocess.run(
        [sys.executable, str(SSM / "make_document.py"), "--check"], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr


def test_structure(doc: dict[str, Any]) -> None:
    assert doc["schemaVersion"] == "2.2"
    assert set(doc) == {"schemaVersion", "description", "parameters", "mainSteps"}
    names = [s["name"] for s in doc["mainSteps"]]
    assert names == ["installGdDoctor", "runGdDoctor", "makeBundle", "publishReport"]
    for s in doc["mainSteps"]:
        assert s["action"] == "aws:runShellScript"
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", s["name"])
        assert s["precondition"] == {"StringEquals": ["platformType", "Linux"]}
        assert isinstance(s["inputs"]["runCommand"], list)
        assert all(isinstance(line, str) for line in s["inputs"]["runCommand"])
        assert 0 < int(s["inputs"]["timeoutSeconds"]) <= 3600
    assert step(doc, "publishReport")["inputs"].get("finallyStep") is True
    # gd-doctor's own time budget always fits inside the step's timeout.
    max_budget = 600
    assert int(step(doc, "runGdDoctor")["inputs"]["timeoutSeconds"]) > max_budget


def test_parameters(doc: dict[str, Any]) -> None:
    params = doc["parameters"]
    switches = {"inventory", "compliance", "emf", "failOnUnhealthy"}
    bundle = {"bundle", "bundleUpload"}
    assert set(params) == {"format", "timeout", "extraArguments", "installFrom"} | switches | bundle
    for name in switches:  # every fleet output, and failing on unhealthy, is off by default
        assert params[name]["default"] == "false", name
        assert params[name]["allowedValues"] == ["false", "true"], name
    assert params["bundle"]["default"] == "never"
    for name, p in params.items():
        assert p["type"] == "String", name
        assert p["description"], name
        assert p["interpolationType"] == "ENV_VAR", name
        if "allowedPattern" in p:
            assert re.fullmatch(p["allowedPattern"], p["default"]), name
    assert params["format"]["default"] == "ssm"
    assert set(params["format"]["allowedValues"]) == {"ssm", "text", "json"}
    # every parameter is read from SSM_<name>, with the {{ }} fallback for old agents
    text = json.dumps(doc["mainSteps"])
    for name in params:
        assert f"SSM_{name}" in text
        assert "{{ " + name + " }}" in text


@pytest.mark.parametrize(
    ("param", "value", "ok"),
    [
        ("timeout", "120", True),
        ("timeout", "600", True),
        ("timeout", "0", False),
        ("timeout", "601", False),
        ("timeout", "12;id", False),
        ("extraArguments", "--since 6h --verbose", True),
        ("extraArguments", "--only agent.service --skip network", True),
        ("extraArguments", "; rm -rf /", False),
        ("extraArguments", "$(id)", False),
        ("extraArguments", "`id`", False),
        ("extraArguments", "a' b", False),
        ("extraArguments", "x\nid", False),
        ("installFrom", "", True),
        ("installFrom", "s3://my-bucket/gd-doctor/0.1.0/", True),
        (
            "installFrom",
            "https://b.s3.amazonaws.com/gd-doctor_0.1.0_amd64.deb?X-Amz-A=1&b=%2F",
            True,
        ),
        ("installFrom", "http://example.com/x.deb", False),
        ("installFrom", "s3://b/x';id;'", False),
        ("installFrom", "s3://b/x y", False),
    ],
)
def test_allowed_patterns(doc: dict[str, Any], param: str, value: str, ok: bool) -> None:
    # SSM matches allowedPattern against the whole value (Java regex, as re.search with ^...$).
    pattern = doc["parameters"][param]["allowedPattern"]
    assert (re.search(pattern, value) is not None and "\n" not in value) == ok


def step_script(doc: dict[str, Any], name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.sh"
    path.write_text("#!/bin/sh\n" + "\n".join(step(doc, name)["inputs"]["runCommand"]) + "\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("name", ["installGdDoctor", "runGdDoctor", "publishReport"])
def test_shellcheck_step(doc: dict[str, Any], name: str, tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (packaging/ci.sh installs it)")
    script = step_script(doc, name, tmp_path)
    p = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


SWITCHES_OFF = {"SSM_inventory": "false", "SSM_compliance": "false", "SSM_emf": "false"}

FAKE_GD_DOCTOR = """#!/bin/sh
# stands in for /usr/bin/gd-doctor: records its arguments, writes a report, exits with $FAKE_RC
printf '%s\\n' "$@" > "$FAKE_ARGS"
out=""
while [ $# -gt 0 ]; do
    [ "$1" = --output ] && out=$2
    shift
done
[ -n "$out" ] && printf '{"verdict": "problems", "findings": []}\\n' > "$out"
echo "UNHEALTHY: agent not running (fake)"
exit "$FAKE_RC"
"""


def basic_tools(tmp_path: Path) -> Path:
    """A PATH directory with what the steps use from coreutils and sed, and nothing else."""
    bindir = tmp_path / "basic-bin"
    bindir.mkdir(exist_ok=True)
    for tool in ["mkdir", "dirname", "chmod", "rm", "sed", "pwd", "cat"]:
        real = shutil.which(tool)
        assert real, tool
        (bindir / tool).symlink_to(real)
    return bindir


def run_step(
    doc: dict[str, Any], name: str, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    script = step_script(doc, name, tmp_path)
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    return subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True, env=full)


@pytest.mark.parametrize(
    ("rc", "fail_on_unhealthy", "step_rc"),
    [
        ("0", "false", 0),
        ("1", "false", 0),  # problems found: not an error for --max-errors by default
        ("1", "true", 1),
        ("0", "true", 0),
        ("2", "false", 2),
        ("3", "false", 3),  # gd-doctor's own failure always fails the invocation
        ("3", "true", 3),
        ("130", "false", 130),
    ],
)
def test_run_step_exit_status_policy(
    doc: dict[str, Any], tmp_path: Path, rc: str, fail_on_unhealthy: str, step_rc: int
) -> None:
    fake = tmp_path / "gd-doctor"
    fake.write_text(FAKE_GD_DOCTOR)
    fake.chmod(0o755)
    report = tmp_path / "reports" / "ssm-report.json"
    args = tmp_path / "args"
    (tmp_path / "reports").mkdir()
    report.write_text("stale report from an earlier run")
    env = {
        "GD_DOCTOR": str(fake),
        "GD_DOCTOR_REPORT": str(report),
        "FAKE_RC": rc,
        "FAKE_ARGS": str(args),
        "SSM_format": "ssm",
        "SSM_timeout": "90",
        "SSM_extraArguments": "--since 6h --only *",
        "SSM_failOnUnhealthy": fail_on_unhealthy,
        **SWITCHES_OFF,
    }
    p = run_step(doc, "runGdDoctor", tmp_path, **env)
    assert p.returncode == step_rc
    assert p.stdout.startswith("UNHEALTHY:")
    assert args.read_text().splitlines() == [
        "check", "--format", "ssm", "--timeout", "90", "--output", str(report),
        "--since", "6h", "--only", "*",
    ]  # fmt: skip
    published = run_step(doc, "publishReport", tmp_path, GD_DOCTOR_REPORT=str(report))
    assert published.returncode == 0
    assert json.loads(published.stdout)["verdict"] == "problems"


@pytest.mark.parametrize(
    ("switch", "flags"),
    [("inventory", ["--inventory"]), ("emf", ["--emf"]), ("compliance", ["--compliance", "ITEMS"])],
)
def test_run_step_switches_turn_on_the_outputs(
    doc: dict[str, Any], tmp_path: Path, switch: str, flags: list[str]
) -> None:
    fake = tmp_path / "gd-doctor"
    fake.write_text(FAKE_GD_DOCTOR)
    fake.chmod(0o755)
    report, items, args = (
        tmp_path / "r" / "report.json",
        tmp_path / "c" / "items.json",
        tmp_path / "a",
    )
    env = {
        "GD_DOCTOR": str(fake), "GD_DOCTOR_REPORT": str(report), "GD_DOCTOR_ITEMS": str(items),
        "FAKE_RC": "0", "FAKE_ARGS": str(args), "SSM_format": "json", "SSM_timeout": "60",
        "SSM_extraArguments": "", "SSM_failOnUnhealthy": "false",
        **SWITCHES_OFF, f"SSM_{switch}": "true",
        "PATH": str(basic_tools(tmp_path)),  # no aws: the upload is skipped, and said so
    }  # fmt: skip
    p = run_step(doc, "runGdDoctor", tmp_path, **env)
    assert p.returncode == 0, p.stderr
    want = ["check", "--format", "json", "--timeout", "60", "--output", str(report)]
    assert args.read_text().splitlines() == want + [
        str(items) if f == "ITEMS" else f for f in flags
    ]
    assert (items.parent.stat().st_mode & 0o777) == 0o700


def test_run_step_without_gd_doctor(doc: dict[str, Any], tmp_path: Path) -> None:
    report = tmp_path / "r" / "ssm-report.json"
    p = run_step(
        doc, "runGdDoctor", tmp_path,
        GD_DOCTOR=str(tmp_path / "missing"), GD_DOCTOR_REPORT=str(report),
        SSM_format="ssm", SSM_timeout="60", SSM_extraArguments="", SSM_failOnUnhealthy="false",
        **SWITCHES_OFF,
    )  # fmt: skip
    assert p.returncode == 3
    assert "not installed" in p.stdout.splitlines()[0]
    published = run_step(doc, "publishReport", tmp_path, GD_DOCTOR_REPORT=str(report))
    assert published.returncode == 0 and published.stdout == ""
    assert "no report" in published.stderr


def test_install_step_skips_when_empty(doc: dict[str, Any], tmp_path: Path) -> None:
    p = run_step(doc, "installGdDoctor", tmp_path, SSM_installFrom="")
    assert p.returncode == 0
    assert "installFrom is empty" in p.stdout


def test_install_step_rejects_other_schemes(doc: dict[str, Any], tmp_path: Path) -> None:
    if not Path("/var/lib/dpkg/status").exists() and shutil.which("rpm") is None:
        pytest.skip("needs dpkg or rpm on this host")
    p = run_step(doc, "installGdDoctor", tmp_path, SSM_installFrom="ftp://x/y.deb")
    assert p.returncode == 2
    assert "s3:// or https://" in p.stderr
