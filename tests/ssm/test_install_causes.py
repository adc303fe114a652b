"""Why GuardDuty's install through Distributor failed, from the SSM Agent's log: the 3.3.1311.0
regression, a Distributor lock, a package-manager lock (analogue), a least-privilege denial; and
the S3 buckets Distributor downloads from in the generic plugin failure."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from gd_doctor.checks import ssm_traces
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import UNEXPLAINED, diagnose
from gd_doctor.diagnosis.ssm_install import distributor_buckets
from gd_doctor.facts.ssm import SsmLogFacts
from gd_doctor.knowledge import finding_specs
from gd_doctor.model import CheckResult, Status
from tests.hostkit import make_host, run_one
from tests.ssm.conftest import AGENT_LOG, earlier, ec2_tree, fresult, text


def _results(tmp_path: Path, log: str) -> List[CheckResult]:
    host = make_host(tmp_path, files=ec2_tree(**{AGENT_LOG: text(f"logs/{log}")}))
    log_out = run_one(ssm_traces.agent_log, host)
    assert isinstance(log_out.facts, SsmLogFacts)
    log_res = fresult(log_out.facts, log_out.status.value, evidence=log_out.evidence)
    traces = run_one(ssm_traces.guardduty_traces, host, earlier(log_res))
    assert traces.facts is not None
    return [log_res, fresult(traces.facts, traces.status.value)]


@pytest.mark.parametrize(
    "log, signature, finding_id",
    [
        (
            "distributor-regression.log",
            "distributor-document-name-regression",
            "ssm.distributor-document-name-regression",
        ),
        ("distributor-locked.log", "distributor-locked", "ssm.distributor-locked"),
        ("package-lock.log", "package-manager-locked", "ssm.package-manager-locked"),
        ("plugin-access-denied.log", "plugin-access-denied", "ssm.plugin-access-denied"),
    ],
)
def test_each_install_failure_has_its_signature_and_finding(
    tmp_path: Path, log: str, signature: str, finding_id: str
) -> None:
    results = _results(tmp_path, log)
    facts = results[0].facts
    assert isinstance(facts, SsmLogFacts) and facts.hit(signature) is not None
    diagnosis = diagnose(results, ALL_RULES)
    ids = [f.finding_id for f in diagnosis.findings]
    assert finding_id in ids and UNEXPLAINED not in ids


def test_the_regression_replaces_the_generic_plugin_failure(tmp_path: Path) -> None:
    diagnosis = diagnose(_results(tmp_path, "distributor-regression.log"), ALL_RULES)
    ids = [f.finding_id for f in diagnosis.findings]
    assert "ssm.plugin-run-failed" not in ids
    regression = next(f for f in diagnosis.findings if f.finding_id.endswith("name-regression"))
    assert "3.3.1230.0" in " ".join(regression.steps)


def test_the_denied_action_is_named(tmp_path: Path) -> None:
    diagnosis = diagnose(_results(tmp_path, "plugin-access-denied.log"), ALL_RULES)
    denied = next(f for f in diagnosis.findings if f.finding_id == "ssm.plugin-access-denied")
    assert "ssm:GetManifest denied" in denied.title


def test_a_package_lock_is_an_analogue_phrased_as_may() -> None:
    spec = finding_specs()["ssm.package-manager-locked"]
    assert spec.severity == "warn" and "may" in spec.title and "analogue" in spec.title


def test_distributor_buckets_per_region() -> None:
    assert distributor_buckets("us-east-2").split(", ")[:1] == ["us-east-2-birdwatcher-prod"]
    milan = distributor_buckets("eu-south-1")
    assert "aws-ssm-distributor-file-eu-south-1" in milan and "birdwatcher" not in milan
    assert "aws-ssm-distributor-file" not in distributor_buckets("us-east-2")
    assert "aws-ssm-document-attachments-<region>" in distributor_buckets(None)


def test_the_generic_plugin_failure_names_the_buckets(tmp_path: Path) -> None:
    files = ec2_tree(**{AGENT_LOG: text("logs/no-manifest.log")})
    host = make_host(tmp_path, files=files)
    log_out = run_one(ssm_traces.agent_log, host)
    assert log_out.status in (Status.WARN, Status.OK, Status.FAIL)
    steps = " ".join(finding_specs()["ssm.plugin-run-failed"].steps)
    assert "{s3_buckets}" in steps
