"""The SSM custom inventory item ``Custom:GdDoctor``.

Written to ``/var/lib/amazon/ssm/<instance-id>/inventory/custom/GdDoctor.json``, where the SSM
Agent's ``AWS-GatherSoftwareInventory`` association picks it up (at most every 30 minutes) and
Resource Data Sync copies it to S3 as
``<prefix>/Custom:GdDoctor/accountid=<id>/region=<r>/resourcetype=ManagedInstanceInventory/<instance-id>.json``.

AWS's limits (SSM PutInventory model and the custom inventory page): Content entries hold at
most 50 attributes, keys of 1-64 characters, string values of at most 4,096 characters; keys
keep the same case across versions (Athena columns are built from them). The attribute names
below are a stable contract: add new ones, never rename. They are lower-case snake_case, as
Athena shows them (its columns are case-insensitive), and ``gd-doctor fleet`` and the Athena
table in ``gd_doctor/fleet/athena/tables/gd_doctor_inventory.sql`` read them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Dict, Optional

from gd_doctor.frozen import dataclass
from gd_doctor.integrations import TYPE_NAME
from gd_doctor.integrations.common import capture_time, top_finding, top_row
from gd_doctor.model import Report, Severity
from gd_doctor.patterns import lazy
from gd_doctor.redact import redact

SCHEMA_VERSION = "1.0"
FILE_NAME = "GdDoctor.json"
SSM_STATE = "/var/lib/amazon/ssm"
MAX_ATTRIBUTES = 50
MAX_KEY = 64
MAX_VALUE = 4096
_INSTANCE_ID = lazy(r"^(i-[0-9a-f]{8,17}|mi-[0-9a-f]{17})$")


def _text(value: object) -> str:
    return "" if value is None else str(value)


def content(report: Report, tool_version: Optional[str] = None) -> Dict[str, str]:
    """The item's one Content entry: flat string attributes, within AWS's limits."""
    h = report.host
    top = top_finding(report)
    row = top_row(report)
    attrs = {
        "verdict": report.verdict.value,
        "verdict_reason": _text(report.verdict_reason),
        "problem_count": str(sum(1 for f in report.findings if f.severity == Severity.FAIL)),
        "warning_count": str(sum(1 for f in report.findings if f.severity == Severity.WARN)),
        "top_finding": top.finding_id if top else "",
        "top_finding_title": top.title if top else "",
        "issue_number": str(row.number) if row else "",
        "row_id": row.id if row else "",
        "issue_type": row.type if row else "",
        "issue_message": row.message if row else "",
        "finding_ids": ",".join(f.finding_id for f in report.findings),
        "agent_version": _text(h.agent_version),
        "agent_unit_state": _text(h.agent_state),
        "management_type": _text(h.management_type),
        "ssm_agent_version": _text(h.ssm_agent_version),
        "kernel": _text(h.kernel),
        "os": _text(h.os),
        "architecture": _text(h.arch),
        "instance_id": _text(h.instance_id),
        "account_id": _text(h.account_id),
        "region": _text(h.region),
        "tool_version": tool_version or report.tool_version,
        "knowledge_date": report.knowledge_date,
        "checked_at": capture_time(report),
        "budget_exhausted": "true" if report.budget_exhausted else "false",
    }
    assert len(attrs) <= MAX_ATTRIBUTES and all(0 < len(k) <= MAX_KEY for k in attrs)
    return {k: redact(v)[:MAX_VALUE] for k, v in attrs.items()}


def item(report: Report) -> Dict[str, object]:
    """The whole file: ``{"SchemaVersion", "TypeName", "Content"}``."""
    return {"SchemaVersion": SCHEMA_VERSION, "TypeName": TYPE_NAME, "Content": content(report)}


@dataclass(frozen=True)
class Written:
    """Where the item went, or why nothing was written."""

    path: Optional[str]
    problem: Optional[str] = None


def inventory_dir(report: Report, override: Optional[Path]) -> Written:
    """The directory the item belongs in: ``--inventory-dir``, or the SSM Agent's own."""
    if override is not None:
        if not override.is_dir():
            return Written(None, f"inventory directory {override} does not exist")
        return Written(str(override))
    iid = report.host.instance_id
    if not iid or not _INSTANCE_ID.match(iid):
        return Written(None, "the instance id is unknown (no identity document): no inventory")
    base = Path(SSM_STATE) / iid
    if not base.is_dir():
        return Written(None, f"{base} does not exist (no SSM Agent state for {iid})")
    return Written(str(base / "inventory" / "custom"))


def write_inventory(report: Report, override: Optional[Path] = None) -> Written:
    """Write the item atomically (a temporary file in the same directory, then rename), so the
    SSM Agent never reads half a file; a second run replaces the first."""
    where = inventory_dir(report, override)
    if where.path is None:
        return where
    directory = Path(where.path)
    try:
        if override is None:  # under the SSM Agent's own state, inventory/custom/ may be new
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".gd-doctor-", suffix=".tmp", dir=str(directory))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(item(report), fh, ensure_ascii=False, sort_keys=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, directory / FILE_NAME)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        return Written(None, f"cannot write the inventory item in {directory}: {exc.strerror}")
    return Written(str(directory / FILE_NAME))
