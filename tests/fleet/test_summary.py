"""``fleet summary`` over the fixture fleet, checked against what the plan of the fleet implies.

The expected values are computed here from the plan (fleetkit.plan: which real report each
instance got, what the console says, when) by a separate, simple implementation, not read back
from the code under test.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest

from gd_doctor.fleet.render import CSV_COLUMNS, iter_csv, render_text, write_csv
from gd_doctor.fleet.summary import NOT_MANAGED_NOTE, CoverageArg, Inputs, build_summary, collect
from gd_doctor.fleet.values import row_of_issue
from gd_doctor.model import Severity
from tests.fleet.fleetkit import REPO, FleetLayout, Instance

SCHEMA = REPO / "gd_doctor" / "fleet" / "summary.schema.json"


def _all_inputs(fleet: FleetLayout, events: bool = True) -> Inputs:
    return Inputs(
        reports=[fleet.s3, fleet.s3_text, fleet.plain, fleet.datasync, fleet.bad],
        coverage=[CoverageArg.parse(a) for a in fleet.coverage_args()],
        events=[fleet.events] if events else [],
    )


@pytest.fixture(scope="module")
def result(fleet: FleetLayout) -> Tuple[Dict[str, Any], List[Dict[str, str]], str]:
    store = collect(_all_inputs(fleet))
    try:
        summary = build_summary(store, limit=1000)
        out = io.StringIO()
        write_csv(store, out)
    finally:
        store.close()
    return summary, list(iter_csv(out.getvalue())), render_text(summary)


# -- the plan's own answers --------------------------------------------------------------------


def _events(fleet: FleetLayout) -> Dict[str, Tuple[str, str, datetime]]:
    """instance -> (status, issue, time) of the newest event (read as plain JSON here)."""
    out: Dict[str, Tuple[str, str, datetime]] = {}
    for line in fleet.events.read_text().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("source") != "aws.guardduty":
            continue
        d = ev["detail"]
        at = datetime.fromisoformat(d["lastUpdatedAt"].replace("Z", "+00:00"))
        iid = d["resourceDetails"]["ec2InstanceDetails"]["instanceId"]
        if iid not in out or out[iid][2] < at:
            out[iid] = (d["currentStatus"], d["issue"], at)
    return out


def _console(fleet: FleetLayout, inst: Instance) -> Optional[Tuple[str, str, datetime]]:
    ev = _events(fleet).get(inst.instance_id)
    if inst.console is None:
        return ev
    base = (inst.console[0], inst.console[1], inst.console_at)
    return ev if ev and ev[2] > inst.console_at else base


def _host(inst: Instance) -> Optional[Tuple[str, Optional[str], List[str]]]:
    """(verdict, top row, rows of FAIL/WARN findings) of the instance's report, if any."""
    if inst.report is None:
        return None
    rows: List[str] = []
    top: Optional[str] = None
    for sev in (Severity.FAIL, Severity.WARN):
        for f in inst.report.findings:
            if f.severity == sev:
                if top is None and f.severity == Severity.FAIL:
                    top = f.issue_id
                if f.issue_id and f.issue_id not in rows:
                    rows.append(f.issue_id)
    if top is None:
        top = next((f.issue_id for f in inst.report.findings if f.severity == Severity.WARN), None)
    return inst.report.verdict.value, top, rows


def _agreement(fleet: FleetLayout, inst: Instance) -> str:
    c, h = _console(fleet, inst), _host(inst)
    if c is None:
        return "not in console"
    if h is None:
        return "no host report"
    status, issue, _ = c
    verdict, _top, rows = h
    if status == "HEALTHY":
        return {"healthy": "agree", "unhealthy": "console healthy, host unhealthy"}.get(
            verdict, "console healthy, host unknown"
        )
    if verdict == "healthy":
        return "console unhealthy, host healthy"
    if verdict == "unknown":
        return "console unhealthy, host unknown"
    return "agree" if row_of_issue(issue) in rows else "rows differ"


# -- tests -------------------------------------------------------------------------------------


def test_json_validates_against_the_shipped_schema(result: Any) -> None:
    import jsonschema

    summary, _, _ = result
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(json.dumps(summary)), schema)


