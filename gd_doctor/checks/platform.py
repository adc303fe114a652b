"""Checks of the platform domain: what must be true of the machine before the agent can work.

Files read (always under the analysed root; ``uname`` only on the live host):

* ``/etc/os-release``, ``/usr/lib/os-release``, ``/etc/system-release``; ``/etc/hostname``,
  ``/proc/sys/kernel/hostname``
* ``/proc/sys/kernel/osrelease`` (or ``uname -r``); ``/lib/modules/`` under ``--root``
* ``/proc/sys/kernel/arch`` (or ``uname -m``), the ELF header of ``/bin/sh``, ``/proc/cpuinfo``
* ``/sys/kernel/btf/vmlinux``; ``/boot/config-<release>``, ``/lib/modules/<release>/config``,
  ``/proc/config.gz``
* ``/etc/systemd/system.conf`` and ``system.conf.d`` drop-ins; the agent's unit and drop-ins;
  on the live host ``systemctl show -p DefaultLimitMEMLOCK -p DefaultLimitMEMLOCKSoft``
* ``/proc/1/comm``, ``/run/systemd/system``; ``/.dockerenv``, ``/run/.containerenv``,
  ``/run/systemd/container``, ``/proc/1/cgroup``
* ``/sys/devices/virtual/dmi/id/*``, ``/sys/hypervisor/uuid``, ``/var/lib/amazon/ssm/registration``

Facts land in ``data`` for the report header and the rules in ``diagnosis/platform.py``.
"""

from __future__ import annotations

import json
import zlib
from typing import Dict, List, Optional, Tuple

from gd_doctor.checks.base import Check, Context, check, fail, ok, warn
from gd_doctor.checks.platform_matrix import judge_kernel, match_os, matrix
from gd_doctor.host import platform as host_platform
from gd_doctor.host import timeouts
from gd_doctor.model import JSONValue, Outcome
from gd_doctor.parsers.cgroup import container_runtime
from gd_doctor.parsers.cpuinfo import parse_cpuinfo
from gd_doctor.parsers.dmi import judge_ec2
from gd_doctor.parsers.elf import elf_machine
from gd_doctor.parsers.kernel_config import parse_kernel_config
from gd_doctor.parsers.kernel_version import parse_kernel_release
from gd_doctor.parsers.os_release import OsRelease, parse_os_release, parse_system_release
from gd_doctor.parsers.systemd_conf import LimitSetting, parse_limit, parse_systemd_conf
from gd_doctor.redact import redact

SMALL = 64 * 1024  # os-release, DMI values and the like are a few hundred bytes
CONFIG_MAX = 16 * 1024 * 1024  # an unpacked kernel config is ~250 KiB; refuse a gzip bomb
MIB = 1024 * 1024


