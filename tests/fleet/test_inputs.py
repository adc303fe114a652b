"""The readers: every layout, both ssm first-line forms, streaming list-coverage, bad input."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gd_doctor.fleet import inputs
from gd_doctor.fleet.console import read_coverage_file, read_events_file, read_managed_file
from gd_doctor.fleet.inputs import read_host_file, read_host_inputs
from gd_doctor.fleet.jsonstream import StreamError, iter_array_items
from gd_doctor.fleet.model import (
    BadInput,
    CoverageRecord,
    HostRecord,
    IgnoredFile,
    OtherResource,
    Reason,
)
from gd_doctor.fleet.values import row_of_issue
from tests.fleet.fleetkit import CMD_NEW, FleetLayout


def _records(items: List[Any], kind: type) -> List[Any]:
    return [i for i in items if isinstance(i, kind)]


def test_run_command_layout_both_steps(fleet: FleetLayout) -> None:
    inst = next(i for i in fleet.instances if i.layout == "s3" and i.report is not None)
    d = fleet.s3 / CMD_NEW / inst.instance_id / "awsrunShellScript"
    js = read_host_file(d / "publishReport" / "stdout")
    txt = read_host_file(d / "runGdDoctor" / "stdout")
    err = read_host_file(d / "runGdDoctor" / "stderr")
    assert isinstance(js, HostRecord) and isinstance(txt, HostRecord)
    assert isinstance(err, IgnoredFile)
    assert js.kind == "run-command-json" and txt.kind == "run-command-ssm"
    assert js.instance_id == txt.instance_id == inst.instance_id
    assert js.invocation == txt.invocation == CMD_NEW
    assert js.verdict == txt.verdict == inst.report.verdict.value  # type: ignore[union-attr]
    # the text's top finding and row are recovered from its title and bracket
    assert txt.finding == js.finding and txt.row == js.row
    assert js.region == inst.region
    assert js.account_id == (inst.account_id if inst.with_account else None)


def test_ssm_text_first_line_of_today_and_of_issue_12(tmp_path: Path, fleet: FleetLayout) -> None:
    sample = next(p for p in fleet.s3_text.rglob("stdout"))
    today = sample.read_text()
    rest = today.split("\n", 1)[1]
    new = tmp_path / "new.txt"
    new.write_text(
        "gd-doctor: UNHEALTHY row=15 private-dns-attributes i-0123456789abcdef0 111122223333 us-east-1\n"
        + rest
    )
    rec = read_host_file(new)
    assert isinstance(rec, HostRecord)
    assert (rec.instance_id, rec.account_id, rec.region) == (
        "i-0123456789abcdef0",
        "111122223333",
        "us-east-1",
    )
    assert rec.row == "private-dns-attributes" and rec.verdict == "unhealthy"
    old = read_host_file(sample)
    assert isinstance(old, HostRecord)
    assert old.account_id is None and old.region in ("us-east-1", "eu-west-1")
    assert old.time == pytest.approx(sample.stat().st_mtime)  # the text has no time of its own
    healthy = tmp_path / "h.txt"
    healthy.write_text("gd-doctor: HEALTHY i-0123456789abcdef1 eu-west-1\nchecks: 12 ok\n")
    rec = read_host_file(healthy)
    assert isinstance(rec, HostRecord) and rec.verdict == "healthy" and rec.finding is None


def test_resource_data_sync_layout(fleet: FleetLayout) -> None:
    files = sorted(fleet.datasync.rglob("*.json"))
    assert files
    for f in files:
        rec = read_host_file(f)
        assert isinstance(rec, HostRecord), rec
        assert rec.kind == "inventory"
        assert f.parent.parent.name == f"region={rec.region}"
        assert f.parent.parent.parent.name == f"accountid={rec.account_id}"
        assert rec.instance_id == f.stem


def test_plain_json_reports_and_schema_versions(fleet: FleetLayout) -> None:
    recs = _records(list(read_host_inputs([fleet.plain, fleet.s3])), HostRecord)
    versions = {r.schema_version for r in recs if r.schema_version}
    assert versions == {1, 2}
    assert any(r.kind == "json" for r in recs)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("truncated.json", Reason.TRUNCATED),
        ("crashed-stdout", Reason.NOT_JSON),
        ("binary.json", Reason.BINARY),
        ("empty.json", Reason.EMPTY_FILE),
        ("future.json", Reason.SCHEMA_VERSION),
        ("old-text-output.txt", Reason.NOT_JSON),
    ],
)
def test_bad_files_have_their_reason(fleet: FleetLayout, name: str, reason: str) -> None:
    item = read_host_file(fleet.bad / name)
    assert isinstance(item, BadInput) and item.reason == reason, item


def test_report_without_any_instance_id(tmp_path: Path, fleet: FleetLayout) -> None:
    doc = json.loads(next(fleet.plain.rglob("*.json")).read_text())
    doc["host"]["instance_id"] = None
    (tmp_path / "r.json").write_text(json.dumps(doc))
    item = read_host_file(tmp_path / "r.json")
    assert isinstance(item, BadInput) and item.reason == Reason.NO_INSTANCE


def test_unreadable_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "r.json").write_text("{}")
    (tmp_path / "locked").mkdir()
    (tmp_path / "empty").mkdir()
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    def deny(*_a: Any, **_k: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(inputs.os, "scandir", scandir)
    monkeypatch.setattr(inputs, "open", deny, raising=False)
    items = list(read_host_inputs([tmp_path, tmp_path / "missing"]))
    reasons = sorted(i.reason for i in items if isinstance(i, BadInput))
    assert reasons == sorted(
        [Reason.UNREADABLE, Reason.UNREADABLE_DIR, "empty directory", Reason.MISSING_PATH]
    )


def test_list_coverage_pages_and_resource_types(fleet: FleetLayout) -> None:
    page1 = fleet.top / "coverage" / "us-east-1-page-1.json"
    assert "NextToken" in json.loads(page1.read_text())
    items = list(read_coverage_file(page1, "us-east-1"))
    items += list(read_coverage_file(fleet.top / "coverage" / "us-east-1-page-2.json", "us-east-1"))
    ec2 = _records(items, CoverageRecord)
    other = _records(items, OtherResource)
    assert {o.resource_type for o in other} == {"EKS"}
    assert not _records(items, BadInput)
    planned = {i.instance_id for i in fleet.instances if i.console and i.region == "us-east-1"}
    assert {r.instance_id for r in ec2} == planned
    assert all(r.region == "us-east-1" and r.updated is not None for r in ec2)


def test_wire_names_bare_array_and_bad_resources(tmp_path: Path) -> None:
    wire = [
        {
            "resourceId": "i-0aaaaaaaaaaaaaaaa",
            "accountId": "111122223333",
            "coverageStatus": "UNHEALTHY",
            "issue": "Agent disconnected",
            "updatedAt": "2026-11-30T07:00:00Z",
            "resourceDetails": {
                "resourceType": "EC2",
                "ec2InstanceDetails": {"instanceId": "i-0aaaaaaaaaaaaaaaa"},
            },
        },
        {"coverageStatus": "HEALTHY", "resourceDetails": {"resourceType": "EC2"}},
        {
            "resourceId": "x",
            "coverageStatus": "HEALTHY",
            "resourceDetails": {"resourceType": "LAMBDA"},
        },
        {
            "resourceId": "i-0bbbbbbbbbbbbbbbb",
            "coverageStatus": "MAYBE",
            "resourceDetails": {"resourceType": "EC2"},
        },
        "not an object",
    ]
    f = tmp_path / "cov.json"
    f.write_text(json.dumps(wire))
    items = list(read_coverage_file(f, "eu-west-1"))
    assert isinstance(items[0], CoverageRecord) and items[0].row == "agent-disconnected"
    assert [i.reason for i in items[1:]] == [  # type: ignore[union-attr]
        Reason.RESOURCE_NO_ID,
        Reason.RESOURCE_TYPE,
        Reason.RESOURCE_BAD,
        Reason.RESOURCE_BAD,
    ]


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"Resources": [{"ResourceId": "i-1"', Reason.COVERAGE_TRUNCATED),
        ("<html>403 Forbidden</html>", Reason.COVERAGE_NOT_JSON),
        ('{"ResourceDataSyncItems": []}', Reason.NOT_COVERAGE),
        ("", Reason.EMPTY_FILE),
    ],
)
def test_bad_coverage_files(tmp_path: Path, text: str, reason: str) -> None:
    f = tmp_path / "c.json"
    f.write_text(text)
    items = list(read_coverage_file(f, None))
    assert isinstance(items[-1], BadInput) and items[-1].reason == reason
    assert items[-1].what == "coverage-file"


@settings(max_examples=40, deadline=None)
@given(chunk=st.integers(min_value=1, max_value=300), pretty=st.booleans())
def test_streaming_does_not_depend_on_chunk_size(chunk: int, pretty: bool) -> None:
    doc = {
        "Resources": [
            {"a": i, "s": 'x"y\\' * (i % 5), "n": [1.5e3, None, True]} for i in range(30)
        ],
        "NextToken": "t" * 40,
    }
    text = json.dumps(doc, indent=4 if pretty else None)
    items = [v for _k, v in iter_array_items(io.StringIO(text), ("Resources",), chunk=chunk)]
    assert items == doc["Resources"]
    with pytest.raises(StreamError) as exc:
        list(iter_array_items(io.StringIO(text[: len(text) // 2]), ("Resources",), chunk=chunk))
    assert exc.value.truncated


def test_events(fleet: FleetLayout) -> None:
    items = list(read_events_file(fleet.events))
    recs = _records(items, CoverageRecord)
    bad = _records(items, BadInput)
    assert len(recs) == 2 and all(r.kind == "event" for r in recs)
    assert sorted(b.reason for b in bad) == sorted([Reason.EVENT_NOT_JSON, Reason.NOT_AN_EVENT])
    assert recs[0].status == "UNHEALTHY" and recs[0].row == "agent-disconnected"


def test_managed_file(tmp_path: Path) -> None:
    f = tmp_path / "m.json"
    f.write_text(
        json.dumps(
            {
                "InstanceInformationList": [
                    {"InstanceId": "i-0aaaaaaaaaaaaaaaa", "PingStatus": "Online"},
                    {"InstanceId": "i-0bbbbbbbbbbbbbbbb", "PingStatus": "ConnectionLost"},
                ]
            }
        )
    )
    ids, bad = read_managed_file(f)
    assert ids == ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"] and bad is None


def test_row_of_issue_unrecognised_and_wrapped() -> None:
    assert row_of_issue("No Agent Reporting: Agent disconnected") == "agent-disconnected"
    assert row_of_issue("The weather is nice") is None


def test_hostile_file_names_do_not_reach_the_terminal(tmp_path: Path) -> None:
    from gd_doctor.fleet.render import render_text
    from gd_doctor.fleet.summary import Inputs, build_summary, collect

    (tmp_path / "\x1b]0;owned\x07.json").write_text("{broken")
    store = collect(Inputs(reports=[tmp_path]))
    text = render_text(build_summary(store))
    store.close()
    assert "\x1b" not in text and "\x07" not in text
    assert "?]0;owned?.json" in text


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "schema_version",
                    "verdict",
                    "host",
                    "findings",
                    "instance_id",
                    "severity",
                    "issue_id",
                    "steps",
                    "Resources",
                    "ResourceDetails",
                    "ResourceType",
                    "CoverageStatus",
                    "Issue",
                    "checks",
                    "summary",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(doc=_JSONISH, raw=st.binary(max_size=200))
def test_hostile_content_never_raises(
    tmp_path_factory: pytest.TempPathFactory, doc: Any, raw: bytes
) -> None:
    d = tmp_path_factory.mktemp("hostile")
    cmd = (
        d
        / "3f1c9a2e-5b7d-4c1e-9a8f-0d2b4c6e8a01"
        / "i-0123456789abcdef0"
        / "awsrunShellScript"
        / "0.awsrunShellScript"
    )
    cmd.mkdir(parents=True)
    for name, content in (("stdout", json.dumps(doc).encode()), ("x.json", raw)):
        (cmd / name).write_bytes(content)
        item = read_host_file(cmd / name)
        assert isinstance(item, (HostRecord, BadInput, IgnoredFile))
    f = d / "cov.json"
    f.write_text(json.dumps({"Resources": [doc, doc]}))
    for res in read_coverage_file(f, None):
        assert isinstance(res, (CoverageRecord, OtherResource, BadInput))
    f.write_bytes(raw)
    assert all(isinstance(x, BadInput) for x in read_coverage_file(f, None))
