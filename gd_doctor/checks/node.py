"""Checks of what kind of node this is, and what only that kind of node needs.

* ``platform.bottlerocket``: on a Bottlerocket root (``ID=bottlerocket`` in os-release), the
  variant (``VARIANT_ID``: aws-ecs-2 / aws-ecs-3) and OS version (``VERSION_ID`` >= 1.62.1), and,
  live, the agent's host container: ``systemctl show host-containers@amazon-guardduty-agent`` and
  that unit's journal (failed pulls of the image from Amazon ECR);
* ``platform.node_role``: an EKS worker node (kubelet with ``/etc/eks`` or nodeadm, containerd,
  the GuardDuty EKS add-on's pod logs under ``/var/log/pods``) or an ECS container instance
  (``/etc/ecs/ecs.config``, ecs-init): which coverage table applies;
* ``network.bottlerocket_endpoints`` (live, network): on Bottlerocket, the ECR api and dkr, S3
  and guardduty-data names resolve (privately for the interface endpoints) and TCP 443 opens.

Nothing here writes, and the facts come from ``knowledge/bottlerocket.json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, Tuple

from gd_doctor.checks.base import Check, Context, check, judged, not_applicable
from gd_doctor.checks.network import classify_address, parallel
from gd_doctor.facts.imds import ImdsNetworkFacts
from gd_doctor.facts.network import BottlerocketEndpoint, BottlerocketEndpointsFacts, RegionFacts
from gd_doctor.facts.node import BottlerocketFacts, NodeRoleFacts
from gd_doctor.facts.platform import OsFacts
from gd_doctor.host import timeouts
from gd_doctor.host.journal import JournalUnavailable
from gd_doctor.knowledge import load
from gd_doctor.model import Outcome, Status
from gd_doctor.parsers.os_release import parse_os_release
from gd_doctor.patterns import lazy
from gd_doctor.redact import redact

SMALL = 64 * 1024
MAX_JOURNAL_ENTRIES = 2000
MAX_PULL_ERRORS = 5
_ECS_VARIANT = lazy(r"^aws-ecs-(\d+)(?:-nvidia)?(?:-fips)?$")
# containerd/host-ctr wording of a failed pull, and ECR's own refusals.
_PULL_ERROR = lazy(
    r"(?i)(?:failed to pull|pull(?:ing)? image.{0,200}(?:fail|error|denied|timeout)|"
    r"CannotPullContainerError|failed to resolve ref|no basic auth credentials|"
    r"(?:AccessDenied|not authorized to perform).{0,200}ecr:)"
)


def _conf(section: str) -> Dict[str, Any]:
    value = load("bottlerocket.json")[section]
    assert isinstance(value, dict), section
    return value


def version_tuple(version: str) -> Tuple[int, ...]:
    """``1.62.1`` -> (1, 62, 1); non-numeric parts stop the tuple.

    >>> version_tuple("1.62.1"), version_tuple("1.9"), version_tuple("x")
    ((1, 62, 1), (1, 9), ())
    """
    out: List[int] = []
    for part in version.split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


def _os_release_fields(ctx: Context) -> Dict[str, str]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        fr = ctx.host.fs.read(path, SMALL)
        if fr.ok and not fr.binary and fr.text:
            rel = parse_os_release(fr.text)
            if rel.known:
                return dict(rel.fields)
    return {}


def _variant(variant: Optional[str]) -> Tuple[Optional[bool], Optional[str]]:
    """(supported, kernel) of a Bottlerocket variant, from bottlerocket.json."""
    if not variant:
        return None, None
    m = _ECS_VARIANT.match(variant)
    for row in _conf("variants")["supported"]:
        if m and f"aws-ecs-{m.group(1)}" == row["variant"]:
            return True, str(row["kernel"])
    return False, None


def _unit_state(ctx: Context, unit: str) -> Dict[str, Optional[str]]:
    res = ctx.host.run.run(
        ["systemctl", "show", unit, "-p", "LoadState,ActiveState,SubState"],
        timeout=ctx.timeout(timeouts.COMMAND),
    )
    if res.problem is not None or res.returncode != 0 or "LoadState=" not in res.stdout:
        why = res.problem or (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
        return {"unit_problem": f"systemctl show {unit}: {redact(why)[:200]}"}
    props = dict(line.split("=", 1) for line in res.stdout.splitlines()[:20] if "=" in line)
    return {
        "unit_load_state": props.get("LoadState") or None,
        "unit_active_state": props.get("ActiveState") or None,
        "unit_sub_state": props.get("SubState") or None,
    }


def _journal(ctx: Context, unit: str) -> Dict[str, Any]:
    since: datetime = ctx.host.clock.now() - ctx.options.since
    try:
        entries = ctx.host.journal.read(
            units=[unit],
            since=since,
            kernel=False,
            timeout=ctx.timeout(timeouts.JOURNAL),
            max_entries=MAX_JOURNAL_ENTRIES,
        )
    except JournalUnavailable as exc:
        return {"journal_problem": redact(str(exc))[:300]}
    pulls = [redact(e.message)[:300] for e in entries if _PULL_ERROR.search(e.message)]
    return {"journal_entries": len(entries), "pull_errors": tuple(pulls[-MAX_PULL_ERRORS:])}


def _bottlerocket_status(facts: BottlerocketFacts) -> Tuple[Status, str]:
    what = f"Bottlerocket {facts.version or '(no VERSION_ID)'} ({facts.variant or 'no variant'})"
    if facts.version_ok is False:
        return (
            Status.FAIL,
            f"{what}: older than {facts.min_version}, the first one GuardDuty supports",
        )
    if facts.pull_errors:
        return Status.FAIL, f"{what}: the agent's image could not be pulled from Amazon ECR"
    if facts.running is False:
        state = f"{facts.unit_active_state} ({facts.unit_sub_state})"
        return Status.FAIL, f"{what}: host container {facts.unit} is {state}"
    if facts.variant_supported is False:
        return Status.WARN, f"{what}: not an ECS-2/ECS-3 variant (Runtime Monitoring's table)"
    if facts.running is None:
        seen = facts.unit_problem or "the host container's state is seen on the live host only"
        return Status.OK, f"{what}: OS and variant supported; {seen}"
    return Status.OK, f"{what}: host container {facts.unit} is active (running)"


@check(
    "platform.bottlerocket",
    title="Bottlerocket: variant, OS version and the agent's host container",
    category="platform",
    facts=BottlerocketFacts,
    reads=(OsFacts,),
)
def bottlerocket(ctx: Context) -> Outcome:
    """On Bottlerocket (ID=bottlerocket): VARIANT_ID and VERSION_ID against the ECS-2/ECS-3
    1.62.1 floor, and live the host container's unit and journal."""
    os_ = ctx.facts(OsFacts)
    floor = str(_conf("variants")["min_os_version"])
    unit = str(_conf("host_container")["unit"])
    if os_ is None or os_.id != "bottlerocket":
        known = os_ is not None and os_.match != "unknown"
        facts = BottlerocketFacts(False if known else None, floor, unit)
        what = f"ID={os_.id}" if os_ is not None and os_.id else "no os-release"
        return judged(Status.OK, f"not Bottlerocket ({what})", facts)
    fields = _os_release_fields(ctx)
    variant, version = fields.get("VARIANT_ID") or None, fields.get("VERSION_ID") or None
    have = version_tuple(version) if version else ()
    supported, kernel = _variant(variant)
    live: Dict[str, Any] = {}
    if ctx.host.live:
        live.update(_unit_state(ctx, unit))
        live.update(_journal(ctx, unit))
    else:
        live["unit_problem"] = "a root is being analysed: the host container's state is live only"
    facts = BottlerocketFacts(
        bottlerocket=True,
        min_version=floor,
        unit=unit,
        variant=variant,
        version=version,
        version_ok=(have >= version_tuple(floor)) if have else None,
        variant_supported=supported,
        variant_kernel=kernel,
        **live,
    )
    status, summary = _bottlerocket_status(facts)
    evidence = [f"os-release: VARIANT_ID={variant} VERSION_ID={version}", *facts.pull_errors]
    return judged(status, summary, facts, evidence)


