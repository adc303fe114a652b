"""Helpers of the bundle tests: make a bundle of a host, replay it, compare the two reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from gd_doctor.bundle import Made, make_bundle, open_bundle, replay
from gd_doctor.checks.base import Check
from gd_doctor.host import Host
from gd_doctor.pipeline import Run
from gd_doctor.report.json import report_to_dict


def comparable(run: Run) -> Dict[str, Any]:
    """What must be equal between a run and its replay: verdict, findings (with evidence) and
    every row (status, summary, evidence lines, data)."""
    return comparable_doc(report_to_dict(run.report))


def comparable_doc(doc: Dict[str, Any]) -> Dict[str, Any]:
    """:func:`comparable` of a JSON report (a bundle's report.json, a replay's JSON)."""
    return {
        "verdict": doc["verdict"],
        "findings": [
            (f["id"], f.get("severity"), f.get("title"), tuple(f.get("evidence") or ()))
            for f in doc["findings"]
        ],
        "rows": [
            (
                c["id"],
                c["status"],
                c.get("summary"),
                tuple(c.get("evidence") or ()),
                json.dumps(c.get("data"), sort_keys=True, default=repr),
            )
            for c in doc["checks"]
        ],
    }


def bundle_and_replay(
    host: Host, out: Path, checks: Optional[Sequence[Check]] = None, **kw: Any
) -> Tuple[Made, Run]:
    made = make_bundle(host, out, checks=checks, **kw)
    with open_bundle(out) as b:
        again = replay(b, checks=checks)
    return made, again


def differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    out = [f"verdict {a['verdict']} != {b['verdict']}"] if a["verdict"] != b["verdict"] else []
    if a["findings"] != b["findings"]:
        out.append(f"findings {a['findings']} != {b['findings']}")
    for x, y in zip(a["rows"], b["rows"]):
        if x != y:
            out.append(f"row {x} != {y}")
    if len(a["rows"]) != len(b["rows"]):
        out.append("row count differs")
    return out
