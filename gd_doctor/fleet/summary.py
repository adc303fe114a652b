"""``fleet summary``: read every input into a :class:`~.store.Store`, then roll it up.

The result is one JSON-ready dict (validated by ``summary.schema.json``); the text and CSV
renderers read it (and the store, for the CSV's one row per instance).

Coverage is computed as the console does (GuardDuty User Guide, "Assessing runtime coverage for
EC2"): healthy instances / all instances × 100, per account × Region and overall; the same
formula over the latest host report per instance (verdict healthy) stands beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from gd_doctor.fleet.console import (
    read_coverage_file,
    read_events_file,
    region_of_coverage_file,
)
from gd_doctor.fleet.inputs import read_host_inputs
from gd_doctor.fleet.model import Ignored
from gd_doctor.fleet.store import Store
from gd_doctor.fleet.values import ProgressFn, iso
from gd_doctor.knowledge import all_coverage_issues, finding_specs
from gd_doctor.patterns import lazy

SUMMARY_SCHEMA_VERSION = 1
_REGION_ARG = lazy(r"^([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2})=(.+)$")

NOT_MANAGED_NOTE = (
    "These instances are usually not SSM managed: that is why GuardDuty waits for the SSM "
    "notification, and why Run Command could not run gd-doctor on them. Check with "
    "'aws ssm describe-instance-information --filters Key=InstanceIds,Values=<id>'. Make them "
    "managed (SSM Agent installed and running, an instance profile with "
    "AmazonSSMManagedInstanceCore, a route to the ssm, ssmmessages and ec2messages endpoints), "
    "or install the GuardDuty agent with the package method; to diagnose them without SSM, run "
    "gd-doctor over SSH or from user data and add the reports here."
)
NO_REPORT_NOTE = (
    "No host report: run 'gd-doctor fleet targets' for the send-command invocations that "
    "gather them."
)


@dataclass(frozen=True)
class CoverageArg:
    """One ``--coverage [REGION=]FILE``: the Region may come from the name or the reports."""

    path: Path
    region: Optional[str]

    @classmethod
    def parse(cls, text: str) -> "CoverageArg":
        """``us-east-1=cov.json`` or ``cov.json`` (Region from the file name if it has one).

        >>> CoverageArg.parse("us-east-1=x.json")
        CoverageArg(path=PosixPath('x.json'), region='us-east-1')
        >>> CoverageArg.parse("dump/coverage-eu-west-2.json").region
        'eu-west-2'
        """
        m = _REGION_ARG.match(text)
        if m:
            return cls(Path(m.group(2)), m.group(1))
        path = Path(text)
        return cls(path, region_of_coverage_file(path))


@dataclass
class Inputs:
    """Everything ``fleet summary`` and ``fleet targets`` read."""

    reports: Sequence[Path] = ()
    coverage: Sequence[CoverageArg] = ()
    events: Sequence[Path] = ()
    warnings: List[str] = field(default_factory=list)


def collect(inputs: Inputs, progress: Optional[ProgressFn] = None) -> Store:
    """Stream every input into a new store and join the two views."""
    store = Store()
    for item in read_host_inputs(inputs.reports, progress):
        store.add_host(item)
    regions = store.report_regions()
    for arg in inputs.coverage:
        store.counts["coverage_files"] += 1
        region = arg.region
        if region is None:
            if len(regions) == 1:
                region = regions[0]
                inputs.warnings.append(
                    f"{arg.path}: no Region given; using the reports' only Region {region}"
                )
            else:
                inputs.warnings.append(
                    f"{arg.path}: no Region given (use --coverage REGION={arg.path}); its "
                    "resources take the Region of their host report, else 'unknown'"
                )
        for cov in read_coverage_file(arg.path, region):
            store.add_coverage(cov)
    for path in inputs.events:
        store.counts["event_files"] += 1
        for event in read_events_file(path):
            store.add_coverage(event)
    store.finish()
    return store


def _pct(healthy: int, total: int) -> Optional[float]:
    return round(100.0 * healthy / total, 1) if total else None


def _ratio(healthy: int, total: int) -> Dict[str, Any]:
    return {"healthy": healthy, "total": total, "percent": _pct(healthy, total)}


def _coverage(store: Store) -> Dict[str, Any]:
    console = {
        (a, r): (h, t)
        for a, r, h, t in store.rows(
            "SELECT account, region, SUM(status = 'HEALTHY'), COUNT(*) FROM j "
            "WHERE status IS NOT NULL GROUP BY account, region"
        )
    }
    host = {
        (a, r): (h, t)
        for a, r, h, t in store.rows(
            "SELECT account, region, SUM(verdict = 'healthy'), COUNT(*) FROM j "
            "WHERE verdict IS NOT NULL GROUP BY account, region"
        )
    }
    keys = sorted(set(console) | set(host), key=lambda k: (k[0] or "~", k[1] or "~"))
    rows = []
    for key in keys:
        ch, ct = console.get(key, (0, 0))
        hh, ht = host.get(key, (0, 0))
        rows.append(
            {
                "account_id": key[0],
                "region": key[1],
                "console": _ratio(ch, ct),
                "host": _ratio(hh, ht),
            }
        )

    def tot(d: Dict[Tuple[Any, Any], Tuple[int, int]], i: int) -> int:
        return sum(v[i] for v in d.values())

    return {
        "by_account_region": rows,
        "overall": {
            "console": _ratio(tot(console, 0), tot(console, 1)),
            "host": _ratio(tot(host, 0), tot(host, 1)),
        },
    }


def _row_info(row: Optional[str]) -> Dict[str, Any]:
    r = all_coverage_issues().get(row) if row else None
    return {
        "row": row,
        "number": r.number if r else None,
        "type": r.type if r else None,
        "message": r.message if r else None,
    }


def _row_fix(row: Optional[str]) -> Optional[str]:
    r = all_coverage_issues().get(row) if row else None
    if r is None or not r.steps:
        return None
    # Row 1's first step is "wait a few minutes"; the actionable one follows it.
    return r.steps[1] if row == "waiting-for-ssm" and len(r.steps) > 1 else r.steps[0]


def _console_issues(store: Store) -> List[Dict[str, Any]]:
    out = []
    for crow, issue, n, with_report in store.rows(
        "SELECT crow, CASE WHEN crow IS NULL THEN substr(issue, 1, 200) END, COUNT(*), "
        "SUM(verdict IS NOT NULL) FROM j WHERE status = 'UNHEALTHY' GROUP BY 1, 2"
    ):
        entry = _row_info(crow)
        entry.update(
            {
                "issue": issue if crow is None else None,
                "count": n,
                "with_host_report": with_report,
                "fix": _row_fix(crow)
                if crow
                else "Unrecognised issue: 'gd-doctor explain "
                "\"<issue>\"' shows the closest rows of AWS's table.",
            }
        )
        out.append(entry)
    out.sort(key=lambda e: (-e["count"], e["number"] or 99, e["issue"] or ""))
    return out


def _finding_fix(finding: Optional[str]) -> Optional[str]:
    spec = finding_specs().get(finding) if finding else None
    return spec.fix if spec else None


def _host_causes(store: Store) -> List[Dict[str, Any]]:
    out = []
    for finding, hrow, n, unknown, fix in store.rows(
        "SELECT finding, hrow, COUNT(*), SUM(verdict = 'unknown'), "
        # a step filled in by the host (JSON report) beats the knowledge base's template
        "COALESCE(MAX(CASE WHEN instr(fix, '{') = 0 THEN fix END), MAX(fix)) FROM j "
        "WHERE verdict IN ('unhealthy', 'unknown') GROUP BY 1, 2"
    ):
        entry = {"finding": finding, "count": n, "unknown_verdicts": unknown}
        entry.update(_row_info(hrow))
        entry["fix"] = fix or _finding_fix(finding) or _row_fix(hrow)
        out.append(entry)
    out.sort(key=lambda e: (-e["count"], e["finding"] or "~"))
    return out


def _facts(store: Store, column: str, limit: int) -> List[Dict[str, Any]]:
    assert column in ("os", "kernel", "agent")
    out = []
    for value, h, u, k, n in store.rows(
        f"SELECT {column}, SUM(verdict = 'healthy'), SUM(verdict = 'unhealthy'), "
        f"SUM(verdict = 'unknown'), COUNT(*) FROM j WHERE verdict IS NOT NULL "
        f"GROUP BY 1 ORDER BY 5 DESC, 1 LIMIT ?",
        (limit,),
    ):
        out.append({"value": value, "healthy": h, "unhealthy": u, "unknown": k, "total": n})
    return out


_INSTANCE_COLS = (
    "instance, account, region, agreement, status, crow, issue, verdict, finding, hrow, ts, updated"
)


def _instance(row: Tuple[Any, ...]) -> Dict[str, Any]:
    (inst, acct, region, agreement, status, crow, issue, verdict, finding, hrow, ts, upd) = row
    return {
        "instance_id": inst,
        "account_id": acct,
        "region": region,
        "agreement": agreement,
        "console_status": status,
        "console_row": crow,
        "console_issue": issue[:200] if issue and not crow else None,
        "host_verdict": verdict,
        "top_finding": finding,
        "host_row": hrow,
        "report_time": iso(ts),
        "console_updated_at": iso(upd),
    }


DISAGREEMENTS = (
    "console healthy, host unhealthy",
    "console unhealthy, host healthy",
    "rows differ",
    "console healthy, host unknown",
    "console unhealthy, host unknown",
)


def _agreement(store: Store, limit: int) -> Dict[str, Any]:
    counts = dict(store.rows("SELECT agreement, COUNT(*) FROM j GROUP BY 1"))
    groups = []
    for cls in DISAGREEMENTS:
        n = counts.get(cls, 0)
        if not n:
            continue
        rows = store.rows(
            f"SELECT {_INSTANCE_COLS} FROM j WHERE agreement = ? "
            "ORDER BY account, region, instance LIMIT ?",
            (cls, limit),
        )
        groups.append(
            {
                "class": cls,
                "count": n,
                "instances": [_instance(r) for r in rows],
                "not_shown": max(0, n - limit),
            }
        )
    return {"counts": counts, "disagreements": groups}


def _without_report(store: Store, limit: int) -> List[Dict[str, Any]]:
    out = []
    for crow, issue, n in store.rows(
        "SELECT crow, CASE WHEN crow IS NULL THEN substr(issue, 1, 200) END, COUNT(*) FROM j "
        "WHERE status = 'UNHEALTHY' AND verdict IS NULL GROUP BY 1, 2"
    ):
        ids = [
            r[0]
            for r in store.rows(
                "SELECT instance FROM j WHERE status = 'UNHEALTHY' AND verdict IS NULL AND "
                "crow IS ? AND (crow IS NOT NULL OR substr(issue, 1, 200) = ?) "
                "ORDER BY account, region, instance LIMIT ?",
                (crow, issue, limit),
            )
        ]
        entry = _row_info(crow)
        entry.update(
            {
                "issue": issue,
                "count": n,
                "instances": ids,
                "not_shown": max(0, n - len(ids)),
                "likely_not_ssm_managed": crow == "waiting-for-ssm",
                "note": NOT_MANAGED_NOTE if crow == "waiting-for-ssm" else NO_REPORT_NOTE,
                "fix": _row_fix(crow),
            }
        )
        out.append(entry)
    out.sort(key=lambda e: (-e["count"], e["number"] or 99))
    return out


def _stale_and_duplicates(store: Store, limit: int) -> Dict[str, Any]:
    stale_n = store.scalar("SELECT COUNT(*) FROM j WHERE stale")
    stale = store.rows(
        f"SELECT {_INSTANCE_COLS} FROM j WHERE stale ORDER BY account, region, instance LIMIT ?",
        (limit,),
    )
    dup_n, dup_extra = store.rows("SELECT COUNT(*), COALESCE(SUM(n - 1), 0) FROM host WHERE n > 1")[
        0
    ]
    dups = store.rows(
        "SELECT instance, n, ts FROM host WHERE n > 1 ORDER BY n DESC, instance LIMIT ?", (limit,)
    )
    cdup_n, cdup_extra = store.rows(
        "SELECT COUNT(*), COALESCE(SUM(n - 1), 0) FROM cov WHERE n > 1"
    )[0]
    return {
        "stale": {
            "count": stale_n,
            "instances": [_instance(r) for r in stale],
            "not_shown": max(0, stale_n - len(stale)),
        },
        "duplicates": {
            "instances": dup_n,
            "superseded_reports": dup_extra,
            "examples": [
                {"instance_id": i, "reports": n, "latest_report_time": iso(ts)} for i, n, ts in dups
            ],
        },
        "console_duplicates": {"instances": cdup_n, "superseded_records": cdup_extra},
    }


def _bad(store: Store, what: Sequence[str]) -> Dict[str, int]:
    return {reason: n for (w, reason), n in sorted(store.bad.items()) if w in what}


def _inputs(store: Store) -> Dict[str, Any]:
    """What was read, so that every total adds up (tests check the sums)."""
    c = store.counts
    reports = c["host_records"]
    latest = store.scalar("SELECT COUNT(*) FROM host")
    res_bad = _bad(store, ("resource",))
    ev_bad = _bad(store, ("event",))
    other: Dict[str, int] = {}
    for (rtype, _status, _acct), n in store.other.items():
        other[rtype] = other.get(rtype, 0) + n
    ec2_cov = c["list-coverage_ec2"]
    return {
        "host_files": {
            "total": c["host_files"],
            "reports": reports,
            "latest": latest,
            "superseded": reports - latest,
            "ignored": dict(sorted(store.ignored.items())),
            "bad": _bad(store, ("file",)),
        },
        "directories": {"bad": _bad(store, ("directory",))},
        "coverage": {
            "files": c["coverage_files"],
            "files_bad": _bad(store, ("coverage-file",)),
            "resources": ec2_cov + c["list-coverage_other"] + sum(res_bad.values()),
            "ec2": ec2_cov,
            "other": {k: other[k] for k in sorted(other)},
            "bad": res_bad,
        },
        "events": {
            "files": c["event_files"],
            "files_bad": _bad(store, ("event-file",)),
            "lines": c["event_ec2"] + c["event_other"] + sum(ev_bad.values()),
            "ec2": c["event_ec2"],
            "other": c["event_other"],
            "bad": ev_bad,
        },
        "console_instances": store.scalar("SELECT COUNT(*) FROM cov"),
        "examples": [
            {"what": w, "reason": reason, "source": src, "detail": detail}
            for (w, reason), ex in sorted(store.examples.items())
            for src, detail in ex
        ],
    }


def _other_resources(store: Store) -> List[Dict[str, Any]]:
    out = []
    for (rtype, status, acct), n in sorted(store.other.items()):
        out.append(
            {
                "resource_type": rtype,
                "status": status or None,
                "account_id": acct or None,
                "count": n,
            }
        )
    return out


def build_summary(store: Store, *, limit: int = 50, warnings: Sequence[str] = ()) -> Dict[str, Any]:
    """Every roll-up of ``fleet summary`` as JSON-ready data (``summary.schema.json``)."""
    from gd_doctor import __version__
    from gd_doctor.knowledge import knowledge_date

    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "tool": {"name": "gd-doctor", "version": __version__, "knowledge_date": knowledge_date()},
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "limit": limit,
        "warnings": list(warnings)[:limit],
        "inputs": _inputs(store),
        "coverage": _coverage(store),
        "console_issues": _console_issues(store),
        "host_causes": _host_causes(store),
        "host_facts": {
            "os": _facts(store, "os", limit),
            "kernel": _facts(store, "kernel", limit),
            "agent_version": _facts(store, "agent", limit),
        },
        "agreement": _agreement(store, limit),
        "without_host_report": _without_report(store, limit),
        **_stale_and_duplicates(store, limit),
        "other_resources": _other_resources(store),
    }


__all__ = ["CoverageArg", "Ignored", "Inputs", "build_summary", "collect"]
