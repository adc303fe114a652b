"""The proxy check of the network domain: proxy variables as the GuardDuty agent sees them.

Sources, in the order systemd and the kernel apply them:

* the agent unit's ``EnvironmentFile=`` files and ``Environment=`` lines, from the unit file and
  its drop-ins (``/etc/systemd/system/amazon-guardduty-agent.service.d/*.conf``, as AWS
  documents for the SSM Agent's proxy);
* ``/proc/<MainPID>/environ`` of the running agent, when agent.unit found the PID: what the
  process really has;
* ``/etc/environment``, reported for login sessions only: systemd services do not read it.

The proxy's credentials are read here so that ``network.guardduty_https`` can probe through the
proxy as the agent would; the facts hold only the proxy's display form.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from gd_doctor.checks.base import Context, check, judged
from gd_doctor.facts.network import ProxyFacts, ProxySource, RegionFacts
from gd_doctor.knowledge import load
from gd_doctor.model import Outcome, Status
from gd_doctor.parsers.proxy_env import (
    no_proxy_matches,
    parse_env_file,
    parse_environ,
    parse_unit_environment,
    proxy_settings,
)

UNIT = "amazon-guardduty-agent.service"
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)
# The agent checks whose (redacted) unit and process data fill in what cannot be read here.
AGENT_UNIT_FACTS: Tuple[str, ...] = ("agent.unit", "agent.process")
MAX_FILE = 256 * 1024

Environment = Tuple[str, Dict[str, str]]  # (where it was read, NAME -> raw value)


def _unit_environment_files(ctx: Context) -> List[Tuple[str, str]]:
    """(path, text) of the unit file and its drop-ins, lowest precedence first."""
    # TODO(facts): the one systemd unit layer (issue 10, section 3) replaces this lookup.
    out: List[Tuple[str, str]] = []
    for base in reversed(UNIT_DIRS):
        text = ctx.host.fs.read_text(f"{base}/{UNIT}", max_bytes=MAX_FILE)
        if text is not None:
            out.append((f"{base}/{UNIT}", text))
            break
    for base in reversed(UNIT_DIRS):
        for path in ctx.host.fs.glob(f"{base}/{UNIT}.d", "*.conf"):
            text = ctx.host.fs.read_text(path, max_bytes=MAX_FILE)
            if text is not None:
                out.append((path, text))
    return out


def _fact_env(ctx: Context, check_id: str, key: str) -> Dict[str, str]:
    """An environment another check reported (values already redacted), as str -> str."""
    value = ctx.fact(check_id, key)
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _fact_paths(ctx: Context, check_id: str, key: str) -> List[str]:
    value = ctx.fact(check_id, key)
    return [str(v) for v in value] if isinstance(value, list) else []


def _unit_sources(ctx: Context) -> List[Environment]:
    """EnvironmentFile= files, then the merged Environment= lines of the unit and drop-ins."""
    sources: List[Environment] = []
    texts = _unit_environment_files(ctx)
    seen = {path for path, _ in texts}
    # TODO(facts): cross-domain agent.unit.drop_in_paths
    for path in _fact_paths(ctx, "agent.unit", "drop_in_paths"):
        text = ctx.host.fs.read_text(path, max_bytes=MAX_FILE)
        if text is not None and path not in seen:
            texts.append((path, text))
    unit_env: Dict[str, str] = {}
    files: List[str] = []
    for _path, text in texts:
        parsed = parse_unit_environment(text)
        unit_env.update(parsed.environment)
        files.extend(parsed.environment_files)
    # TODO(facts): cross-domain agent.unit.environment_files
    files.extend(f for f in _fact_paths(ctx, "agent.unit", "environment_files") if f not in files)
    for env_path in files[:32]:
        path = env_path.lstrip("-")
        env_text = ctx.host.fs.read_text(path, max_bytes=MAX_FILE)
        if env_text is not None:
            sources.append((f"EnvironmentFile {path}", parse_env_file(env_text)))
    # TODO(facts): cross-domain agent.unit.environment
    shown = _fact_env(ctx, "agent.unit", "environment")
    if unit_env:
        sources.append(("unit Environment=", unit_env))
    elif shown:
        sources.append(("unit Environment= (systemctl show)", shown))
    return sources


def _process_source(ctx: Context) -> List[Environment]:
    """The running agent's environ: read here (root), else agent.process's redacted copy."""
    pid = ctx.fact("agent.unit", "main_pid")  # TODO(facts): cross-domain agent.unit.main_pid
    if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
        raw, read = ctx.host.fs.read_bytes(f"/proc/{pid}/environ", max_bytes=MAX_FILE)
        if read.problem is None:
            return [(f"/proc/{pid}/environ (running agent)", parse_environ(raw))]
    # TODO(facts): cross-domain agent.process.proxy_env
    seen = _fact_env(ctx, "agent.process", "proxy_env")
    if seen:
        return [("/proc/PID/environ (running agent, via agent.process)", seen)]
    return []


def gather_proxy_sources(ctx: Context) -> List[Environment]:
    """(source, environment) pairs as the agent would see them; raw values (may hold secrets).

    Files are read here (unit file, drop-ins, EnvironmentFile=, /proc/PID/environ) so a proxy
    can be probed with its real credentials; the agent checks' redacted views fill in what this
    check cannot read itself (``systemctl show`` Environment, the environ of a process that
    needs root to read).
    """
    sources = _unit_sources(ctx) + _process_source(ctx)
    etc = ctx.host.fs.read_text("/etc/environment", max_bytes=64 * 1024)
    if etc is not None:
        sources.append(("/etc/environment (login sessions only)", parse_env_file(etc)))
    return sources


def agent_environment(sources: Sequence[Environment]) -> Environment:
    """The environment the agent process has: its /proc environ, else unit settings merged."""
    for name, env in sources:
        if name.startswith("/proc/"):
            return name, env
    merged: Dict[str, str] = {}
    used = []
    for name, env in sources:
        if name.startswith(("EnvironmentFile", "unit ")):
            merged.update(env)
            used.append(name)
    return (" + ".join(used) or "none"), merged


def agent_proxy_url(ctx: Context) -> str:
    """The raw HTTPS proxy URL of the agent ("" without one); it may hold credentials, so it
    goes to the host layer's probe and nowhere else."""
    _, env = agent_environment(gather_proxy_sources(ctx))
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
    after=AGENT_UNIT_FACTS,  # TODO(facts): cross-domain agent.unit/agent.process (see above)
    facts=ProxyFacts,
    reads=(RegionFacts,),
)
def proxy_as_agent_sees(ctx: Context) -> Outcome:
    """Unit Environment/EnvironmentFile/drop-ins, /proc/PID/environ, /etc/environment."""
    region = ctx.facts(RegionFacts)
    host = region.host if region is not None else None
    imds_host = _imds_host()
    sources = gather_proxy_sources(ctx)
    rows = []
    for name, env in sources:
        s = proxy_settings(env)
        if s.https_proxy or s.no_proxy:
            rows.append(ProxySource.from_settings(name, s))
    agent_source, env = agent_environment(sources)
    agent = proxy_settings(env)
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
