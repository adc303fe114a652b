"""The console's view: ``aws guardduty list-coverage`` output (streamed), GuardDuty's coverage
status-change events as JSON lines, and the list of instances GuardDuty manages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

from gd_doctor.fleet.jsonstream import StreamError, iter_array_items
from gd_doctor.fleet.model import (
    BadInput,
    CoverageItem,
    CoverageRecord,
    Kind,
    OtherResource,
    Reason,
)
from gd_doctor.fleet.values import (
    REGION_IN_NAME,
    clean,
    field,
    obj,
    parse_time,
    row_of_issue,
    shown,
)

# ---------------------------------------------------------------------------------------------
# the console's view


def region_of_coverage_file(path: Path) -> Optional[str]:
    """The Region named in a coverage file's name (``coverage-us-east-1.json``), if any."""
    m = REGION_IN_NAME.search(path.name)
    return m.group(1) if m else None


def _resource(res: Any, region: Optional[str], src: str, kind: str) -> CoverageItem:
    if not isinstance(res, dict):
        return BadInput(src, Reason.RESOURCE_BAD, "a resource that is not an object", "resource")
    details = obj(field(res, "ResourceDetails"))
    rtype = clean(field(details, "ResourceType"), 20) or ""
    status = (clean(field(res, "CoverageStatus"), 20) or "").upper()
    issue = clean(field(res, "Issue"), 2000) or ""
    account = clean(field(res, "AccountId"), 12)
    if rtype in ("EKS", "ECS"):
        rid = clean(field(res, "ResourceId"), 200) or "?"
        return OtherResource(rtype, account, region, rid, status, issue, kind)
    if rtype != "EC2":
        return BadInput(src, Reason.RESOURCE_TYPE, rtype or "no ResourceType", "resource")
    ec2 = obj(field(details, "Ec2InstanceDetails"))
    instance = clean(field(ec2, "InstanceId"), 40) or clean(field(res, "ResourceId"), 40)
    if not instance:
        return BadInput(src, Reason.RESOURCE_NO_ID, "", "resource")
    if status not in ("HEALTHY", "UNHEALTHY"):
        return BadInput(
            src, Reason.RESOURCE_BAD, f"CoverageStatus {status or 'missing'}", "resource"
        )
    return CoverageRecord(
        instance_id=instance,
        account_id=account,
        region=region,
        status=status,
        issue=issue,
        row=row_of_issue(issue) if status == "UNHEALTHY" else None,
        updated=parse_time(field(res, "UpdatedAt")),
        management_type=clean(field(ec2, "ManagementType"), 20),
        agent_version=clean(field(obj(field(ec2, "AgentDetails")), "Version"), 40),
        instance_type=clean(field(ec2, "InstanceType"), 40),
        kind=kind,
        source=src,
    )


def read_coverage_file(path: Path, region: Optional[str]) -> Iterator[CoverageItem]:
    """Every resource of one ``list-coverage`` output file (one or more pages, streamed)."""
    src = shown(path)
    try:
        fh = open(path, encoding="utf-8", errors="strict")
    except OSError as exc:
        yield BadInput(src, Reason.UNREADABLE, exc.strerror or str(exc), "coverage-file")
        return
    seen = 0
    try:
        with fh:
            for _key, res in iter_array_items(fh, ("Resources", "resources")):
                seen += 1
                yield _resource(res, region, src, Kind.LIST_COVERAGE)
    except StreamError as exc:
        if str(exc) == "empty":
            yield BadInput(src, Reason.EMPTY_FILE, "", "coverage-file")
        elif exc.truncated:
            yield BadInput(
                src, Reason.COVERAGE_TRUNCATED, f"after {seen} resources: {exc}", "coverage-file"
            )
        else:
            yield BadInput(src, Reason.COVERAGE_NOT_JSON, str(exc)[:120], "coverage-file")
        return
    except UnicodeDecodeError:
        yield BadInput(src, Reason.BINARY, "not UTF-8", "coverage-file")
        return
    except OSError as exc:
        yield BadInput(src, Reason.UNREADABLE, exc.strerror or str(exc), "coverage-file")
        return
    if seen == 0:
        yield BadInput(
            src, Reason.NOT_COVERAGE, "no Resources array (or an empty one)", "coverage-file"
        )


EVENT_TYPES = ("GuardDuty Runtime Protection Unhealthy", "GuardDuty Runtime Protection Healthy")


def read_events_file(path: Path) -> Iterator[CoverageItem]:
    """GuardDuty coverage status-change events from EventBridge, one JSON event per line."""
    src = shown(path)
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        yield BadInput(src, Reason.UNREADABLE, exc.strerror or str(exc), "event-file")
        return
    with fh:
        try:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{src}:{n}"
                try:
                    ev = json.loads(line)
                except ValueError:
                    yield BadInput(where, Reason.EVENT_NOT_JSON, "", "event")
                    continue
                yield _event(ev, where)
        except OSError as exc:
            yield BadInput(src, Reason.UNREADABLE, exc.strerror or str(exc), "event-file")


def _event(ev: Any, where: str) -> CoverageItem:
    if (
        not isinstance(ev, dict)
        or ev.get("source") != "aws.guardduty"
        or ev.get("detail-type") not in EVENT_TYPES
    ):
        return BadInput(where, Reason.NOT_AN_EVENT, "", "event")
    detail = obj(ev.get("detail"))
    res = {
        "AccountId": detail.get("resourceAccountId") or ev.get("account"),
        "CoverageStatus": detail.get("currentStatus")
        or ("UNHEALTHY" if ev["detail-type"].endswith("Unhealthy") else "HEALTHY"),
        "Issue": detail.get("issue"),
        "UpdatedAt": detail.get("lastUpdatedAt") or ev.get("time"),
        "ResourceDetails": detail.get("resourceDetails"),
    }
    ec2 = obj(obj(detail.get("resourceDetails")).get("ec2InstanceDetails"))
    res["ResourceId"] = ec2.get("instanceId")
    region = clean(ev.get("region"), 32)
    item = _resource(res, region, where, Kind.EVENT)
    if isinstance(item, BadInput):
        return BadInput(item.source, item.reason, item.detail, "event")
    return item


def read_managed_file(path: Path) -> Tuple[List[str], Optional[BadInput]]:
    """Instance ids of ``aws ssm describe-instance-information`` output (the SSM-managed ones)."""
    ids: List[str] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for _k, item in iter_array_items(fh, ("InstanceInformationList",)):
                iid = clean(field(obj(item), "InstanceId"), 40)
                if iid:
                    ids.append(iid)
    except (OSError, UnicodeDecodeError, StreamError) as exc:
        return ids, BadInput(str(path), Reason.NOT_JSON, str(exc)[:120])
    return ids, None
