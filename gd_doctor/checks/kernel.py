"""Checks of the platform domain about the running kernel: version, BTF, build options, memlock.

The machine's checks (distribution, CPU, init, container, EC2) are in
:mod:`gd_doctor.checks.platform`; both modules' ids are ``platform.*``. Files read (always under
the analysed root; ``uname`` and ``systemctl show`` only on the live host):

* ``/proc/sys/kernel/osrelease`` (or ``uname -r``); ``/lib/modules/`` under ``--root``
* ``/sys/kernel/btf/vmlinux``; ``/boot/config-<release>``, ``/lib/modules/<release>/config``,
  ``/proc/config.gz``
* ``/etc/systemd/system.conf`` and ``system.conf.d`` drop-ins; the agent's unit and drop-ins;
  on the live host ``systemctl show -p DefaultLimitMEMLOCK -p DefaultLimitMEMLOCKSoft``
"""

from __future__ import annotations

import zlib
from typing import Dict, List, Optional, Tuple

from gd_doctor.checks.base import Check, Context, check, judged
from gd_doctor.checks.platform import read_value
from gd_doctor.facts.platform import (
    BtfFacts,
    KernelFacts,
    KernelFeaturesFacts,
    MemlockFacts,
    OsFacts,
    format_limit,
)
from gd_doctor.host import platform as host_platform
from gd_doctor.host import timeouts
from gd_doctor.knowledge.support import judge_kernel, matrix
from gd_doctor.model import Outcome, Status
from gd_doctor.parsers.kernel_config import parse_kernel_config
from gd_doctor.parsers.kernel_version import parse_kernel_release
from gd_doctor.parsers.systemd_conf import LimitSetting, parse_limit

CONFIG_MAX = 16 * 1024 * 1024  # an unpacked kernel config is ~250 KiB; refuse a gzip bomb


# --- platform.kernel -------------------------------------------------------------------------


def _kernel_release(ctx: Context) -> Tuple[Optional[str], str]:
    """The running kernel's release and where it came from."""
    text = read_value(ctx, "/proc/sys/kernel/osrelease")
    if text:
        return text, "/proc/sys/kernel/osrelease"
    live = host_platform.kernel_release(ctx.host)
    if live:
        return live, "uname -r"
    if not ctx.host.live:
        modules = [
            name
            for d in ("/lib/modules", "/usr/lib/modules")
            for name in (ctx.host.fs.listdir(d) or [])
            if parse_kernel_release(name)
        ]
        if len(set(modules)) == 1:
            return modules[0], "the only kernel under /lib/modules (the running one is not known)"
    return None, ""


def _kernel_summary(facts: KernelFacts) -> str:
    row = facts.matrix_row
    where = f"for '{row}'" if row and facts.scope == "distro" else "in the table"
    if facts.verdict == "supported":
        extra = f" (agent {facts.requires_agent} or newer)" if facts.requires_agent else ""
        return f"kernel {facts.major_minor} is verified {where}{extra}"
    if facts.verdict == "lower":
        bound = facts.row_min if facts.scope == "distro" else facts.table_min
        return f"kernel {facts.major_minor} is lower than the lowest verified {where} ({bound})"
    if facts.verdict == "higher":
        bound = facts.row_max if facts.scope == "distro" else facts.table_max
        return f"kernel {facts.major_minor} is higher than the highest verified {where} ({bound})"
    return f"kernel {facts.major_minor} is within range but not listed {where}"


