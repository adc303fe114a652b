"""Ranking and folding: the first finding is the real cause, consequences are listed under it,
and the steps fit the host (issue 12 section 2).

Pairs come from two sources: hand-made facts of two causes staged together (as the rule tests
build them), and every pair of findings the knowledge base can produce, through stub rules.
"""

from __future__ import annotations

import itertools
from typing import List, Optional, Sequence

import pytest

from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.base import Rule, RuleOutput, finding
from gd_doctor.diagnosis.engine import UNEXPLAINED, HostContext, diagnose, with_region
from gd_doctor.facts.imds import ImdsIdentityFacts, ImdsReachableFacts
from gd_doctor.facts.network import (
    DnsFacts,
    RegionFacts,
    ResolvedAddress,
    TcpAttempt,
    TcpFacts,
)
from gd_doctor.facts.platform import KernelFacts, MemlockFacts, OsFacts
from gd_doctor.knowledge import WHERE, finding_specs
from gd_doctor.model import CheckResult, Finding, Severity
from gd_doctor.redact import redact
from tests.hostkit import facts_with, result

HOST = "guardduty-data.us-east-1.amazonaws.com"
MiB = 1024 * 1024
SEVERITY = {Severity.FAIL: 0, Severity.WARN: 1, Severity.INFO: 2}


def _diagnose(*results: CheckResult) -> List[Finding]:
    return list(diagnose(results, ALL_RULES, debug=True).findings)


def _os(id_: str, version: str, *like: str) -> CheckResult:
    return result(
        "platform.os", "ok", facts=facts_with(OsFacts, id=id_, version_id=version, id_like=like)
    )


def _region(region: str = "us-east-1") -> CheckResult:
    facts = RegionFacts(region, "instance identity document", region, None, host=HOST)
    return result("network.region", "ok", facts=facts)


# --- hand-made causes staged together --------------------------------------------------------

PUBLIC_DNS = result(
    "network.guardduty_dns",
    "fail",
    facts=DnsFacts(
        HOST, (ResolvedAddress("52.94.1.10", "public"),), "public", None, (), ("10.0.0.0/16",)
    ),
)
TCP_TIMEOUT = result(
    "network.guardduty_tcp", "fail", facts=TcpFacts(443, (TcpAttempt("52.94.1.10", "timeout"),))
)
KERNEL_LOWER = result(
    "platform.kernel",
    "fail",
    facts=facts_with(
        KernelFacts,
        release="4.14.355-275.572.amzn2.x86_64",
        major_minor="4.14",
        verdict="lower",
        scope="all",
        memlock_required=True,
        table_min="5.4",
    ),
)
MEMLOCK_LOW = result(
    "platform.memlock",
    "fail",
    facts=facts_with(
        MemlockFacts,
        required=True,
        effective="64K",
        effective_source="systemd's built-in default",
        sufficient=False,
        minimum_bytes=32 * MiB,
        kernel="4.14",
    ),
)

# (name, results, the cause, its consequence)
STAGED = [
    ("public name, TCP to it fails", (PUBLIC_DNS, TCP_TIMEOUT), "network.endpoint-public",
     "network.tcp-blocked"),
    ("kernel to replace, memlock low", (KERNEL_LOWER, MEMLOCK_LOW), "platform.kernel-lower",
     "platform.memlock-low"),
]  # fmt: skip


@pytest.mark.parametrize("name, results, cause, consequence", STAGED, ids=[s[0] for s in STAGED])
def test_staged_pair_folds_the_consequence_into_the_cause(
    name: str, results: Sequence[CheckResult], cause: str, consequence: str
) -> None:
    found = _diagnose(*results, _region())
    # each cause alone produces its finding (the pair is real, not an artefact of folding)
    assert consequence in {f.finding_id for f in _diagnose(results[1], _region())}
    first = found[0]
    assert first.finding_id == cause
    assert consequence not in {f.finding_id for f in found}
    assert [c.finding_id for c in first.consequences] == [consequence]
    assert any(e.startswith("consequence: ") for e in first.evidence)
    assert set(first.consequences[0].checks) <= set(first.checks)
    assert UNEXPLAINED not in {f.finding_id for f in found}