# --- platform.node_role ---------------------------------------------------------------------

_KUBELET = ("/usr/bin/kubelet", "/usr/local/bin/kubelet")
_EKS_MARKERS = ("/etc/eks", "/usr/bin/nodeadm", "/usr/local/bin/nodeadm")
_CONTAINERD = ("/usr/bin/containerd", "/etc/containerd/config.toml")
_ECS_MARKERS = (
    "/etc/ecs/ecs.config",
    "/usr/libexec/amazon-ecs-init",
    "/usr/lib/systemd/system/ecs.service",
    "/etc/systemd/system/ecs.service",
)
_POD_DIR = "/var/log/pods"
_ADDON_POD = lazy(r"^amazon-guardduty_aws-guardduty-agent-[a-z0-9]{1,10}_")
MAX_PODS = 8


def _present(ctx: Context, paths: Sequence[str]) -> List[str]:
    return [p for p in paths if ctx.host.fs.exists(p)]


def _addon_pods(ctx: Context) -> List[str]:
    names = ctx.host.fs.listdir(_POD_DIR) or []
    return sorted(f"{_POD_DIR}/{n}" for n in names[:4096] if _ADDON_POD.match(n))[:MAX_PODS]


@check(
    "platform.node_role",
    title="EKS worker node or ECS container instance",
    category="platform",
    facts=NodeRoleFacts,
    reads=(OsFacts,),
)
def node_role(ctx: Context) -> Outcome:
    """Looks for kubelet with /etc/eks or nodeadm (and containerd, the GuardDuty EKS add-on's pod
    logs in /var/log/pods), a Bottlerocket aws-k8s variant, and /etc/ecs/ecs.config or ecs-init:
    an EKS node is covered through the EKS coverage table, an ECS instance through the EC2 one."""
    os_ = ctx.facts(OsFacts)
    kubelet, eks_markers = _present(ctx, _KUBELET), _present(ctx, _EKS_MARKERS)
    k8s_variant = bool(os_ and os_.pretty_name and "(aws-k8s-" in os_.pretty_name)
    eks = bool(kubelet and eks_markers) or k8s_variant
    eks_signals = kubelet + eks_markers + _present(ctx, _CONTAINERD)
    if k8s_variant and os_ is not None:
        eks_signals.insert(0, f"os-release: {os_.pretty_name}")
    ecs = _present(ctx, _ECS_MARKERS)
    pods = _addon_pods(ctx)
    if eks:
        facts = NodeRoleFacts("eks", tuple(eks_signals), tuple(pods), tuple(ecs))
        agent = f"; GuardDuty EKS add-on pods: {len(pods)}" if pods else ""
        summary = f"EKS worker node ({', '.join(eks_signals[:3])}){agent}"
    elif ecs:
        facts = NodeRoleFacts("ecs", tuple(ecs), tuple(pods), tuple(ecs))
        summary = f"ECS container instance ({', '.join(ecs[:2])}): in the EC2 table's scope"
    else:
        facts = NodeRoleFacts("none", tuple(kubelet), tuple(pods))
        summary = "neither an EKS worker node nor an ECS container instance"
    evidence = [f"present: {p}" for p in (*facts.signals, *pods)][:12]
    return judged(Status.OK, summary, facts, evidence)