def _first_line(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    stripped = text.strip("\x00 \t\r\n")
    return stripped.splitlines()[0].strip() if stripped else None


def _read_value(ctx: Context, path: str) -> Optional[str]:
    """The first line of a small text file, or None when missing, unreadable or binary."""
    fr = ctx.host.fs.read(path, SMALL)
    if not fr.ok or fr.binary:
        return None
    return _first_line(fr.text)


# --- platform.os -----------------------------------------------------------------------------


def _hostname(ctx: Context) -> Optional[str]:
    return _read_value(ctx, "/etc/hostname") or _read_value(ctx, "/proc/sys/kernel/hostname")


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
    text = _read_value(ctx, "/etc/system-release")
    fallback = parse_system_release(text) if text else None
    if fallback is not None:
        return fallback, "/etc/system-release", problems
    problems.append("/etc/system-release: missing or not a release line")
    return None, None, problems


@check("platform.os", title="OS distribution is in AWS's verified matrix", category="platform")
def os_distribution(ctx: Context) -> Outcome:
    """Reads /etc/os-release (then /usr/lib/os-release, /etc/system-release) and looks the
    distribution and version up in the dated support matrix. Outside the matrix is a warning:
    AWS says the agent may still run there (footnote 2 of the table)."""
    rel, source, problems = _load_os_release(ctx)
    hostname = _hostname(ctx)
    m = matrix()
    if rel is None:
        return warn(
            "cannot identify the distribution: " + "; ".join(problems),
            evidence=tuple(problems),
            id=None,
            version_id=None,
            pretty_name=None,
            hostname=hostname,
            matrix_row=None,
            supported=None,
            match="unknown",
            matrix_date=m.date,
        )
    found = match_os(rel, m)
    pretty = rel.pretty_name or f"{rel.name or rel.id} {rel.version_id}".strip()
    data: Dict[str, JSONValue] = {
        "id": rel.id or None,
        "version_id": rel.version_id or None,
        "pretty_name": pretty,
        "name": rel.name or None,
        "id_like": list(rel.id_like),
        "hostname": hostname,
        "matrix_row": found.row,
        "supported": found.supported,
        "match": found.match,
        "verified_versions": list(found.verified_versions),
        "agent_added": found.agent,
        "manual_install_only": found.manual_install_only,
        "matrix_date": m.date,
        "source": source,
    }
    evidence = tuple(
        redact(f"{source}: {key}={rel.fields[key]}")
        for key in ("ID", "VERSION_ID", "PRETTY_NAME")
        if key in rel.fields
    ) + tuple(problems)
    versions = ", ".join(found.verified_versions)
    if found.supported:
        return ok(
            f"{pretty}: row '{found.row}' of AWS's verified matrix (table of {m.date})",
            evidence=evidence,
            **data,
        )
    if found.match == "major":
        summary = (
            f"{pretty}: version {rel.version_id} is outside the verified matrix; row "
            f"'{found.row}' verifies {versions} (same major release)"
        )
    elif found.match == "version":
        summary = (
            f"{pretty}: version {rel.version_id or '(none)'} is outside the verified matrix; "
            f"row '{found.row}' verifies {versions or 'no version'}"
        )
    else:
        summary = (
            f"{pretty} ({rel.id or 'no ID'}) is not a distribution AWS's verified matrix lists"
        )
    return warn(summary, evidence=evidence, **data)


# --- platform.kernel -------------------------------------------------------------------------


def _kernel_release(ctx: Context) -> Tuple[Optional[str], str]:
    """The running kernel's release and where it came from."""
    text = _read_value(ctx, "/proc/sys/kernel/osrelease")
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


@check(
    "platform.kernel",
    title="Kernel version is one AWS verified for this distribution",
    category="platform",
    after=("platform.os",),
)
def kernel_version(ctx: Context) -> Outcome:
    """Reads the kernel release and compares its leading X.Y with the kernels the dated matrix
    verifies for the distribution's row (and with every kernel in the table). The exact bounds
    GuardDuty applies are UNCONFIRMED; gd-doctor infers them from the table."""
    release, source = _kernel_release(ctx)
    row = ctx.fact("platform.os", "matrix_row")
    row_name = row if isinstance(row, str) else None
    kernel = parse_kernel_release(release) if release else None
    if kernel is None:
        why = f"unparsable release {release!r}" if release else "no /proc/sys/kernel/osrelease"
        return warn(
            f"kernel version unknown ({why})",
            release=release,
            major_minor=None,
            verdict="unknown",
            memlock_required=None,
            source=source or None,
        )
    os_id = str(ctx.fact("platform.os", "id") or "")
    version_id = str(ctx.fact("platform.os", "version_id") or "")
    j = judge_kernel(kernel, row_name, os_id, version_id)
    data: Dict[str, JSONValue] = {
        "release": kernel.release,
        "major_minor": kernel.major_minor,
        "verdict": j.verdict,
        "scope": j.scope,
        "memlock_required": j.memlock_required,
        "matrix_row": row_name,
        "row_min": j.row_min,
        "row_max": j.row_max,
        "table_min": j.table_min,
        "table_max": j.table_max,
        "requires_agent": j.requires_agent,
        "notes": list(j.notes),
        "source": source,
    }
    evidence = (f"{source}: {kernel.release}",)
    where = f"for '{row_name}'" if row_name and j.scope == "distro" else "in the table"
    if j.verdict == "supported":
        extra = f" (agent {j.requires_agent} or newer)" if j.requires_agent else ""
        return ok(
            f"kernel {kernel.major_minor} is verified {where}{extra}", evidence=evidence, **data
        )
    if j.verdict == "lower":
        bound = j.row_min if j.scope == "distro" else j.table_min
        summary = f"kernel {kernel.major_minor} is lower than the lowest verified {where} ({bound})"
    elif j.verdict == "higher":
        bound = j.row_max if j.scope == "distro" else j.table_max
        summary = (
            f"kernel {kernel.major_minor} is higher than the highest verified {where} ({bound})"
        )
    else:
        summary = f"kernel {kernel.major_minor} is within range but not listed {where}"
    if j.scope == "all" and j.verdict in ("lower", "higher"):
        return fail(summary, evidence=evidence, **data)
    return warn(summary, evidence=evidence, **data)


# --- platform.arch ---------------------------------------------------------------------------


def _machine(ctx: Context) -> Tuple[Optional[str], str]:
    live = host_platform.machine(ctx.host)
    if live:
        return live, "uname -m"
    arch = _read_value(ctx, "/proc/sys/kernel/arch")
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
)
def cpu_architecture(ctx: Context) -> Outcome:
    """x86_64 and aarch64 are supported, except first-generation Graviton (A1 instances), whose
    Cortex-A72 core /proc/cpuinfo shows as CPU part 0xd08."""
    machine, source = _machine(ctx)
    m = matrix()
    cpu = parse_cpuinfo(ctx.host.fs.read_text("/proc/cpuinfo", SMALL * 4) or "")
    if machine is None:
        return warn(
            "CPU architecture unknown (no uname, /proc/sys/kernel/arch or ELF binary)",
            machine=None,
            source=None,
            supported=None,
        )
    name = m.arch_aliases.get(machine, machine)
    data: Dict[str, JSONValue] = {
        "machine": name,
        "source": source,
        "supported": name in m.architectures,
        "cpu_part": cpu.part,
        "graviton": cpu.graviton,
        "first_generation_graviton": cpu.is_first_generation_graviton if cpu.part else None,
    }
    evidence = (f"{source}: {machine}",) + (
        (f"/proc/cpuinfo: CPU part {cpu.part}",) if cpu.part else ()
    )
    if name not in m.architectures:
        return fail(
            f"{name} is not a supported architecture (x86_64, aarch64)", evidence=evidence, **data
        )
    if name == "aarch64" and cpu.is_first_generation_graviton:
        data["supported"] = False
        return fail(
            "first-generation Graviton (A1, Cortex-A72) is not supported", evidence=evidence, **data
        )
    detail = f" ({cpu.graviton})" if cpu.graviton else ""
    return ok(f"{name}{detail}", evidence=evidence, **data)