def test_tcp_blocked_alone_is_a_security_group_finding() -> None:
    private = DnsFacts(
        HOST, (ResolvedAddress("10.0.1.5", "vpc"),), "vpc", None, (), ("10.0.0.0/16",)
    )
    tcp = TcpFacts(443, (TcpAttempt("10.0.1.5", "timeout"),))
    found = _diagnose(
        result("network.guardduty_dns", "ok", facts=private),
        result("network.guardduty_tcp", "fail", facts=tcp),
        _region(),
    )
    assert found[0].finding_id == "network.tcp-blocked" and not found[0].consequences
    assert "security group" in found[0].steps[0]  # the timeout's step comes first


# --- every pair the knowledge base can produce ------------------------------------------------


def _stub(spec_id: str) -> Rule:
    def produce() -> RuleOutput:  # reads nothing: called with no arguments
        return finding(spec_id, checks=())

    return Rule(f"stub.{spec_id}", produce)


CAUSES = sorted(s for s in finding_specs() if not s.startswith("tool."))
PAIRS = list(itertools.combinations(CAUSES, 2))


def _order_key(spec_id: str) -> tuple:
    spec = finding_specs()[spec_id]
    return (SEVERITY[Severity(spec.severity)], spec.rank, spec_id)


def _expected_cause(a: str, b: str) -> Optional[str]:
    """The cause when one folds the other, else None."""
    if b in finding_specs()[a].folds:
        return a
    if a in finding_specs()[b].folds:
        return b
    return None


def test_every_pair_lists_the_cause_first_and_the_other_under_it_or_after() -> None:
    for a, b in PAIRS:
        found = list(diagnose([], [_stub(a), _stub(b)]).findings)
        ids = [f.finding_id for f in found]
        cause = _expected_cause(a, b)
        if cause is not None:
            other = b if cause == a else a
            assert ids == [cause], (a, b, ids)
            assert [c.finding_id for c in found[0].consequences] == [other]
            # the cause is at least as severe as what it explains
            assert (
                SEVERITY[found[0].severity] <= SEVERITY[Severity(finding_specs()[other].severity)]
            )
        else:
            assert ids == sorted((a, b), key=_order_key), (a, b, ids)


def test_folds_name_known_findings_and_never_loop() -> None:
    specs = finding_specs()
    for spec in specs.values():
        for folded in spec.folds:
            assert folded in specs, f"{spec.id} folds unknown {folded}"
            assert folded != spec.id
            assert spec.id not in specs[folded].folds, f"{spec.id} <-> {folded}"
        for meta in spec.step_specs:
            assert meta.where in (None, *WHERE)
        assert len(spec.step_specs) == len(spec.steps)


def test_a_chain_folds_to_the_outermost_cause() -> None:
    # kernel-lower folds agent.memlock-low, which folds platform.memlock-low
    rules = [_stub("platform.kernel-lower"), _stub("agent.memlock-low"),
             _stub("platform.memlock-low")]  # fmt: skip
    (only,) = diagnose([], rules).findings
    assert only.finding_id == "platform.kernel-lower"
    assert {c.finding_id for c in only.consequences} == {
        "agent.memlock-low",
        "platform.memlock-low",
    }


def test_a_warning_cause_of_a_failure_fails_and_comes_first() -> None:
    rules = [_stub("network.proxy-without-imds-exemption"), _stub("agent.log-connect"),
             _stub("platform.btf-missing")]  # fmt: skip
    found = diagnose([], rules).findings
    proxy = next(f for f in found if f.finding_id == "network.proxy-without-imds-exemption")
    assert [c.finding_id for c in proxy.consequences] == ["agent.log-connect"]
    assert "agent.log-connect" not in [f.finding_id for f in found]


