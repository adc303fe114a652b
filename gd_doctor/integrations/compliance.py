"""The items of ``aws ssm put-compliance-items`` for compliance type ``Custom:GdDoctor``.

``--compliance FILE`` writes the JSON list that the command's ``--items`` takes
(``ComplianceItemEntry``: Id, Title, Severity, Status, Details); the Run Command document then
runs::

    aws ssm put-compliance-items --resource-id <instance-id> --resource-type ManagedInstance \\
        --compliance-type Custom:GdDoctor --upload-type COMPLETE \\
        --execution-summary ExecutionTime=<time>,ExecutionId=<run id>,ExecutionType=Command \\
        --items file://FILE

One item for the overall verdict and one per finding. Limits (SSM model): at most 10,000 items,
Id at most 100 characters, Title at most 500, Details values at most 4,096 (a map of strings).
``UploadType COMPLETE`` replaces the previous run's items, so a fixed cause disappears.
"""

from __future__ import annotations

import json
from typing import Dict, List

from gd_doctor.integrations import TYPE_NAME
from gd_doctor.integrations.common import capture_time
from gd_doctor.knowledge import all_coverage_issues
from gd_doctor.model import Finding, Report, Severity, Verdict
from gd_doctor.redact import redact

MAX_ITEMS = 10_000
MAX_TITLE = 500
MAX_DETAIL = 4096

# A finding's severity as SSM Compliance words it: a FAIL leaves the instance unmonitored.
SEVERITY = {Severity.FAIL: "HIGH", Severity.WARN: "MEDIUM", Severity.INFO: "INFORMATIONAL"}
VERDICT_SEVERITY = {
    Verdict.HEALTHY: "INFORMATIONAL",
    Verdict.UNHEALTHY: "CRITICAL",
    Verdict.UNKNOWN: "MEDIUM",
}


def _details(pairs: Dict[str, str]) -> Dict[str, str]:
    return {k: redact(v)[:MAX_DETAIL] for k, v in pairs.items() if v}


def _finding_item(f: Finding) -> Dict[str, object]:
    row = all_coverage_issues().get(f.issue_id) if f.issue_id else None
    return {
        "Id": f.finding_id[:100],
        "Title": redact(f.title)[:MAX_TITLE],
        "Severity": SEVERITY[f.severity],
        # Notes (INFO) say what the host cannot see; they do not make it non-compliant.
        "Status": "COMPLIANT" if f.severity == Severity.INFO else "NON_COMPLIANT",
        "Details": _details(
            {
                "IssueRow": f"{row.number} {row.id}" if row else "",
                "IssueType": row.type if row else "",
                "IssueMessage": row.message if row else "",
                "Evidence": f.evidence[0] if f.evidence else "",
                "Fix": f.steps[0] if f.steps else "",
            }
        ),
    }


def items(report: Report) -> List[Dict[str, object]]:
    """The ``--items`` list: the verdict first, then every finding."""
    verdict: Dict[str, object] = {
        "Id": "gd-doctor.verdict",
        "Title": f"GuardDuty Runtime Monitoring host diagnosis: {report.verdict.value}",
        "Severity": VERDICT_SEVERITY[report.verdict],
        "Status": "COMPLIANT" if report.verdict == Verdict.HEALTHY else "NON_COMPLIANT",
        "Details": _details(
            {
                "Verdict": report.verdict.value,
                "Reason": report.verdict_reason or "",
                "CheckedAt": capture_time(report),
                "ToolVersion": report.tool_version,
            }
        ),
    }
    entries = [verdict, *(_finding_item(f) for f in report.findings)][:MAX_ITEMS]
    return _unique_ids(entries)


def _unique_ids(entries: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """Item ids must be unique: a finding that occurs more than once (one unexplained failure
    per check) gets ``#2``, ``#3`` ... after its first occurrence."""
    seen: Dict[str, int] = {}
    for entry in entries:
        base = str(entry["Id"])
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:
            entry["Id"] = f"{base[:95]}#{seen[base]}"
    return entries


def execution_summary(report: Report) -> Dict[str, str]:
    """``--execution-summary`` of the same run (ExecutionTime as the run's start)."""
    return {"ExecutionTime": capture_time(report), "ExecutionType": "Command"}


def render_items(report: Report) -> str:
    return json.dumps(items(report), indent=2, ensure_ascii=False) + "\n"


COMPLIANCE_TYPE = TYPE_NAME