# --- kernel configuration (platform.btf, platform.kernel_features) ---------------------------


def _gunzip(data: bytes) -> Optional[bytes]:
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = inflater.decompress(data, CONFIG_MAX)
    except zlib.error:
        return None
    return out


def _kernel_config(ctx: Context) -> Tuple[Optional[Dict[str, str]], str, List[str]]:
    """The running kernel's build config, where it came from, and what could not be read."""
    release = ctx.fact("platform.kernel", "release")
    problems: List[str] = []
    paths = (
        [
            f"/boot/config-{release}",
            f"/lib/modules/{release}/config",
            f"/usr/lib/modules/{release}/config",
        ]
        if isinstance(release, str) and "/" not in release
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


@check(
    "platform.btf",
    title="Kernel has BTF type information (CONFIG_DEBUG_INFO_BTF=y)",
    category="platform",
    after=("platform.kernel",),
)
def kernel_btf(ctx: Context) -> Outcome:
    """BTF is mandatory for every kernel (footnote 3). /sys/kernel/btf/vmlinux exists exactly when
    the kernel was built with CONFIG_DEBUG_INFO_BTF=y; the build config says the same."""
    if ctx.host.fs.exists("/sys/kernel/btf/vmlinux"):
        return ok(
            "/sys/kernel/btf/vmlinux is present",
            btf=True,
            source="/sys/kernel/btf/vmlinux",
            evidence=("/sys/kernel/btf/vmlinux exists",),
        )
    cfg, source, problems = _kernel_config(ctx)
    if cfg is not None:
        value = cfg.get("CONFIG_DEBUG_INFO_BTF", "absent")
        line = f"{source}: CONFIG_DEBUG_INFO_BTF={value}"
        if value == "y":
            return ok(
                f"CONFIG_DEBUG_INFO_BTF=y in {source}", btf=True, source=source, evidence=(line,)
            )
        return fail(
            f"the kernel has no BTF: CONFIG_DEBUG_INFO_BTF is {value} in {source}",
            btf=False,
            source=source,
            evidence=(line,),
        )
    if ctx.host.fs.is_dir("/sys/kernel"):
        # sysfs is there and shows no BTF: the running kernel has none.
        return fail(
            "the kernel has no BTF: /sys/kernel/btf/vmlinux is missing",
            btf=False,
            source="/sys/kernel/btf/vmlinux",
            evidence=("/sys/kernel exists, /sys/kernel/btf/vmlinux does not", *problems),
        )
    return warn(
        "cannot tell whether the kernel has BTF (no /sys/kernel, no kernel config)",
        btf=None,
        source=None,
        evidence=tuple(problems),
    )


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
    after=("platform.kernel",),
)
def kernel_features(ctx: Context) -> Outcome:
    """Reads the kernel build config: CONFIG_BPF_SYSCALL, CONFIG_TRACEPOINTS, CONFIG_KPROBES."""
    cfg, source, problems = _kernel_config(ctx)
    if cfg is None:
        return warn(
            "kernel config not found; cannot check eBPF, tracepoints and kprobes",
            missing=None,
            source=None,
            evidence=tuple(problems),
        )
    options = {name: cfg.get(name, "absent") for name, _ in REQUIRED_OPTIONS}
    related = {name: cfg.get(name, "absent") for name in RELATED_OPTIONS}
    missing = [f"{feature} ({name})" for name, feature in REQUIRED_OPTIONS if options[name] != "y"]
    evidence = tuple(
        f"{source}: # {k} is not set" if v == "n" else f"{source}: {k}={v}"
        for k, v in options.items()
    )
    data: Dict[str, JSONValue] = {
        "options": {**options, **related},
        "missing": missing,
        "source": source,
    }
    if missing:
        return fail("kernel lacks " + ", ".join(missing), evidence=evidence, **data)
    return ok(f"eBPF, tracepoints and kprobes are built in ({source})", evidence=evidence, **data)


