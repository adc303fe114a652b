"""The SSM parsers on the fixture files, and on garbage (they never raise anything unexpected)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gd_doctor.knowledge import load
from gd_doctor.parsers.ssm_log import compile_signatures, match_signatures, parse_ssm_log
from gd_doctor.parsers.ssm_state import (
    StateParseError,
    parse_document_state,
    parse_installstate,
    parse_registration,
)
from tests.ssm.conftest import text

SIGS = compile_signatures(
    [
        (s["id"], s["pattern"], s["cause"], s["levels"])
        for s in load("ssm_signatures.json")["signatures"]
    ]
)


def _ids(log: str) -> set:  # type: ignore[type-arg]
    return {s.id for e in parse_ssm_log(log.splitlines()) for s in match_signatures(e, SIGS)}


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "logs/health-ping-denied-v3.log",
            {"health-ping-access-denied", "hibernate", "health-ping-failed"},
        ),
        (
            "logs/errors-v2.log",
            {"health-ping-access-denied", "health-ping-failed", "messages-access-denied"},
        ),
        ("logs/no-role-journal.txt", {"no-instance-role", "health-ping-failed"}),
        ("logs/dns-failure.log", {"endpoint-dns-failed", "health-ping-failed"}),
        ("logs/tcp-timeout.log", {"endpoint-unreachable", "health-ping-failed"}),
        ("logs/clock-skew.log", {"clock-skew", "health-ping-failed"}),
        ("logs/no-manifest.log", {"distributor-no-manifest", "guardduty-trace"}),
        ("logs/healthy-v3.log", {"guardduty-trace"}),
    ],
)
def test_signatures_on_fixture_logs(fixture: str, expected: set) -> None:  # type: ignore[type-arg]
    assert _ids(text(fixture)) == expected


def test_continuation_lines_carry_the_cause() -> None:
    entries = parse_ssm_log(text("logs/dns-failure.log").splitlines())
    assert [e.level for e in entries] == ["INFO", "ERROR"]
    assert "lookup ssm.eu-west-1.amazonaws.com" in entries[1].message
    assert entries[1].line.startswith("2026-11-30 11:49:56 ERROR Health ping failed")


def test_v2_error_line_component_is_the_function() -> None:
    first = parse_ssm_log(text("logs/errors-v2.log").splitlines())[0]
    assert first.component == "HandleAwsError @ awserr.go.48"
    assert first.level == "ERROR"


def test_log_tail_starting_mid_entry_drops_the_fragment() -> None:
    lines = ["ion failed", "	status code: 400", *text("logs/clock-skew.log").splitlines()]
    entries = parse_ssm_log(lines)
    assert len(entries) == 1 and entries[0].level == "ERROR"


def test_impossible_date_keeps_the_line_without_time() -> None:
    (e,) = parse_ssm_log(["2026-13-45 10:00:00 ERROR Health ping failed with error - x"])
    assert e.timestamp is None and e.level == "ERROR"


def test_state_fixtures() -> None:
    assert parse_installstate(text("state/installstate-installed.json")).installed
    failed = parse_installstate(text("state/installstate-failed.json"))
    assert failed.failed and failed.retry_count == 3
    run = parse_document_state(text("state/docstate-failed.json"))
    assert run.failed and run.association_id == "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
    assert "no manifest found for platform: ubuntu, version 22.04" in run.output
    assert not parse_document_state(text("state/docstate-success.json")).failed
    reg = parse_registration(text("state/registration-hybrid.json"))
    assert reg.managed_instance_id == "mi-0123456789abcdef0"


@pytest.mark.parametrize(
    "bad",
    [
        text("state/installstate-truncated.json"),
        "",
        "null",
        "[1,2]",
        "\x00\x00garbage",
        "{" * 5000,
    ],
)
def test_state_parsers_reject_garbage_with_their_own_error(bad: str) -> None:
    for parse in (parse_installstate, parse_document_state, parse_registration):
        with pytest.raises(StateParseError):
            parse(bad)


def test_document_state_tolerates_wrong_types() -> None:
    run = parse_document_state(
        '{"DocumentInformation":{"DocumentName":7,"DocumentStatus":null},'
        '"InstancePluginsInformation":[1,{"Result":"x"},{"Name":"p"}]}'
    )
    assert run.document_name is None and [p.name for p in run.plugins] == ["?", "p"]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_log_parser_never_raises(data: str) -> None:
    for e in parse_ssm_log(data.splitlines()):
        match_signatures(e, SIGS)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=4),
    )
)
def test_state_parsers_never_raise_other_errors(value: object) -> None:
    import json

    raw = json.dumps(value)
    for parse in (parse_installstate, parse_document_state, parse_registration):
        try:
            parse(raw)
        except StateParseError:
            pass


def test_plugin_output_is_not_repeated_when_stderr_is_inside_output() -> None:
    run = parse_document_state(text("state/docstate-failed.json"))
    assert run.output.count("no manifest found for platform") == 1
