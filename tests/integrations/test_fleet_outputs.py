"""SSM inventory, SSM Compliance and CloudWatch EMF outputs, from real reports of the fixture
roots, checked against AWS's documented constraints (fleet.md) and the EMF specification's
JSON Schema; EMF is received by a fake CloudWatch agent on loopback over TCP and UDP."""

from __future__ import annotations

import json
import re
import socket
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Iterator, List

import jsonschema
import pytest
from typer.testing import CliRunner

from gd_doctor.cli import app
from gd_doctor.host import Host
from gd_doctor.host.settings import HostSettings
from gd_doctor.integrations import compliance, emf, inventory
from gd_doctor.integrations.outputs import FleetOutputs, deliver
from gd_doctor.model import Report
from gd_doctor.pipeline import run_doctor
from tests.hostkit import FIXTURES, NOW, cli_runner

ROOTS = sorted(p.name for p in (FIXTURES / "roots").iterdir() if (p / "root").is_dir())
EMF_SCHEMA = json.loads((FIXTURES / "emf" / "emf-spec.schema.json").read_text())
IID = "i-0123456789abcdef0"


def _report(name: str) -> Report:
    host = Host.from_root(FIXTURES / "roots" / name / "root", HostSettings())
    report = run_doctor(host, budget_s=10, started_at=NOW).report
    # A root has no IMDS: give the report the identity a live run would have read.
    return replace(
        report, host=replace(report.host, instance_id=IID, account_id="111122223333",
                             region="us-east-1")
    )  # fmt: skip


@pytest.fixture(scope="module", params=ROOTS)
def report(request: Any) -> Report:
    return _report(request.param)


# --- inventory -----------------------------------------------------------------------------


def test_inventory_item_meets_aws_constraints(report: Report) -> None:
    item = inventory.item(report)
    assert set(item) == {"SchemaVersion", "TypeName", "Content"}
    assert re.fullmatch(r"\d{1,6}\.\d{1,6}", str(item["SchemaVersion"]))
    assert re.fullmatch(r"(AWS|Custom):.*", str(item["TypeName"]))
    assert len(str(item["TypeName"])) <= 100
    content = item["Content"]
    assert isinstance(content, dict) and 0 < len(content) <= 50
    for key, value in content.items():
        assert 1 <= len(key) <= 64 and re.fullmatch(r"[a-z][a-z0-9_]*", key)
        assert isinstance(value, str) and len(value) <= 4096
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", content["checked_at"])
    assert content["verdict"] == report.verdict.value
    assert content["instance_id"] == IID and content["account_id"] == "111122223333"
    ids = [f.finding_id for f in report.findings]
    assert content["finding_ids"].split(",") == (ids or [""])


def test_inventory_keys_are_stable_across_verdicts() -> None:
    keys = {tuple(sorted(inventory.content(_report(name)))) for name in ROOTS}
    assert len(keys) == 1, "attribute names must not depend on the host"


def test_inventory_lands_in_the_ssm_agent_directory_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report: Report
) -> None:
    monkeypatch.setattr(inventory, "SSM_STATE", str(tmp_path))
    (tmp_path / IID).mkdir()
    first = inventory.write_inventory(report)
    assert first.path == str(tmp_path / IID / "inventory" / "custom" / "GdDoctor.json")
    second = inventory.write_inventory(replace(report, started_at="2026-12-01T00:00:00+00:00"))
    assert second.path == first.path
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert files == [IID, f"{IID}/inventory", f"{IID}/inventory/custom",
                     f"{IID}/inventory/custom/GdDoctor.json"]  # fmt: skip
    doc = json.loads(Path(second.path).read_text())
    assert doc["Content"]["checked_at"] == "2026-12-01T00:00:00Z"


def test_no_inventory_without_an_instance_id_or_an_ssm_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report: Report
) -> None:
    monkeypatch.setattr(inventory, "SSM_STATE", str(tmp_path))
    none = inventory.write_inventory(replace(report, host=replace(report.host, instance_id=None)))
    assert none.path is None and "instance id is unknown" in str(none.problem)
    absent = inventory.write_inventory(report)  # no <state>/<instance-id>: no SSM Agent
    assert absent.path is None and "does not exist" in str(absent.problem)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_inventory_write_leaves_nothing_partial(tmp_path: Path, report: Report) -> None:
    """The final rename fails (GdDoctor.json is a directory there, as any write failure would):
    one clear message, and no temporary file left behind."""
    (tmp_path / "GdDoctor.json").mkdir()
    out = inventory.write_inventory(report, tmp_path)
    assert out.path is None and "cannot write the inventory item" in str(out.problem)
    assert [p.name for p in tmp_path.iterdir()] == ["GdDoctor.json"]


# --- compliance ----------------------------------------------------------------------------

SEVERITIES = {"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED"}


