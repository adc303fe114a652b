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
        "id",
        "number",
        "message",
        "type",
        "korean",
        "other-resource",
        "closest",
        "none",
    )


# The Korean edition's wording with real-looking ids filled in, particles attached to the ids
# as Korean writes them.
KOREAN_FILLED = {
    "waiting-for-ssm": "SSM 알림 대기",
    "agent-disconnected": "연결이 끊긴 에이전트트",
    "association-already-exists": "GuardDuty SSM 연결이 계정에 이미 있습니다.",
    "too-many-associations": "계정에 SSM 연결이 너무 많습니다.",
    "association-execution-failed": "아키텍처 요구 사항 또는 기타 사전 요구 사항이 충족되지 않습니다.",
    "shared-vpc-unsupported": "공유 VPC vpc-0a1b2c3d에 대해 VPC 엔드포인트 생성이 지원되지 않음",
    "shared-vpc-owner-not-enabled": (
        "공유 VPC vpc-0a1b2c3d의 소유자 계정 ID 444455556666에는 런타임 모니터링, 자동 에이전트 "
        "구성 또는 둘 다 활성화되어 있지 않습니다"
    ),
    "private-dns-attributes": (
        "프라이빗 DNS를 활성화하려면 vpc-0123456789abcdef0(서비스: Ec2, 상태 코드:400, 요청 ID: "
        "7c9e6679-7425-40de-944b-e07fc1f90ae7)에 대해 enableDnsSupport 및 enableDnsHostnames VPC "
        "속성이 모두 true로 설정되어야 합니다."
    ),
    "shared-vpc-endpoint-deletion": (
        "계정 ID 444455556666, 공유 VPC vpc-11aa22bb33cc44dd5 , 소유자 계정 ID 777788889999에는 "
        "공유 VPC 엔드포인트 삭제가 허용되지 않습니다."
    ),
    "kernel-lower": "커널 버전이 지원되는 버전보다 낮습니다.",
    "identity-document": "인스턴스 자격 증명 문서를 검색할 수 없습니다.",
}


@pytest.mark.parametrize("row_id", sorted(KOREAN_FILLED))
def test_korean_wording_with_ids_before_particles_names_its_row(row_id: str) -> None:
    found = explain(KOREAN_FILLED[row_id])
    assert found.recognised and found.matches[0].id == row_id, found


def test_the_documents_typo_and_the_correct_spelling_both_match() -> None:
    for text in (
        "연결이 끊긴 에이전트트",
        "연결이 끊긴 에이전트",
        "연결이끊긴 에이전트",
        "에이전트 보고 없음: 연결이 끊긴 에이전트",
    ):
        assert [m.id for m in explain(text).matches] == ["agent-disconnected"], text


def test_korean_type_decides_between_rows_that_share_a_message() -> None:
    msg = "GuardDuty SSM 연결이 계정에 존재하지 않습니다."
    assert [m.id for m in explain(f"SSM 연결 삭제 실패: {msg}").matches] == [
        "association-delete-missing"
    ]
    assert {m.id for m in explain(msg).matches} == {
        "association-update-missing",
        "association-delete-missing",
    }


def test_every_row_has_korean_wording_with_its_provenance() -> None:
    from gd_doctor.diagnosis.explain import korean_messages, korean_type
    from gd_doctor.knowledge import load

    korean = load("coverage_issues.json")["korean"]
    assert korean["source"] and korean["date"]
    for row in ROWS.values():
        assert korean_type(row.type) is not None, row.type
        if row.message:
            kinds = {k.kind for k in korean_messages(row.id)}
            # rows of the Korean edition carry its words; the others say they are ours
            assert kinds and kinds <= ({"seed", "corrected"} if row.in_seed else {"translation"})


@pytest.mark.parametrize("text", ["5", "row 5", "Row 5", "#5", "kernel-lower", " 'row 5' "])
def test_rows_by_number_and_id_as_printed(text: str) -> None:
    found = explain(text)
    assert found.recognised and [m.id for m in found.matches] == ["kernel-lower"]


@pytest.mark.parametrize("text", ["the kettle is cold", "zzzz qqqq", "hello world", "42", "row 99"])
def test_noise_gets_no_closest_rows(text: str) -> None:
    found = explain(text)
    assert found.how == "none" and found.matches == ()


def test_explain_cli_list_json_and_verbose_provenance() -> None:
    import json

    from typer.testing import CliRunner

    from gd_doctor.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["explain", "--list"])
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    from gd_doctor.knowledge import bottlerocket_issues

    bottlerocket = bottlerocket_issues()
    assert len(lines) == len(ROWS) + len(bottlerocket)
    # the EC2 table's rows by number, then the Bottlerocket table's as B1, B2, ...
    assert [line.split()[0] for line in lines] == [str(r.number) for r in ROWS.values()] + [
        f"B{r.number}" for r in bottlerocket.values()
    ]
    assert lines[14].split()[1] == "private-dns-attributes"
    as_json = runner.invoke(app, ["explain", "--format", "json", "row 15"])
    doc = json.loads(as_json.stdout)
    assert doc["recognised"] and doc["matches"][0]["id"] == "private-dns-attributes"
    assert doc["matches"][0]["korean"]["type"] == "VPC 엔드포인트 생성 실패"
    listed_json = json.loads(runner.invoke(app, ["explain", "--list", "-f", "json"]).stdout)
    assert [r["table"] for r in listed_json].count("ec2") == 17
    assert len(listed_json) == 17 + len(bottlerocket)
    plain = runner.invoke(app, ["explain", "5"]).stdout
    verbose = runner.invoke(app, ["explain", "5", "--verbose"]).stdout
    assert "Added to the AWS table" not in plain and "Added to the AWS table" in verbose
    assert "gd-doctor's translation" in verbose
    noise = runner.invoke(app, ["explain", "the kettle is cold"])
    assert noise.exit_code == 1
    assert "No coverage issue matches" in noise.stdout and "explain --list" in noise.stdout
    assert "Closest" not in noise.stdout
