"""``explain`` over the ECS-EC2 Bottlerocket table (AWS, 2026): its own rows, and the note that
points Bottlerocket users away from the EC2 row when both tables share a message."""

from __future__ import annotations

import pytest

from gd_doctor.diagnosis.explain import explain
from gd_doctor.knowledge import bottlerocket_issues, coverage_issues, load
from gd_doctor.report.explain import render_explanation


@pytest.mark.parametrize(
    "text, row",
    [
        ("ECR Image Pull Failed", "bottlerocket-ecr-image-pull-failed"),
        (
            "The agent container image could not be pulled from Amazon ECR.",
            "bottlerocket-ecr-image-pull-failed",
        ),
        (
            "ECR Image Pull Failed: The agent container image could not be pulled from Amazon ECR.",
            "bottlerocket-ecr-image-pull-failed",
        ),
        ("No Agent Reporting: Not applicable", "bottlerocket-host-container"),
        ("Agent disconnected: Not applicable", "bottlerocket-agent-disconnected"),
        ("bottlerocket-kernel-lower", "bottlerocket-kernel-lower"),
    ],
)
def test_bottlerocket_messages_route_to_their_row(text: str, row: str) -> None:
    found = explain(text)
    assert found.recognised, found
    assert found.matches[0].id == row
    assert found.matches[0].table == "bottlerocket"


def test_ecr_pull_failure_no_longer_falls_to_shared_vpc_rows() -> None:
    found = explain("ECR Image Pull Failed")
    assert found.how == "type"
    assert not any("shared-vpc" in r.id for r in found.matches)
    text = render_explanation(found, {})
    assert "Bottlerocket (ECS-EC2) table, row 11" in text
    assert "AmazonEC2ContainerRegistryReadOnly" in text
    assert "ecr.dkr" in text


@pytest.mark.parametrize(
    "text, ec2_row, bottlerocket_row",
    [
        ("Waiting for SSM notification", "waiting-for-ssm", "bottlerocket-waiting-for-ssm"),
        ("Agent disconnected", "agent-disconnected", "bottlerocket-agent-disconnected"),
    ],
)
def test_shared_messages_keep_the_ec2_row_and_name_the_bottlerocket_one(
    text: str, ec2_row: str, bottlerocket_row: str
) -> None:
    found = explain(text)
    assert [r.id for r in found.matches] == [ec2_row]
    assert f"gd-doctor explain {bottlerocket_row}" in found.note


def test_not_applicable_alone_names_both_bottlerocket_types() -> None:
    found = explain("Not applicable")
    assert {r.id for r in found.matches} == {
        "bottlerocket-host-container",
        "bottlerocket-agent-disconnected",
    }
    assert "type decides" in found.note


def test_bottlerocket_waiting_for_ssm_names_the_ecr_policy() -> None:
    steps = " ".join(bottlerocket_issues()["bottlerocket-waiting-for-ssm"].steps)
    assert "AmazonSSMManagedInstanceCore" in steps
    assert "AmazonEC2ContainerRegistryReadOnly" in steps
    assert "1.62.1" in " ".join(bottlerocket_issues()["bottlerocket-kernel-lower"].steps)


def test_the_tables_stay_apart() -> None:
    assert len(coverage_issues()) == 17
    assert not set(coverage_issues()) & set(bottlerocket_issues())
    assert len(bottlerocket_issues()) == len(load("bottlerocket.json")["issues"]) == 11


# --- Korean: every row of both tables, and the rows as reports number them ------------------


def test_every_row_of_both_tables_has_a_korean_message_and_type() -> None:
    from gd_doctor.diagnosis.explain import korean_messages, korean_type
    from gd_doctor.knowledge import all_coverage_issues

    for row in all_coverage_issues().values():
        assert korean_type(row.type) is not None, row.type
        if not row.message:
            continue  # rows 2 and 17: the console shows the type alone
        kinds = {k.kind for k in korean_messages(row.id)}
        assert kinds, f"{row.id} has no Korean wording"
        if row.table == "bottlerocket":
            # no Korean edition of Bottlerocket's table here: the wording is gd-doctor's
            assert kinds == {"translation"}, row.id


@pytest.mark.parametrize(
    "text, row",
    [
        ("해당 없음", "bottlerocket-host-container"),
        ("에이전트 연결 끊김: 해당 없음", "bottlerocket-agent-disconnected"),
        ("에이전트 보고 없음: 해당 없음", "bottlerocket-host-container"),
        (
            "Amazon ECR에서 에이전트 컨테이너 이미지를 가져올 수 없습니다.",
            "bottlerocket-ecr-image-pull-failed",
        ),
        ("ECR 이미지 가져오기 실패", "bottlerocket-ecr-image-pull-failed"),
        # Bottlerocket rows share these Korean words with EC2 rows: the EC2 row stays first
        ("SSM 알림 대기", "waiting-for-ssm"),
        ("에이전트 연결 끊김", "agent-disconnected"),
        (
            "SSM 연결 삭제 실패: GuardDuty SSM 연결이 계정에 존재하지 않습니다.",
            "association-delete-missing",
        ),
    ],
)
def test_korean_text_routes_to_its_row(text: str, row: str) -> None:
    found = explain(text)
    assert found.recognised and found.matches[0].id == row, found


def test_a_korean_message_of_both_tables_names_the_bottlerocket_row() -> None:
    found = explain("SSM 알림 대기")
    assert [r.id for r in found.matches] == ["waiting-for-ssm"]
    assert "gd-doctor explain bottlerocket-waiting-for-ssm" in found.note


@pytest.mark.parametrize("text", ["B3", "b3", "row B3", "Row B3", "#B3"])
def test_bottlerocket_rows_by_the_number_reports_print(text: str) -> None:
    found = explain(text)
    assert [r.id for r in found.matches] == ["bottlerocket-association-already-exists"]


def test_a_bottlerocket_number_past_the_table_is_no_match() -> None:
    assert explain("B99").how == "none" and explain("row B12").matches == ()