def test_totals_add_up_to_the_files_and_resources_read(fleet: FleetLayout, result: Any) -> None:
    summary, _, _ = result
    i = summary["inputs"]
    h = i["host_files"]
    files = sum(1 for top in _all_inputs(fleet).reports for p in top.rglob("*") if p.is_file())
    assert h["total"] == files
    assert h["total"] == h["reports"] + sum(h["ignored"].values()) + sum(h["bad"].values())
    assert h["reports"] == h["latest"] + h["superseded"]
    c = i["coverage"]
    resources = sum(
        len(json.loads(CoverageArg.parse(a).path.read_text())["Resources"])
        for a in fleet.coverage_args()
    )
    assert (
        c["resources"] == resources == c["ec2"] + sum(c["other"].values()) + sum(c["bad"].values())
    )
    e = i["events"]
    lines = sum(1 for line in fleet.events.read_text().splitlines() if line.strip())
    assert e["lines"] == lines == e["ec2"] + e["other"] + sum(e["bad"].values())
    assert h["bad"] == {
        "binary file": 1,
        "empty file": 1,
        "not JSON": 2,
        "truncated JSON": 1,
        "unsupported schema_version": 1,
    }
    assert c["other"] == {"ECS": 1, "EKS": 1}
    assert {(o["resource_type"], o["status"]) for o in summary["other_resources"]} == {
        ("EKS", "UNHEALTHY"),
        ("ECS", "HEALTHY"),
    }


def test_latest_report_wins_and_duplicates_are_counted(fleet: FleetLayout, result: Any) -> None:
    summary, rows, _ = result
    dups = {i.instance_id: i for i in fleet.instances if i.older_duplicate}
    assert summary["duplicates"]["instances"] == len(dups)
    assert summary["duplicates"]["superseded_reports"] == len(dups)
    by_id = {r["instance_id"]: r for r in rows}
    for iid, inst in dups.items():
        assert by_id[iid]["report_time"] == inst.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert "/publishReport/" in by_id[iid]["source"]  # the newer command's JSON step
    # the text step beside each JSON step is the same run, not a duplicate
    assert summary["inputs"]["host_files"]["ignored"][
        "another step of the same Run Command invocation"
    ] == sum(1 for i in fleet.instances if i.layout == "s3" and i.report is not None)


def test_stale_reports(fleet: FleetLayout, result: Any) -> None:
    summary, _, _ = result
    expected = set()
    for inst in fleet.instances:
        c = _console(fleet, inst)
        if c and inst.report is not None and inst.started_at < c[2]:
            expected.add(inst.instance_id)
    got = {i["instance_id"] for i in summary["stale"]["instances"]}
    assert got == expected and len(expected) >= 2


def test_coverage_percent_per_account_and_region(fleet: FleetLayout, result: Any) -> None:
    summary, _, _ = result
    want: Dict[Tuple[Optional[str], Optional[str]], List[int]] = {}
    for inst in fleet.instances:
        c, h = _console(fleet, inst), _host(inst)
        key = (inst.account_id if c or inst.with_account else None, inst.region)
        if c is None and inst.layout in ("s3", "s3-text") and not inst.with_account:
            key = (None, inst.region)
        slot = want.setdefault(key, [0, 0, 0, 0])
        if c:
            slot[0] += c[0] == "HEALTHY"
            slot[1] += 1
        if h:
            slot[2] += h[0] == "healthy"
            slot[3] += 1
    got = {
        (r["account_id"], r["region"]): [
            r["console"]["healthy"],
            r["console"]["total"],
            r["host"]["healthy"],
            r["host"]["total"],
        ]
        for r in summary["coverage"]["by_account_region"]
    }
    assert got == want
    overall = summary["coverage"]["overall"]["console"]
    assert overall["percent"] == round(100.0 * overall["healthy"] / overall["total"], 1)


def test_console_issue_counts_and_order(fleet: FleetLayout, result: Any) -> None:
    summary, _, text = result
    want: Counter[Optional[str]] = Counter()
    for inst in fleet.instances:
        c = _console(fleet, inst)
        if c and c[0] == "UNHEALTHY":
            want[row_of_issue(c[1])] += 1
    got = {e["row"]: e["count"] for e in summary["console_issues"]}
    assert got == dict(want)
    counts = [e["count"] for e in summary["console_issues"]]
    assert counts == sorted(counts, reverse=True)  # worst first
    unrecognised = [e for e in summary["console_issues"] if e["row"] is None]
    assert unrecognised and unrecognised[0]["issue"] == "Something new happened"
    # text: the same order, each group with its fix
    pos = [
        text.index(f"row {e['number']} {e['row']}:") for e in summary["console_issues"] if e["row"]
    ]
    assert pos == sorted(pos)
    section = text.split("Console issues")[1].split("\n\n")[0]
    assert section.count("fix: ") == len(summary["console_issues"])


def test_host_causes(fleet: FleetLayout, result: Any) -> None:
    summary, _, _ = result
    want: Counter[Tuple[Optional[str], Optional[str]]] = Counter()
    for inst in fleet.instances:
        if inst.report is None or inst.report.verdict.value == "healthy":
            continue
        top = next(
            (
                f
                for s in (Severity.FAIL, Severity.WARN)
                for f in inst.report.findings
                if f.severity == s
            ),
            None,
        )
        want[(top.finding_id if top else None, top.issue_id if top else None)] += 1
    got = {(e["finding"], e["row"]): e["count"] for e in summary["host_causes"]}
    assert got == dict(want)
    assert all(e["fix"] for e in summary["host_causes"])


