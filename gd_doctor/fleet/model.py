"""The small typed records ``fleet`` keeps: one per report, resource or bad input.

A whole report is never kept: the readers reduce each file to a :class:`HostRecord` of a few
short strings at once, so memory does not depend on how large the reports are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

VERDICTS = ("healthy", "unhealthy", "unknown")
STATUSES = ("HEALTHY", "UNHEALTHY")
SUPPORTED_SCHEMA_VERSIONS = (1, 2)


class Kind:
    """Where a host record came from (the ``kind`` column of every output)."""

    RUN_COMMAND_JSON = "run-command-json"  # <prefix>/<command-id>/<instance>/<plugin>/<step>/stdout
    RUN_COMMAND_SSM = "run-command-ssm"  # the same layout, holding the --format ssm text
    JSON = "json"  # a JSON report file anywhere below a directory
    SSM_TEXT = "ssm-text"  # a --format ssm text file outside the Run Command layout
    INVENTORY = "inventory"  # Resource Data Sync export of the custom inventory
    LIST_COVERAGE = "list-coverage"
    EVENT = "event"


class Reason:
    """The fixed vocabulary of why an input was not used (counted per reason)."""

    EMPTY_FILE = "empty file"
    BINARY = "binary file"
    TRUNCATED = "truncated JSON"
    NOT_JSON = "not JSON"
    NOT_A_REPORT = "not a gd-doctor report"
    SCHEMA_VERSION = "unsupported schema_version"
    NO_INSTANCE = "no instance id"
    UNREADABLE = "unreadable file"
    TOO_LARGE = "file too large"
    UNREADABLE_DIR = "unreadable directory"
    MISSING_PATH = "path does not exist"
    NOT_COVERAGE = "not a list-coverage response"
    COVERAGE_NOT_JSON = "coverage file not JSON"
    COVERAGE_TRUNCATED = "truncated coverage file"
    RESOURCE_NO_ID = "resource without instance id"
    RESOURCE_BAD = "malformed resource"
    RESOURCE_TYPE = "unknown resource type"
    EVENT_NOT_JSON = "event line not JSON"
    NOT_AN_EVENT = "not a GuardDuty coverage event"


class Ignored:
    """Files that are expected beside the reports and are not reports (not errors)."""

    STDERR = "stderr of a Run Command step"
    OTHER_STEP = "another step of the same Run Command invocation"


@dataclass(frozen=True)
class HostRecord:
    """What one host report says, reduced to the fields the roll-ups need."""

    instance_id: str
    account_id: Optional[str]
    region: Optional[str]
    time: Optional[float]  # report time, seconds since the epoch (UTC)
    verdict: str  # one of VERDICTS
    finding: Optional[str]  # top finding id (first FAIL, else first WARN)
    row: Optional[str]  # coverage-issue row id of the top finding
    fix: Optional[str]  # first fix step of the top finding
    os: Optional[str]
    kernel: Optional[str]
    agent_version: Optional[str]
    kind: str
    source: str
    invocation: Optional[str] = None  # Run Command command id, when the layout gives it
    schema_version: Optional[int] = None
    rows: Tuple[str, ...] = ()  # rows of every FAIL/WARN finding (the console may show any)


@dataclass(frozen=True)
class CoverageRecord:
    """One EC2 resource of the console's view (a ListCoverage resource or a status event)."""

    instance_id: str
    account_id: Optional[str]
    region: Optional[str]
    status: str  # HEALTHY | UNHEALTHY (as the API spells it)
    issue: str
    row: Optional[str]  # coverage-issue row id the issue maps to, None when unrecognised
    updated: Optional[float]
    management_type: Optional[str]
    agent_version: Optional[str]
    instance_type: Optional[str]
    kind: str
    source: str


@dataclass(frozen=True)
class OtherResource:
    """An EKS or ECS resource of the coverage list: reported in its own group, not dropped."""

    resource_type: str
    account_id: Optional[str]
    region: Optional[str]
    resource_id: str
    status: str
    issue: str
    kind: str


@dataclass(frozen=True)
class BadInput:
    """A file, line or resource that could not be used, and why."""

    source: str
    reason: str
    detail: str = ""
    what: str = "file"  # file | directory | resource | event


@dataclass(frozen=True)
class IgnoredFile:
    """A file that belongs beside the reports but is not one (stderr, a sibling step)."""

    source: str
    reason: str


HostItem = Union[HostRecord, BadInput, IgnoredFile]
CoverageItem = Union[CoverageRecord, OtherResource, BadInput]
