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
