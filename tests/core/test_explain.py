"""``explain`` recognises every row of the table, as people paste it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gd_doctor.diagnosis.explain import explain, normalise
from gd_doctor.knowledge import coverage_issues

ROWS = coverage_issues()

# Messages as the console or ListCoverage shows them, with real-looking ids filled in.
FILLED = {
    "waiting-for-ssm": "Waiting for SSM notification",
    "agent-disconnected": "Agent disconnected",
    "exclusion-tag": "Instances with exclusion tags are excluded from Runtime Monitoring.",
    "kernel-lower": "Kernel version is lower than the supported version.",
    "kernel-higher": "Kernel version is higher than the supported version.",
    "identity-document": "Unable to retrieve instance identity document.",
    "association-already-exists": "GuardDuty SSM association already exists in your account",
    "too-many-associations": "Your account has too many SSM associations",
    "association-execution-failed": "Architectural requirements or other prerequisites are not met.",
    "shared-vpc-unsupported": "VPC endpoint creation not supported for shared VPC vpc-0f1e2d3c4b5a69788",
    "shared-vpc-owner-not-enabled": (
        "Owner account ID 123456789012 for shared VPC vpc-0a1b2c3d doesn't have either Runtime "
        "Monitoring, automated agent configuration, or both, enabled"
    ),
    "private-dns-attributes": (
        "Enabling private DNS requires both `enableDnsSupport` and `enableDnsHostnames` VPC "
        "attributes set to `true` for vpc-0123456789abcdef0 (Service: Ec2, Status Code: 400, "
        "Request ID: 7c9e6679-7425-40de-944b-e07fc1f90ae7)."
    ),
    "shared-vpc-endpoint-deletion": (
        "Shared VPC endpoint deletion not allowed for account ID 111122223333, shared VPC "
        "vpc-11aa22bb33cc44dd5, owner account ID 555555555555."
    ),
}


@pytest.mark.parametrize("row_id", sorted(FILLED))
def test_filled_in_messages_name_their_row(row_id: str) -> None:
    result = explain(FILLED[row_id])
    assert result.how == "message"
    assert result.matches[0].id == row_id


@pytest.mark.parametrize("row_id", [r.id for r in ROWS.values() if r.message])
def test_every_message_of_the_table_is_recognised_verbatim(row_id: str) -> None:
    row = ROWS[row_id]
    found = explain(row.message)
    assert row_id in [m.id for m in found.matches]
    assert found.recognised


@pytest.mark.parametrize("row_id", sorted(FILLED))
def test_case_quotes_and_type_prefix_do_not_matter(row_id: str) -> None:
    row = ROWS[row_id]
    text = f'"{row.type}: {FILLED[row_id].upper()}"'
    assert explain(text).matches[0].id == row_id


@pytest.mark.parametrize("row_id", [r.id for r in ROWS.values()])
def test_ids_are_accepted(row_id: str) -> None:
    assert explain(row_id).matches == (ROWS[row_id],)
    assert explain(f" '{row_id.upper()}' ").how == "id"


def test_the_shared_message_of_rows_10_and_11_lists_both_unless_typed() -> None:
    msg = "GuardDuty SSM association does not exist in your account"
    both = explain(msg)
    assert {m.id for m in both.matches} == {
        "association-update-missing",
        "association-delete-missing",
    }
    assert "more than one issue type" in both.note
    typed = explain(f"SSM Association Deletion Failed - {msg}")
    assert [m.id for m in typed.matches] == ["association-delete-missing"]


def test_a_type_alone_puts_the_empty_message_row_first() -> None:
    found = explain("No Agent Reporting")
    assert found.how == "type"
    assert [m.id for m in found.matches] == [
        "no-agent-reporting",
        "waiting-for-ssm",
        "agent-disconnected",
    ]


def test_the_legacy_type_is_not_confused_with_no_agent_reporting() -> None:
    assert [m.id for m in explain("Agent not reporting").matches] == ["agent-not-reporting-eos"]


def test_korean_seed_strings_are_recognised() -> None:
    assert explain("SSM 알림 대기").matches[0].id == "waiting-for-ssm"
    assert explain("에이전트 보고 없음").matches[0].id == "no-agent-reporting"


@pytest.mark.parametrize(
    "text,resource",
    [
        ("Agent not reporting for tasks in TaskDefinition - 'web:3'", "ECS"),
        (
            "Addon Creation Failed:Addon aws-guardduty-agent is not compatible with current cluster "
            "version of cluster prod. Addon specified is not supported.",
            "EKS",
        ),
    ],
)
def test_eks_and_ecs_texts_are_named_not_mismapped(text: str, resource: str) -> None:
    found = explain(text)
    assert found.how == "other-resource" and found.other_resource == resource
    assert found.matches == ()


def test_unknown_text_gets_the_closest_rows_and_is_not_recognised() -> None:
    found = explain("Agent disconected")  # typo
    assert not found.recognised
    assert found.matches[0].id == "agent-disconnected"
    assert not explain("zzzz qqqq").recognised


def test_normalise_folds_ids_and_punctuation() -> None:
    assert normalise("VPC  vpc-0A1B2C3D4E5F60718, `true`!") == "vpc <vpcid> true"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_explain_never_crashes(text: str) -> None:
    found = explain(text)
    assert found.how in (
        "id", "number", "message", "type", "korean", "other-resource", "closest", "none"
    )