def test_disagreement_table_instance_by_instance(fleet: FleetLayout, result: Any) -> None:
    summary, _, text = result
    want: Dict[str, Set[str]] = {}
    for inst in fleet.instances:
        want.setdefault(_agreement(fleet, inst), set()).add(inst.instance_id)
    assert {k: len(v) for k, v in want.items()} == summary["agreement"]["counts"]
    for g in summary["agreement"]["disagreements"]:
        assert {i["instance_id"] for i in g["instances"]} == want[g["class"]]
    for cls in (
        "console healthy, host unhealthy",
        "console unhealthy, host healthy",
        "rows differ",
    ):
        assert want.get(cls), cls  # the plan stages each kind at least once
        assert f"  {cls}: {len(want[cls])}" in text


def test_unhealthy_without_report_grouped_with_the_ssm_explanation(
    fleet: FleetLayout, result: Any
) -> None:
    summary, _, text = result
    want: Counter[Optional[str]] = Counter()
    for inst in fleet.instances:
        c = _console(fleet, inst)
        if c and c[0] == "UNHEALTHY" and inst.report is None:
            want[row_of_issue(c[1])] += 1
    groups = {g["row"]: g for g in summary["without_host_report"]}
    assert {k: g["count"] for k, g in groups.items()} == dict(want)
    ssm = groups["waiting-for-ssm"]
    assert ssm["likely_not_ssm_managed"] and ssm["note"] == NOT_MANAGED_NOTE
    assert "not SSM managed" in text and "Run Command could not run gd-doctor" in text
    assert not groups["agent-disconnected"]["likely_not_ssm_managed"]


def test_csv_one_row_per_instance_read_back(fleet: FleetLayout, result: Any) -> None:
    _, rows, _ = result
    assert list(rows[0].keys()) == list(CSV_COLUMNS)
    by_id = {r["instance_id"]: r for r in rows}
    assert len(by_id) == len(rows) == len({i.instance_id for i in fleet.instances})
    for inst in fleet.instances:
        r = by_id[inst.instance_id]
        c, h = _console(fleet, inst), _host(inst)
        assert r["console_status"] == (c[0] if c else "")
        assert r["host_verdict"] == (h[0] if h else "")
        assert r["agreement"] == _agreement(fleet, inst)
        if c:
            assert r["account_id"] == inst.account_id and r["region"] == inst.region
        if h and h[0] == "unhealthy":
            assert r["top_finding"] and r["first_fix"]
        elif h and h[0] == "unknown":
            # an EKS or Bottlerocket root can be unknown with no problem listed: the lead
            # is then the reason it is not proven healthy
            assert r["first_fix"], r
            assert r["top_finding"] or r["first_fix"].startswith("not proven healthy: ")


def test_empty_inputs_still_add_up(empty_dir: Path) -> None:
    store = collect(Inputs(reports=[empty_dir]))
    s = build_summary(store)
    store.close()
    assert s["inputs"]["host_files"]["total"] == 0
    assert s["inputs"]["directories"]["bad"] == {"empty directory": 1}
    assert s["coverage"]["overall"]["console"]["percent"] is None


def _peak_rss_kib(args: List[str]) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gd_doctor", "fleet", "summary", *args, "--format", "json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=str(REPO),
    )
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) in (0, 1)
    return int(usage.ru_maxrss)


def test_memory_does_not_grow_with_the_number_of_reports(
    fleet: FleetLayout, tmp_path: Path
) -> None:
    """2,000 reports need no more memory than 200 (within the SQLite page cache's few MiB)."""
    sample = next(p for p in fleet.s3.rglob("stdout") if p.read_bytes()[:1] == b"{")
    text = sample.read_text()
    iid = json.loads(text)["host"]["instance_id"]
    for n in range(2000):
        d = tmp_path / ("small" if n < 200 else "big") / f"i-{n:017x}"
        d.mkdir(parents=True)
        (d / "r.json").write_text(text.replace(iid, f"i-{n:017x}"))
    for n in range(200):  # the small set is part of the big one
        d = tmp_path / "big" / f"i-{n:017x}"
        d.mkdir(parents=True)
        (d / "r.json").write_text(text.replace(iid, f"i-{n:017x}"))
    small = _peak_rss_kib([str(tmp_path / "small")])
    big = _peak_rss_kib([str(tmp_path / "big")])
    assert big - small < 8 * 1024, (small, big)
