"""The platform rules on hand-made results: which finding, which row, which words.

The facts are built the way the checks build them: from real os-release files, kernel release
strings and the support matrix, through the facts' ``from_...()`` constructors.
"""

from __future__ import annotations

from typing import List, Optional

from gd_doctor.checks.kernel import RELATED_OPTIONS, REQUIRED_OPTIONS
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import UNEXPLAINED, diagnose
from gd_doctor.diagnosis.platform import RULES
from gd_doctor.facts.agent import PackageFacts, ProcessFacts, VersionKernelFacts
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.platform import (
    ArchFacts,
    BtfFacts,
    ContainerFacts,
    Ec2Facts,
    InitFacts,
    KernelFacts,
    KernelFeaturesFacts,
    MemlockFacts,
    OsFacts,
)
from gd_doctor.knowledge.support import judge_kernel, match_os, matrix
from gd_doctor.model import CheckResult, Finding
from gd_doctor.parsers.cpuinfo import parse_cpuinfo
from gd_doctor.parsers.dmi import judge_ec2
from gd_doctor.parsers.kernel_version import parse_kernel_release
from gd_doctor.parsers.os_release import parse_os_release
from gd_doctor.parsers.systemd_conf import parse_limit
from tests.hostkit import FIXTURES, result

GRAVITON2 = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n"


def findings(*results: CheckResult) -> List[Finding]:
    out: List[Finding] = []
    for r in RULES:
        got = r.apply(results)
        if got is None:
            continue
        out.extend([got] if isinstance(got, Finding) else got)
    return out


def _measured(memlock: Optional[int]) -> CheckResult:
    """agent.process having read the running agent's Max locked memory (None: unlimited)."""
    facts = ProcessFacts(True, pid=4242, memlock_soft=memlock, memlock_hard=memlock)
    return result("agent.process", "ok", facts=facts)


def ids(*results: CheckResult) -> List[str]:
    return sorted(f.finding_id for f in findings(*results))


def os_facts(name: str) -> OsFacts:
    """platform.os's facts for one of the real files in tests/fixtures/os-release."""
    rel = parse_os_release((FIXTURES / "os-release" / name / "os-release").read_text())
    return OsFacts.from_release(
        rel, match_os(rel), source="/etc/os-release", hostname=None, matrix_date=matrix().date
    )


def os_result(name: str) -> CheckResult:
    facts = os_facts(name)
    return result("platform.os", "ok" if facts.supported else "warn", facts=facts)


def kernel_result(release: str, distro: Optional[str]) -> CheckResult:
    """platform.kernel's result for a release on a distribution (an os-release fixture)."""
    kernel = parse_kernel_release(release)
    assert kernel is not None
    os = os_facts(distro) if distro else None
    row = os.matrix_row if os else None
    j = judge_kernel(kernel, row, (os.id or "") if os else "", (os.version_id or "") if os else "")
    facts = KernelFacts.from_judgement(kernel, j, matrix_row=row, source="uname -r")
    if j.verdict == "supported":
        status = "ok"
    elif j.scope == "all" and j.verdict in ("lower", "higher"):
        status = "fail"
    else:
        status = "warn"
    return result("platform.kernel", status, facts=facts)


def arch_result(machine: str, cpuinfo: str) -> CheckResult:
    facts = ArchFacts.from_machine(
        machine,
        source="uname -m",
        cpu=parse_cpuinfo(cpuinfo),
        supported_names=("x86_64", "aarch64"),
    )
    return result("platform.arch", "ok" if facts.supported else "fail", facts=facts)


def ec2_result(**dmi: Optional[str]) -> CheckResult:
    facts = Ec2Facts.from_dmi(judge_ec2(dmi), dmi, None)
    status = {True: "ok", False: "fail", None: "warn"}[facts.is_ec2]
    return result("platform.ec2", status, facts=facts)


def memlock_result(value: Optional[str], kernel: str = "5.10") -> CheckResult:
    """platform.memlock's result when DefaultLimitMEMLOCK=``value`` (on a kernel needing it)."""
    limit = parse_limit(value) if value else None
    facts = MemlockFacts.from_limit(
        limit,
        source=f"DefaultLimitMEMLOCK={value} in /etc/systemd/system.conf",
        required=True,
        kernel=kernel,
        minimum_bytes=matrix().memlock_min_bytes,
        default_value=value,
        default_file="/etc/systemd/system.conf",
        dropins=(),
        unit_value=None,
    )
    return result("platform.memlock", "ok" if facts.sufficient else "fail", facts=facts)


