"""Diagnosis rules over the platform checks: prerequisites the agent needs before anything else.

Each rule reads check data (never the host) and names a finding of
``knowledge/findings/platform.json``. Where a rule maps a local fact to a coverage-issue row by
inference, the finding spec's ``why`` says so.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from gd_doctor.checks.platform_matrix import matrix, version_tuple
from gd_doctor.diagnosis.base import Results, Rule, RuleOutput, finding, rule
from gd_doctor.model import Finding

# Where other domains publish the installed agent's version (the first one present wins).
AGENT_VERSION_FACTS: Tuple[Tuple[str, str], ...] = (
    ("agent.package", "version"),
    ("agent.package", "agent_version"),
    ("agent.installed", "version"),
)


def _text(r: Results, check_id: str, key: str) -> str:
    value = r.data(check_id, key)
    return str(value) if value is not None else ""


def _os_name(r: Results) -> str:
    return _text(r, "platform.os", "pretty_name") or "this distribution"


def _verified_kernels(r: Results) -> str:
    row = matrix().row(_text(r, "platform.os", "matrix_row") or None)
    if row is None:
        return "see the table"
    return ", ".join(row.kernels)


def installed_agent_version(r: Results) -> Optional[str]:
    """The GuardDuty agent version another check found, or None."""
    for check_id, key in AGENT_VERSION_FACTS:
        value = r.data(check_id, key)
        if isinstance(value, str) and version_tuple(value):
            return value
    return None


@rule("platform.not_ec2")
def not_ec2(r: Results) -> RuleOutput:
    """DMI or an SSM hybrid registration says this is not EC2, and IMDS found no instance id."""
    if r.data("platform.ec2", "is_ec2") is not False:
        return None
    if r.data("imds.identity", "instance_id"):
        return None  # IMDS answered with an identity document: it is EC2 after all
    against = r.data("platform.ec2", "evidence_against")
    evidence = "; ".join(str(x) for x in against) if isinstance(against, list) else ""
    return finding(
        "platform.not-ec2",
        evidence=r.evidence("platform.ec2"),
        checks=["platform.ec2", "imds.identity"],
        why=evidence or "no EC2 evidence",
    )


@rule("platform.in_container")
def in_container(r: Results) -> RuleOutput:
    """gd-doctor itself runs in a container."""
    if r.data("platform.container", "in_container") is not True:
        return None
    signals = r.evidence("platform.container")
    return finding(
        "platform.in-container",
        evidence=signals,
        checks=["platform.container"],
        why=", ".join(signals),
    )


@rule("platform.arch")
def architecture(r: Results) -> RuleOutput:
    """x86_64/aarch64 only; no first-generation Graviton (CPU part or A1 instance type)."""
    machine = _text(r, "platform.arch", "machine")
    instance_type = _text(r, "imds.identity", "instance_type")
    a1_type = any(instance_type.startswith(p) for p in matrix().unsupported_type_prefixes)
    if r.data("platform.arch", "first_generation_graviton") is True or a1_type:
        why = f"instance type {instance_type}" if a1_type else "Cortex-A72 core, CPU part 0xd08"
        return finding(
            "platform.arch-graviton1",
            evidence=(
                *r.evidence("platform.arch"),
                *([f"identity document: instanceType {instance_type}"] if a1_type else []),
            ),
            checks=["platform.arch", "imds.identity"],
            why=why,
        )
    if machine and r.data("platform.arch", "supported") is False:
        return finding(
            "platform.arch-unsupported",
            evidence=r.evidence("platform.arch"),
            checks=["platform.arch"],
            machine=machine,
        )
    return None


@rule("platform.os")
def os_matrix(r: Results) -> RuleOutput:
    """The distribution is outside the verified matrix, unknown, or needs a manual install."""
    out: List[Finding] = []
    match = r.data("platform.os", "match")
    if match == "unknown":
        out.append(
            finding(
                "platform.os-unknown",
                evidence=r.evidence("platform.os"),
                checks=["platform.os"],
                why=r.summary("platform.os"),
            )
        )
    elif r.data("platform.os", "supported") is False:
        versions = r.data("platform.os", "verified_versions")
        row = _text(r, "platform.os", "matrix_row")
        verified = (
            f"{row} {', '.join(str(v) for v in versions)}"
            if row and isinstance(versions, list) and versions
            else "a distribution from the table"
        )
        out.append(
            finding(
                "platform.os-outside-matrix",
                evidence=r.evidence("platform.os"),
                checks=["platform.os"],
                os=_os_name(r),
                date=matrix().date,
                verified=verified,
            )
        )
    if r.data("platform.os", "manual_install_only") is True:
        out.append(
            finding(
                "platform.fedora-manual-install",
                evidence=r.evidence("platform.os"),
                checks=["platform.os"],
            )
        )
    return out


def _needs_newer_agent(r: Results) -> Optional[Finding]:
    if r.ran("agent.version_kernel"):
        # One cause, one finding: agent.version_kernel compared the same version with the same
        # table (knowledge/agent_versions.py) and agent.too-old-for-kernel reports it.
        return None
    required = _text(r, "platform.kernel", "requires_agent")
    agent = installed_agent_version(r)
    need, have = version_tuple(required), version_tuple(agent)
    if not (need and have and have < need):
        return None
    return finding(
        "platform.kernel-needs-newer-agent",
        evidence=r.evidence("platform.kernel"),
        checks=["platform.kernel"],
        kernel=_text(r, "platform.kernel", "major_minor"),
        required=required,
        agent=agent,
        verified=_verified_kernels(r),
    )


@rule("platform.kernel")
def kernel(r: Results) -> RuleOutput:
    """Kernel lower or higher than the table (for every distribution, or for this one), a kernel
    that needs a newer agent than the one installed, or one within range but not listed."""
    verdict = r.data("platform.kernel", "verdict")
    scope = r.data("platform.kernel", "scope")
    params = {
        "kernel": _text(r, "platform.kernel", "major_minor"),
        "os": _os_name(r),
        "row": _text(r, "platform.kernel", "matrix_row") or "this distribution",
        "verified": _verified_kernels(r),
    }
    evidence = r.evidence("platform.kernel")
    checks = ["platform.kernel", "platform.os"]
    newer_agent = _needs_newer_agent(r)
    if verdict == "lower":
        spec = "platform.kernel-lower" if scope == "all" else "platform.kernel-lower-for-distro"
        bound = _text(r, "platform.kernel", "table_min" if scope == "all" else "row_min")
        return finding(spec, evidence=evidence, checks=checks, bound=bound, **params)
    if verdict == "higher":
        if scope == "all":
            return finding(
                "platform.kernel-higher",
                evidence=evidence,
                checks=checks,
                bound=_text(r, "platform.kernel", "table_max"),
                **params,
            )
        required = _text(r, "platform.kernel", "requires_agent")
        note = (
            f"; agent {required} added kernel {params['kernel']} for other distributions"
            if required
            else ""
        )
        found = [
            finding(
                "platform.kernel-higher-for-distro",
                evidence=evidence,
                checks=checks,
                bound=_text(r, "platform.kernel", "row_max"),
                agent_note=note,
                **params,
            )
        ]
        return found + ([newer_agent] if newer_agent else [])
    if newer_agent is not None:
        return newer_agent
    if verdict == "unverified":
        return finding(
            "platform.kernel-unverified", evidence=evidence, checks=["platform.kernel"], **params
        )
    return None


@rule("platform.btf")
def btf(r: Results) -> RuleOutput:
    """No BTF: the agent cannot load its eBPF programs."""
    value = r.data("platform.btf", "btf")
    if value is False:
        return finding(
            "platform.btf-missing",
            evidence=r.evidence("platform.btf"),
            checks=["platform.btf"],
            why=r.summary("platform.btf"),
        )
    if value is None and r.warned("platform.btf"):
        return finding(
            "platform.btf-unknown",
            evidence=r.evidence("platform.btf"),
            checks=["platform.btf"],
            why=r.summary("platform.btf"),
        )
    return None


@rule("platform.kernel_features")
def kernel_features(r: Results) -> RuleOutput:
    """eBPF, tracepoints or kprobes missing from the kernel config."""
    missing = r.data("platform.kernel_features", "missing")
    if not (r.failed("platform.kernel_features") and isinstance(missing, list) and missing):
        return None
    return finding(
        "platform.kernel-features-missing",
        evidence=r.evidence("platform.kernel_features"),
        checks=["platform.kernel_features"],
        missing=", ".join(map(str, missing)),
    )


@rule("platform.memlock")
def memlock(r: Results) -> RuleOutput:
    """RLIMIT_MEMLOCK below 32 MiB on a kernel that needs it (5.10 and older)."""
    if not r.failed("platform.memlock"):
        return None
    if isinstance(r.data("agent.process", "memlock_soft"), int):
        # The running agent's own /proc/PID/limits was read: that measurement decides, and
        # agent.memlock-low reports it (with this check's configuration lines as evidence).
        return None
    return finding(
        "platform.memlock-low",
        evidence=r.evidence("platform.memlock"),
        checks=["platform.memlock", "platform.kernel"],
        effective=_text(r, "platform.memlock", "effective") or "the systemd default",
        kernel=_text(r, "platform.kernel", "major_minor"),
    )


@rule("platform.init")
def init(r: Results) -> RuleOutput:
    """PID 1 is not systemd (and gd-doctor is not merely inside a container)."""
    if not r.failed("platform.init") or r.data("platform.container", "in_container") is True:
        return None
    return finding(
        "platform.no-systemd",
        evidence=r.evidence("platform.init"),
        checks=["platform.init"],
        init=_text(r, "platform.init", "pid1") or "unknown",
    )


RULES: Tuple[Rule, ...] = (
    not_ec2,
    in_container,
    architecture,
    os_matrix,
    kernel,
    btf,
    kernel_features,
    memlock,
    init,
)
