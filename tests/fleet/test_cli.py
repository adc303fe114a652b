"""``gd-doctor fleet summary`` and ``fleet targets`` through the real CLI."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from gd_doctor.cli import app
from gd_doctor.fleet import command
from gd_doctor.fleet.render import CSV_COLUMNS, iter_csv
from gd_doctor.fleet.targets import MAX_INSTANCE_IDS
from tests.fleet.fleetkit import REPO, FleetLayout
from tests.hostkit import cli_runner


def _cov_opts(fleet: FleetLayout) -> List[str]:
    out: List[str] = []
    for a in fleet.coverage_args():
        out += ["--coverage", a]
    return out


def _invoke(args: List[str]) -> Any:
    return cli_runner().invoke(app, args, catch_exceptions=False)


def test_summary_formats(fleet: FleetLayout) -> None:
    import jsonschema

    base = [
        "fleet",
        "summary",
        str(fleet.s3),
        str(fleet.datasync),
        *_cov_opts(fleet),
        "--events",
        str(fleet.events),
    ]
    text = _invoke(base)
    assert text.exit_code == 1  # unhealthy instances exist
    assert text.stdout.startswith("gd-doctor fleet summary: console ")
    assert "\x1b[" not in text.stdout + text.stderr  # no progress bar off a terminal
    js = _invoke([*base, "--format", "json", "--limit", "5"])
    doc = json.loads(js.stdout)
    schema = json.loads((REPO / "gd_doctor" / "fleet" / "summary.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert all(len(g["instances"]) <= 5 for g in doc["without_host_report"])
    csv = _invoke([*base, "--format", "csv"])
    rows = list(iter_csv(csv.stdout))
    assert rows and list(rows[0]) == list(CSV_COLUMNS)
    assert len(rows) == len({r["instance_id"] for r in rows})


def test_summary_usage_errors(fleet: FleetLayout) -> None:
    assert _invoke(["fleet", "summary"]).exit_code == 2
    assert _invoke(["fleet", "summary", str(fleet.s3), "--limit", "0"]).exit_code == 2


def test_bare_coverage_file_takes_the_region_of_its_name(fleet: FleetLayout) -> None:
    west = next(a for a in fleet.coverage_args() if "eu-west-1" in a)
    res = _invoke(["fleet", "summary", "--coverage", west, "--format", "json"])
    doc = json.loads(res.stdout)
    assert {r["region"] for r in doc["coverage"]["by_account_region"]} == {"eu-west-1"}


def test_progress_bar_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, fleet: FleetLayout
) -> None:
    bar = command.Progress(total=4, enabled=True)
    for n in range(1, 5):
        bar(n)
    bar.clear()
    err = capsys.readouterr().err
    assert "4/4 files" in err and err.startswith("\r")
    off = command.Progress(total=4, enabled=False)
    off(4)
    assert capsys.readouterr().err == ""
    from gd_doctor.fleet.summary import Inputs

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    store = command._collect(Inputs(reports=[fleet.plain]), True)
    store.close()  # type: ignore[attr-defined]
    assert "files" in capsys.readouterr().err


def _big_coverage(tmp_path: Path, unhealthy: int, waiting: int) -> Path:
    res: List[Dict[str, Any]] = []
    for n in range(unhealthy + waiting):
        iid = f"i-{n:017x}"
        res.append(
            {
                "ResourceId": iid,
                "AccountId": "111122223333",
                "ResourceDetails": {
                    "ResourceType": "EC2",
                    "Ec2InstanceDetails": {"InstanceId": iid},
                },
                "CoverageStatus": "UNHEALTHY",
                "Issue": "Agent disconnected" if n < unhealthy else "Waiting for SSM notification",
                "UpdatedAt": "2026-11-30T07:30:00.000000+00:00",
            }
        )
    res.append(
        {
            "ResourceId": "i-0ffffffffffffffff",
            "AccountId": "444455556666",
            "ResourceDetails": {
                "ResourceType": "EC2",
                "Ec2InstanceDetails": {"InstanceId": "i-0ffffffffffffffff"},
            },
            "CoverageStatus": "UNHEALTHY",
            "Issue": "Agent disconnected",
            "UpdatedAt": "2026-11-30T07:30:00.000000+00:00",
        }
    )
    f = tmp_path / "coverage-us-east-1.json"
    f.write_text(json.dumps({"Resources": res}))
    return f


def test_targets_batches_of_at_most_50_per_account_and_region(tmp_path: Path) -> None:
    cov = _big_coverage(tmp_path, 120, 3)
    res = _invoke(
        [
            "fleet",
            "targets",
            "--coverage",
            str(cov),
            "--bucket",
            "my-gd-doctor-results",
            "--max-concurrency",
            "5",
            "--max-errors",
            "10%",
        ]
    )
    assert res.exit_code == 0, res.output
    cmds = [shlex.split(line) for line in res.stdout.splitlines() if line.startswith("aws ssm")]
    assert len(cmds) == 4  # 120 = 50 + 50 + 20 in one account, 1 in the other
    seen: List[str] = []
    for argv in cmds:
        i = argv.index("--instance-ids")
        ids = []
        for a in argv[i + 1 :]:
            if a.startswith("--"):
                break
            ids.append(a)
        assert 1 <= len(ids) <= MAX_INSTANCE_IDS
        seen += ids
        assert argv[argv.index("--region") + 1] == "us-east-1"
        assert argv[argv.index("--max-concurrency") + 1] == "5"
        assert argv[argv.index("--max-errors") + 1] == "10%"
        assert argv[argv.index("--output-s3-bucket-name") + 1] == "my-gd-doctor-results"
        assert argv[argv.index("--document-name") + 1] == "gd-doctor-run"
    assert len(seen) == len(set(seen)) == 121
    # the Waiting-for-SSM ones are listed apart, not in any command
    apart = [line for line in res.stdout.splitlines() if line.startswith("#   ")]
    assert len(apart) == 3 and not {a.split()[3] for a in apart} & set(seen)


def test_targets_managed_file_and_formats(tmp_path: Path) -> None:
    cov = _big_coverage(tmp_path, 4, 2)
    managed = tmp_path / "managed.json"
    # two of the Agent-disconnected ones and one Waiting-for-SSM one are managed
    managed.write_text(
        json.dumps({"InstanceInformationList": [{"InstanceId": f"i-{n:017x}"} for n in (0, 1, 4)]})
    )
    res = _invoke(
        ["fleet", "targets", "--coverage", str(cov), "--managed", str(managed), "--format", "ids"]
    )
    lines = res.stdout.splitlines()
    reach = [line.split()[2] for line in lines if not line.startswith("#")]
    assert reach == [f"i-{n:017x}" for n in (0, 1, 4)]
    js = json.loads(
        _invoke(
            [
                "fleet",
                "targets",
                "--coverage",
                str(cov),
                "--managed",
                str(managed),
                "--format",
                "json",
                "--document-name",
                "AWS-RunShellScript",
            ]
        ).stdout
    )
    body = js["batches"][0]["cli_input"]
    assert body["DocumentName"] == "AWS-RunShellScript"
    assert body["Parameters"] == {"commands": ["gd-doctor check --format json"]}
    assert {x["instance_id"] for x in js["not_ssm_managed"]} == {
        f"i-{n:017x}" for n in (2, 3, 5)
    } | {"i-0ffffffffffffffff"}


@pytest.mark.parametrize(
    "opt, value",
    [
        ("--max-concurrency", "0"),
        ("--max-concurrency", "150%"),
        ("--max-errors", "abc"),
        ("--batch", "51"),
        ("--bucket", "No_Such_Bucket"),
        ("--timeout-seconds", "5"),
    ],
)
def test_targets_refuses_what_send_command_would(tmp_path: Path, opt: str, value: str) -> None:
    cov = _big_coverage(tmp_path, 1, 0)
    res = _invoke(["fleet", "targets", "--coverage", str(cov), opt, value])
    assert res.exit_code == 2


def test_targets_skips_instances_with_a_fresh_report(fleet: FleetLayout) -> None:
    res = _invoke(["fleet", "targets", str(fleet.s3), *_cov_opts(fleet), "--format", "ids"])
    listed = {
        line.split()[2]
        for line in res.stdout.splitlines()
        if not line.startswith("# a") and line.strip() and not line.startswith("# not")
    }
    listed = {x.lstrip("# ") for x in listed}
    with_report = {
        i.instance_id
        for i in fleet.instances
        if i.layout == "s3" and i.report is not None and i.console_at < i.started_at
    }
    assert listed and not listed & with_report
    res = _invoke(
        [
            "fleet",
            "targets",
            str(fleet.s3),
            *_cov_opts(fleet),
            "--format",
            "ids",
            "--include-reported",
        ]
    )
    assert len(res.stdout.splitlines()) > len(listed)


def test_top_level_help_lists_fleet() -> None:
    res = _invoke(["--help"])
    assert "fleet" in res.stdout
    res = _invoke(["fleet", "summary", "--help"])
    assert "--coverage" in res.stdout and "--format" in res.stdout