def test_compliance_items_have_the_put_compliance_items_shape(report: Report) -> None:
    items: List[Dict[str, Any]] = json.loads(compliance.render_items(report))
    assert 1 <= len(items) <= 10_000
    assert items[0]["Id"] == "gd-doctor.verdict"
    assert len({i["Id"] for i in items}) == len(items)
    for entry in items:
        assert set(entry) == {"Id", "Title", "Severity", "Status", "Details"}
        assert 1 <= len(entry["Id"]) <= 100 and 1 <= len(entry["Title"]) <= 500
        assert entry["Severity"] in SEVERITIES
        assert entry["Status"] in ("COMPLIANT", "NON_COMPLIANT")
        assert all(isinstance(k, str) and isinstance(v, str) and len(v) <= 4096
                   for k, v in entry["Details"].items())  # fmt: skip
    healthy = report.verdict.value == "healthy"
    assert (items[0]["Status"] == "COMPLIANT") == healthy
    assert compliance.COMPLIANCE_TYPE == "Custom:GdDoctor"


# --- EMF -----------------------------------------------------------------------------------


def test_emf_event_follows_the_specification(report: Report) -> None:
    line = emf.render_event(report)
    assert line.endswith("\n") and "\n" not in line[:-1]
    doc = json.loads(line)
    jsonschema.validate(doc, EMF_SCHEMA)
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    for dims in directive["Dimensions"]:
        for name in dims:
            assert isinstance(doc[name], str)  # every dimension is a member of the event
        assert "InstanceId" not in dims  # unbounded values are properties, never dimensions
    for metric in directive["Metrics"]:
        assert isinstance(doc[metric["Name"]], (int, float))
    assert doc["Unhealthy"] == int(report.verdict.value == "unhealthy")
    assert doc["_aws"]["Timestamp"] == int(NOW.timestamp() * 1000)


class FakeCloudWatchAgent:
    """Listens on loopback TCP and UDP like the agent's EMF listener and keeps what it gets."""

    def __init__(self) -> None:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(4)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.udp.settimeout(2)
        # Set before the thread starts: a test may close the listener before the thread runs.
        self.tcp.settimeout(2)
        self.received: List[bytes] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        try:
            conn, _ = self.tcp.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(2)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            self.received.append(data)

    def close(self) -> None:
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def agent() -> Iterator[FakeCloudWatchAgent]:
    fake = FakeCloudWatchAgent()
    yield fake
    fake.close()


def test_emf_goes_over_tcp_to_the_agent(agent: FakeCloudWatchAgent, report: Report) -> None:
    sent = emf.send(emf.render_event(report), ("127.0.0.1", agent.port), timeout=1)
    assert sent.how == "tcp" and sent.problem is None
    agent._thread.join(3)
    jsonschema.validate(json.loads(agent.received[0]), EMF_SCHEMA)


def test_emf_falls_back_to_udp(agent: FakeCloudWatchAgent, report: Report) -> None:
    agent.tcp.shutdown(socket.SHUT_RDWR)  # the TCP listener is gone (shutdown wakes accept)
    agent.tcp.close()  # UDP still listens on the same port
    sent = emf.send(emf.render_event(report), ("127.0.0.1", agent.port), timeout=1)
    assert sent.how == "udp" and "unconfirmed" in str(sent.problem)
    data, _ = agent.udp.recvfrom(1 << 20)
    jsonschema.validate(json.loads(data), EMF_SCHEMA)


def test_no_agent_listening_is_a_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # a port nobody listens on
    root = FIXTURES / "roots" / ROOTS[0] / "root"
    args = ["check", "--root", str(root), "--format", "json", "--emf-endpoint", f"127.0.0.1:{port}"]
    res = cli_runner().invoke(app, args)
    assert res.exit_code in (0, 1), res.output
    assert "emf:" in res.stderr
    json.loads(res.stdout)  # the diagnosis itself is unaffected


def test_emf_file_is_appended_one_event_per_run(tmp_path: Path, report: Report) -> None:
    path = tmp_path / "emf.log"
    deliver(report, FleetOutputs(emf_file=path))
    deliver(report, FleetOutputs(emf_file=path))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(jsonschema.validate(json.loads(x), EMF_SCHEMA) is None
                                   for x in lines)  # fmt: skip
    assert (path.stat().st_mode & 0o777) == 0o600


# --- bad input, refused before the run -----------------------------------------------------


@pytest.mark.parametrize(
    "args, option",
    [
        (["--compliance", "/nonexistent-dir/items.json"], "--compliance"),
        (["--compliance", "/dev/null"], "--compliance"),
        (["--emf-file", "/nonexistent-dir/emf.log"], "--emf-file"),
        (["--emf-endpoint", "localhost"], "--emf-endpoint"),
        (["--emf-endpoint", "127.0.0.1:99999"], "--emf-endpoint"),
        (["--inventory-dir", "/nonexistent-dir"], "--inventory-dir"),
    ],
)
def test_unusable_fleet_outputs_are_refused(args: List[str], option: str) -> None:
    res = CliRunner().invoke(app, ["check", "--root", str(FIXTURES / "roots" / ROOTS[0] / "root"),
                                   *args])  # fmt: skip
    assert res.exit_code == 2 and option in res.output, res.output
