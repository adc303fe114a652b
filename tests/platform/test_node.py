"""Bottlerocket, EKS and ECS nodes (checks/node.py, diagnosis/node.py, diagnosis/scope.py):
the checks on fixture roots and on a live host made of fakes, the rules, and what the host's
scope does to the verdict."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from gd_doctor.checks import ALL_CHECKS
from gd_doctor.checks import node as node_checks
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import UNEXPLAINED, diagnose
from gd_doctor.facts.agent import PackageFacts, UnitFacts
from gd_doctor.facts.network import BottlerocketEndpointsFacts, RegionFacts
from gd_doctor.facts.node import BottlerocketFacts, NodeRoleFacts
from gd_doctor.host import Host
from gd_doctor.host.net import DnsAnswer, TcpResult
from gd_doctor.host.settings import HostSettings
from gd_doctor.model import CheckResult, Severity, Status, Verdict
from tests.hostkit import FIXTURES, facts_with, make_host, result, run_one, run_pipeline
from tests.ssm.fakes import LinesJournal

ROOTS = FIXTURES / "roots"
UNIT = "host-containers@amazon-guardduty-agent.service"
SHOW = ("systemctl", "show", UNIT, "-p", "LoadState,ActiveState,SubState")
# Modelled on the Fargate agent's pull failure quoted in aws/aws-cdk#32877 (2025-01-13), with the
# ECS-EC2 image of the same Region (eu-central-1's registry account on AWS's ECR page).
PULL_LINE = (
    "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve "
    "ref 323658145986.dkr.ecr.eu-central-1.amazonaws.com/aws-guardduty-agent-ecs-ec2:v1.8.0"
)
SUGGESTS_PACKAGE_MANAGER = re.compile(
    r"\b(?:dnf|yum|apt|apt-get|snap)\s+(?:install|update|upgrade)"
)


def _full_run(name: str) -> tuple:  # type: ignore[type-arg]
    host = Host.from_root(ROOTS / name / "root", HostSettings())
    run, diagnosis, _ = run_pipeline(host)
    return run, diagnosis


def _os_release(tmp_path: Path, version: str = "1.62.1", variant: str = "aws-ecs-2") -> Path:
    text = (
        f'NAME=Bottlerocket\nID=bottlerocket\nPRETTY_NAME="Bottlerocket OS {version} ({variant})"\n'
        f"VARIANT_ID={variant}\nVERSION_ID={version}\n"
    )
    (tmp_path / "etc").mkdir(parents=True, exist_ok=True)
    (tmp_path / "etc/os-release").write_text(text)
    return tmp_path


def _live_bottlerocket(
    tmp_path: Path, state: str, lines: Sequence[str] = (), variant: str = "aws-ecs-2"
) -> List[CheckResult]:
    _os_release(tmp_path, variant=variant)
    host = make_host(tmp_path, commands={SHOW: (0, state)}, journal=LinesJournal(lines), live=True)
    run, _ = run_pipeline(host, checks=(ALL_CHECKS[0], node_checks.bottlerocket))[:2]
    return list(run.results)


# --- fixture roots: full runs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "bottlerocket-aws-ecs-2",
        "bottlerocket-aws-ecs-3-old",
        "eks-node-al2023",
        "eks-node-dual-agent",
        "ecs-container-instance",
    ],
)
def test_no_failing_check_is_left_unexplained_on_the_node_roots(name: str) -> None:
    _, diagnosis = _full_run(name)
    assert UNEXPLAINED not in [f.finding_id for f in diagnosis.findings]


def test_an_eks_node_without_the_ec2_agent_is_not_applicable_not_a_fault() -> None:
    run, diagnosis = _full_run("eks-node-al2023")
    assert diagnosis.verdict == Verdict.UNKNOWN
    assert diagnosis.reason is not None
    assert diagnosis.reason.startswith("not applicable: covered by the EKS table")
    first = diagnosis.findings[0] if diagnosis.findings[0].severity != Severity.INFO else None
    assert first is None, "no FAIL or WARN finding on a plain EKS node"
    eks = next(f for f in diagnosis.findings if f.finding_id == "platform.eks-node")
    assert any("eks-runtime-monitoring-coverage" in (eks.doc or "") for _ in (0,))
    failing = [r.check_id for r in run.results if r.status == Status.FAIL]
    assert all(c.startswith("agent.") for c in failing), failing


def test_both_agents_on_an_eks_node_say_the_eks_one_takes_priority() -> None:
    _, diagnosis = _full_run("eks-node-dual-agent")
    dual = next(f for f in diagnosis.findings if f.finding_id == "platform.eks-dual-agent")
    assert dual.severity == Severity.WARN
    text = " ".join((dual.title, *dual.steps))
    assert "takes priority" in text and "idle" in text and "twice the CPU and memory" in text


def test_an_ecs_instance_is_judged_by_the_ec2_table() -> None:
    _, diagnosis = _full_run("ecs-container-instance")
    ids = [f.finding_id for f in diagnosis.findings]
    assert "platform.ecs-container-instance" in ids
    assert diagnosis.verdict == Verdict.UNHEALTHY  # no agent: a fault, as on any instance
    assert "EKS" not in (diagnosis.reason or "")


@pytest.mark.parametrize(
    ("role", "severity", "verdict"),
    [
        # an ECS container instance is in the EC2 table's scope: a missing agent is a fault
        (NodeRoleFacts("ecs", ("/etc/ecs/ecs.config",)), Severity.FAIL, Verdict.UNHEALTHY),
        # an EKS node is covered by the EKS table: the same facts are context
        (NodeRoleFacts("eks", ("/usr/bin/kubelet", "/etc/eks")), Severity.INFO, Verdict.UNKNOWN),
    ],
    ids=["ecs-instance", "eks-node"],
)
def test_a_missing_agent_is_a_fault_by_the_nodes_table(
    role: NodeRoleFacts, severity: Severity, verdict: Verdict
) -> None:
    results = [
        result("platform.node_role", Status.OK, facts=role),
        result("agent.package", Status.FAIL, facts=facts_with(PackageFacts, installed=False)),
        result("agent.unit", Status.FAIL, facts=facts_with(UnitFacts, load_state="not-found")),
    ]
    diagnosis = diagnose(results, ALL_RULES)
    missing = next(f for f in diagnosis.findings if f.finding_id == "agent.not-installed")
    assert missing.severity == severity
    assert diagnosis.verdict == verdict
    if role.role == "eks":
        assert "covered by the EKS table" in (diagnosis.reason or "")


def test_bottlerocket_findings_never_suggest_a_package_manager() -> None:
    for name in ("bottlerocket-aws-ecs-2", "bottlerocket-aws-ecs-3-old"):
        _, diagnosis = _full_run(name)
        for f in diagnosis.findings:
            for step in f.steps:
                assert not SUGGESTS_PACKAGE_MANAGER.search(step), (f.finding_id, step)


def test_an_old_bottlerocket_names_the_bottlerocket_kernel_row() -> None:
    _, diagnosis = _full_run("bottlerocket-aws-ecs-3-old")
    old = next(f for f in diagnosis.findings if f.finding_id == "platform.bottlerocket-os-too-old")
    assert old.issue_id == "bottlerocket-kernel-lower"
    assert "1.50.0" in old.title and "1.62.1" in old.title


# --- live Bottlerocket host (fakes) ---------------------------------------------------------

ACTIVE = "LoadState=loaded\nActiveState=active\nSubState=running\n"
DEAD = "LoadState=loaded\nActiveState=inactive\nSubState=dead\n"


def test_a_running_host_container_proves_health(tmp_path: Path) -> None:
    results = _live_bottlerocket(tmp_path, ACTIVE)
    br = next(r for r in results if r.check_id == "platform.bottlerocket")
    assert br.status == Status.OK and isinstance(br.facts, BottlerocketFacts)
    assert br.facts.running is True
    diagnosis = diagnose(results, ALL_RULES, live=True)
    assert diagnosis.verdict == Verdict.HEALTHY
    assert "host container" in (diagnosis.reason or "")


def test_a_stopped_host_container_is_a_fault(tmp_path: Path) -> None:
    results = _live_bottlerocket(tmp_path, DEAD)
    diagnosis = diagnose(results, ALL_RULES, live=True)
    ids = [f.finding_id for f in diagnosis.findings]
    assert ids[0] == "platform.bottlerocket-host-container-down"
    assert diagnosis.findings[0].issue_id == "bottlerocket-host-container"
    assert diagnosis.verdict == Verdict.UNHEALTHY


def test_a_failed_ecr_pull_in_the_journal_names_the_ecr_row(tmp_path: Path) -> None:
    results = _live_bottlerocket(tmp_path, DEAD, lines=["starting", PULL_LINE])
    br = next(r for r in results if r.check_id == "platform.bottlerocket")
    assert br.status == Status.FAIL and PULL_LINE[:60] in " ".join(br.evidence)
    diagnosis = diagnose(results, ALL_RULES, live=True)
    ids = [f.finding_id for f in diagnosis.findings]
    assert "platform.bottlerocket-ecr-pull-failed" in ids
    assert "platform.bottlerocket-host-container-down" not in ids  # the pull is the cause
    pull = next(
        f for f in diagnosis.findings if f.finding_id == "platform.bottlerocket-ecr-pull-failed"
    )
    assert pull.issue_id == "bottlerocket-ecr-image-pull-failed"
    assert "AmazonEC2ContainerRegistryReadOnly" in " ".join(pull.steps)


def test_a_k8s_variant_is_not_the_ecs_table(tmp_path: Path) -> None:
    results = _live_bottlerocket(tmp_path, ACTIVE, variant="aws-k8s-1.31")
    diagnosis = diagnose(results, ALL_RULES, live=True)
    assert "platform.bottlerocket-variant-unsupported" in [f.finding_id for f in diagnosis.findings]


def test_not_bottlerocket_is_a_judgement_with_facts(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text("ID=amzn\nVERSION_ID=2023\nNAME='Amazon Linux'\n")
    run, _ = run_pipeline(
        make_host(tmp_path, live=False), checks=(ALL_CHECKS[0], node_checks.bottlerocket)
    )[:2]
    br = next(r for r in run.results if r.check_id == "platform.bottlerocket")
    assert br.status == Status.OK and isinstance(br.facts, BottlerocketFacts)
    assert br.facts.bottlerocket is False


# --- network.bottlerocket_endpoints ---------------------------------------------------------


class _Net:
    """resolve/tcp_connect from tables: name -> addresses, address -> TCP state."""

    def __init__(self, names: Dict[str, List[str]], tcp: Dict[str, str]) -> None:
        self.names, self.tcp = names, tcp

    def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
        found = self.names.get(name)
        return DnsAnswer(name, tuple(found)) if found else DnsAnswer(name, problem="no such name")

    def tcp_connect(self, address: str, port: int, *, timeout: float) -> TcpResult:
        return TcpResult(address, port, self.tcp.get(address, "timeout"))


def _region() -> RegionFacts:
    return RegionFacts(
        "eu-central-1", "--region", None, None, "aws", "amazonaws.com",
        host="guardduty-data.eu-central-1.amazonaws.com", port=443,
    )  # fmt: skip


def _endpoints(tmp_path: Path, names: Dict[str, List[str]], tcp: Dict[str, str]) -> CheckResult:
    br = BottlerocketFacts(True, "1.62.1", UNIT, variant="aws-ecs-2", version="1.62.1")
    earlier = {
        "network.region": result("network.region", Status.OK, facts=_region()),
        "platform.bottlerocket": result("platform.bottlerocket", Status.OK, facts=br),
    }
    host = make_host(tmp_path, net=_Net(names, tcp))
    out = run_one(node_checks.bottlerocket_endpoints, host, earlier)
    return CheckResult("network.bottlerocket_endpoints", "t", "network", out.status, out.summary,
                       evidence=out.evidence, facts=out.facts)  # fmt: skip


ECR_API = "api.ecr.eu-central-1.amazonaws.com"
ECR_DKR = "323658145986.dkr.ecr.eu-central-1.amazonaws.com"
S3 = "s3.eu-central-1.amazonaws.com"
GD = "guardduty-data.eu-central-1.amazonaws.com"


def test_private_endpoints_and_a_public_s3_gateway_pass(tmp_path: Path) -> None:
    names = {
        ECR_API: ["10.0.1.10"],
        ECR_DKR: ["10.0.1.11"],
        S3: ["52.219.170.1"],
        GD: ["10.0.1.12"],
    }
    res = _endpoints(tmp_path, names, {a[0]: "ok" for a in names.values()})
    assert res.status == Status.OK, res.summary
    assert isinstance(res.facts, BottlerocketEndpointsFacts)
    assert {e.host for e in res.facts.endpoints} == {ECR_API, ECR_DKR, S3, GD}


def test_ecr_on_public_addresses_only_is_a_warning(tmp_path: Path) -> None:
    names = {ECR_API: ["3.5.1.1"], ECR_DKR: ["3.5.1.2"], S3: ["52.219.170.1"], GD: ["10.0.1.12"]}
    res = _endpoints(tmp_path, names, {a[0]: "ok" for a in names.values()})
    assert res.status == Status.WARN
    diagnosis = diagnose([res], ALL_RULES)
    public = next(
        f for f in diagnosis.findings if f.finding_id == "network.bottlerocket-endpoint-public"
    )
    assert ECR_API in public.title and S3 not in public.title


def test_an_unreachable_ecr_endpoint_fails_and_is_explained(tmp_path: Path) -> None:
    names = {
        ECR_API: ["10.0.1.10"],
        ECR_DKR: ["10.0.1.11"],
        S3: ["52.219.170.1"],
        GD: ["10.0.1.12"],
    }
    tcp = {"10.0.1.10": "timeout", "10.0.1.11": "ok", "52.219.170.1": "ok", "10.0.1.12": "ok"}
    res = _endpoints(tmp_path, names, tcp)
    assert res.status == Status.FAIL
    diagnosis = diagnose([res], ALL_RULES)
    ids = [f.finding_id for f in diagnosis.findings]
    assert ids[0] == "network.bottlerocket-endpoint-unreachable" and UNEXPLAINED not in ids
    assert ECR_API in diagnosis.findings[0].title


def test_a_region_without_a_registry_account_skips_the_dkr_name(tmp_path: Path) -> None:
    names: Dict[str, List[str]] = {}
    res = _endpoints(tmp_path, names, {})
    assert res.status == Status.FAIL  # nothing resolves
    hosts = {e.host for e in res.facts.endpoints}  # type: ignore[union-attr]
    assert ECR_DKR in hosts  # eu-central-1 has a published account


# --- GuardDutyManaged:false with the agent still there (timing.json notes too) -------------


def _excluded(active: str) -> List[CheckResult]:
    from gd_doctor.facts.imds import ImdsTagsFacts

    return [
        result("imds.tags", Status.OK, facts=ImdsTagsFacts(True, "false", True)),
        result("agent.unit", Status.OK, facts=facts_with(UnitFacts, active_state=active)),
        result("agent.package", Status.OK, facts=facts_with(PackageFacts, installed=True)),
    ]


def test_an_excluded_instance_whose_agent_runs_gets_the_uninstall_steps() -> None:
    diagnosis = diagnose(_excluded("active"), ALL_RULES)
    found = next(f for f in diagnosis.findings if f.finding_id == "imds.excluded-agent-running")
    steps = " ".join(found.steps)
    assert "does not uninstall" in steps and "action Uninstall" in steps
    assert (
        "rpm -e amazon-guardduty-agent" in steps and "dpkg --purge amazon-guardduty-agent" in steps
    )
    assert "running" in found.title


def test_an_excluded_instance_without_the_agent_has_no_such_finding() -> None:
    results = _excluded("inactive")
    results[-1] = result(
        "agent.package", Status.OK, facts=facts_with(PackageFacts, installed=False)
    )
    ids = [f.finding_id for f in diagnose(results, ALL_RULES).findings]
    assert "imds.excluded-agent-running" not in ids


def test_fixes_the_console_must_catch_up_with_say_15_minutes() -> None:
    from gd_doctor.knowledge import finding_specs, load

    note = next(n for n in load("timing.json")["notes"] if n["id"] == "console-catch-up")
    for spec in finding_specs().values():
        has = note["text"] in spec.steps
        expected = spec.id in note["findings"] or (
            spec.issue is not None and spec.severity != "info" and spec.id not in note["except"]
        )
        assert has == expected, spec.id
    assert "15 minutes" in note["text"] and note["minutes"] == 15


def test_tag_keys_imds_refuses() -> None:
    from gd_doctor.knowledge import finding_specs, tag_key_allowed

    assert not tag_key_allowed("kubernetes.io/cluster/prod")
    assert tag_key_allowed("karpenter.sh:nodepool") and not tag_key_allowed("..")
    steps = " ".join(finding_specs()["imds.tags-not-in-metadata"].steps)
    assert "kubernetes.io/cluster" in steps and "stop and start" in steps
