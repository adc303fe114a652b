"""Diagnosis rules over the platform checks: prerequisites the agent needs before anything else.

Each rule reads the platform facts (never the host) and names a finding of
``knowledge/findings/platform.json``. Where a rule maps a local fact to a coverage-issue row by
inference, the finding spec's ``why`` says so. Every platform check that can FAIL is explained
by a FAIL finding here that lists it in ``checks``.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from gd_doctor.diagnosis.base import CheckRef, Rule, RuleOutput, finding, rule
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
    format_limit,
)
from gd_doctor.knowledge.support import matrix, version_tuple
from gd_doctor.model import Finding
from gd_doctor.parsers.systemd_conf import LimitSetting


def _os_name(os: Optional[OsFacts]) -> str:
    return (os.pretty_name if os else None) or "this distribution"


def _verified_kernels(os: Optional[OsFacts]) -> str:
    row = matrix().row(os.matrix_row if os else None)
    if row is None:
        return "see the table"
    return ", ".join(row.kernels)


@rule("platform.not_ec2", reads=(Ec2Facts, ImdsIdentityFacts))
def not_ec2(ec2: Optional[Ec2Facts], identity: Optional[ImdsIdentityFacts]) -> RuleOutput:
    """DMI or an SSM hybrid registration says this is not EC2, and IMDS found no instance id."""
    if ec2 is None or ec2.is_ec2 is not False:
        return None
    if identity is not None and identity.instance_id:
        return None  # IMDS answered with an identity document: it is EC2 after all
    return finding(
        "platform.not-ec2",
        evidence_from=(Ec2Facts,),
        checks=(Ec2Facts, "imds.identity"),
        why="; ".join(ec2.evidence_against) or "no EC2 evidence",
    )


@rule("platform.in_container", reads=(ContainerFacts,))
def in_container(container: Optional[ContainerFacts]) -> RuleOutput:
    """gd-doctor itself runs in a container: what it saw is the container, not the host."""
    if container is None or not container.in_container:
        return None
    return finding(
        "platform.in-container",
        evidence_from=(ContainerFacts,),
        checks=(ContainerFacts,),
        why=", ".join(container.signals),
    )


@rule("platform.arch", reads=(ArchFacts, ImdsIdentityFacts))
def architecture(arch: Optional[ArchFacts], identity: Optional[ImdsIdentityFacts]) -> RuleOutput:
    """x86_64/aarch64 only; no first-generation Graviton (CPU part or A1 instance type)."""
    instance_type = (identity.instance_type if identity is not None else None) or ""
    a1_type = any(instance_type.startswith(p) for p in matrix().unsupported_type_prefixes)
    if (arch and arch.first_generation_graviton) or a1_type:
        why = f"instance type {instance_type}" if a1_type else "Cortex-A72 core, CPU part 0xd08"
        return finding(
            "platform.arch-graviton1",
            evidence_from=(ArchFacts,),
            evidence=[f"identity document: instanceType {instance_type}"] if a1_type else [],
            checks=(ArchFacts, "imds.identity"),
            why=why,
        )
    if arch and arch.machine and arch.supported is False:
        return finding(
            "platform.arch-unsupported",
            evidence_from=(ArchFacts,),
            checks=(ArchFacts,),
            machine=arch.machine,
        )
    return None


@rule("platform.os", reads=(OsFacts,))
def os_matrix(os: Optional[OsFacts]) -> RuleOutput:
    """The distribution is outside the verified matrix, unknown, or needs a manual install."""
    if os is None:
        return None
    out: List[Finding] = []
    if os.match == "unknown":
        why = "; ".join(os.problems) or "no os-release names it"
        out.append(
            finding("platform.os-unknown", evidence_from=(OsFacts,), checks=(OsFacts,), why=why)
        )
    elif os.supported is False:
        verified = (
            f"{os.matrix_row} {', '.join(os.verified_versions)}"
            if os.matrix_row and os.verified_versions
            else "a distribution from the table"
        )
        out.append(
            finding(
                "platform.os-outside-matrix",
                evidence_from=(OsFacts,),
                checks=(OsFacts,),
                os=_os_name(os),
                date=matrix().date,
                verified=verified,
            )
        )
    if os.manual_install_only:
        out.append(
            finding("platform.fedora-manual-install", evidence_from=(OsFacts,), checks=(OsFacts,))
        )
    return out


def _needs_newer_agent(
    kernel: KernelFacts, os: Optional[OsFacts], agent: Optional[str]
) -> Optional[Finding]:
    need, have = version_tuple(kernel.requires_agent), version_tuple(agent)
    if not (need and have and have < need):
        return None
    return finding(
        "platform.kernel-needs-newer-agent",
        evidence_from=(KernelFacts,),
        checks=(KernelFacts,),
        kernel=kernel.major_minor,
        required=kernel.requires_agent,
        agent=agent,
        verified=_verified_kernels(os),
    )


def _kernel_finding(
    spec_id: str,
    kernel: KernelFacts,
    os: Optional[OsFacts],
    checks: Tuple[CheckRef, ...] = (KernelFacts, OsFacts),
    **extra: str,
) -> Finding:
    """A kernel finding with the placeholders every kernel finding shares."""
    return finding(
        spec_id,
        evidence_from=(KernelFacts,),
        checks=checks,
        kernel=kernel.major_minor,
        os=_os_name(os),
        row=kernel.matrix_row or "this distribution",
        verified=_verified_kernels(os),
        **extra,
    )


@rule("platform.kernel", reads=(KernelFacts, OsFacts, PackageFacts, VersionKernelFacts))
def kernel(
    kernel: Optional[KernelFacts],
    os: Optional[OsFacts],
    pkg: Optional[PackageFacts],
    agent_kernel: Optional[VersionKernelFacts],
) -> RuleOutput:
    """Kernel lower or higher than the table (for every distribution, or for this one), a kernel
    that needs a newer agent than the one installed, or one within range but not listed."""
    if kernel is None or kernel.verdict == "unknown":
        return None
    # One cause, one finding: when agent.version_kernel compared the installed agent with the
    # same table (knowledge/agent_versions.py), agent.too-old-for-kernel reports it.
    newer_agent = (
        _needs_newer_agent(kernel, os, pkg.version if pkg else None)
        if agent_kernel is None
        else None
    )
    if kernel.verdict == "lower":
        if kernel.scope == "all":
            return _kernel_finding(
                "platform.kernel-lower", kernel, os, bound=kernel.table_min or ""
            )
        return _kernel_finding(
            "platform.kernel-lower-for-distro", kernel, os, bound=kernel.row_min or ""
        )
    if kernel.verdict == "higher":
        if kernel.scope == "all":
            return _kernel_finding(
                "platform.kernel-higher", kernel, os, bound=kernel.table_max or ""
            )
        note = (
            f"; agent {kernel.requires_agent} added kernel {kernel.major_minor} for other "
            "distributions"
            if kernel.requires_agent
            else ""
        )
        higher = _kernel_finding(
            "platform.kernel-higher-for-distro",
            kernel,
            os,
            bound=kernel.row_max or "",
            agent_note=note,
        )
        return [higher, newer_agent] if newer_agent else [higher]
    if newer_agent is not None:
        return newer_agent
    if kernel.verdict == "unverified":
        return _kernel_finding("platform.kernel-unverified", kernel, os, checks=(KernelFacts,))
    return None


@rule("platform.btf", reads=(BtfFacts,))
def btf(btf: Optional[BtfFacts]) -> RuleOutput:
    """No BTF: the agent cannot load its eBPF programs."""
    if btf is None:
        return None
    if btf.btf is False:
        why = (
            f"CONFIG_DEBUG_INFO_BTF is {btf.config_value} in {btf.source}"
            if btf.config_value
            else "/sys/kernel/btf/vmlinux is missing"
        )
        return finding(
            "platform.btf-missing", evidence_from=(BtfFacts,), checks=(BtfFacts,), why=why
        )
    if btf.btf is None:
        why = "no /sys/kernel/btf/vmlinux and no kernel config to read"
        return finding(
            "platform.btf-unknown", evidence_from=(BtfFacts,), checks=(BtfFacts,), why=why
        )
    return None


@rule("platform.kernel_features", reads=(KernelFeaturesFacts,))
def kernel_features(features: Optional[KernelFeaturesFacts]) -> RuleOutput:
    """eBPF, tracepoints or kprobes missing from the kernel config."""
    if features is None or not features.missing:
        return None
    return finding(
        "platform.kernel-features-missing",
        evidence_from=(KernelFeaturesFacts,),
        checks=(KernelFeaturesFacts,),
        missing=", ".join(features.missing),
    )


def measured_memlock(process: Optional[ProcessFacts]) -> Optional[LimitSetting]:
    """The running agent's own RLIMIT_MEMLOCK (/proc/PID/limits), when agent.process read it;
    a None soft or hard value is ``unlimited``."""
    if process is None or not process.memlock_known:
        return None  # no running agent, or its limits could not be read
    return LimitSetting(process.memlock_soft, process.memlock_hard)


@rule("platform.memlock", reads=(MemlockFacts, KernelFacts, ProcessFacts))
def memlock(
    memlock: Optional[MemlockFacts],
    kernel: Optional[KernelFacts],
    process: Optional[ProcessFacts],
) -> RuleOutput:
    """RLIMIT_MEMLOCK below 32 MiB on a kernel that needs it (5.10 and older).

    The running agent's measured limit decides over the configuration: when it is low too,
    ``agent.memlock-low`` reports it (with this check's configuration lines as evidence); when it
    is enough, the configuration is still low and the next start of the agent gets it.
    """
    if memlock is None or memlock.required is not True or memlock.sufficient:
        return None
    measured = measured_memlock(process)
    kernel_text = memlock.kernel or (kernel.major_minor if kernel else None) or "5.10 or older"
    effective = memlock.effective or "the systemd default"
    if measured is None:
        return finding(
            "platform.memlock-low",
            evidence_from=(MemlockFacts,),
            checks=(MemlockFacts, KernelFacts),
            effective=effective,
            kernel=kernel_text,
        )
    if not measured.at_least(memlock.minimum_bytes):
        # agent.memlock-low (agent domain) reports the measured limit and lists platform.memlock
        # in its checks.
        return None
    return finding(
        "platform.memlock-config-low",
        evidence_from=(MemlockFacts,),
        evidence=[f"the running agent's Max locked memory: {format_limit(measured)}"],
        checks=(MemlockFacts, KernelFacts),
        effective=effective,
        measured=format_limit(measured),
        kernel=kernel_text,
    )


@rule("platform.init", reads=(InitFacts,))
def init(init: Optional[InitFacts]) -> RuleOutput:
    """PID 1 is not systemd (in a container too: the agent could not run there either)."""
    if init is None or not init.not_systemd:
        return None
    return finding(
        "platform.no-systemd",
        evidence_from=(InitFacts,),
        checks=(InitFacts,),
        init=init.pid1 or "unknown",
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
