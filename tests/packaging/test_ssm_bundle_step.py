"""The Run Command document's optional makeBundle step, run as SSM runs it (the document's own
runCommand lines), with the real gd-doctor writing the bundle (of a fixture root) and a stand-in
AWS CLI that records the upload; the uploaded bundle opens and replays."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from gd_doctor.bundle import open_bundle, replay
from gd_doctor.host import Host
from gd_doctor.host.settings import HostSettings
from gd_doctor.pipeline import run_doctor
from gd_doctor.report.json import render_json
from tests.hostkit import FIXTURES
from tests.packaging.conftest import TOP
from tests.packaging.test_ssm_document import DOC_PATH, run_step, step

ROOT = FIXTURES / "roots" / "ubuntu2204" / "root"

# /usr/bin/gd-doctor for the step: the real CLI of this tree, on a fixture root (the step
# passes "bundle --output FILE --timeout N"; the root is added after them)
GD_DOCTOR = f"""#!/bin/sh
[ -n "$FAKE_FAIL" ] && {{ echo "gd-doctor: cannot write the bundle" >&2; exit 3; }}
PYTHONPATH={TOP} exec {sys.executable} -m gd_doctor "$@" --root {ROOT}
"""
# the AWS CLI: records its arguments and "uploads" (copies) the file into $FAKE_S3
AWS = """#!/bin/sh
printf '%s\\n' "$@" > "$FAKE_S3/args"
cp "$4" "$FAKE_S3/uploaded.tar.gz"
"""


@pytest.fixture(scope="module")
def doc() -> Dict[str, Any]:
    data: Dict[str, Any] = json.loads(DOC_PATH.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """The runGdDoctor step's report in both verdicts, as the JSON renderer writes it."""
    d = tmp_path_factory.mktemp("reports")
    run = run_doctor(Host.from_root(ROOT, HostSettings()), budget_s=20.0)
    text = render_json(run.report)
    verdict = run.report.verdict.value
    other = "healthy" if verdict != "healthy" else "unhealthy"
    (d / f"{verdict}.json").write_text(text)
    (d / f"{other}.json").write_text(
        text.replace(f'"verdict": "{verdict}"', f'"verdict": "{other}"', 1)
    )
    return {"healthy": d / "healthy.json", "unhealthy": d / "unhealthy.json"}


def _env(tmp: Path, report: Path, with_aws: bool, **kw: str) -> Dict[str, str]:
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "gd-doctor").write_text(GD_DOCTOR)
    (bindir / "gd-doctor").chmod(0o755)
    tools = ["sh", "grep", "mkdir", "chmod", "hostname", "tr", "date", "basename", "timeout", "cp"]
    for tool in tools:
        real = shutil.which(tool)
        if real and not (bindir / tool).exists():
            (bindir / tool).symlink_to(real)
    if with_aws:
        (bindir / "aws").write_text(AWS)
        (bindir / "aws").chmod(0o755)
    (tmp / "s3").mkdir(exist_ok=True)
    return {
        "PATH": str(bindir),
        "GD_DOCTOR": str(bindir / "gd-doctor"),
        "GD_DOCTOR_REPORT": str(report),
        "GD_DOCTOR_BUNDLE_DIR": str(tmp / "state"),
        "FAKE_S3": str(tmp / "s3"),
        "SSM_timeout": "30",
        **kw,
    }


def _make_bundle(
    doc: Dict[str, Any],
    tmp: Path,
    report: Path,
    *,
    bundle: str,
    with_aws: bool = True,
    upload: str = "s3://b/p",
    **more: str,
) -> "subprocess.CompletedProcess[str]":
    """The document's makeBundle step, run with the real CLI behind a stand-in gd-doctor."""
    env = _env(tmp, report, with_aws, SSM_bundle=bundle, SSM_bundleUpload=upload, **more)
    return run_step(doc, "makeBundle", tmp, **env)


def _bundles(tmp: Path) -> List[Path]:
    return (
        sorted((tmp / "state").glob("gd-doctor-bundle-*.tar.gz"))
        if (tmp / "state").is_dir()
        else []
    )


def test_never_is_the_default_and_makes_nothing(
    doc: Dict[str, Any], tmp_path: Path, reports: Dict[str, Path]
) -> None:
    assert doc["parameters"]["bundle"]["default"] == "never"
    p = _make_bundle(doc, tmp_path, reports["unhealthy"], bundle="never")
    assert p.returncode == 0 and "skipped (bundle=never)" in p.stdout
    assert _bundles(tmp_path) == [] and not (tmp_path / "s3" / "args").exists()


def test_unhealthy_only_skips_a_healthy_instance(
    doc: Dict[str, Any], tmp_path: Path, reports: Dict[str, Path]
) -> None:
    p = _make_bundle(doc, tmp_path, reports["healthy"], bundle="unhealthy")
    assert p.returncode == 0 and "verdict healthy, no bundle" in p.stdout
    assert _bundles(tmp_path) == []


def test_unhealthy_instance_bundle_is_uploaded_and_replays(
    doc: Dict[str, Any], tmp_path: Path, reports: Dict[str, Path]
) -> None:
    p = _make_bundle(
        doc, tmp_path, reports["unhealthy"], bundle="unhealthy", upload="s3://fleet-bundles/gd/"
    )
    assert p.returncode == 0, p.stdout + p.stderr
    (bundle,) = _bundles(tmp_path)
    assert oct(bundle.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "state").stat().st_mode & 0o777) == "0o700"
    args = (tmp_path / "s3" / "args").read_text().splitlines()
    assert args[:4] == ["s3", "cp", "--only-show-errors", str(bundle)]
    assert args[4].startswith("s3://fleet-bundles/gd/") and args[4].endswith("/" + bundle.name)
    assert "makeBundle: uploaded to s3://fleet-bundles/gd/" in p.stdout
    uploaded = tmp_path / "s3" / "uploaded.tar.gz"
    with open_bundle(uploaded) as b:
        assert b.manifest["host"]["root"] == str(ROOT)
        assert replay(b).report.verdict.value == b.report["verdict"]


def test_no_aws_cli_keeps_the_bundle(
    doc: Dict[str, Any], tmp_path: Path, reports: Dict[str, Path]
) -> None:
    p = _make_bundle(doc, tmp_path, reports["healthy"], bundle="always", with_aws=False)
    assert p.returncode == 0 and "no AWS CLI on this instance; bundle kept at" in p.stdout
    assert len(_bundles(tmp_path)) == 1


def test_a_failed_bundle_never_fails_the_command(
    doc: Dict[str, Any], tmp_path: Path, reports: Dict[str, Path]
) -> None:
    p = _make_bundle(doc, tmp_path, reports["unhealthy"], bundle="always", FAKE_FAIL="1")
    assert p.returncode == 0 and "gd-doctor bundle failed; no bundle" in p.stdout
    assert _bundles(tmp_path) == [] and not (tmp_path / "s3" / "args").exists()
    assert step(doc, "makeBundle")["inputs"]["timeoutSeconds"] == "900"
