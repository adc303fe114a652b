"""Checks of the GuardDuty agent itself: package, systemd unit, unit file, process, limits.

What they read (exact commands and paths):

* ``agent.package``: the host's one package layer (:mod:`gd_doctor.host.packages`):
  ``/var/lib/dpkg/status`` (read once per run) and the rpm database, read read-only, the same
  live and under ``--root``; live, ``rpm -V amazon-guardduty-agent`` for an rpm install (run
  through the host's runner: as root in a read-only mount namespace). The SSM Distributor
  directory ``/var/lib/amazon/ssm/packages/AmazonGuardDuty-RuntimeMonitoringSsmPlugin`` marks an
  automated install.
* ``agent.unit`` (live): ``systemctl show amazon-guardduty-agent -p <PROPERTIES>``.
* ``agent.unit_file``: the effective unit from the host's one systemd layer
  (:mod:`gd_doctor.host.units`: systemd's precedence, drop-ins, masks; also under ``--root``),
  and whether the program its ``ExecStart=`` names exists.
* ``agent.process`` (live): the MainPID through psutil, and ``/proc/<pid>/limits``.
* ``agent.memory_limit``: the unit's memory cap against the documented caps
  (``knowledge/agent_limits.json``).
* ``agent.version_kernel``: the agent version against the kernel series it needs (the one table
  in ``knowledge/support_matrix.json``, through :mod:`gd_doctor.knowledge.agent_versions`).

The journal, log-file and kernel-log checks are in :mod:`gd_doctor.checks.agent_logs`; every
check's facts type is in :mod:`gd_doctor.facts.agent`.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from gd_doctor.checks import agent_logs
from gd_doctor.checks.agent_logs import UNIT
from gd_doctor.checks.base import (
    Check,
    Context,
    check,
    error,
    fail,
    not_applicable,
    ok,
    skip,
    warn,
)
from gd_doctor.facts.agent import (
    MemoryLimitFacts,
    PackageFacts,
    ProcessFacts,
    UnitFacts,
    UnitFileFacts,
    VersionKernelFacts,
    exec_path,
    redacted_env,
)
from gd_doctor.facts.platform import KernelFacts, OsFacts
from gd_doctor.host import timeouts
from gd_doctor.host.procs import ProcessInfo, ProcessUnavailable
from gd_doctor.knowledge.agent_limits import limits
from gd_doctor.knowledge.agent_versions import (
    kernel_agents,
    kernel_series,
    min_agent_for_kernel,
    version_key,
)
from gd_doctor.model import Outcome, SkipReason
from gd_doctor.parsers.proc_limits import parse_proc_limits
from gd_doctor.parsers.rpm import VerifyProblem, parse_rpm_verify
from gd_doctor.parsers.systemctl_show import PROPERTIES, parse_systemctl_show
from gd_doctor.redact import redact

PACKAGE = "amazon-guardduty-agent"
PROCESS_PREFIX = "amazon-guardduty"  # the documented name; comm shows its first 15 characters
SSM_PACKAGE_DIR = "/var/lib/amazon/ssm/packages/AmazonGuardDuty-RuntimeMonitoringSsmPlugin"
MiB = 1024 * 1024
GiB = 1024 * MiB
CPU_SAMPLE_S = 0.3


def _human(n: Optional[int]) -> str:
    if n is None:
        return "no limit"
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB}G"
    if n >= MiB:
        return f"{n / MiB:.0f}M"
    return f"{n}B"


def _total_memory(ctx: Context) -> Optional[int]:
    if not ctx.host.live:
        return None
    text = ctx.host.fs.read_text("/proc/meminfo", max_bytes=64 * 1024) or ""
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


# --------------------------------------------------------------------------------------------
# agent.package


def _install_method(ctx: Context) -> str:
    return "automated" if ctx.host.fs.is_dir(SSM_PACKAGE_DIR) else "manual-or-unknown"


def _verify(ctx: Context) -> Optional[List[VerifyProblem]]:
    """``rpm -V`` of the installed package, live only. It runs through the host's runner, which
    as root runs rpm in a read-only mount namespace (host/readonly.py): rpm's SQLite database
    would otherwise be opened for writing. None: it could not run."""
    if not ctx.host.live:
        return None
    vq = ctx.host.run.run(["rpm", "-V", PACKAGE], timeout=ctx.timeout(timeouts.COMMAND_SLOW))
    return parse_rpm_verify(vq.stdout)[0] if vq.problem is None else None


def _judge_package(facts: PackageFacts) -> Outcome:
    f = facts
    if f.installed is None:
        return warn(f"package state unknown: {f.problem}", facts=f)
    if not f.installed:
        return fail(f"{PACKAGE} is not installed ({f.manager}: {f.source})", facts=f)
    if f.broken:
        return fail(
            f"{PACKAGE} {f.version} is {(f.dpkg_status or '').rsplit(' ', 1)[-1]} (dpkg state "
            f"{f.state}): the install did not finish",
            evidence=(f"{f.source}: Status: {f.dpkg_status}",),
            facts=f,
        )
    if f.manager == "dpkg":
        return ok(
            f"{PACKAGE} {f.version} is installed (dpkg {f.state}, {f.install_method})", facts=f
        )
    full = f"{f.version}-{f.release}" if f.release else f"{f.version}"
    if f.verify_problems:
        return warn(
            f"{PACKAGE} {full}: rpm -V reports {len(f.verify_problems)} missing or changed file(s)",
            evidence=tuple(redact(f"rpm -V: {p}") for p in f.verify_problems[:10]),
            facts=f,
        )
    return ok(f"{PACKAGE} {full} is installed ({f.manager}, {f.install_method})", facts=f)


@check(
    "agent.package",
    title="amazon-guardduty-agent package is installed and intact",
    category="agent",
    facts=PackageFacts,
)
def package(ctx: Context) -> Outcome:
    """Asks the host's package layer (host/packages.py: /var/lib/dpkg/status, the rpm database
    read read-only) about amazon-guardduty-agent, live and under --root; live, rpm -V too."""
    info = ctx.host.packages.query(PACKAGE, ("dpkg", "rpm"))
    verify = _verify(ctx) if info.installed and info.manager == "rpm" else None
    return _judge_package(
        PackageFacts.from_info(info, install_method=_install_method(ctx), verify=verify)
    )


# --------------------------------------------------------------------------------------------
# agent.unit


def _judge_unit(facts: UnitFacts, ev: Tuple[str, ...]) -> Outcome:
    f = facts
    state = f"{f.active_state} ({f.sub_state})"
    if f.load_state == "not-found":
        return fail(f"systemd has no unit {UNIT} (LoadState=not-found)", evidence=ev, facts=f)
    if f.load_state == "masked":
        return fail(f"{UNIT} is masked: it cannot start", evidence=ev, facts=f)
    if f.load_state not in (None, "loaded"):
        return fail(f"{UNIT} did not load (LoadState={f.load_state})", evidence=ev, facts=f)
    if f.auto_restarting:
        return fail(
            f"{UNIT} is {state}: its process exited ({f.result}, status "
            f"{f.exec_main_status}) and systemd restarts it ({f.n_restarts} restarts so far)",
            evidence=ev,
            facts=f,
        )
    if f.active_state == "failed":
        return fail(
            f"{UNIT} failed (Result={f.result}, {f.exec_main_code} {f.exec_main_status})",
            evidence=ev,
            facts=f,
        )
    if f.active_state in ("inactive", "deactivating"):
        return fail(
            f"{UNIT} is not running: {state}, unit file {f.unit_file_state}", evidence=ev, facts=f
        )
    if f.active_state != "active":
        return warn(f"{UNIT} is {state}", evidence=ev, facts=f)
    if f.unit_file_state not in ("enabled", "static", "enabled-runtime", "generated", None):
        return warn(
            f"{UNIT} is running since {f.active_enter} but {f.unit_file_state}: it will not "
            "start at boot",
            evidence=ev,
            facts=f,
        )
    restarts = f", {f.n_restarts} restarts" if f.n_restarts else ""
    return ok(
        f"{UNIT} is active (running) since {f.active_enter}, MainPID {f.main_pid}{restarts}",
        evidence=ev,
        facts=f,
    )


@check(
    "agent.unit",
    title="amazon-guardduty-agent unit is active",
    category="agent",
    facts=UnitFacts,
    needs=("live",),
)
def unit(ctx: Context) -> Outcome:
    """Reads `systemctl show amazon-guardduty-agent -p LoadState,ActiveState,...`."""
    res = ctx.host.run.run(
        ["systemctl", "show", PACKAGE, "-p", ",".join(PROPERTIES)],
        timeout=ctx.timeout(timeouts.COMMAND),
    )
    if res.problem == "not found":
        return not_applicable("systemctl is not installed: no systemd on this host")
    if res.problem is not None:
        return error(f"systemctl show failed: {res.problem}")
    if res.returncode != 0 or "LoadState=" not in res.stdout:
        msg = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
        if "not been booted with systemd" in msg or "Failed to connect to bus" in msg:
            return not_applicable(f"systemd is not running: {msg}")
        return error(f"systemctl show failed: {redact(msg)}")
    st = parse_systemctl_show(res.stdout)
    ev = tuple(redact(f"{k}={st.props[k]}") for k in PROPERTIES if st.props.get(k))
    return _judge_unit(UnitFacts.from_show(st), ev)


# --------------------------------------------------------------------------------------------
# agent.unit_file


def _exec_exists(ctx: Context, program: Optional[str]) -> Optional[bool]:
    """Whether the program ExecStart= names is there (None: no absolute path to look at)."""
    if not program or not program.startswith("/") or "%" in program:
        return None
    return ctx.host.fs.exists(program)


@check(
    "agent.unit_file",
    title="amazon-guardduty-agent unit file and drop-ins are readable",
    category="agent",
    facts=UnitFileFacts,
)
def unit_file(ctx: Context) -> Outcome:
    """Resolves amazon-guardduty-agent.service as systemd does (host/units.py: /etc over /run
    over /usr/local/lib over /usr/lib and /lib, drop-ins, masks), reading the files (also under
    --root), and looks for the program its ExecStart= runs."""
    u = ctx.host.units.resolve(UNIT)
    if u.masked:
        return fail(
            f"{UNIT} is masked ({u.fragment_path} is empty or a link to /dev/null)",
            facts=UnitFileFacts.masked_at(u.fragment_path or UNIT),
        )
    if not u.found or u.fragment_path is None:
        dirs = ", ".join(ctx.host.units.search_path())
        return fail(f"no unit file {UNIT} in {dirs}", facts=UnitFileFacts.missing())
    path = u.fragment_path
    unreadable = [f"{p}: {why}" for p, why in u.unreadable]
    if u.load_state == "unreadable":
        facts = UnitFileFacts(path=path, unreadable=tuple(unreadable))
        return warn(f"cannot read {path}: {unreadable[0] if unreadable else '?'}", facts=facts)
    program = exec_path(u.exec_start[-1] if u.exec_start else None)
    facts = UnitFileFacts.from_unit(
        u, total_memory=_total_memory(ctx), exec_exists=_exec_exists(ctx, program)
    )
    if u.errors or unreadable:
        return warn(
            f"{path}: {len(u.errors)} line(s) systemd would ignore, "
            f"{len(unreadable)} unreadable file(s)",
            evidence=tuple(redact(e) for e in (u.errors + tuple(unreadable))[:10]),
            facts=facts,
        )
    if facts.exec_exists is False:
        return warn(
            f"{path}: ExecStart= runs {facts.exec_path}, which does not exist",
            evidence=(f"{path}: ExecStart={facts.exec_start}",),
            facts=facts,
        )
    limits_text = f"MemoryMax={u.memory_max or '-'}, MemoryLimit={u.memory_limit or '-'}"
    return ok(f"{path} ({len(facts.drop_ins)} drop-in(s)): {limits_text}", facts=facts)


# --------------------------------------------------------------------------------------------
# agent.process


def _memlock(ctx: Context, pid: int) -> Tuple[Optional[int], Optional[int], Optional[str]]:
    """Soft and hard RLIMIT_MEMLOCK of the process (None: unlimited), or why unknown."""
    read = ctx.host.fs.read(f"/proc/{pid}/limits", max_bytes=16 * 1024)
    if not read.ok or read.text is None:
        return None, None, read.problem or "unreadable"
    row = parse_proc_limits(read.text).get("Max locked memory")
    if row is None:
        return None, None, "no 'Max locked memory' row"
    return row.soft, row.hard, None


def _process_facts(ctx: Context, info: ProcessInfo, cap: Optional[int]) -> ProcessFacts:
    now = ctx.host.clock.now().timestamp()
    cpus = info.cpu_count or 1
    machine_cpu = round(info.cpu_percent / cpus, 1) if info.cpu_percent is not None else None
    soft, hard, problem = _memlock(ctx, info.pid)
    return ProcessFacts(
        running=True,
        pid=info.pid,
        name=info.name,
        exe=info.exe,
        uptime_s=round(now - info.create_time) if info.create_time else None,
        rss=info.rss,
        memory_cap=cap,
        cpu_percent=machine_cpu,
        cpu_count=cpus,
        cpu_budget_percent=limits().cpu_budget_percent,
        threads=info.num_threads,
        proxy_env=redacted_env(sorted((info.environ or {}).items())),
        environ_problem=info.environ_problem,
        total_memory=info.total_memory,
        memlock_soft=soft,
        memlock_hard=hard,
        memlock_problem=problem,
    )


@check(
    "agent.process",
    title="the agent's process runs within its limits",
    category="agent",
    facts=ProcessFacts,
    reads=(UnitFacts,),
    needs=("live",),
)
def process(ctx: Context) -> Outcome:
    """Finds the agent through the unit's MainPID (else by name prefix) with psutil: uptime, RSS,
    CPU, proxy variables in /proc/PID/environ, and MEMLOCK in /proc/PID/limits."""
    live_unit = ctx.facts(UnitFacts)
    pid = live_unit.main_pid if live_unit else None
    try:
        if pid is None or pid <= 0:
            found = ctx.host.procs.find(PROCESS_PREFIX)
            if not found:
                return fail(
                    "no amazon-guardduty process is running", facts=ProcessFacts.not_running()
                )
            pid = found[0]
        info = ctx.host.procs.get(pid, cpu_interval=min(CPU_SAMPLE_S, ctx.remaining() / 4))
    except ProcessUnavailable as exc:
        return skip(SkipReason.UNAVAILABLE_WITH_ROOT, f"process table unavailable: {exc}")
    if info is None:
        return fail(f"process {pid} is gone", facts=ProcessFacts.not_running(pid))
    facts = _process_facts(ctx, info, live_unit.memory_cap if live_unit else None)
    budget = limits().cpu_budget_percent
    notes = []
    if facts.memory_cap and info.rss and info.rss > 0.9 * facts.memory_cap:
        notes.append(f"RSS {_human(info.rss)} is over 90% of its {_human(facts.memory_cap)} limit")
    if facts.cpu_percent is not None and facts.cpu_percent > budget:
        notes.append(f"CPU {facts.cpu_percent}% of the machine is over the {budget:.0f}% budget")
    summary = (
        f"{info.name or '?'} pid {info.pid}, up {facts.uptime_s} s, RSS {_human(info.rss)}, "
        f"CPU {facts.cpu_percent}%"
    )
    if notes:
        return warn(f"{summary}: {'; '.join(notes)}", facts=facts)
    return ok(summary, facts=facts)


# --------------------------------------------------------------------------------------------
# agent.memory_limit


@check(
    "agent.memory_limit",
    title="the agent's memory limit matches AWS's documented cap",
    category="agent",
    facts=MemoryLimitFacts,
    reads=(UnitFacts, UnitFileFacts),
)
def memory_limit(ctx: Context) -> Outcome:
    """Compares MemoryMax/MemoryLimit of the unit with the cap AWS documents for the instance's
    memory (knowledge/agent_limits.json: 128 MB under 8 GB, 256 MB under 32 GB, 1 GB above)."""
    live_unit, files = ctx.facts(UnitFacts), ctx.facts(UnitFileFacts)
    cap = live_unit.memory_cap if live_unit else None
    if cap is None and files is not None:
        cap = files.memory_cap
    total = _total_memory(ctx)
    if total is None:
        return not_applicable(
            "the machine's memory is unknown (analysing a root)", facts=MemoryLimitFacts(cap)
        )
    documented = limits().documented_memory_cap(total)
    facts = MemoryLimitFacts(limit=cap, documented=documented, total_memory=total)
    memory = f"{total / GiB:.1f} GiB of memory"
    if cap is None:
        return ok(
            f"the unit sets no memory limit (AWS documents {_human(documented)} for {memory})",
            facts=facts,
        )
    if facts.below_documented:
        return warn(
            f"memory limit {_human(cap)} is below the documented {_human(documented)} for "
            + memory,
            facts=facts,
        )
    return ok(f"memory limit {_human(cap)} (documented {_human(documented)})", facts=facts)


# --------------------------------------------------------------------------------------------
# agent.version_kernel


def _kernel_release(ctx: Context) -> Optional[str]:
    kernel = ctx.facts(KernelFacts)
    if kernel is not None and kernel.release:
        return kernel.release
    if not ctx.host.live:
        return None
    # platform.kernel was not selected (--only agent): the running kernel's own file
    text = ctx.host.fs.read_text("/proc/sys/kernel/osrelease", max_bytes=256)
    return text.strip() if text else None


@check(
    "agent.version_kernel",
    title="the agent version supports this kernel",
    category="agent",
    facts=VersionKernelFacts,
    requires=("agent.package",),
    reads=(PackageFacts, OsFacts, KernelFacts),
    needs=("live",),
)
def version_kernel(ctx: Context) -> Outcome:
    """Compares the installed agent version with the oldest agent that supports the running
    kernel's series (knowledge/support_matrix.json, from AWS's release history)."""
    pkg = ctx.facts(PackageFacts)
    version = pkg.version if pkg else None
    release = _kernel_release(ctx)
    if not version or not release:
        return not_applicable("agent version or kernel release unknown")
    series = kernel_series(release)
    if series is None:
        return error(f"cannot read the kernel release {release!r}")
    table = kernel_agents()
    os = ctx.facts(OsFacts)
    # the distribution matters: some rows have their own minimum (Ubuntu 24.04 on 6.13/6.14)
    needed = min_agent_for_kernel(
        series, (os.id or "") if os else "", (os.version_id or "") if os else ""
    )
    facts = VersionKernelFacts(
        kernel=release,
        series=series,
        version=version,
        needed=needed,
        newest_known=table.newest_kernel,
        table_date=table.date,
    )
    if needed is None:
        if version_key(series) > version_key(table.newest_kernel):
            return warn(
                f"kernel {series} is newer than any kernel in the release history "
                f"(newest {table.newest_kernel})",
                facts=facts,
            )
        return ok(f"agent {version} on kernel {series}", facts=facts)
    if version_key(version) < version_key(needed):
        return fail(
            f"agent {version} is older than {needed}, the first to support kernel {series}",
            facts=facts,
        )
    return ok(f"agent {version} supports kernel {series} (needs {needed})", facts=facts)


CHECKS: Tuple[Check, ...] = (
    package,
    unit,
    unit_file,
    *agent_logs.CHECKS,
    process,
    memory_limit,
    version_kernel,
)
