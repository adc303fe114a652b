"""Checks of the platform domain about the machine: distribution, CPU, init, container, EC2.

The kernel's own checks (version, BTF, build options, RLIMIT_MEMLOCK) are in
:mod:`gd_doctor.checks.kernel`; both modules' ids are ``platform.*``. Files read (always under
the analysed root; ``uname`` only on the live host):

* ``/etc/os-release``, ``/usr/lib/os-release``, ``/etc/system-release``; ``/etc/hostname``,
  ``/proc/sys/kernel/hostname``
* ``/proc/sys/kernel/arch`` (or ``uname -m``), the ELF header of ``/bin/sh``, ``/proc/cpuinfo``
* ``/proc/1/comm``, ``/run/systemd/system``; ``/.dockerenv``, ``/run/.containerenv``,
  ``/run/systemd/container``, ``/proc/1/cgroup``, ``/proc/1/environ``
* ``/sys/devices/virtual/dmi/id/*``, ``/sys/hypervisor/uuid``, ``/var/lib/amazon/ssm/registration``

Each check returns its facts (:mod:`gd_doctor.facts.platform`) for the report header and the
rules in ``diagnosis/platform.py``.
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Tuple

from gd_doctor.checks.base import Check, Context, check, judged
from gd_doctor.facts.platform import ArchFacts, ContainerFacts, Ec2Facts, InitFacts, OsFacts
from gd_doctor.host import platform as host_platform
from gd_doctor.knowledge.support import match_os, matrix
from gd_doctor.model import Outcome, Status
from gd_doctor.parsers.cgroup import container_runtime
from gd_doctor.parsers.cpuinfo import parse_cpuinfo
from gd_doctor.parsers.dmi import judge_ec2
from gd_doctor.parsers.elf import elf_machine
from gd_doctor.parsers.os_release import OsRelease, parse_os_release, parse_system_release

SMALL = 64 * 1024  # os-release, DMI values and the like are a few hundred bytes


def _first_line(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    stripped = text.strip("\x00 \t\r\n")
    return stripped.splitlines()[0].strip() if stripped else None


def read_value(ctx: Context, path: str) -> Optional[str]:
    """The first line of a small text file, or None when missing, unreadable or binary."""
    fr = ctx.host.fs.read(path, SMALL)
    if not fr.ok or fr.binary:
        return None
    return _first_line(fr.text)


# --- platform.os -----------------------------------------------------------------------------


def _hostname(ctx: Context) -> Optional[str]:
    return read_value(ctx, "/etc/hostname") or read_value(ctx, "/proc/sys/kernel/hostname")


def _load_os_release(ctx: Context) -> Tuple[Optional[OsRelease], Optional[str], List[str]]:
    """The os-release found, the file it came from, and what went wrong on the way."""
    problems: List[str] = []
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        fr = ctx.host.fs.read(path, SMALL)
        if not fr.ok:
            problems.append(f"{path}: {fr.problem}")
            continue
        if fr.binary:
            problems.append(f"{path}: binary content (NUL bytes), not an os-release file")
            continue
        rel = parse_os_release(fr.text or "")
        if rel.known:
            if fr.truncated:
                problems.append(f"{path}: longer than {SMALL} bytes, read the start only")
            return rel, path, problems
        problems.append(f"{path}: names no distribution (no ID= or NAME=)")
    text = read_value(ctx, "/etc/system-release")
    fallback = parse_system_release(text) if text else None
    if fallback is not None:
        return fallback, "/etc/system-release", problems
    problems.append("/etc/system-release: missing or not a release line")
    return None, None, problems


def _os_summary(facts: OsFacts, rel: OsRelease) -> str:
    versions = ", ".join(facts.verified_versions)
    if facts.supported:
        return (
            f"{facts.pretty_name}: row '{facts.matrix_row}' of AWS's verified matrix "
            f"(table of {facts.matrix_date})"
        )
    if facts.match == "major":
        return (
            f"{facts.pretty_name}: version {rel.version_id} is outside the verified matrix; row "
            f"'{facts.matrix_row}' verifies {versions} (same major release)"
        )
    if facts.match == "version":
        return (
            f"{facts.pretty_name}: version {rel.version_id or '(none)'} is outside the verified "
            f"matrix; row '{facts.matrix_row}' verifies {versions or 'no version'}"
        )
    return (
        f"{facts.pretty_name} ({rel.id or 'no ID'}) is not a distribution AWS's verified "
        "matrix lists"
    )


@check(
    "platform.os",
    title="OS distribution is in AWS's verified matrix",
    category="platform",
    facts=OsFacts,
)
def os_distribution(ctx: Context) -> Outcome:
    """Reads /etc/os-release (then /usr/lib/os-release, /etc/system-release) and looks the
    distribution and version up in the dated support matrix. Outside the matrix is a warning:
    AWS says the agent may still run there (footnote 2 of the table)."""
    rel, source, problems = _load_os_release(ctx)
    hostname = _hostname(ctx)
    m = matrix()
    if rel is None or source is None:
        facts = OsFacts.unknown(hostname=hostname, matrix_date=m.date, problems=tuple(problems))
        summary = "cannot identify the distribution: " + "; ".join(problems)
        return judged(Status.WARN, summary, facts, problems)
    facts = OsFacts.from_release(
        rel,
        match_os(rel, m),
        source=source,
        hostname=hostname,
        matrix_date=m.date,
        problems=tuple(problems),
    )
    evidence = [
        f"{source}: {key}={rel.fields[key]}"
        for key in ("ID", "VERSION_ID", "PRETTY_NAME")
        if key in rel.fields
    ] + problems
    status = Status.OK if facts.supported else Status.WARN
    return judged(status, _os_summary(facts, rel), facts, evidence)


# --- platform.arch ---------------------------------------------------------------------------


def _machine(ctx: Context) -> Tuple[Optional[str], str]:
    live = host_platform.machine(ctx.host)
    if live:
        return live, "uname -m"
    arch = read_value(ctx, "/proc/sys/kernel/arch")
    if arch:
        return arch, "/proc/sys/kernel/arch"
    for path in ("/bin/sh", "/usr/bin/sh", "/usr/bin/env", "/bin/ls"):
        header, fr = ctx.host.fs.read_bytes(path, 64)
        if fr.problem is None:
            found = elf_machine(header)
            if found:
                return found, f"ELF header of {path} (the root's userland, not the running kernel)"
    return None, ""


@check(
    "platform.arch",
    title="CPU architecture is supported (x86_64, Graviton2 or newer)",
    category="platform",
    facts=ArchFacts,
)
def cpu_architecture(ctx: Context) -> Outcome:
    """x86_64 and aarch64 are supported, except first-generation Graviton (A1 instances), whose
    Cortex-A72 core /proc/cpuinfo shows as CPU part 0xd08."""
    machine, source = _machine(ctx)
    m = matrix()
    if machine is None:
        summary = "CPU architecture unknown (no uname, /proc/sys/kernel/arch or ELF binary)"
        return judged(Status.WARN, summary, ArchFacts.unknown())
    cpu = parse_cpuinfo(ctx.host.fs.read_text("/proc/cpuinfo", SMALL * 4) or "")
    name = m.arch_aliases.get(machine, machine)
    facts = ArchFacts.from_machine(name, source=source, cpu=cpu, supported_names=m.architectures)
    evidence = [f"{source}: {machine}"] + (
        [f"/proc/cpuinfo: CPU part {cpu.part}"] if cpu.part else []
    )
    if name not in m.architectures:
        summary = f"{name} is not a supported architecture (x86_64, aarch64)"
        return judged(Status.FAIL, summary, facts, evidence)
    if name == "aarch64" and facts.first_generation_graviton:
        summary = "first-generation Graviton (A1, Cortex-A72) is not supported"
        return judged(Status.FAIL, summary, facts, evidence)
    detail = f" ({cpu.graviton})" if cpu.graviton else ""
    return judged(Status.OK, f"{name}{detail}", facts, evidence)


# --- platform.init ---------------------------------------------------------------------------


@check("platform.init", title="systemd is the init system", category="platform", facts=InitFacts)
def init_system(ctx: Context) -> Outcome:
    """The agent ships as a systemd unit. /run/systemd/system exists when systemd booted the
    machine (sd_booted(3)); /proc/1/comm names PID 1."""
    comm = read_value(ctx, "/proc/1/comm")
    booted = ctx.host.fs.is_dir("/run/systemd/system")
    evidence = [f"/proc/1/comm: {comm}"] if comm else []
    evidence += ["/run/systemd/system exists"] if booted else []
    facts = InitFacts.from_pid1(comm, booted=booted)
    if facts.init == "systemd":
        return judged(Status.OK, "systemd is PID 1", facts, evidence)
    if comm:
        return judged(Status.FAIL, f"PID 1 is {comm!r}, not systemd", facts, evidence)
    installed = [
        p for p in ("/usr/lib/systemd/systemd", "/lib/systemd/systemd") if ctx.host.fs.exists(p)
    ]
    if installed and not ctx.host.live:
        summary = f"systemd is installed ({installed[0]}); PID 1 cannot be seen in a root"
        return judged(Status.OK, summary, InitFacts.installed_only(), [f"{installed[0]} exists"])
    summary = "cannot tell the init system (no /proc/1/comm, no /run/systemd/system)"
    return judged(Status.WARN, summary, facts)


# --- platform.container ----------------------------------------------------------------------


def _container_signals(ctx: Context) -> List[str]:
    signals: List[str] = []
    for marker, runtime in (("/.dockerenv", "docker"), ("/run/.containerenv", "podman")):
        if ctx.host.fs.exists(marker):
            signals.append(f"{marker} exists ({runtime})")
    manager = read_value(ctx, "/run/systemd/container")
    if manager:
        signals.append(f"/run/systemd/container says {manager!r}")
    for path in ("/proc/1/cgroup", "/proc/self/cgroup"):
        text = ctx.host.fs.read_text(path, SMALL)
        if text:
            found = container_runtime(text)
            if found:
                signals.append(f"{path} names {found[0]} ({found[1]})")
            break
    environ = ctx.host.fs.read_text("/proc/1/environ", SMALL)
    if environ:
        for item in environ.split("\x00"):
            if item.startswith("container="):
                signals.append(f"PID 1 environment has {item}")
    return signals


@check(
    "platform.container",
    title="gd-doctor runs on the host, not inside a container",
    category="platform",
    facts=ContainerFacts,
)
def container(ctx: Context) -> Outcome:
    """The agent runs on the EC2 host; inside a container gd-doctor would judge the container."""
    signals = tuple(_container_signals(ctx))
    facts = ContainerFacts.from_signals(signals)
    if facts.in_container:
        # A warning, not a failure: nothing is wrong with the host, but every other result
        # describes the container (platform.in-container says so; the simulator relies on it).
        summary = "running inside a container: run gd-doctor on the host instead"
        return judged(Status.WARN, summary, facts, signals)
    return judged(Status.OK, "no container markers", facts)


# --- platform.ec2 ----------------------------------------------------------------------------

DMI = "/sys/devices/virtual/dmi/id"
DMI_FILES = (
    "sys_vendor",
    "bios_vendor",
    "bios_version",
    "board_asset_tag",
    "product_name",
    "product_uuid",
)


def _hybrid_id(ctx: Context) -> Optional[str]:
    """The SSM hybrid activation id (mi-...) when the SSM agent registered as one."""
    text = ctx.host.fs.read_text("/var/lib/amazon/ssm/registration", SMALL)
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    value = doc.get("ManagedInstanceID") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and value.startswith("mi-") else None


@check(
    "platform.ec2",
    title="This machine is an EC2 instance",
    category="platform",
    facts=Ec2Facts,
)
def ec2_instance(ctx: Context) -> Outcome:
    """Judged from DMI (sys_vendor, bios_vendor 'Amazon EC2', board_asset_tag i-...),
    /sys/hypervisor/uuid ('ec2...') and an SSM hybrid registration (mi-...), never guessed.
    IMDS is the imds checks' business; the rules combine both."""
    values: Dict[str, Optional[str]] = {
        name: read_value(ctx, f"{DMI}/{name}") for name in DMI_FILES
    }
    values["hypervisor_uuid"] = read_value(ctx, "/sys/hypervisor/uuid")
    facts = Ec2Facts.from_dmi(judge_ec2(values), values, _hybrid_id(ctx))
    evidence = [f"{k}: {v}" for k, v in facts.sources.items()]
    if facts.is_ec2:
        summary = "EC2 instance: " + "; ".join(facts.evidence_for)
        return judged(Status.OK, summary, facts, evidence)
    if facts.is_ec2 is False:
        summary = "not an EC2 instance: " + "; ".join(facts.evidence_against)
        return judged(Status.FAIL, summary, facts, evidence)
    summary = "cannot tell whether this is an EC2 instance (no DMI or hypervisor evidence)"
    return judged(Status.WARN, summary, facts, evidence)


# The machine checks; checks/__init__.py interleaves them with the kernel checks for display.
CHECKS: Tuple[Check, ...] = (
    os_distribution,
    cpu_architecture,
    init_system,
    container,
    ec2_instance,
)
