"""The Athena SQL, run by DuckDB over the same JSON files, gives the counts of ``fleet summary``.

How the SQL is adapted (minimally) is documented in tests/fleet/athena_duckdb.py.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from gd_doctor.fleet.summary import CoverageArg, Inputs, build_summary, collect
from gd_doctor.knowledge import HERE as KNOWLEDGE
from gd_doctor.knowledge import coverage_issues
from tests.fleet import athena_duckdb as ad
from tests.fleet.fleetkit import FleetLayout

duckdb = pytest.importorskip("duckdb")

# Fields the reports table reads that the report schema gains with issue 12 (host.account_id):
# NULL in today's reports, filled in by the next schema version.
FUTURE_FIELDS = {"host.account_id"}


def _coverage_files(fleet: FleetLayout) -> List[Tuple[str, Path]]:
    out = []
    for arg in fleet.coverage_args():
        c = CoverageArg.parse(arg)
        assert c.region
        out.append((c.region, c.path))
    return out


def _summary(fleet: FleetLayout, reports: List[Path]) -> Dict[str, Any]:
    inputs = Inputs(reports=reports, coverage=[CoverageArg.parse(a) for a in fleet.coverage_args()])
    store = collect(inputs)
    try:
        return build_summary(store, limit=1000)
    finally:
        store.close()


def _connect(fleet: FleetLayout, tmp_path: Path, host: str) -> Any:
    con = ad.connect()
    if host == "reports":
        ad.create_table(con, "gd_doctor_reports.sql", ad.json_files([fleet.s3]))
        ad.run_sql_file(con, "views/gd_doctor_host_latest.sql")
    else:
        ad.create_table(con, "gd_doctor_inventory.sql", sorted(fleet.datasync.rglob("*.json")))
        ad.run_sql_file(con, "views/gd_doctor_host_latest_from_inventory.sql")
    ad.create_table(
        con, "gd_doctor_coverage.sql", ad.coverage_lines(_coverage_files(fleet), tmp_path / "cov")
    )
    ad.run_sql_file(con, "views/gd_doctor_console.sql")
    return con


@pytest.mark.parametrize("host", ["reports", "inventory"])
def test_queries_give_the_summary_counts(fleet: FleetLayout, tmp_path: Path, host: str) -> None:
    con = _connect(fleet, tmp_path, host)
    summary = _summary(fleet, [fleet.s3] if host == "reports" else [fleet.datasync])

    by_ar = {
        (r["account_id"], r["region"]): r
        for r in ad.run_sql_file(con, "queries/coverage_by_account_region.sql")
    }
    expected_ar = {
        (r["account_id"], r["region"]): r for r in summary["coverage"]["by_account_region"]
    }
    assert set(by_ar) == set(expected_ar)
    for key, r in expected_ar.items():
        got = by_ar[key]
        assert (got["console_healthy"], got["console_total"]) == (
            r["console"]["healthy"],
            r["console"]["total"],
        )
        assert (got["host_healthy"], got["host_total"]) == (
            r["host"]["healthy"],
            r["host"]["total"],
        )
        assert got["console_percent"] == r["console"]["percent"]
        assert got["host_percent"] == r["host"]["percent"]

    rows = {
        (r["row_id"], r["issue"]): r["instances"]
        for r in ad.run_sql_file(con, "queries/console_by_row.sql")
    }
    assert rows == {(e["row"], e["issue"]): e["count"] for e in summary["console_issues"]}

    causes = {
        (r["top_finding"], r["row_id"]): r["instances"]
        for r in ad.run_sql_file(con, "queries/host_by_cause.sql")
    }
    assert causes == {(e["finding"], e["row"]): e["count"] for e in summary["host_causes"]}
    assert causes  # the fixture fleet has unhealthy hosts

    without = {
        (r["row_id"], r["issue"]): r["instances"]
        for r in ad.run_sql_file(con, "queries/without_host_report.sql")
    }
    assert without == {(e["row"], e["issue"]): e["count"] for e in summary["without_host_report"]}

    if host == "reports":
        per = ad.run_sql_file(con, "queries/disagreements.sql")
        assert Counter(r["agreement"] for r in per) == Counter(summary["agreement"]["counts"])
        assert sum(1 for r in per if r["stale"]) == summary["stale"]["count"]
        listed = {
            i["instance_id"] for g in summary["agreement"]["disagreements"] for i in g["instances"]
        }
        assert {
            r["instance_id"]
            for r in per
            if r["agreement"] not in ("agree", "no host report", "not in console")
        } == listed


def test_report_columns_exist_in_the_report_schema() -> None:
    schema = json.loads((KNOWLEDGE / "report.schema.json").read_text())
    _, columns, _ = ad.parse_ddl((ad.ATHENA / "tables" / "gd_doctor_reports.sql").read_text())
    props = schema["properties"]

    def resolve(node: Dict[str, Any]) -> Dict[str, Any]:
        if "$ref" in node:
            return schema["$defs"][node["$ref"].split("/")[-1]]  # type: ignore[no-any-return]
        if node.get("type") == "array" and "items" in node:
            return resolve(node["items"])
        return node

    def check(prefix: str, fields: Dict[str, str], node: Dict[str, Any]) -> None:
        node = resolve(node)
        known = node.get("properties", {})
        for name, typ in fields.items():
            path = f"{prefix}.{name}"
            if path.lstrip(".") in FUTURE_FIELDS:
                continue
            if node.get("type") == "object" and not known:
                continue  # free-form (a check's data): any key may be read
            assert name in known, f"column {path.lstrip('.')} is not in report.schema.json"
            sub = ad.hive_fields(typ)
            if sub:
                check(path, sub, known[name])

    check("", dict(columns), {"type": "object", "properties": props})
    # and the other way round: the fields fleet's own reader uses are all columns
    names = dict(columns)
    for col in ("schema_version", "started_at", "verdict", "host", "findings", "checks"):
        assert col in names
    assert {"instance_id", "region", "os", "kernel"} <= set(ad.hive_fields(names["host"]))
    assert {"id", "severity", "issue_id", "steps"} <= set(ad.hive_fields(names["findings"]))


def test_console_view_has_every_row_pattern_of_the_knowledge_base() -> None:
    sql = (ad.ATHENA / "views" / "gd_doctor_console.sql").read_text()
    cases = re.findall(r"WHEN regexp_like\(norm, '(.*?)'\) THEN '([a-z0-9-]+)'", sql)
    empty = re.findall(r"WHEN norm = '' THEN '([a-z0-9-]+)'", sql)
    first_by_pattern: Dict[str, str] = {}
    for row in coverage_issues().values():
        first_by_pattern.setdefault(row.pattern, row.id)
    expected = [(p, i) for p, i in first_by_pattern.items() if p != "^$"]
    assert cases == expected
    assert empty == [first_by_pattern["^$"]]


def test_console_view_maps_issues_like_explain(tmp_path: Path) -> None:
    """The SQL fold of the issue text agrees with gd-doctor's own on every row's real message."""
    from gd_doctor.fleet.values import row_of_issue

    con = ad.connect()
    lines = []
    for n, row in enumerate(coverage_issues().values()):
        msg = row.message.replace("<vpcId>", "vpc-0a1b2c3d4e5f60718").replace(
            "<id>", "555555555555"
        )
        msg = msg.replace("<request-id>", "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111")
        lines.append(
            {
                "resourceid": f"i-{n:017x}",
                "accountid": "111122223333",
                "coveragestatus": "UNHEALTHY",
                "issue": msg,
                "updatedat": "2026-11-30T07:30:00.000000+00:00",
                "resourcedetails": {
                    "resourcetype": "EC2",
                    "ec2instancedetails": {"instanceid": f"i-{n:017x}"},
                },
            }
        )
    d = tmp_path / "region=us-east-1"
    d.mkdir()
    (d / "c.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    ad.create_table(con, "gd_doctor_coverage.sql", [d / "c.jsonl"])
    ad.run_sql_file(con, "views/gd_doctor_console.sql")
    got = dict(con.execute("SELECT instance_id, row_id FROM gd_doctor_console").fetchall())
    assert len(got) == len(lines)
    for line in lines:
        assert got[line["resourceid"]] == row_of_issue(line["issue"]), line["issue"]


def test_every_shipped_sql_file_is_package_data() -> None:
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"fleet/athena/*/*.sql"' in text and '"fleet/*.json"' in text
    files = sorted(p.relative_to(ad.ATHENA).parts[0] for p in ad.ATHENA.rglob("*.sql"))
    assert set(files) == {"tables", "views", "queries"}
