"""agent.unit over REAL `systemctl show -p ...` captures (systemd 247, 252, 257: tests/fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gd_doctor.checks import agent
from gd_doctor.facts import to_data
from gd_doctor.facts.agent import UnitFacts
from gd_doctor.host.commands import CommandResult
from gd_doctor.model import Status
from gd_doctor.parsers.systemctl_show import PROPERTIES, parse_systemctl_show
from tests.hostkit import FIXTURES, make_host, run_one

SHOW = ("systemctl", "show", "amazon-guardduty-agent", "-p", ",".join(PROPERTIES))
CAPTURES = sorted((FIXTURES / "systemctl").glob("*/*.props.txt"))
EXPECTED = {  # state -> (status, words the summary must contain)
    "not-found": (Status.FAIL, "LoadState=not-found"),
    "masked": (Status.FAIL, "masked"),
    "disabled": (Status.FAIL, "not running"),
    "failed": (Status.FAIL, "failed"),
    "activating-auto-restart": (Status.FAIL, "auto-restart"),
    "active-running": (Status.OK, "active (running)"),
    "inactive-dead": (Status.FAIL, "not running"),
    # started by hand after boot (unit disabled) and restarted after the kill: running again
    "oom-kill-cgroup-v1": (None, ""),
}


def _state(path: Path) -> str:
    return path.name[: -len(".props.txt")]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: f"{p.parent.name}-{_state(p)}")
def test_unit_state_from_real_capture(tmp_path: Path, capture: Path) -> None:
    host = make_host(tmp_path, commands={SHOW: capture.read_text()})
    out = run_one(agent.unit, host)
    status, words = EXPECTED[_state(capture)]
    if status is not None:
        assert out.status == status, out.summary
    else:
        assert out.status in (Status.WARN, Status.FAIL), out.summary
    assert words in out.summary
    assert isinstance(out.facts, UnitFacts)
    assert out.facts.load_state in ("loaded", "not-found", "masked")


@pytest.mark.parametrize(
    "capture", sorted((FIXTURES / "systemctl").glob("*/active-running.props.txt"))
)
def test_proxy_password_never_in_unit_data(tmp_path: Path, capture: Path) -> None:
    assert "secret" in capture.read_text()  # the capture does hold the password
    host = make_host(tmp_path, commands={SHOW: capture.read_text()})
    out = run_one(agent.unit, host)
    facts = out.facts
    assert isinstance(facts, UnitFacts)
    assert facts.environment["HTTPS_PROXY"] == "http://[REDACTED]@proxy.example:3128"
    assert "secret" not in repr(to_data(facts)) + repr(out.evidence)
    assert facts.main_pid and facts.memory_cap == 128 * 1024 * 1024
    assert facts.cpu_quota_per_sec_usec == 200_000
    assert facts.drop_in_paths == (
        "/etc/systemd/system/amazon-guardduty-agent.service.d/50-proxy.conf",
    )
    assert facts.environment_files == ("/etc/default/amazon-guardduty-agent",)
    # the keys the network domain still reads by name (until it is migrated)
    data = to_data(facts)
    assert data["drop_in_paths"] == list(facts.drop_in_paths) and data["main_pid"]


@pytest.mark.parametrize("full", sorted((FIXTURES / "systemctl").glob("*/*[!s].txt")))
def test_full_show_output_agrees_with_props(full: Path) -> None:
    """Parsing the full `systemctl show` gives the same values as the -p capture."""
    if full.name.endswith(".status.txt"):
        pytest.skip("status output")
    props = full.with_name(full.name[:-4] + ".props.txt")
    a, b = parse_systemctl_show(full.read_text()), parse_systemctl_show(props.read_text())
    for attr in ("load_state", "active_state", "sub_state", "result", "memory_cap", "main_pid"):
        assert getattr(a, attr) == getattr(b, attr), attr


def test_systemd_219_style_output(tmp_path: Path) -> None:
    """Amazon Linux 2 (systemd 219): no MemoryMax/NRestarts, u64 max for 'no limit'.
    Synthetic: written after systemd 219's property names and value formats."""
    text = (
        "MainPID=2540\nResult=success\nExecMainCode=0\nExecMainStatus=0\n"
        "MemoryLimit=18446744073709551615\nCPUQuotaPerSecUSec=infinity\n"
        "LoadState=loaded\nActiveState=active\nSubState=running\n"
        "FragmentPath=/usr/lib/systemd/system/amazon-guardduty-agent.service\n"
        "UnitFileState=enabled\nActiveEnterTimestamp=Mon 2026-11-30 11:00:00 UTC\n"
    )
    host = make_host(tmp_path, commands={SHOW: text})
    out = run_one(agent.unit, host)
    assert out.status == Status.OK and isinstance(out.facts, UnitFacts)
    assert out.facts.memory_cap is None and out.facts.n_restarts is None


@pytest.mark.parametrize(
    "result,status",
    [
        (CommandResult((), None, problem="not found"), Status.SKIP),
        (
            CommandResult(
                (),
                1,
                "",
                "System has not been booted with systemd as init system (PID 1)."
                " Can't operate.\nFailed to connect to bus: Host is down",
            ),
            Status.SKIP,
        ),
        (CommandResult((), None, problem="timed out after 5.0 s"), Status.ERROR),
        (CommandResult((), 0, "\x00\x01garbage\n", ""), Status.ERROR),
    ],
)
def test_no_systemd_or_garbage(tmp_path: Path, result: CommandResult, status: Status) -> None:
    host = make_host(tmp_path, commands={SHOW: result})
    assert run_one(agent.unit, host).status == status