@check(
    "platform.kernel",
    title="Kernel version is one AWS verified for this distribution",
    category="platform",
    facts=KernelFacts,
    reads=(OsFacts,),
)
def kernel_version(ctx: Context) -> Outcome:
    """Reads the kernel release and compares its leading X.Y with the kernels the dated matrix
    verifies for the distribution's row (and with every kernel in the table). The exact bounds
    GuardDuty applies are UNCONFIRMED; gd-doctor infers them from the table."""
    release, source = _kernel_release(ctx)
    kernel = parse_kernel_release(release) if release else None
    if kernel is None:
        why = f"unparsable release {release!r}" if release else "no /proc/sys/kernel/osrelease"
        facts = KernelFacts.unknown(release, source or None)
        return judged(Status.WARN, f"kernel version unknown ({why})", facts)
    os_facts = ctx.facts(OsFacts)
    row = os_facts.matrix_row if os_facts else None
    j = judge_kernel(
        kernel,
        row,
        (os_facts.id if os_facts else None) or "",
        (os_facts.version_id if os_facts else None) or "",
    )
    facts = KernelFacts.from_judgement(kernel, j, matrix_row=row, source=source)
    evidence = [f"{source}: {kernel.release}"]
    if j.verdict == "supported":
        status = Status.OK
    elif j.scope == "all" and j.verdict in ("lower", "higher"):
        # Outside every kernel of the table: the likely GuardDuty bound (kernel-lower/higher).
        status = Status.FAIL
    else:
        status = Status.WARN
    return judged(status, _kernel_summary(facts), facts, evidence)


# --- kernel configuration (platform.btf, platform.kernel_features) ---------------------------


def _gunzip(data: bytes) -> Optional[bytes]:
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = inflater.decompress(data, CONFIG_MAX)
    except zlib.error:
        return None
    return out


def _kernel_config(
    ctx: Context, release: Optional[str]
) -> Tuple[Optional[Dict[str, str]], str, List[str]]:
    """The running kernel's build config, where it came from, and what could not be read."""
    problems: List[str] = []
    paths = (
        [
            f"/boot/config-{release}",
            f"/lib/modules/{release}/config",
            f"/usr/lib/modules/{release}/config",
        ]
        if release and "/" not in release
        else []
    )
    for path in paths:
        fr = ctx.host.fs.read(path, CONFIG_MAX)
        if fr.ok and not fr.binary:
            cfg = parse_kernel_config(fr.text or "")
            if cfg:
                return cfg, path, problems
            problems.append(f"{path}: no CONFIG_ lines")
        elif fr.ok:
            problems.append(f"{path}: binary content")
        elif fr.problem != "missing":
            problems.append(f"{path}: {fr.problem}")
    raw, fr = ctx.host.fs.read_bytes("/proc/config.gz", CONFIG_MAX)
    if fr.problem is None:
        text = _gunzip(raw)
        if text is None:
            problems.append("/proc/config.gz: not gzip data")
        else:
            cfg = parse_kernel_config(text.decode("utf-8", errors="replace"))
            if cfg:
                return cfg, "/proc/config.gz", problems
    elif fr.problem != "missing":
        problems.append(f"/proc/config.gz: {fr.problem}")
    if not paths:
        problems.append("kernel release unknown, so /boot/config-<release> cannot be named")
    return None, "", problems


def _release(ctx: Context) -> Optional[str]:
    kernel = ctx.facts(KernelFacts)
    return kernel.release if kernel else None


@check(
    "platform.btf",
    title="Kernel has BTF type information (CONFIG_DEBUG_INFO_BTF=y)",
    category="platform",
    facts=BtfFacts,
    reads=(KernelFacts,),
)
def kernel_btf(ctx: Context) -> Outcome:
    """BTF is mandatory for every kernel (footnote 3). /sys/kernel/btf/vmlinux exists exactly when
    the kernel was built with CONFIG_DEBUG_INFO_BTF=y; the build config says the same."""
    if ctx.host.fs.exists("/sys/kernel/btf/vmlinux"):
        facts = BtfFacts.from_sysfs(True)
        evidence = ["/sys/kernel/btf/vmlinux exists"]
        return judged(Status.OK, "/sys/kernel/btf/vmlinux is present", facts, evidence)
    cfg, source, problems = _kernel_config(ctx, _release(ctx))
    if cfg is not None:
        facts = BtfFacts.from_config(cfg, source)
        evidence = [f"{source}: CONFIG_DEBUG_INFO_BTF={facts.config_value}"]
        if facts.btf:
            return judged(Status.OK, f"CONFIG_DEBUG_INFO_BTF=y in {source}", facts, evidence)
        summary = (
            f"the kernel has no BTF: CONFIG_DEBUG_INFO_BTF is {facts.config_value} in {source}"
        )
        return judged(Status.FAIL, summary, facts, evidence)
    if ctx.host.fs.is_dir("/sys/kernel"):
        # sysfs is there and shows no BTF: the running kernel has none.
        facts = BtfFacts.from_sysfs(False)
        evidence = ["/sys/kernel exists, /sys/kernel/btf/vmlinux does not", *problems]
        summary = "the kernel has no BTF: /sys/kernel/btf/vmlinux is missing"
        return judged(Status.FAIL, summary, facts, evidence)
    facts = BtfFacts(btf=None, source=None, problems=tuple(problems))
    summary = "cannot tell whether the kernel has BTF (no /sys/kernel, no kernel config)"
    return judged(Status.WARN, summary, facts, problems)