# --- steps tailored to the host ---------------------------------------------------------------


def _imds(problem: str, disabled: bool = False) -> CheckResult:
    facts = facts_with(
        ImdsReachableFacts,
        endpoint="http://169.254.169.254",
        reachable=disabled,
        usable=False,
        disabled=disabled,
        get_problem=problem,
    )
    return result("imds.reachable", "fail", facts=facts)


def test_imds_disabled_turns_it_on_from_a_workstation_in_the_detected_region() -> None:
    identity = result(
        "imds.identity",
        "skip",
        facts=facts_with(ImdsIdentityFacts, available=False, region="eu-west-1"),
    )
    found = _diagnose(_imds("HTTP 403", disabled=True), identity)
    first = found[0]
    assert first.finding_id == "imds.disabled"
    assert first.fix_step == first.steps[0]
    assert first.fix_step.startswith("From a workstation (AWS CLI with credentials): ")
    # the prefix must survive the redactor (a "credentials: value" would be masked)
    assert redact(first.fix_step) == first.fix_step
    assert "--http-endpoint enabled" in first.fix_step
    assert all(s.count("--region eu-west-1") == s.count("aws ") for s in first.steps)


FAILURE_STEPS = [
    ("timeout", "The request timed out"),
    ("refused", "The connection was refused"),
    ("unreachable", "There is no route"),
]


@pytest.mark.parametrize("problem, first_words", FAILURE_STEPS)
def test_imds_unreachable_first_step_follows_the_failure(problem: str, first_words: str) -> None:
    (f,) = [f for f in _diagnose(_imds(problem)) if f.finding_id == "imds.unreachable"]
    assert first_words in f.steps[0]
    other_firsts = {w for _, w in FAILURE_STEPS} - {first_words}
    assert not any(w in s for w in other_firsts for s in f.steps)


def _ssm_missing(*results: CheckResult) -> Finding:
    rules = [_stub("ssm.agent-missing")]
    (f,) = diagnose(list(results), rules).findings
    return f


def test_only_the_detected_distributions_install_line() -> None:
    debian = _ssm_missing(_os("debian", "12"), _region())
    installs = [s for s in debian.steps if "Install the SSM Agent" in s]
    assert len(installs) == 1 and "amazon-ssm-agent.deb" in installs[0]
    assert debian.fix_step == installs[0]
    centos = _ssm_missing(_os("centos", "7", "rhel", "fedora"))
    assert next(s for s in centos.steps if "Install the SSM Agent" in s).count("dnf") == 1
    assert not any("snap install" in s for s in centos.steps)
    unknown = _ssm_missing()
    assert len([s for s in unknown.steps if "Install the SSM Agent" in s]) == 3


def test_amazon_linux_2_command_only_on_amazon_linux_2() -> None:
    def steps(*os: CheckResult) -> List[str]:
        return list(next(f for f in _diagnose(KERNEL_LOWER, *os)).steps)

    assert any("amazon-linux-extras" in s for s in steps(_os("amzn", "2", "centos", "rhel")))
    assert not any("amazon-linux-extras" in s for s in steps(_os("centos", "7", "rhel")))
    assert not any("amazon-linux-extras" in s for s in steps(_os("amzn", "2023", "fedora")))


def test_region_goes_into_every_aws_command_once() -> None:
    step = (
        "Check: aws ec2 describe-vpc-attribute --vpc-id v --attribute a ; "
        "aws ec2 describe-vpc-attribute --vpc-id v --region us-west-2 (already set)"
    )
    out = with_region(step, "eu-west-1")
    assert out.count("--region eu-west-1") == 1 and "--region us-west-2" in out
    assert with_region(step, None) == step
    assert HostContext.of([_region("not a region")]).region is None