# --- platform.memlock ------------------------------------------------------------------------

SYSTEM_CONF = "/etc/systemd/system.conf"
DROPIN_DIRS = (
    "/etc/systemd/system.conf.d",
    "/run/systemd/system.conf.d",
    "/usr/local/lib/systemd/system.conf.d",
    "/usr/lib/systemd/system.conf.d",
    "/lib/systemd/system.conf.d",
)
AGENT_UNIT = "amazon-guardduty-agent.service"
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)


def _conf_files(ctx: Context, main: Optional[str], dropin_dirs: Tuple[str, ...]) -> List[str]:
    """``main`` then its drop-ins in the order systemd applies them (by file name; a name in an
    earlier directory hides the same name in later ones)."""
    by_name: Dict[str, str] = {}
    for d in dropin_dirs:
        for path in ctx.host.fs.glob(d, "*.conf"):
            by_name.setdefault(path.rsplit("/", 1)[1], path)
    files = [main] if main and ctx.host.fs.is_file(main) else []
    return files + [by_name[name] for name in sorted(by_name)]


def _last_setting(
    ctx: Context, files: List[str], section: str, key: str
) -> Tuple[Optional[str], Optional[str], List[str]]:
    """The value the last file assigns, the file, and the unreadable files."""
    value: Optional[str] = None
    where: Optional[str] = None
    problems: List[str] = []
    for path in files:
        fr = ctx.host.fs.read(path, SMALL)
        if not fr.ok:
            problems.append(f"{path}: {fr.problem}")
            continue
        conf = parse_systemd_conf(fr.text or "")
        if key in conf.get(section, {}):
            value, where = conf[section][key], path
    return value, where, problems


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


def _fmt_limit(limit: Optional[LimitSetting]) -> str:
    if limit is None:
        return "unknown"

    def one(v: Optional[int]) -> str:
        if v is None:
            return "infinity"
        return (
            f"{v // MIB}M"
            if v % MIB == 0 and v >= MIB
            else f"{v // 1024}K"
            if v % 1024 == 0
            else str(v)
        )

    return f"{one(limit.soft)}:{one(limit.hard)}"