def test_a_healthy_platform_has_no_finding() -> None:
    assert (
        ids(
            os_result("ubuntu2204"),
            kernel_result("5.15.0-1051-aws", "ubuntu2204"),
            arch_result("x86_64", ""),
            result("platform.btf", "ok", facts=BtfFacts.from_sysfs(True)),
            ec2_result(sys_vendor="Amazon EC2", board_asset_tag="i-0123456789abcdef0"),
            result("platform.container", "ok", facts=ContainerFacts.from_signals(())),
            result("platform.init", "ok", facts=InitFacts.from_pid1("systemd", booted=True)),
        )
        == []
    )


def test_not_ec2_names_the_identity_document_row() -> None:
    (f,) = findings(ec2_result(sys_vendor="QEMU", product_name="Standard PC (Q35 + ICH9, 2009)"))
    assert f.finding_id == "platform.not-ec2" and f.issue_id == "identity-document"
    assert "QEMU" in f.title
    assert f.checks == ("platform.ec2", "imds.identity")


def test_imds_identity_overrules_dmi() -> None:
    assert (
        ids(
            ec2_result(sys_vendor="QEMU"),
            result(
                "imds.identity",
                "ok",
                facts=ImdsIdentityFacts(True, 200, None, "i-0123456789abcdef0"),
            ),
        )
        == []
    )


def test_a1_from_the_identity_document() -> None:
    (f,) = findings(
        arch_result("aarch64", GRAVITON2),
        result(
            "imds.identity",
            "ok",
            facts=ImdsIdentityFacts(True, 200, None, "i-1", instance_type="a1.large"),
        ),
    )
    assert f.finding_id == "platform.arch-graviton1"
    assert f.issue_id == "association-execution-failed"
    assert "a1.large" in f.title


def test_a1_from_the_cpu_part() -> None:
    (f,) = findings(arch_result("aarch64", GRAVITON2.replace("0xd0c", "0xd08")))
    assert f.finding_id == "platform.arch-graviton1" and "0xd08" in f.title


def test_kernel_needs_newer_agent_than_installed() -> None:
    # Ubuntu 24.04 on 6.14: verified, but only with agent 1.9.1 or newer (the table's exception).
    got = findings(
        kernel_result("6.14.0-1011-aws", "ubuntu2404"),
        result("agent.package", "ok", facts=PackageFacts(True, manager="dpkg", version="1.8.0")),
    )
    assert [f.finding_id for f in got] == ["platform.kernel-needs-newer-agent"]
    assert got[0].issue_id == "kernel-higher"
    assert "1.9.1" in got[0].title and "1.8.0" in got[0].title


def test_kernel_with_a_new_enough_agent_is_fine() -> None:
    got = ids(
        kernel_result("6.14.0-1011-aws", "ubuntu2404"),
        result("agent.package", "ok", facts=PackageFacts(True, manager="dpkg", version="1.10.0")),
    )
    assert got == []


def test_kernel_bounds_map_to_rows_and_severities() -> None:
    (low,) = findings(kernel_result("4.14.355-275.572.amzn2.x86_64", "al2"))
    assert (low.finding_id, low.issue_id, low.severity.value) == (
        "platform.kernel-lower",
        "kernel-lower",
        "fail",
    )
    assert low.checks == ("platform.kernel", "platform.os")
    (high,) = findings(kernel_result("6.18.44-fc-v657", "debian12"))
    assert (high.finding_id, high.severity.value) == ("platform.kernel-higher-for-distro", "warn")
    assert "1.9.2" in high.title  # the agent that added 6.18 for other distributions
    (top,) = findings(kernel_result("7.3.0", "ubuntu2404"))
    assert top.finding_id == "platform.kernel-higher" and "7.2" in top.title


def test_unknown_kernel_has_no_finding() -> None:
    facts = KernelFacts.unknown(None, None)
    assert ids(result("platform.kernel", "warn", facts=facts)) == []


def test_os_outside_matrix_and_fedora() -> None:
    got = ids(os_result("fedora42"))
    assert got == ["platform.fedora-manual-install", "platform.os-outside-matrix"]


