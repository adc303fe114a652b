"""The imds checks and rules, end to end through the runner, against the fake IMDS server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from gd_doctor.facts.imds import (
    ImdsCredentialsFacts,
    ImdsIdentityFacts,
    ImdsNetworkFacts,
    ImdsReachableFacts,
    ImdsTagsFacts,
    ImdsTokenFacts,
)
from tests.fakes.imds import TOKEN, FakeImds, default_tree
from tests.fakes.tls import closed_port
from tests.network.conftest import by_id, facts, finding_ids, host_with, pipeline

TAG = "/latest/meta-data/tags/instance/GuardDutyManaged"
IDENTITY = "/latest/dynamic/instance-identity/document"
CREDS = "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance"


@pytest.mark.parametrize(
    "mode,expected", [("required", "required"), ("optional", "optional"), ("disabled", "disabled")]
)
def test_token_modes(tmp_path: Path, mode: str, expected: str) -> None:
    with FakeImds(tokens=mode) as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    assert facts(run, ImdsTokenFacts).token_mode == expected
    identity = facts(run, ImdsIdentityFacts)
    assert (identity.instance_id, identity.region) == ("i-1234567890abcdef0", "us-east-1")
    assert identity.services_domain == "amazonaws.com"
    assert ("imds.v2-refused" in finding_ids(diagnosis)) == (mode == "disabled")


def test_healthy_imds_reports_everything_and_no_secret(tmp_path: Path) -> None:
    with FakeImds(tokens="required") as fake:
        run, diagnosis, report, doc = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    assert facts(run, ImdsNetworkFacts) == ImdsNetworkFacts(
        mac="0e:49:61:0f:c3:11", vpc_id="vpc-d295a6a7", vpc_cidrs=("192.0.2.0/24",)
    )
    assert facts(run, ImdsCredentialsFacts) == ImdsCredentialsFacts(
        available=True, code="Success", expiration="2026-11-30T18:12:15Z", status=200, problem=None
    )
    assert facts(run, ImdsTagsFacts).excluded is False
    # the JSON report's data is the facts serialised
    assert by_id(run)["imds.network"].data["vpc_cidrs"] == ["192.0.2.0/24"]
    assert report.host.instance_id == "i-1234567890abcdef0"
    text = json.dumps(doc)
    for secret in (
        TOKEN,
        "FAKE-SECRET-MUST-NEVER-BE-PRINTED",
        "FAKE-SESSION-TOKEN",
        "ASIAFAKEFAKEFAKEFAKE",
    ):
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
    assert by_id(run)["imds.tags"].status.value == "warn"
    assert facts(run, ImdsTagsFacts) == ImdsTagsFacts(
        tags_in_metadata=False, guardduty_managed=None, excluded=None
    )
    assert "imds.tags-not-in-metadata" in finding_ids(diagnosis)


def test_missing_identity_document_is_row_7(tmp_path: Path) -> None:
    tree = default_tree()
    tree[IDENTITY] = None
    with FakeImds(tokens="required", tree=tree) as fake:
        _, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    found = {f.finding_id: f for f in diagnosis.findings}
    assert found["imds.identity-document-missing"].issue_id == "identity-document"
    assert "HTTP 404" in found["imds.identity-document-missing"].title


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>Service Unavailable</body></html>",
        '{"instanceId": 5}',
        "[1, 2",
        "\x00\x01garbage",
    ],
)
def test_garbage_identity_document(tmp_path: Path, body: str) -> None:
    tree = default_tree()
    tree[IDENTITY] = body
    with FakeImds(tokens="optional", tree=tree) as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    assert by_id(run)["imds.identity"].status.value == "fail"
    identity = facts(run, ImdsIdentityFacts)
    assert not identity.available and identity.instance_id is None
    assert identity.problem is not None and identity.problem.startswith("not an identity")
    assert "imds.identity-document-missing" in finding_ids(diagnosis)


def test_imds_turned_off_answers_403(tmp_path: Path) -> None:
    with FakeImds(tokens="off") as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    assert facts(run, ImdsReachableFacts).disabled is True
    assert by_id(run)["imds.identity"].skip_reason == "BLOCKED_BY:imds.reachable"
    assert finding_ids(diagnosis)[0] == "imds.disabled"


def test_imds_not_answering(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    _, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=url), "imds")
    found = {f.finding_id: f for f in diagnosis.findings}
    assert "refused" in found["imds.unreachable"].title


def test_a_silent_imds_is_asked_once_and_said_to_be_silent(tmp_path: Path) -> None:
    # A listening socket that never accepts: the requests go out and no answer ever comes,
    # as with a black hole. A silent connect is never retried (the retry would double it).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=url), "imds")
    reach = by_id(run)["imds.reachable"]
    assert facts(run, ImdsReachableFacts).get_problem == "timeout"
    assert facts(run, ImdsReachableFacts).silence == "no answer within 1 s"
    assert reach.evidence and not any("attempts" in line for line in reach.evidence)
    assert "(no answer within 1 s)" in reach.summary
    found = {f.finding_id: f for f in diagnosis.findings}
    assert "(no answer within 1 s)" in found["imds.unreachable"].title
    assert "The request timed out" in found["imds.unreachable"].steps[0]


def test_hop_limit_put_unanswered_while_get_works(tmp_path: Path) -> None:
    with FakeImds(tokens="optional", drop_put=True) as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    assert facts(run, ImdsTokenFacts) == ImdsTokenFacts(token_mode="hop-limit", v1_fallback=True)
    assert by_id(run)["imds.identity"].status.value == "ok"  # IMDSv1 fallback still reads it
    assert "imds.hop-limit" in finding_ids(diagnosis)


def test_no_identity_credentials(tmp_path: Path) -> None:
    tree = default_tree()
    tree[CREDS] = None
    with FakeImds(tokens="required", tree=tree) as fake:
        run, diagnosis, _, _ = pipeline(host_with(tmp_path, imds_url=fake.url), "imds")
    creds = facts(run, ImdsCredentialsFacts)
    assert (creds.available, creds.status, creds.problem) == (False, 404, "HTTP 404")
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
    assert facts(run, ImdsReachableFacts).token_mode == "hop-limit"
    assert by_id(run)["imds.token"].status.value == "skip"
    assert "imds.hop-limit" in finding_ids(diagnosis)