@check(
    "platform.memlock",
    title="RLIMIT_MEMLOCK is at least 32 MiB where the kernel needs it",
    category="platform",
    after=("platform.kernel",),
)
def memlock_limit(ctx: Context) -> Outcome:
    """On kernels 5.10 and older the agent needs RLIMIT_MEMLOCK >= 32 MiB, soft and hard
    (guardduty.md 1.3). Reads DefaultLimitMEMLOCK from system.conf and its drop-ins (and, live,
    the manager's effective value), and LimitMEMLOCK= of the agent's unit, which overrides it."""
    required = ctx.fact("platform.kernel", "memlock_required")
    release = ctx.fact("platform.kernel", "major_minor")
    minimum = matrix().memlock_min_bytes
    files = _conf_files(ctx, SYSTEM_CONF, DROPIN_DIRS)
    conf_value, conf_file, problems = _last_setting(ctx, files, "Manager", "DefaultLimitMEMLOCK")
    unit_files = _conf_files(
        ctx,
        next(
            (f"{d}/{AGENT_UNIT}" for d in UNIT_DIRS if ctx.host.fs.is_file(f"{d}/{AGENT_UNIT}")),
            None,
        ),
        tuple(f"{d}/{AGENT_UNIT}.d" for d in UNIT_DIRS),
    )
    unit_value, unit_file, unit_problems = _last_setting(ctx, unit_files, "Service", "LimitMEMLOCK")
    # Ask systemd only when the answer matters (kernel 5.10 or older): a query less on most hosts.
    live_default = _live_default_memlock(ctx) if required is True else None
    default = live_default or (parse_limit(conf_value) if conf_value else None)
    unit_limit = parse_limit(unit_value) if unit_value else None
    effective = unit_limit or default
    if unit_limit:
        effective_source = f"LimitMEMLOCK={unit_value} in {unit_file}"
    elif live_default:
        effective_source = "systemctl show -p DefaultLimitMEMLOCK (the manager's effective default)"
    elif conf_value and default:
        effective_source = f"DefaultLimitMEMLOCK={conf_value} in {conf_file}"
    else:
        effective_source = (
            "not set: systemd's built-in default (8M since systemd 250, before that the "
            "kernel's: 64K on kernels older than 5.16)"
        )
    evidence = tuple(
        x
        for x in (
            f"{conf_file}: DefaultLimitMEMLOCK={conf_value}" if conf_file else None,
            f"{unit_file}: LimitMEMLOCK={unit_value}" if unit_file else None,
            f"systemctl show: DefaultLimitMEMLOCK {_fmt_limit(live_default)}"
            if live_default
            else None,
        )
        if x
    ) + tuple(problems + unit_problems)
    if not conf_file and not unit_file and not live_default:
        evidence += (f"DefaultLimitMEMLOCK is {effective_source}",)
    sufficient = effective.at_least(minimum) if effective else False
    data: Dict[str, JSONValue] = {
        "required": required if isinstance(required, bool) else None,
        "effective": _fmt_limit(effective) if effective else None,
        "effective_source": effective_source,
        "sufficient": sufficient,
        "default_limit_memlock": conf_value,
        "default_limit_memlock_file": conf_file,
        "dropins_present": [f for f in files if f != SYSTEM_CONF],
        "unit_limit_memlock": unit_value,
        "minimum_bytes": minimum,
    }
    shown = _fmt_limit(effective) if effective else "8M or 64K (systemd default)"
    if required is False:
        return ok(
            f"not needed on kernel {release} (5.11+ charges BPF memory to the memory cgroup)",
            evidence=evidence,
            **data,
        )
    if sufficient:
        return ok(f"RLIMIT_MEMLOCK for the agent is {shown} (>= 32M)", evidence=evidence, **data)
    if required is True:
        return fail(
            f"RLIMIT_MEMLOCK for the agent is {shown}; kernel {release} needs >= 32M",
            evidence=evidence,
            **data,
        )
    return warn(
        f"RLIMIT_MEMLOCK is {shown}; it must be >= 32M if the kernel is 5.10 or older "
        "(kernel unknown)",
        evidence=evidence,
        **data,
    )


# --- platform.init ---------------------------------------------------------------------------