def test_os_unknown_says_why() -> None:
    facts = OsFacts.unknown(
        hostname=None, matrix_date="2026-11-30", problems=("/etc/os-release: missing",)
    )
    (f,) = findings(result("platform.os", "warn", facts=facts))
    assert f.finding_id == "platform.os-unknown" and "/etc/os-release: missing" in f.title


def test_btf_missing_and_unknown() -> None:
    cfg = BtfFacts.from_config({"CONFIG_DEBUG_INFO_BTF": "n"}, "/boot/config-5.4.0")
    (f,) = findings(result("platform.btf", "fail", facts=cfg))
    assert f.finding_id == "platform.btf-missing" and "/boot/config-5.4.0" in f.title
    unknown = BtfFacts(btf=None, source=None)
    assert ids(result("platform.btf", "warn", facts=unknown)) == ["platform.btf-unknown"]


def test_no_systemd_is_reported_inside_a_container_too() -> None:
    init = result("platform.init", "fail", facts=InitFacts.from_pid1("bash", booted=False))
    assert ids(init) == ["platform.no-systemd"]
    docker = ContainerFacts.from_signals(("/.dockerenv exists (docker)",))
    # The container is what gd-doctor judged, and the agent could not run in it either.
    assert ids(init, result("platform.container", "warn", facts=docker)) == [
        "platform.in-container",
        "platform.no-systemd",
    ]


def test_memlock_finding_carries_the_documented_fix() -> None:
    (f,) = findings(memlock_result("8M:8M"), kernel_result("5.10.228", "al2"))
    assert f.issue_id == "agent-disconnected"
    assert any("DefaultLimitMEMLOCK=32M:32M" in s for s in f.steps)
    assert "8M:8M" in f.title and "5.10" in f.title
    assert f.checks == ("platform.memlock", "platform.kernel")


def test_measured_agent_memlock_decides_over_the_configuration() -> None:
    config_low = memlock_result("8M")
    kernel = result(
        "agent.version_kernel", "ok", facts=VersionKernelFacts("5.10.0-1", "5.10", "1.9.2")
    )
    measured_ok = _measured(64 << 20)
    measured_low = _measured(8 << 20)

    def ids(*res: CheckResult) -> List[str]:
        return [f.finding_id for f in diagnose(res, ALL_RULES).findings]

    assert ids(config_low, kernel) == ["platform.memlock-low"]
    # The running agent has enough: the configuration is still low and explains the failed
    # check, with the measurement in the title (never the generic unexplained finding).
    (f,) = diagnose((config_low, kernel, measured_ok), ALL_RULES).findings
    assert f.finding_id == "platform.memlock-config-low"
    assert "64M:64M" in f.title and "8M:8M" in f.title
    assert "platform.memlock" in f.checks
    found = ids(config_low, kernel, measured_low)
    assert "agent.memlock-low" in found and "platform.memlock-low" not in found
    assert "platform.memlock-config-low" not in found


def test_unlimited_measurement_is_enough() -> None:
    measured = _measured(None)
    assert ids(memlock_result("64K"), measured) == ["platform.memlock-config-low"]


def test_no_platform_failure_goes_unexplained() -> None:
    no_kprobes = KernelFeaturesFacts.from_config(
        {"CONFIG_BPF_SYSCALL": "y", "CONFIG_TRACEPOINTS": "y", "CONFIG_KPROBES": "n"},
        "/proc/config.gz",
        required=REQUIRED_OPTIONS,
        related=RELATED_OPTIONS,
    )
    failing = (
        kernel_result("4.14.355-275.572.amzn2.x86_64", "al2"),
        arch_result("s390x", ""),
        arch_result("aarch64", GRAVITON2.replace("0xd0c", "0xd08")),
        result("platform.btf", "fail", facts=BtfFacts.from_sysfs(False)),
        result("platform.kernel_features", "fail", facts=no_kprobes),
        memlock_result("8M"),
        result("platform.init", "fail", facts=InitFacts.from_pid1("tini", booted=False)),
        ec2_result(sys_vendor="QEMU"),
    )
    for res in failing:
        assert res.status.value == "fail", res.check_id
        got = [f.finding_id for f in diagnose((res,), ALL_RULES).findings]
        assert UNEXPLAINED not in got, (res.check_id, got)
