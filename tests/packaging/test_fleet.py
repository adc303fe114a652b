"""The fleet definitions: the State Manager associations within SSM's limits, the StackSet
template clean under cfn-lint, its document the generated one, StackSet-ready. Fast, no root."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]
from cfnlint.decode import decode_str  # type: ignore[import-untyped]

from tests.packaging.conftest import PACKAGING

FLEET = PACKAGING / "fleet"
TEMPLATES = sorted(FLEET.glob("*.yaml"))
ASSOCIATIONS = sorted(FLEET.glob("association*.json"))
DOCUMENT = json.loads((PACKAGING / "ssm" / "gd-doctor-run.json").read_text(encoding="utf-8"))

# botocore's SSM service model (fleet.md): CreateAssociation and TargetLocation.
MAX_CONCURRENCY = r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$"
MAX_ERRORS = r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$"
ACCOUNT_OR_OU = r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32})|(\d{12})$"
REGION = r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$"
# Regions the template is linted for: a StackSet deploys it everywhere.
LINT_REGIONS = ["us-east-1", "eu-central-1", "ap-southeast-1"]


def test_there_is_a_template_and_an_association_of_each_kind() -> None:
    assert [p.name for p in TEMPLATES] == ["gd-doctor-fleet.yaml"]
    names = {p.name for p in ASSOCIATIONS}
    assert names == {"association.json", "association-tag.json", "association-org.json"}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_finds_nothing(path: Path) -> None:
    matches = lint_file(path, config=ManualArgs(regions=LINT_REGIONS))
    assert [f"{m.rule.id} {m.linenumber}: {m.message}" for m in matches] == []


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    """The lint test can fail: a misspelt property is an error."""
    text = (FLEET / "gd-doctor-fleet.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("SyncFormat: JsonSerDe", "SyncFormatt: JsonSerDe"))
    ids = {m.rule.id for m in lint_file(broken, config=ManualArgs(regions=LINT_REGIONS))}
    assert "E3002" in ids


def template() -> Dict[str, Any]:
    decoded, problems = decode_str((FLEET / "gd-doctor-fleet.yaml").read_text(encoding="utf-8"))
    assert not problems and decoded is not None
    plain: Dict[str, Any] = json.loads(json.dumps(decoded))
    return plain


def test_template_document_is_the_generated_document() -> None:
    p = subprocess.run(
        [sys.executable, str(FLEET / "make_template.py"), "--check"], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
    doc = template()["Resources"]["Document"]["Properties"]
    assert doc["Content"] == DOCUMENT
    assert doc["DocumentType"] == "Command" and doc["Name"] == {"Ref": "DocumentName"}


def test_template_is_stackset_ready() -> None:
    """No account id, Region or partition literal: the same template in every account."""
    t = template()
    body = json.dumps(t["Resources"]) + json.dumps(t["Outputs"])
    assert not re.search(r"\b\d{12}\b", body)
    assert not re.search(
        r"\b[a-z]{2}-(east|west|north|south|central|northeast|southeast)-\d\b", body
    )
    assert "arn:aws:" not in body
    assert {"BucketName", "BucketPrefix", "OrganizationId", "ScheduleExpression"} <= set(
        t["Parameters"]
    )
    assert {"TargetKey", "TargetValues", "CentralAccountId", "BucketRegion"} <= set(t["Parameters"])
    for name, p in t["Parameters"].items():
        assert p.get("Description"), name


def test_bucket_only_in_the_central_account_and_region() -> None:
    t = template()
    central = t["Conditions"]["IsCentral"]["Fn::And"]
    assert {"Fn::Equals": [{"Ref": "AWS::AccountId"}, {"Ref": "CentralAccountId"}]} in central
    assert {"Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "BucketRegion"}]} in central
    for name, r in t["Resources"].items():
        if r["Type"].startswith("AWS::S3::"):
            assert r.get("Condition") == "IsCentral", name
    assert t["Resources"]["Bucket"]["DeletionPolicy"] == "Retain"


def test_bucket_policy_lets_only_the_organization_write() -> None:
    statements = template()["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    for s in statements:
        if s["Effect"] != "Allow":
            continue
        cond = s["Condition"]["StringEquals"]
        key = "aws:PrincipalOrgID" if s["Principal"] == "*" else "aws:SourceOrgID"
        assert cond[key] == {"Ref": "OrganizationId"}, s["Sid"]
    allowed = {a for s in statements if s["Effect"] == "Allow" for a in _list(s["Action"])}
    assert allowed == {
        "s3:PutObject",
        "s3:PutObjectAcl",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketAcl",
        "s3:PutObjectTagging",
    }  # nothing that reads or deletes objects


def _list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else [value]


def test_resource_data_sync_gathers_inventory_as_json_serde() -> None:
    sync = template()["Resources"]["InventorySync"]["Properties"]
    assert sync["SyncType"] == "SyncToDestination"
    dest = sync["S3Destination"]
    assert dest["SyncFormat"] == "JsonSerDe"
    assert dest["BucketName"] == {"Ref": "BucketName"}
    assert dest["BucketRegion"] == {"Ref": "BucketRegion"}


def test_template_association_runs_the_document_on_a_schedule() -> None:
    t = template()
    a = t["Resources"]["Association"]["Properties"]
    assert a["Name"] == {"Ref": "Document"}
    assert a["ApplyOnlyAtCronInterval"] is True
    assert t["Parameters"]["ScheduleExpression"]["Default"] == "rate(12 hours)"
    assert t["Parameters"]["ScheduleExpression"]["MaxLength"] == 256
    assert set(a["Parameters"]) <= set(DOCUMENT["parameters"])
    assert t["Parameters"]["MaxConcurrency"]["AllowedPattern"] == MAX_CONCURRENCY
    assert t["Parameters"]["MaxErrors"]["AllowedPattern"] == MAX_ERRORS
    assert re.fullmatch(MAX_CONCURRENCY, t["Parameters"]["MaxConcurrency"]["Default"])
    assert re.fullmatch(MAX_ERRORS, t["Parameters"]["MaxErrors"]["Default"])
    s3 = a["OutputLocation"]["S3Location"]
    assert s3["OutputS3BucketName"] == {"Ref": "BucketName"}


# --- the create-association --cli-input-json files --------------------------------------------


@pytest.fixture(params=ASSOCIATIONS, ids=lambda p: p.name)
def association(request: Any) -> Dict[str, Any]:
    data: Dict[str, Any] = json.loads(Path(request.param).read_text(encoding="utf-8"))
    return data


# CreateAssociation's request members (botocore SSM model): anything else is refused.
CREATE_ASSOCIATION = {
    "Name",
    "DocumentVersion",
    "InstanceId",
    "Parameters",
    "Targets",
    "ScheduleExpression",
    "OutputLocation",
    "AssociationName",
    "AutomationTargetParameterName",
    "MaxErrors",
    "MaxConcurrency",
    "ComplianceSeverity",
    "SyncCompliance",
    "ApplyOnlyAtCronInterval",
    "CalendarNames",
    "TargetLocations",
    "ScheduleOffset",
    "Duration",
    "TargetMaps",
    "Tags",
    "AlarmConfiguration",
}


def test_association_meets_ssm_limits(association: Dict[str, Any]) -> None:
    assert set(association) <= CREATE_ASSOCIATION
    assert association["Name"] == "gd-doctor-run"
    assert len(association["ScheduleExpression"]) <= 256
    assert re.fullmatch(r"rate\(12 hours\)|cron\(.+\)", association["ScheduleExpression"])
    assert association["ApplyOnlyAtCronInterval"] is True
    assert re.search(MAX_CONCURRENCY, association["MaxConcurrency"])
    assert len(association["MaxConcurrency"]) <= 7
    assert re.search(MAX_ERRORS, association["MaxErrors"]) and len(association["MaxErrors"]) <= 7
    assert association["SyncCompliance"] in {"AUTO", "MANUAL"}
    assert 1 <= len(association["Targets"]) <= 5
    s3 = association["OutputLocation"]["S3Location"]
    assert 3 <= len(s3["OutputS3BucketName"]) <= 63 and len(s3["OutputS3KeyPrefix"]) <= 500
    assert re.search(REGION, s3["OutputS3Region"])
    assert 1 <= len(association.get("AssociationName", "x")) <= 128


def test_association_parameters_are_the_documents(association: Dict[str, Any]) -> None:
    params = DOCUMENT["parameters"]
    for name, values in association["Parameters"].items():
        assert name in params, name
        assert isinstance(values, list) and len(values) == 1, name
        p = params[name]
        if "allowedValues" in p:
            assert values[0] in p["allowedValues"], name
        if "allowedPattern" in p:
            assert re.search(p["allowedPattern"], values[0]), name
    assert association["Parameters"]["inventory"] == ["true"]


def test_target_locations_within_limits() -> None:
    org = json.loads((FLEET / "association-org.json").read_text(encoding="utf-8"))
    locations = org["TargetLocations"]
    assert 1 <= len(locations) <= 100
    for loc in locations:
        # IncludeChildOrganizationUnits is not supported by State Manager (SSM API reference).
        assert set(loc) <= {
            "Accounts",
            "Regions",
            "TargetLocationMaxConcurrency",
            "TargetLocationMaxErrors",
            "ExecutionRoleName",
            "ExcludeAccounts",
        }
        assert 1 <= len(loc["Accounts"]) <= 50 and 1 <= len(loc["Regions"]) <= 50
        assert all(re.search(ACCOUNT_OR_OU, a) for a in loc["Accounts"] + loc["ExcludeAccounts"])
        assert all(re.search(REGION, r) for r in loc["Regions"])
        assert re.search(MAX_CONCURRENCY, loc["TargetLocationMaxConcurrency"])
        assert re.search(MAX_ERRORS, loc["TargetLocationMaxErrors"])
        assert re.fullmatch(r"[\w+=,.@/-]{1,64}", loc["ExecutionRoleName"])


def test_tag_association_targets_a_tag() -> None:
    tag = json.loads((FLEET / "association-tag.json").read_text(encoding="utf-8"))
    assert [t["Key"] for t in tag["Targets"]] == ["tag:GdDoctor"]
    every = json.loads((FLEET / "association.json").read_text(encoding="utf-8"))
    assert every["Targets"] == [{"Key": "InstanceIds", "Values": ["*"]}]