@check("platform.init", title="systemd is the init system", category="platform")
def init_system(ctx: Context) -> Outcome:
    """The agent ships as a systemd unit. /run/systemd/system exists when systemd booted the
    machine (sd_booted(3)); /proc/1/comm names PID 1."""
    comm = _read_value(ctx, "/proc/1/comm")
    booted = ctx.host.fs.is_dir("/run/systemd/system")
    evidence = tuple(
        x
        for x in (
            f"/proc/1/comm: {comm}" if comm else None,
            "/run/systemd/system exists" if booted else None,
        )
        if x
    )
    if comm == "systemd" or booted:
        return ok("systemd is PID 1", evidence=evidence, init="systemd", pid1=comm)
    if comm:
        return fail(f"PID 1 is {comm!r}, not systemd", evidence=evidence, init=comm, pid1=comm)
    installed = [
        p for p in ("/usr/lib/systemd/systemd", "/lib/systemd/systemd") if ctx.host.fs.exists(p)
    ]
    if installed and not ctx.host.live:
        return ok(
            f"systemd is installed ({installed[0]}); PID 1 cannot be seen in a root",
            evidence=(f"{installed[0]} exists",),
            init="systemd (installed)",
            pid1=None,
        )
    return warn(
        "cannot tell the init system (no /proc/1/comm, no /run/systemd/system)",
        init=None,
        pid1=None,
    )


# --- platform.container ----------------------------------------------------------------------


def _container_signals(ctx: Context) -> List[str]:
    signals: List[str] = []
    for marker, runtime in (("/.dockerenv", "docker"), ("/run/.containerenv", "podman")):
        if ctx.host.fs.exists(marker):
            signals.append(f"{marker} exists ({runtime})")
    manager = _read_value(ctx, "/run/systemd/container")
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
)
def container(ctx: Context) -> Outcome:
    """The agent runs on the EC2 host; inside a container gd-doctor would judge the container."""
    signals = _container_signals(ctx)
    if signals:
        return fail(
            "running inside a container: run gd-doctor on the host instead",
            evidence=tuple(signals),
            in_container=True,
            signals=signals,
        )
    return ok("no container markers", in_container=False, signals=[])


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


@check("platform.ec2", title="This machine is an EC2 instance", category="platform")
def ec2_instance(ctx: Context) -> Outcome:
    """Judged from DMI (sys_vendor, bios_vendor 'Amazon EC2', board_asset_tag i-...),
    /sys/hypervisor/uuid ('ec2...') and an SSM hybrid registration (mi-...), never guessed.
    IMDS is the imds checks' business; the rules combine both."""
    values: Dict[str, Optional[str]] = {
        name: _read_value(ctx, f"{DMI}/{name}") for name in DMI_FILES
    }
    values["hypervisor_uuid"] = _read_value(ctx, "/sys/hypervisor/uuid")
    judged = judge_ec2(values)
    hybrid = _hybrid_id(ctx)
    against = list(judged.against_ec2)
    is_ec2 = judged.is_ec2
    if hybrid and not judged.for_ec2:
        against.append(f"SSM is registered as hybrid node {hybrid}")
        is_ec2 = False
    sources = {k: v for k, v in values.items() if v and k != "product_uuid"}
    data: Dict[str, JSONValue] = {
        "is_ec2": is_ec2,
        "evidence_for": list(judged.for_ec2),
        "evidence_against": against,
        "sources": dict(sources),
        "hybrid_id": hybrid,
        "instance_id": values["board_asset_tag"]
        if judged.is_ec2 and (values["board_asset_tag"] or "").startswith("i-")
        else None,
    }
    evidence = tuple(f"{k}: {v}" for k, v in sources.items())
    if is_ec2:
        return ok("EC2 instance: " + "; ".join(judged.for_ec2), evidence=evidence, **data)
    if is_ec2 is False:
        return fail("not an EC2 instance: " + "; ".join(against), evidence=evidence, **data)
    return warn(
        "cannot tell whether this is an EC2 instance (no DMI or hypervisor evidence)",
        evidence=evidence,
        **data,
    )


CHECKS: Tuple[Check, ...] = (
    os_distribution,
    kernel_version,
    cpu_architecture,
    kernel_btf,
    kernel_features,
    memlock_limit,
    init_system,
    container,
    ec2_instance,
)