# --- network.bottlerocket_endpoints ---------------------------------------------------------


def _hosts(region: RegionFacts) -> List[Tuple[str, str]]:
    """(service, host name) of the endpoints a Bottlerocket host pulls the agent through."""
    conf = _conf("endpoints")
    account = _conf("ecr_registry_accounts")["accounts"].get(str(region.region))
    out: List[Tuple[str, str]] = []
    for service, template in conf["hosts"].items():
        if "{account}" in template and not account:
            continue  # Region without a published registry account
        name = str(template).format(
            region=region.region, dns_suffix=region.dns_suffix, account=account
        )
        out.append((service, name))
    if region.host:
        out.append(("guardduty_data", region.host))
    return out


def _probe(ctx: Context, service: str, host: str, limit: float, cidrs: Sequence[str]) -> Any:
    answer = ctx.host.net.resolve(host, timeout=limit)
    kinds = tuple(classify_address(a, cidrs) for a in answer.addresses[:8])
    if not answer.addresses:
        return BottlerocketEndpoint(service, host, (), (), None, answer.problem or "no answer")
    port = int(_conf("endpoints")["port"])
    tcp = ctx.host.net.tcp_connect(answer.addresses[0], port, timeout=limit)
    return BottlerocketEndpoint(service, host, tuple(answer.addresses[:8]), kinds, tcp.state)


@check(
    "network.bottlerocket_endpoints",
    title="Bottlerocket: ECR api/dkr, S3 and guardduty-data endpoints",
    category="network",
    requires=("network.region",),
    needs=("live", "network"),
    facts=BottlerocketEndpointsFacts,
    reads=(RegionFacts, BottlerocketFacts, ImdsNetworkFacts),
)
def bottlerocket_endpoints(ctx: Context) -> Outcome:
    """DNS (private answers for the interface endpoints) and TCP 443 for the endpoints the agent's
    host container needs: api.ecr, <account>.dkr.ecr, s3 and guardduty-data, in parallel."""
    region, br = ctx.facts(RegionFacts), ctx.facts(BottlerocketFacts)
    if br is None or not br.bottlerocket:
        return not_applicable("not Bottlerocket")
    if region is None or region.region is None or region.dns_suffix is None:
        return not_applicable("Region unknown")
    vpc = ctx.facts(ImdsNetworkFacts)
    cidrs = vpc.vpc_cidrs if vpc is not None else ()
    hosts = _hosts(region)
    limit = ctx.timeout(timeouts.DNS)
    probes = parallel(lambda sh: _probe(ctx, sh[0], sh[1], limit, cidrs), hosts, 2 * limit + 0.2)
    endpoints = tuple(
        p if p is not None else BottlerocketEndpoint(s, h, (), (), None, "timed out")
        for (s, h), p in zip(hosts, probes)
    )
    public_ok = tuple(_conf("endpoints")["public_ok"])
    facts = BottlerocketEndpointsFacts(str(region.region), endpoints, public_ok)
    evidence = [
        f"{e.host}: {', '.join(e.addresses) or e.problem} tcp {e.tcp or '-'}" for e in endpoints
    ]
    if facts.unreachable:
        bad = ", ".join(e.host for e in facts.unreachable)
        return judged(Status.FAIL, f"not reachable on 443: {bad}", facts, evidence)
    if facts.public_only:
        names = ", ".join(e.host for e in facts.public_only)
        return judged(Status.WARN, f"resolve to public addresses only: {names}", facts, evidence)
    return judged(Status.OK, "ECR api/dkr, S3 and guardduty-data reachable on 443", facts, evidence)


CHECKS: Tuple[Check, ...] = (bottlerocket, node_role)
NETWORK_CHECKS: Tuple[Check, ...] = (bottlerocket_endpoints,)
