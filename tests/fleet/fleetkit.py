"""Fleet fixtures built from REAL gd-doctor reports, laid out in the exact AWS shapes.

The reports come from gd-doctor's own pipeline (``run_doctor``) over every fixture root in
``tests/fixtures/roots`` and over the simulator's root-kind scenarios that need no journal
export (built with the simulator's own ``build_root``). Each base report is then given an
identity (instance id, account, Region, report time) the way a live run gets it from IMDS, by
replacing ``Report.host``/``started_at`` before the real renderers (``report_to_dict``,
``render_ssm``) run; ``host.account_id`` is added to some JSON reports as issue 12 will write it.
Schema-version-1 reports are the version-2 dict taken back along the schema diff of commit
ecaad30 (``schema_version`` 1, no ``verdict_reason``, ``details`` in every check).

Layouts (``FleetLayout`` names each directory):

* ``s3/gd-doctor/<command-id>/<instance-id>/awsrunShellScript/{runGdDoctor,publishReport}/{stdout,stderr}``:
  Run Command output of the gd-doctor-run document (ssm text + JSON report), as ``aws s3 sync``
  leaves it; an older AWS-RunShellScript command (``0.awsrunShellScript``) gives duplicates;
* ``s3-text/...``: AWS-RunShellScript runs that printed only ``--format ssm``;
* ``plain/``: JSON reports anywhere below a directory;
* ``datasync/Custom:GdDoctor/accountid=<id>/region=<r>/resourcetype=ManagedInstanceInventory/<id>.json``:
  Resource Data Sync's JsonSerDe lines (attribute names as ``fleet`` reads them);
* ``coverage/``: ``aws guardduty list-coverage`` output: us-east-1 as two NextToken pages,
  eu-west-1 auto-paginated in one file; EC2 resources of three accounts plus EKS and ECS ones.
  Built from the botocore model's shapes (guardduty.md 6.5): AWS has published no real
  response; the CLI prints member names (PascalCase) and ISO timestamps;
* ``events.jsonl``: EventBridge coverage status-change events (shape of guardduty.md 7);
* ``bad/``: a crashed run's stdout, a truncated report, a binary file, an empty file, a report
  of schema_version 3, an older tool's text output.

Write them to a directory for a look:  python -m tests.fleet.fleetkit /tmp/fleet-fixtures
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from gd_doctor.host import Host
from gd_doctor.host.settings import HostSettings
from gd_doctor.knowledge import all_coverage_issues
from gd_doctor.model import Report, Severity
from gd_doctor.pipeline import run_doctor
from gd_doctor.report.json import report_to_dict
from gd_doctor.report.ssm import render_ssm

REPO = Path(__file__).resolve().parents[2]
ROOTS = REPO / "tests" / "fixtures" / "roots"
SCENARIOS = REPO / "tests" / "scenarios"
ROOT_SCENARIOS = (
    "healthy-al2023-root",
    "os-unsupported",
    "kernel-lower-al2",
    "kernel-higher-root",
    "association-execution-failed",
)
ACCOUNTS = ("111122223333", "444455556666", "777788889999")
REGIONS = ("us-east-1", "eu-west-1")
T0 = datetime(2026, 11, 30, 8, 0, 0, tzinfo=timezone.utc)
CONSOLE_AT = datetime(2026, 11, 30, 7, 30, 0, tzinfo=timezone.utc)  # before most reports
LATE_CONSOLE_AT = datetime(2026, 11, 30, 23, 0, 0, tzinfo=timezone.utc)  # makes reports stale
CMD_NEW = "3f1c9a2e-5b7d-4c1e-9a8f-0d2b4c6e8a01"
CMD_OLD = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
CMD_TEXT = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"
VPC = "vpc-0a1b2c3d4e5f60718"


def _base_runs() -> List[Tuple[str, Report]]:
    """(name, report) for every fixture root and root scenario, from the real pipeline."""
    from tests.simulator.runner import build_root
    from tests.simulator.scenario import load

    settings = HostSettings(env={})
    out: List[Tuple[str, Report]] = []
    for case in sorted(p for p in ROOTS.iterdir() if p.is_dir()):
        run = run_doctor(Host.from_root(case / "root", settings), budget_s=30.0, started_at=T0)
        out.append((case.name, run.report))
    for name in ROOT_SCENARIOS:
        sc = load(SCENARIOS / name)
        with tempfile.TemporaryDirectory(prefix="gd-fleet-") as tmp:
            root = Path(tmp) / "root"
            root.mkdir()
            build_root(sc, root)
            run = run_doctor(Host.from_root(root, settings), budget_s=30.0, started_at=T0)
        out.append((name, run.report))
    return out


_BASES: Optional[List[Tuple[str, Report]]] = None


def base_runs() -> List[Tuple[str, Report]]:
    global _BASES
    if _BASES is None:
        _BASES = _base_runs()
    return _BASES


@dataclass
class Instance:
    """One instance of the fixture fleet and what each side should say about it."""

    instance_id: str
    account_id: str
    region: str
    base: str
    report: Optional[Report]  # None: the instance has no host report
    started_at: datetime
    console: Optional[Tuple[str, str]]  # (status, issue) or None: the console does not list it
    console_at: datetime = CONSOLE_AT
    layout: str = "s3"  # s3 | s3-text | plain | datasync
    with_account: bool = False  # host.account_id in the JSON report (issue 12)
    schema_version: int = 2
    compact: bool = True  # one-line JSON (what Athena needs) or indented (what gd-doctor prints)
    older_duplicate: bool = False


@dataclass
class FleetLayout:
    top: Path
    instances: List[Instance] = field(default_factory=list)

    @property
    def s3(self) -> Path:
        return self.top / "s3" / "gd-doctor"

    @property
    def s3_text(self) -> Path:
        return self.top / "s3-text" / "gd-doctor"

    @property
    def plain(self) -> Path:
        return self.top / "plain"

    @property
    def datasync(self) -> Path:
        return self.top / "datasync"

    @property
    def bad(self) -> Path:
        return self.top / "bad"

    @property
    def events(self) -> Path:
        return self.top / "events.jsonl"

    def coverage_args(self) -> List[str]:
        c = self.top / "coverage"
        return [
            f"us-east-1={c / 'us-east-1-page-1.json'}",
            f"us-east-1={c / 'us-east-1-page-2.json'}",
            str(c / "coverage-eu-west-1.json"),
        ]


def _top_row(report: Report) -> Optional[str]:
    for sev in (Severity.FAIL, Severity.WARN):
        for f in report.findings:
            if f.severity == sev:
                return f.issue_id
    return None


def _message(row: Optional[str]) -> str:
    r = all_coverage_issues().get(row or "no-agent-reporting")
    assert r is not None
    msg = r.message.replace("<vpcId>", VPC).replace("<id>", "111122223333")
    if r.id == "private-dns-attributes":
        msg = msg.replace("<request-id>", "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111")
    return msg


def plan(rng: random.Random) -> List[Instance]:
    """The fleet: who reports what, where, and what the console says."""
    bases = base_runs()
    out: List[Instance] = []

    def iid() -> str:
        return "i-" + "".join(rng.choice("0123456789abcdef") for _ in range(17))

    for n in range(36):
        name, report = bases[n % len(bases)]
        acct, region = ACCOUNTS[n % 3], REGIONS[(n // 3) % 2]
        healthy = report.verdict.value == "healthy"
        console = ("HEALTHY", "") if healthy else ("UNHEALTHY", _message(_top_row(report)))
        inst = Instance(iid(), acct, region, name, report, T0 + timedelta(minutes=n), console)
        inst.layout = (
            "s3" if n < 24 else ("s3-text" if n < 28 else ("plain" if n < 32 else "datasync"))
        )
        inst.with_account = n % 2 == 0
        inst.schema_version = 1 if n % 7 == 3 else 2
        inst.compact = n % 5 != 1
        inst.older_duplicate = n in (2, 9, 17)
        out.append(inst)
    healthy_base = next((b for b in bases if b[1].verdict.value == "healthy"), None)
    unhealthy_base = next(b for b in bases if b[1].verdict.value == "unhealthy")
    # Disagreements, on purpose.
    out[1].console = ("HEALTHY", "")  # console Healthy, host unhealthy (not noticed yet)
    if healthy_base is not None:
        out[4].base, out[4].report = healthy_base
        out[4].console = ("UNHEALTHY", "Agent disconnected")  # a fix made since
    out[5].console = ("UNHEALTHY", _message("kernel-higher"))  # console row X, host row Y
    out[7].console_at = LATE_CONSOLE_AT  # stale reports
    out[8].console_at = LATE_CONSOLE_AT
    # Console-unhealthy instances without a report.
    for n, issue in enumerate(
        ["Waiting for SSM notification"] * 6
        + ["Agent disconnected"] * 2
        + ["Something new happened"]
    ):
        out.append(
            Instance(iid(), ACCOUNTS[n % 3], REGIONS[n % 2], "-", None, T0, ("UNHEALTHY", issue))
        )
    # Reports of instances the console does not list.
    for n in range(2):
        name, report = unhealthy_base
        out.append(
            Instance(
                iid(),
                ACCOUNTS[0],
                REGIONS[0],
                name,
                report,
                T0 + timedelta(hours=1, minutes=n),
                None,
            )
        )
    return out


def _with_identity(inst: Instance, started: datetime) -> Report:
    assert inst.report is not None
    host = replace(inst.report.host, instance_id=inst.instance_id, region=inst.region)
    return replace(inst.report, host=host, started_at=started.isoformat(timespec="seconds"))


def _report_doc(inst: Instance, started: datetime) -> Dict[str, Any]:
    doc = report_to_dict(_with_identity(inst, started))
    if inst.with_account:
        doc["host"]["account_id"] = inst.account_id
    if inst.schema_version == 1:
        doc["schema_version"] = 1
        doc.pop("verdict_reason", None)
        for c in doc["checks"]:
            c["details"] = []
    return doc


def _dump(doc: Dict[str, Any], compact: bool) -> str:
    if compact:
        return json.dumps(doc, ensure_ascii=False) + "\n"
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _touch(path: Path, text: str, when: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    ts = when.timestamp()
    os.utime(path, (ts, ts))  # `aws s3 sync` sets mtime to the object's LastModified


def _write_run_command(base: Path, cmd: str, inst: Instance, started: datetime, steps: str) -> None:
    d = base / cmd / inst.instance_id / "awsrunShellScript"
    done = started + timedelta(seconds=20)
    if steps == "gd-doctor-run":
        report = _with_identity(inst, started)
        _touch(d / "runGdDoctor" / "stdout", render_ssm(report), done)
        _touch(d / "runGdDoctor" / "stderr", "", done)
        _touch(
            d / "publishReport" / "stdout", _dump(_report_doc(inst, started), inst.compact), done
        )
        _touch(d / "publishReport" / "stderr", "", done)
    elif steps == "json":
        _touch(d / "0.awsrunShellScript" / "stdout", _dump(_report_doc(inst, started), True), done)
    else:
        _touch(
            d / "0.awsrunShellScript" / "stdout", render_ssm(_with_identity(inst, started)), done
        )


def _inventory_line(inst: Instance) -> str:
    """One JsonSerDe line as Resource Data Sync writes gd-doctor's custom inventory entry: the
    item ``gd-doctor check --inventory`` writes, plus the keys the sync adds."""
    assert inst.report is not None
    from gd_doctor.integrations import inventory

    content = inventory.content(_with_identity(inst, inst.started_at))
    entry = {
        "resourceid": inst.instance_id,
        "capturetime": inst.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "schemaversion": inventory.SCHEMA_VERSION,
        **content,
    }
    return json.dumps(entry) + "\n"


def _resource(inst: Instance) -> Dict[str, Any]:
    assert inst.console is not None
    status, issue = inst.console
    return {
        "ResourceId": inst.instance_id,
        "DetectorId": "12abc34d567e8fa901bc2d34e56789f0",
        "AccountId": inst.account_id,
        "ResourceDetails": {
            "Ec2InstanceDetails": {
                "InstanceId": inst.instance_id,
                "InstanceType": "m5.large",
                "AgentDetails": {"Version": "1.17.1"},
                "ManagementType": "AUTO_MANAGED",
            },
            "ResourceType": "EC2",
        },
        "CoverageStatus": status,
        "Issue": issue,
        "UpdatedAt": inst.console_at.isoformat(timespec="microseconds"),
    }


OTHER_RESOURCES = [
    {
        "ResourceId": "prod-cluster",
        "DetectorId": "12abc34d567e8fa901bc2d34e56789f0",
        "AccountId": "111122223333",
        "ResourceDetails": {
            "EksClusterDetails": {
                "ClusterName": "prod-cluster",
                "CoveredNodes": 3,
                "CompatibleNodes": 4,
                "AddonDetails": {"AddonVersion": "v1.8.0-eksbuild.1", "AddonStatus": "ACTIVE"},
                "ManagementType": "AUTO_MANAGED",
            },
            "ResourceType": "EKS",
        },
        "CoverageStatus": "UNHEALTHY",
        "Issue": "Addon Status Unhealthy:EKS Addon issue - InsufficientNumberOfReplicas: The add-on is unhealthy because it doesn't have the desired number of replicas.",
        "UpdatedAt": "2026-11-30T07:30:00.000000+00:00",
    },
    {
        "ResourceId": "web-cluster",
        "DetectorId": "12abc34d567e8fa901bc2d34e56789f0",
        "AccountId": "444455556666",
        "ResourceDetails": {
            "EcsClusterDetails": {
                "ClusterName": "web-cluster",
                "FargateDetails": {"Issues": [], "ManagementType": "AUTO_MANAGED"},
                "ContainerInstanceDetails": {
                    "CoveredContainerInstances": 2,
                    "CompatibleContainerInstances": 2,
                },
            },
            "ResourceType": "ECS",
        },
        "CoverageStatus": "HEALTHY",
        "Issue": "",
        "UpdatedAt": "2026-11-30T07:30:00.000000+00:00",
    },
]


def _event(inst: Instance, status: str, issue: str, at: datetime) -> Dict[str, Any]:
    return {
        "version": "0",
        "id": "8e5622f9-d81c-4d81-612a-9319e7ee2506",
        "detail-type": (
            "GuardDuty Runtime Protection Unhealthy"
            if status == "UNHEALTHY"
            else "GuardDuty Runtime Protection Healthy"
        ),
        "source": "aws.guardduty",
        "account": inst.account_id,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": inst.region,
        "resources": [],
        "detail": {
            "schemaVersion": "1.0",
            "resourceAccountId": inst.account_id,
            "currentStatus": status,
            "previousStatus": "HEALTHY" if status == "UNHEALTHY" else "UNHEALTHY",
            "resourceDetails": {
                "resourceType": "EC2",
                "ec2InstanceDetails": {
                    "instanceId": inst.instance_id,
                    "instanceType": "m5.large",
                    "clusterArn": "",
                    "agentDetails": {"version": "1.17.1"},
                    "managementType": "AUTO_MANAGED",
                },
            },
            "issue": issue,
            "lastUpdatedAt": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }


def build(top: Path, seed: int = 16) -> FleetLayout:
    """Write the whole fixture fleet under ``top``."""
    rng = random.Random(seed)
    layout = FleetLayout(top, plan(rng))
    for inst in layout.instances:
        if inst.report is None:
            continue
        if inst.layout == "s3":
            _write_run_command(layout.s3, CMD_NEW, inst, inst.started_at, "gd-doctor-run")
            if inst.older_duplicate:
                older = inst.started_at - timedelta(days=1)
                _write_run_command(layout.s3, CMD_OLD, inst, older, "json")
        elif inst.layout == "s3-text":
            _write_run_command(layout.s3_text, CMD_TEXT, inst, inst.started_at, "text")
        elif inst.layout == "plain":
            sub = layout.plain / inst.account_id / f"{inst.instance_id}.json"
            _touch(sub, _dump(_report_doc(inst, inst.started_at), inst.compact), inst.started_at)
        else:
            path = (
                layout.datasync
                / "Custom:GdDoctor"
                / f"accountid={inst.account_id}"
                / f"region={inst.region}"
                / "resourcetype=ManagedInstanceInventory"
                / f"{inst.instance_id}.json"
            )
            _touch(path, _inventory_line(inst), inst.started_at)
    _write_coverage(layout)
    _write_events(layout)
    _write_bad(layout)
    return layout


def _write_coverage(layout: FleetLayout) -> None:
    d = layout.top / "coverage"
    d.mkdir(parents=True, exist_ok=True)
    east = [_resource(i) for i in layout.instances if i.console and i.region == "us-east-1"]
    west = [_resource(i) for i in layout.instances if i.console and i.region == "eu-west-1"]
    east += [OTHER_RESOURCES[0]]
    west += [OTHER_RESOURCES[1]]
    half = len(east) // 2
    token = "AAMA-EFRSDW1AQBuNwYb6EXAMPLENEXTTOKEN"
    (d / "us-east-1-page-1.json").write_text(
        json.dumps({"Resources": east[:half], "NextToken": token}, indent=4) + "\n"
    )
    (d / "us-east-1-page-2.json").write_text(
        json.dumps({"Resources": east[half:]}, indent=4) + "\n"
    )
    (d / "coverage-eu-west-1.json").write_text(json.dumps({"Resources": west}, indent=4) + "\n")


def _write_events(layout: FleetLayout) -> None:
    insts = [i for i in layout.instances if i.console]
    late = datetime(2026, 11, 30, 9, 0, 0, tzinfo=timezone.utc)
    lines = [
        # becomes Unhealthy after the ListCoverage export: the event is newer and wins
        json.dumps(_event(insts[0], "UNHEALTHY", "Agent disconnected", late)),
        # an event older than the export: the export wins
        json.dumps(_event(insts[3], "HEALTHY", "", CONSOLE_AT - timedelta(hours=2))),
        "{not json",
        json.dumps({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}),
    ]
    layout.events.write_text("\n".join(lines) + "\n")


def _write_bad(layout: FleetLayout) -> None:
    d = layout.bad
    d.mkdir(parents=True, exist_ok=True)
    _, report = base_runs()[0]
    full = json.dumps(report_to_dict(report), indent=2)
    (d / "truncated.json").write_text(full[: len(full) // 2])
    (d / "crashed-stdout").write_text(
        'Traceback (most recent call last):\n  File "/usr/bin/gd-doctor", line 5\nKilled\n'
    )
    (d / "binary.json").write_bytes(bytes(range(256)) * 4)
    (d / "empty.json").write_text("")
    v3 = report_to_dict(report)
    v3["schema_version"] = 3
    (d / "future.json").write_text(json.dumps(v3))
    (d / "old-text-output.txt").write_text(
        "GuardDuty Runtime Monitoring doctor\n  [ok] platform.os\n  [fail] agent.unit\n"
    )


if __name__ == "__main__":  # pragma: no cover - a developer's look at the fixtures
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "fleet-fixtures")
    if dest.exists():
        shutil.rmtree(dest)
    built = build(dest)
    print(f"{len(built.instances)} instances under {dest}")
