"""The imds checks and rules, end to end through the runner, against the fake IMDS server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.imds import TOKEN, FakeImds, default_tree
from tests.fakes.tls import closed_port
from tests.network.conftest import by_id, finding_ids, host_with, pipeline

TAG = "/latest/meta-data/tags/instance/GuardDutyManaged"
IDENTITY = "/latest/dynamic/instance-identity/document"
CREDS = "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance"


@pytest.mark.parametrize("mode,expected", [("required", "required"),
                                           ("optional", "optional"),
                                           ("disabled", "disabled")])
def test_token_modes(tmp_path: Path, mode: str, expected: str) -> None:
    with FakeImds(tokens=mode) as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    res = by_id(run)
    assert res["imds.token"].data["token_mode"] == expected
    assert res["imds.identity"].data["instance_id"] == "i-1234567890abcdef0"
    assert res["imds.identity"].data["region"] == "us-east-1"
    assert ("imds.v2-refused" in finding_ids(diagnosis)) == (mode == "disabled")


def test_healthy_imds_reports_everything_and_no_secret(tmp_path: Path) -> None:
    with FakeImds(tokens="required") as fake:
        run, diagnosis, report, doc = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    res = by_id(run)
    assert res["imds.network"].data["vpc_cidrs"] == ["192.0.2.0/24"]
    assert res["imds.network"].data["vpc_id"] == "vpc-d295a6a7"
    assert res["imds.identity_credentials"].data == {
        "available": True, "code": "Success", "expiration": "2026-11-30T18:12:15Z", "status": 200}
    assert res["imds.tags"].data["excluded"] is False
    assert report.host.instance_id == "i-1234567890abcdef0"
    text = json.dumps(doc)
    for secret in (TOKEN, "FAKE-SECRET-MUST-NEVER-BE-PRINTED", "FAKE-SESSION-TOKEN",
                   "ASIAFAKEFAKEFAKEFAKE"):
        assert secret not in text
    assert finding_ids(diagnosis) == []


def test_exclusion_tag_false_is_row_4(tmp_path: Path) -> None:
    tree = default_tree()
    tree[TAG] = "false"
    tree["/latest/meta-data/tags/instance/"] += "\nGuardDutyManaged"  # type: ignore[operator]
    with FakeImds(tokens="required", tree=tree) as fake:
        _, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    found = {f.finding_id: f for f in diagnosis.findings}
    assert found["imds.exclusion-tag"].issue_id == "exclusion-tag"
    assert "i-1234567890abcdef0" in found["imds.exclusion-tag"].steps[0]


def test_tags_in_metadata_off_is_unknown_not_healthy(tmp_path: Path) -> None:
    tree = {k: v for k, v in default_tree().items() if "/tags/" not in k}
    with FakeImds(tokens="required", tree=tree) as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    tags = by_id(run)["imds.tags"]
    assert tags.status.value == "warn" and tags.data["excluded"] is None
    assert "imds.tags-not-in-metadata" in finding_ids(diagnosis)


def test_missing_identity_document_is_row_7(tmp_path: Path) -> None:
    tree = default_tree()
    tree[IDENTITY] = None
    with FakeImds(tokens="required", tree=tree) as fake:
        _, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    found = {f.finding_id: f for f in diagnosis.findings}
    assert found["imds.identity-document-missing"].issue_id == "identity-document"
    assert "HTTP 404" in found["imds.identity-document-missing"].title


@pytest.mark.parametrize("body", ["<html><body>Service Unavailable</body></html>",
                                  '{"instanceId": 5}', "[1, 2", "\x00\x01garbage"])
def test_garbage_identity_document(tmp_path: Path, body: str) -> None:
    tree = default_tree()
    tree[IDENTITY] = body
    with FakeImds(tokens="optional", tree=tree) as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    assert by_id(run)["imds.identity"].status.value == "fail"
    assert "imds.identity-document-missing" in finding_ids(diagnosis)


def test_imds_turned_off_answers_403(tmp_path: Path) -> None:
    with FakeImds(tokens="off") as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    assert by_id(run)["imds.reachable"].data["disabled"] is True
    assert by_id(run)["imds.identity"].skip_reason == "BLOCKED_BY:imds.reachable"
    assert finding_ids(diagnosis)[0] == "imds.disabled"


def test_imds_not_answering(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    _, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=url), "imds")
    found = {f.finding_id: f for f in diagnosis.findings}
    assert "refused" in found["imds.unreachable"].title


def test_hop_limit_put_unanswered_while_get_works(tmp_path: Path) -> None:
    with FakeImds(tokens="optional", drop_put=True) as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    assert by_id(run)["imds.token"].data["token_mode"] == "hop-limit"
    assert by_id(run)["imds.identity"].status.value == "ok"  # IMDSv1 fallback still reads it
    assert "imds.hop-limit" in finding_ids(diagnosis)


def test_no_identity_credentials(tmp_path: Path) -> None:
    tree = default_tree()
    tree[CREDS] = None
    with FakeImds(tokens="required", tree=tree) as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    assert by_id(run)["imds.identity_credentials"].data["available"] is False
    assert "imds.no-identity-credentials" in finding_ids(diagnosis)


def test_under_root_imds_checks_skip(tmp_path: Path) -> None:
    from tests.hostkit import make_host

    run, diagnosis, _, _ = pipeline(make_host(tmp_path, live=False), "imds")
    assert by_id(run)["imds.reachable"].skip_reason == "UNAVAILABLE_WITH_ROOT"
    assert finding_ids(diagnosis) == []


def test_hop_limit_with_tokens_required_is_still_named(tmp_path: Path) -> None:
    # HttpTokens=required and the PUT reply lost to the hop limit: every GET is 401, so
    # imds.reachable fails, imds.token is skipped, and the rule must read the measured mode.
    with FakeImds(tokens="required", drop_put=True) as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    assert by_id(run)["imds.reachable"].data["token_mode"] == "hop-limit"
    assert by_id(run)["imds.token"].status.value == "skip"
    assert "imds.hop-limit" in finding_ids(diagnosis)
