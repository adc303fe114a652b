"""Rank order over pairs of live scenarios (issue 12 section 2), and the composition behind it.

Fast tests: which single causes the corpus has, which pairs compose and which are refused, and
that a composed pair is both scenarios at once (tests/simulator/pairs.py). ``simulator`` tests:
every composed pair boots on real systemd in its own namespace and the real CLI must list the
expected cause first, the other folded under it or after it, nothing before either.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from tests.simulator.accuracy import Row, judge, table
from tests.simulator.pairs import (
    Pair,
    _leaves,
    all_pairs,
    changes,
    compose,
    expected_first,
    order_problems,
    own_layer,
    single_causes,
)
from tests.simulator.scenario import CORPUS, Scenario, ScenarioError, load, validate

SINGLES = single_causes()
PAIRS = all_pairs(SINGLES)
COMPOSED = [p for p in PAIRS if p.composed is not None]
BY_NAME = {sc.name: sc for sc in SINGLES}


def _pair(a: str, b: str) -> Pair:
    return compose(BY_NAME[a], BY_NAME[b])


# --------------------------------------------------------------------------------------------
# the corpus's single causes and pairs (fast)


def test_the_corpus_has_single_causes_and_enough_pairs() -> None:
    # a change of the corpus that leaves this test few pairs must be noticed
    names = set(BY_NAME)
    assert len(SINGLES) >= 12, sorted(names)
    assert {"agent-crash-loop", "clock-skewed", "dns-no-answer", "tls-intercepted"} <= names
    # more than one cause, or a known gap: not a single cause
    assert not names & {"endpoint-nxdomain", "imds-hop-limit", "ssm-unregistered"}
    # root scenarios are paired in-process (tests/core/test_ranking_staged.py)
    assert all(sc.kind == "live" for sc in SINGLES)
    assert len(COMPOSED) >= 50, [p.name for p in COMPOSED]
    assert len(PAIRS) == len(SINGLES) * (len(SINGLES) - 1) // 2


@pytest.mark.parametrize(
    "a, b, why",
    [
        # one stand-in agent cannot crash-loop and be OOM-killed at once
        ("agent-crash-loop", "agent-oom-live", "both change agent"),
        # one DNS answer for guardduty-data: dropped, or an address whose server blackholes
        ("dns-no-answer", "security-group-blocks-443", "guardduty-data.us-east-1"),
        ("dns-no-answer", "endpoint-resolves-public", "guardduty-data.us-east-1"),
        # both replace the dpkg database's agent record (and the agent)
        ("agent-not-installed-manual", "exclusion-tag", "file /var/lib/dpkg/status"),
        # a proxy is the way to every endpoint
        ("proxy-without-no-proxy", "tls-intercepted", "both change endpoint"),
        # the SCP denial is in the answers to the auto agent's requests: a crash-looping
        # agent makes none (the scenario's "pairing": {"needs": ["agent"]})
        ("agent-crash-loop", "scp-access-denied", "which scp-access-denied needs"),
    ],
)
def test_pairs_that_touch_the_same_thing_are_refused(a: str, b: str, why: str) -> None:
    pair = _pair(a, b)
    assert pair.composed is None and why in pair.why_not, pair.why_not


@pytest.mark.parametrize(
    "a, b",
    [
        ("agent-crash-loop", "clock-skewed"),  # the agent, and IMDS's Date header
        ("dns-no-answer", "exclusion-tag"),  # the endpoint's name, and IMDS's tags
        ("agent-oom-live", "tls-intercepted"),  # the agent, and the endpoint's certificate
        ("clock-skewed", "imds-hop-limit-v1-fallback"),  # IMDS's Date, and IMDS's token rules
    ],
)
def test_pairs_that_touch_different_things_compose(a: str, b: str) -> None:
    assert _pair(a, b).composed is not None, _pair(a, b).why_not


def _changed_leaves(sc: Scenario) -> Dict[Tuple[str, ...], object]:
    """The leaves of the scenario's own layer, valued as in its merged spec."""
    merged = _leaves(sc.spec)
    skip = ("title", "description", "row", "kind", "expect", "wait", "pairing")
    return {k: merged[k] for k in _leaves(own_layer(sc)) if k[0] not in skip}


