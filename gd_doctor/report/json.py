"""The JSON report: a pure function of the Report, validated by ``report.schema.json``."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Dict, List

from gd_doctor.knowledge import all_coverage_issues, coverage_issues
from gd_doctor.limits import MAX_REPORT_BYTES
from gd_doctor.model import CheckResult, Finding, Report, Status
from gd_doctor.redact import redact_value

SCHEMA_VERSION = 2


def _finding(f: Finding) -> Dict[str, Any]:
    row = all_coverage_issues().get(f.issue_id) if f.issue_id else None
    return {
        "id": f.finding_id,
        "title": f.title,
        "severity": f.severity.value,
        "rank": f.rank,
        "issue_id": f.issue_id,
        "issue_number": row.number if row else None,
        "issue_type": row.type if row else None,
        "issue_message": row.message if row else None,
        "issue_steps": list(row.steps) if row else [],
        "evidence": list(f.evidence),
        "steps": list(f.steps),
        "doc": f.doc or (row.doc if row else None),
        "checks": list(f.checks),
        "fix_step": f.fix_step,
        "decisive_evidence": f.decisive_evidence,
        "consequences": [_finding(c) for c in f.consequences],
    }


def _check(c: CheckResult) -> Dict[str, Any]:
    return {
        "id": c.check_id,
        "title": c.title,
        "category": c.category,
        "status": c.status.value,
        "summary": c.summary,
        "data": dict(c.data),
        "evidence": list(c.evidence),
        "skip_reason": c.skip_reason,
        "error": c.error,
        "duration_s": c.duration_s,
        "timed_out": c.timed_out,
    }


def _counts(checks: List[Dict[str, Any]]) -> Dict[str, int]:
    return {s.value: sum(1 for c in checks if c["status"] == s.value) for s in Status}


def report_to_dict(report: Report) -> Dict[str, Any]:
    """The report as JSON-ready data, secrets redacted."""
    checks = [_check(c) for c in report.checks]
    rows = coverage_issues()
    doc: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {
            "name": "gd-doctor",
            "version": report.tool_version,
            "knowledge_date": report.knowledge_date,
        },
        "started_at": report.started_at,
        "duration_s": report.duration_s,
        "budget_s": report.budget_s,
        "budget_exhausted": report.budget_exhausted,
        "verdict": report.verdict.value,
        "verdict_reason": report.verdict_reason,
        "host": asdict(report.host),
        "findings": [_finding(f) for f in report.findings],
        "summary": _counts(checks),
        "checks": checks,
        "control_plane_issues": [
            {"id": i, "number": rows[i].number, "type": rows[i].type, "message": rows[i].message}
            for i in report.control_plane_issues
        ],
    }
    redacted: Dict[str, Any] = redact_value(doc)
    return _within_size_cap(redacted)


def _size(doc: Any) -> int:
    return len(json.dumps(doc, ensure_ascii=False, default=str).encode("utf-8"))


def _within_size_cap(doc: Dict[str, Any], limit: int = MAX_REPORT_BYTES) -> Dict[str, Any]:
    """The report under ``limit`` bytes: the largest checks' ``data`` goes first (the findings,
    which carry the diagnosis, stay), and ``size_capped`` says so."""
    doc["size_capped"] = False
    if _size(doc) <= limit:
        return doc
    doc["size_capped"] = True
    checks = sorted(doc["checks"], key=_size, reverse=True)
    for check in checks:
        check["data"] = {"left_out": "the report's size cap"}
        check["evidence"] = check["evidence"][:3]
        if _size(doc) <= limit:
            return doc
    for f in doc["findings"]:
        f["evidence"] = f["evidence"][:3]
        for c in f["consequences"]:
            c["evidence"] = c["evidence"][:3]
    return doc


def render_json(report: Report) -> str:
    """The report as indented JSON text (UTF-8 safe, stable key order)."""
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False, default=str) + "\n"
