"""The proxy check of the network domain: proxy variables as the GuardDuty agent sees them.

Sources, in the order systemd and the kernel apply them:

* the agent unit's ``DefaultEnvironment=``, ``Environment=`` lines and ``EnvironmentFile=``
  files, resolved by the host's one systemd layer (:mod:`gd_doctor.host.units`: the effective
  unit file and its drop-ins such as
  ``/etc/systemd/system/amazon-guardduty-agent.service.d/*.conf``, as AWS documents for the SSM
  Agent's proxy);
* ``/proc/<MainPID>/environ`` of the running agent, when agent.unit found the PID: what the
  process really has;
* ``/etc/environment``, reported for login sessions only: systemd services do not read it.

The proxy's credentials are read here so that ``network.guardduty_https`` can probe through the
proxy as the agent would; the facts hold only the proxy's display form.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Type

from gd_doctor.checks.base import Context, check, judged
from gd_doctor.facts.agent import ProcessFacts, UnitFacts
from gd_doctor.facts.network import ProxyFacts, ProxySource, RegionFacts
from gd_doctor.host.unit_model import EffectiveUnit
from gd_doctor.knowledge import load
from gd_doctor.model import Facts, Outcome, Status
from gd_doctor.parsers.proxy_env import (
    no_proxy_matches,
    parse_env_file,
    parse_environ,
    proxy_settings,
)

UNIT = "amazon-guardduty-agent.service"
# The agent facts that fill in what cannot be read here (the PID, a redacted environment).
AGENT_FACTS: Tuple[Type[Facts], ...] = (UnitFacts, ProcessFacts)
MAX_FILE = 256 * 1024

Environment = Tuple[str, Dict[str, str]]  # (where it was read, NAME -> raw value)


def _unit_sources(u: EffectiveUnit, shown: Optional[UnitFacts]) -> List[Environment]:
    """The unit's own sources in the order systemd applies them (DefaultEnvironment=, then
    Environment=, then each EnvironmentFile=), from the host's one systemd layer."""
    sources: List[Environment] = []
    if u.manager_environment:
        sources.append(("unit DefaultEnvironment= (system.conf)", dict(u.manager_environment)))
    if u.environment:
        src = u.source_of("Environment")
        sources.append(
            (f"unit Environment= in {src}" if src else "unit Environment=", dict(u.environment))
        )
    elif not u.found and shown is not None and shown.environment:
        # the files are not readable here, systemd's (redacted) view is all there is
        sources.append(("unit Environment= (systemctl show)", dict(shown.environment)))
    for read in u.environment_file_reads:
        if read.pairs:
            sources.append((f"EnvironmentFile {read.path}", dict(read.pairs)))
    return sources


def _unit_environment(u: EffectiveUnit, shown: Optional[UnitFacts]) -> Environment:
    """The environment systemd hands the service and where its proxy variable comes from."""
    env = u.process_environment()
    if not env and not u.found and shown is not None and shown.environment:
        return "unit Environment= (systemctl show)", dict(shown.environment)
    s = proxy_settings(env)
    var = s.https_variable or s.no_proxy_variable
    where = u.environment_source(var) if var else None
    return (where or "none"), env


def _process_source(ctx: Context) -> Optional[Environment]:
    """The running agent's environ: read here (root), else agent.process's redacted copy."""
    unit = ctx.facts(UnitFacts)
    pid = unit.main_pid if unit is not None else None
    if pid is not None and pid > 0:
        raw, read = ctx.host.fs.read_bytes(f"/proc/{pid}/environ", max_bytes=MAX_FILE)
        if read.problem is None:
            return f"/proc/{pid}/environ (running agent)", parse_environ(raw)
    process = ctx.facts(ProcessFacts)
    if process is not None and process.proxy_env:
        return "/proc/PID/environ (running agent, via agent.process)", dict(process.proxy_env)
    return None


def gather_proxy_sources(ctx: Context) -> Tuple[List[Environment], Environment]:
    """Every (source, environment) pair found, and the environment the agent has: its /proc
    environ when readable, else what systemd would hand it. Raw values (may hold secrets).

    The unit comes from the host's systemd layer (host/units.py), so a vendor unit in
    /usr/lib overridden by one in /etc gives the /etc file's proxy, as systemd does; the agent
    checks' redacted views fill in what this check cannot read itself.
    """
    u = ctx.host.units.resolve(UNIT)
    shown = ctx.facts(UnitFacts)
    sources = _unit_sources(u, shown)
    agent = _process_source(ctx)
    if agent is not None:
        sources.append(agent)
    etc = ctx.host.fs.read_text("/etc/environment", max_bytes=64 * 1024)
    if etc is not None:
        sources.append(("/etc/environment (login sessions only)", parse_env_file(etc)))
    return sources, agent if agent is not None else _unit_environment(u, shown)


def agent_proxy_url(ctx: Context) -> str:
    """The raw HTTPS proxy URL of the agent ("" without one); it may hold credentials, so it
    goes to the host layer's probe and nowhere else."""
    _, (_, env) = gather_proxy_sources(ctx)
    return proxy_settings(env).https_proxy or ""


def _imds_host() -> str:
    imds = load("endpoints.json")["imds"]
    return str(imds["no_proxy_host"]) if isinstance(imds, dict) else "169.254.169.254"


def _source_line(s: ProxySource) -> str:
    return (
        f"{s.source}: {s.variable}={s.proxy or s.malformed} "
        f"no_proxy={','.join(s.no_proxy) or '(unset)'}"
    )


@check(
    "network.proxy",
    title="Proxy settings as the agent sees them",
    category="network",
    facts=ProxyFacts,
    reads=(RegionFacts, *AGENT_FACTS),
)
def proxy_as_agent_sees(ctx: Context) -> Outcome:
    """Unit Environment/EnvironmentFile/drop-ins, /proc/PID/environ, /etc/environment."""
    region = ctx.facts(RegionFacts)
    host = region.host if region is not None else None
    imds_host = _imds_host()
    sources, (agent_source, agent_env) = gather_proxy_sources(ctx)
    rows = []
    for name, env in sources:
        s = proxy_settings(env)
        if s.https_proxy or s.no_proxy:
            rows.append(ProxySource.from_settings(name, s))
    agent = proxy_settings(agent_env)
    facts = ProxyFacts.from_settings(
        rows,
        agent_source,
        agent,
        imds_bypassed=no_proxy_matches(agent.no_proxy, imds_host),
        endpoint_bypassed=host is None or no_proxy_matches(agent.no_proxy, host),
    )
    evidence = [_source_line(r) for r in rows]
    if not agent.https_proxy:
        return judged(Status.OK, "no proxy in the agent's environment", facts, evidence)
    if facts.malformed:
        summary = f"the agent's {agent.https_variable} is malformed ({facts.malformed})"
        return judged(Status.WARN, summary, facts, evidence)
    if facts.applies_to_imds:
        summary = (
            f"the agent uses proxy {facts.proxy} without no_proxy for {imds_host}: IMDS calls "
            "would go to the proxy"
        )
        return judged(Status.WARN, summary, facts, evidence)
    where = (
        "the endpoint goes through it" if facts.applies_to_endpoint else "the endpoint is exempt"
    )
    return judged(Status.OK, f"proxy {facts.proxy} ({where}; IMDS exempt)", facts, evidence)