@pytest.mark.parametrize("name", [p.name for p in COMPOSED])
def test_a_composed_pair_is_both_scenarios_at_once(name: str) -> None:
    pair = next(p for p in COMPOSED if p.name == name)
    sc = pair.composed
    assert sc is not None
    validate(sc.spec, name)
    leaves = _leaves(sc.spec)
    files = sc.host_files()
    for single in (pair.one, pair.two):
        for leaf, value in _changed_leaves(single).items():
            assert leaves.get(leaf) == value, (single.name, leaf)
        for path, content in single.host_files().items():
            if ("file", path) in changes(single):
                assert files.get(path) == content, (single.name, path)
        assert set(single.units()) <= set(sc.units())
    assert sc.expect["top_finding"] == pair.first
    assert {pair.first, pair.other} == {
        pair.one.expect["top_finding"],
        pair.two.expect["top_finding"],
    }


def test_the_wait_belongs_to_whoever_decides_the_agents_behaviour() -> None:
    # the crash loop's own wait (two restarts), not the unreachable endpoint's (one)
    crash = _pair("agent-crash-loop", "dns-no-answer").composed
    assert crash is not None
    assert crash.spec["wait"] == {"agent": "restarting", "min_restarts": 2, "timeout": 60.0}
    # no agent installed: nothing to wait for but the settling time
    gone = _pair("agent-not-installed-manual", "tls-intercepted").composed
    assert gone is not None and gone.spec["wait"] == {"timeout": 60.0, "settle": 2.0}
    # the healthy host's "active" gives way to the failing endpoint's "restarting"
    warn = _pair("imds-hop-limit-v1-fallback", "scp-access-denied").composed
    assert warn is not None and warn.spec["wait"]["agent"] == "restarting"
    assert warn.spec["expect"]["verdict"] == "unhealthy"


def _write(d: Path, spec: Dict[str, object]) -> Path:
    d.mkdir(parents=True)
    (d / "scenario.json").write_text(json.dumps(spec), encoding="utf-8")
    return d


def test_waits_that_contradict_each_other_are_refused(tmp_path: Path) -> None:
    base = _write(
        tmp_path / "_bases" / "b", {"agent": {"mode": "auto"}, "expect": {"verdict": "healthy"}}
    )
    assert base.is_dir()
    one = _write(
        tmp_path / "one",
        {
            "extends": ["../_bases/b"],
            "dns": {"records": {"a.example": {"drop": True}}},
            "wait": {"agent": "restarting"},
            "expect": {"verdict": "unhealthy", "top_finding": "network.endpoint-unresolvable"},
        },
    )
    two = _write(
        tmp_path / "two",
        {
            "extends": ["../_bases/b"],
            "imds": {"tags": {"GuardDutyManaged": "false"}},
            "wait": {"agent": "active"},
            "expect": {"verdict": "unhealthy", "top_finding": "imds.exclusion-tag"},
        },
    )
    pair = compose(load(one), load(two))
    assert pair.composed is None and "different states" in pair.why_not
    # different bases never compose
    other = _write(
        tmp_path / "three",
        {"imds": {"region": "eu-west-1"}, "expect": {"verdict": "unhealthy", "top_finding": "x.y"}},
    )
    assert "different bases" in compose(load(one), load(other)).why_not


def test_a_pairing_that_is_not_needs_and_why_is_rejected(tmp_path: Path) -> None:
    spec = {"pairing": {"needs": ["agent"]}, "expect": {"verdict": "healthy"}}
    with pytest.raises(ScenarioError, match="pairing"):
        validate(spec, "x")
    spec["pairing"] = {"needs": ["agent"], "why": "the agent's own requests"}
    validate(spec, "x")