# The kernel features AWS names (eBPF, Tracepoints, Kprobe) and the options that provide them.
REQUIRED_OPTIONS: Tuple[Tuple[str, str], ...] = (
    ("CONFIG_BPF_SYSCALL", "eBPF"),
    ("CONFIG_TRACEPOINTS", "tracepoints"),
    ("CONFIG_KPROBES", "kprobes"),
)
# Options that usually go with them; reported, never failed on.
RELATED_OPTIONS = (
    "CONFIG_BPF",
    "CONFIG_BPF_JIT",
    "CONFIG_BPF_EVENTS",
    "CONFIG_KPROBE_EVENTS",
    "CONFIG_PERF_EVENTS",
)


@check(
    "platform.kernel_features",
    title="Kernel has eBPF, tracepoints and kprobes",
    category="platform",
    facts=KernelFeaturesFacts,
    reads=(KernelFacts,),
)
def kernel_features(ctx: Context) -> Outcome:
    """Reads the kernel build config: CONFIG_BPF_SYSCALL, CONFIG_TRACEPOINTS, CONFIG_KPROBES."""
    cfg, source, problems = _kernel_config(ctx, _release(ctx))
    if cfg is None:
        summary = "kernel config not found; cannot check eBPF, tracepoints and kprobes"
        return judged(Status.WARN, summary, KernelFeaturesFacts.unknown(tuple(problems)), problems)
    facts = KernelFeaturesFacts.from_config(
        cfg, source, required=REQUIRED_OPTIONS, related=RELATED_OPTIONS
    )
    evidence = [
        f"{source}: # {name} is not set"
        if facts.options[name] == "n"
        else f"{source}: {name}={facts.options[name]}"
        for name, _ in REQUIRED_OPTIONS
    ]
    if facts.missing:
        return judged(Status.FAIL, "kernel lacks " + ", ".join(facts.missing), facts, evidence)
    summary = f"eBPF, tracepoints and kprobes are built in ({source})"
    return judged(Status.OK, summary, facts, evidence)


# --- platform.memlock ------------------------------------------------------------------------

SYSTEM_CONF = "/etc/systemd/system.conf"
AGENT_UNIT = "amazon-guardduty-agent.service"
SYSTEMD_DEFAULT = (
    "not set: systemd's built-in default (8M since systemd 250, before that the "
    "kernel's: 64K on kernels older than 5.16)"
)


def _live_default_memlock(ctx: Context) -> Optional[LimitSetting]:
    """The manager's effective DefaultLimitMEMLOCK from ``systemctl show`` (live hosts only)."""
    if not ctx.host.live:
        return None
    res = ctx.host.run.run(
        ["systemctl", "show", "-p", "DefaultLimitMEMLOCK", "-p", "DefaultLimitMEMLOCKSoft"],
        timeout=ctx.timeout(timeouts.COMMAND),
    )
    if not res.ok:
        return None
    values = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    hard = values.get("DefaultLimitMEMLOCK", "")
    soft = values.get("DefaultLimitMEMLOCKSoft", hard)
    return parse_limit(f"{soft}:{hard}") if hard else None


