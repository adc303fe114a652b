"""The platform rules on hand-made results: which finding, which row, which words."""

from __future__ import annotations

from typing import Any, List

from gd_doctor.diagnosis.base import Results
from gd_doctor.diagnosis.platform import RULES
from gd_doctor.model import CheckResult, Finding
from tests.hostkit import result


def findings(*results: CheckResult) -> List[Finding]:
    view = Results(list(results))
    out: List[Finding] = []
    for r in RULES:
        got: Any = r(view)
        if got is None:
            continue
        out.extend([got] if isinstance(got, Finding) else got)
    return out


def ids(*results: CheckResult) -> List[str]:
    return sorted(f.finding_id for f in findings(*results))


def kernel(verdict: str, scope: str, **extra: Any) -> CheckResult:
    status = "fail" if scope == "all" and verdict in ("lower", "higher") else "warn"
    if verdict == "supported":
        status = "ok"
    return result("platform.kernel", status, verdict=verdict, scope=scope, major_minor="6.14",
                  matrix_row="Ubuntu", row_min="5.4", row_max="7.0", table_min="5.4",
                  table_max="7.2", **extra)


def test_a_healthy_platform_has_no_finding() -> None:
    assert ids(
        result("platform.os", "ok", supported=True, match="exact", matrix_row="Ubuntu"),
        kernel("supported", "distro"),
        result("platform.arch", "ok", machine="x86_64", supported=True),
        result("platform.btf", "ok", btf=True),
        result("platform.ec2", "ok", is_ec2=True),
        result("platform.container", "ok", in_container=False),
    ) == []


def test_not_ec2_names_the_identity_document_row() -> None:
    (f,) = findings(result("platform.ec2", "fail", is_ec2=False,
                           evidence_against=["sys_vendor is 'QEMU'"]))
    assert f.finding_id == "platform.not-ec2" and f.issue_id == "identity-document"
    assert "QEMU" in f.title


def test_imds_identity_overrules_dmi() -> None:
    assert ids(
        result("platform.ec2", "fail", is_ec2=False, evidence_against=["x"]),
        result("imds.identity", "ok", instance_id="i-0123456789abcdef0"),
    ) == []


def test_a1_from_the_identity_document() -> None:
    (f,) = findings(
        result("platform.arch", "ok", machine="aarch64", supported=True,
               first_generation_graviton=None),
        result("imds.identity", "ok", instance_id="i-1", instance_type="a1.large"),
    )
    assert f.finding_id == "platform.arch-graviton1"
    assert f.issue_id == "association-execution-failed"
    assert "a1.large" in f.title


def test_kernel_needs_newer_agent_than_installed() -> None:
    got = findings(
        kernel("supported", "distro", requires_agent="1.9.1"),
        result("agent.package", "ok", version="1.8.0"),
    )
    assert [f.finding_id for f in got] == ["platform.kernel-needs-newer-agent"]
    assert got[0].issue_id == "kernel-higher"
    assert "1.9.1" in got[0].title and "1.8.0" in got[0].title


def test_kernel_with_a_new_enough_agent_is_fine() -> None:
    assert ids(kernel("supported", "distro", requires_agent="1.9.1"),
               result("agent.package", "ok", version="1.10.0")) == []


def test_kernel_bounds_map_to_rows_and_severities() -> None:
    (low,) = findings(kernel("lower", "all"))
    assert (low.finding_id, low.issue_id, low.severity.value) == (
        "platform.kernel-lower", "kernel-lower", "fail")
    (high,) = findings(kernel("higher", "distro", requires_agent="1.9.2"))
    assert (high.finding_id, high.severity.value) == ("platform.kernel-higher-for-distro", "warn")
    assert "1.9.2" in high.title
    (top,) = findings(kernel("higher", "all"))
    assert top.finding_id == "platform.kernel-higher" and "7.2" in top.title


def test_os_outside_matrix_and_fedora() -> None:
    got = ids(result("platform.os", "warn", supported=False, match="version",
                     matrix_row="Fedora", verified_versions=["40", "41"],
                     manual_install_only=True, pretty_name="Fedora Linux 42"))
    assert got == ["platform.fedora-manual-install", "platform.os-outside-matrix"]


def test_no_systemd_is_not_reported_inside_a_container() -> None:
    init = result("platform.init", "fail", pid1="bash")
    assert ids(init) == ["platform.no-systemd"]
    assert ids(init, result("platform.container", "fail", in_container=True)) == [
        "platform.in-container"
    ]


def test_memlock_finding_carries_the_documented_fix() -> None:
    (f,) = findings(result("platform.memlock", "fail", effective="8M:8M"),
                    kernel("supported", "distro"))
    assert f.issue_id == "agent-disconnected"
    assert any("DefaultLimitMEMLOCK=32M:32M" in s for s in f.steps)
    assert "8M:8M" in f.title


def test_measured_agent_memlock_decides_over_the_configuration() -> None:
    from gd_doctor.diagnosis import ALL_RULES
    from gd_doctor.diagnosis.engine import diagnose
    from tests.hostkit import result

    config_low = result("platform.memlock", "fail", effective="8M")
    kernel = result("agent.version_kernel", "ok", series="5.10")
    measured_ok = result("agent.process", "ok", memlock_soft=64 << 20, memlock_hard=64 << 20)
    measured_low = result("agent.process", "ok", memlock_soft=8 << 20, memlock_hard=8 << 20)
    ids = lambda res: [f.finding_id for f in diagnose(res, ALL_RULES).findings]  # noqa: E731
    assert "platform.memlock-low" in ids([config_low, kernel])
    assert ids([config_low, kernel, measured_ok]) == []
    found = ids([config_low, kernel, measured_low])
    assert "agent.memlock-low" in found and "platform.memlock-low" not in found