def test_the_expected_first_follows_folds_then_rank() -> None:
    # endpoint-public folds tcp-blocked; the clock ranks above any network finding on its own
    assert expected_first("network.tcp-blocked", "network.endpoint-public") == (
        "network.endpoint-public"
    )
    assert expected_first("network.tls-intercepted", "platform.clock-skewed") == (
        "platform.clock-skewed"
    )


def test_order_problems_catches_a_wrong_first_a_lost_cause_and_ignores_the_simulator() -> None:
    report = {
        "findings": [
            {"id": "platform.in-container", "severity": "warn", "consequences": []},
            {"id": "network.endpoint-public", "severity": "fail", "consequences": []},
            {"id": "agent.crash-loop", "severity": "fail", "consequences": []},
            {"id": "imds.hop-limit", "severity": "info", "consequences": []},
        ]
    }
    ignore = ["platform.in-container"]
    assert order_problems(report, "network.endpoint-public", "agent.crash-loop", ignore) == []
    assert order_problems(report, "network.endpoint-public", "agent.crash-loop")
    assert order_problems(report, "agent.crash-loop", "network.endpoint-public", ignore)
    # an info finding is no problem: a cause shown only as info is lost
    assert order_problems(report, "network.endpoint-public", "imds.hop-limit", ignore)


def test_the_corpus_dir_is_the_simulators() -> None:
    assert all(sc.path.parent == CORPUS for sc in SINGLES)


# --------------------------------------------------------------------------------------------
# every composed pair, live (root)

_ROWS: Dict[str, Row] = {}
_TIMES: Dict[str, float] = {}


@pytest.mark.simulator
@pytest.mark.parametrize("name", [p.name for p in COMPOSED])
def test_pair_lists_the_cause_first(name: str) -> None:
    from tests.hostkit import validate_report
    from tests.simulator.runner import run_scenario

    pair = next(p for p in COMPOSED if p.name == name)
    sc = pair.composed
    assert sc is not None
    t0 = time.monotonic()
    res = run_scenario(sc)
    _TIMES[name] = time.monotonic() - t0
    if res.skipped:
        pytest.skip(res.skipped)
    assert res.error is None, res.error
    validate_report(res.report)
    assert not res.leaked_secrets, "an IMDS credential reached gd-doctor's output"
    ignore = list(sc.spec.get("simulator_findings", ()))
    # The judge: verdict, exit code, the first cause on top, no unexplained failure, no false
    # alarm. The other cause is an expected problem (also on a healthy host with two warnings),
    # so it is left to order_problems, which must find it after the first or folded under it.
    verdict = judge(sc.expect, res.report, res.exit_code, ignore=[*ignore, pair.other])
    verdict.problems += order_problems(res.report, pair.first, pair.other, ignore)
    _ROWS[name] = Row(name, "(pair)", "live", verdict)
    found = [
        (f["id"], [c["id"] for c in f.get("consequences", [])])
        for f in res.report.get("findings", [])
        if f.get("severity") in ("fail", "warn")
    ]
    assert verdict.passed, table([_ROWS[name]]) + f"\nproblems: {found}\nagent: {res.agent_state}"


@pytest.mark.simulator
def test_pairs_summary() -> None:
    """Runs last in this module: the table of every pair that ran and what it cost."""
    rows: List[Row] = [_ROWS[p.name] for p in COMPOSED if p.name in _ROWS]
    if not rows:
        pytest.skip("no pair ran (run the whole module with -m simulator)")
    refused = [f"  {p.name}: {p.why_not}" for p in PAIRS if p.composed is None]
    print("\n" + table(rows))
    print(f"{len(_TIMES)} pairs in {sum(_TIMES.values()):.0f}s; refused ({len(refused)}):")
    print("\n".join(refused))
    assert all(r.judgement is not None and r.judgement.passed for r in rows), table(rows)