def _memlock_facts(ctx: Context, kernel: Optional[KernelFacts]) -> Tuple[MemlockFacts, List[str]]:
    """The limit systemd gives the agent (unit LimitMEMLOCK= over the manager's default), and
    the evidence lines that show where it comes from."""
    required = kernel.memlock_required if kernel else None
    # The host's one systemd layer: system.conf + system.conf.d, and the agent's effective unit
    # (its precedence and drop-ins), each merged as systemd merges them.
    manager = ctx.host.units.manager_config()
    unit = ctx.host.units.resolve(AGENT_UNIT)
    conf_value = manager.value("DefaultLimitMEMLOCK")
    conf_file = manager.source_of("DefaultLimitMEMLOCK") if conf_value else None
    unit_value = unit.value("LimitMEMLOCK")
    unit_file = unit.source_of("LimitMEMLOCK") if unit_value else None
    files = list(manager.files)
    problems = [f"{path}: {why}" for path, why in manager.unreadable]
    unit_problems = [f"{path}: {why}" for path, why in unit.unreadable]
    # Ask systemd only when the answer matters (kernel 5.10 or older): a query less on most hosts.
    live_default = _live_default_memlock(ctx) if required is True else None
    default = live_default or (parse_limit(conf_value) if conf_value else None)
    unit_limit = parse_limit(unit_value) if unit_value else None
    if unit_limit:
        source = f"LimitMEMLOCK={unit_value} in {unit_file}"
    elif live_default:
        source = "systemctl show -p DefaultLimitMEMLOCK (the manager's effective default)"
    elif conf_value and default:
        source = f"DefaultLimitMEMLOCK={conf_value} in {conf_file}"
    else:
        source = SYSTEMD_DEFAULT
    evidence = [f"{conf_file}: DefaultLimitMEMLOCK={conf_value}"] if conf_file else []
    evidence += [f"{unit_file}: LimitMEMLOCK={unit_value}"] if unit_file else []
    if live_default:
        evidence.append(f"systemctl show: DefaultLimitMEMLOCK {format_limit(live_default)}")
    evidence += problems + unit_problems
    if not conf_file and not unit_file and not live_default:
        evidence.append(f"DefaultLimitMEMLOCK is {source}")
    facts = MemlockFacts.from_limit(
        unit_limit or default,
        source=source,
        required=required,
        kernel=kernel.major_minor if kernel else None,
        minimum_bytes=matrix().memlock_min_bytes,
        default_value=conf_value,
        default_file=conf_file,
        dropins=tuple(f for f in files if f != SYSTEM_CONF),
        unit_value=unit_value,
        problems=tuple(problems + unit_problems),
    )
    return facts, evidence


@check(
    "platform.memlock",
    title="RLIMIT_MEMLOCK is at least 32 MiB where the kernel needs it",
    category="platform",
    facts=MemlockFacts,
    reads=(KernelFacts,),
)
def memlock_limit(ctx: Context) -> Outcome:
    """On kernels 5.10 and older the agent needs RLIMIT_MEMLOCK >= 32 MiB, soft and hard
    (guardduty.md 1.3). Reads DefaultLimitMEMLOCK from system.conf and its drop-ins (and, live,
    the manager's effective value), and LimitMEMLOCK= of the agent's unit, which overrides it."""
    facts, evidence = _memlock_facts(ctx, ctx.facts(KernelFacts))
    shown = facts.effective or "8M or 64K (systemd default)"
    if facts.required is False:
        summary = (
            f"not needed on kernel {facts.kernel} (5.11+ charges BPF memory to the memory cgroup)"
        )
        return judged(Status.OK, summary, facts, evidence)
    if facts.sufficient:
        summary = f"RLIMIT_MEMLOCK for the agent is {shown} (>= 32M)"
        return judged(Status.OK, summary, facts, evidence)
    if facts.required is True:
        summary = f"RLIMIT_MEMLOCK for the agent is {shown}; kernel {facts.kernel} needs >= 32M"
        return judged(Status.FAIL, summary, facts, evidence)
    summary = (
        f"RLIMIT_MEMLOCK is {shown}; it must be >= 32M if the kernel is 5.10 or older "
        "(kernel unknown)"
    )
    return judged(Status.WARN, summary, facts, evidence)


CHECKS: Tuple[Check, ...] = (
    kernel_version,
    kernel_btf,
    kernel_features,
    memlock_limit,
)
