"""Checks of the network domain: the path from this instance to GuardDuty's data endpoint.

What they read and probe:

* the Region (``--region``, else the identity document, else the agent's own log lines) and the
  endpoint names built from ``knowledge/endpoints.json``: ``guardduty-data.<region>.<suffix>``
  (``guardduty-data-fips`` in GovCloud, whose endpoint service is the FIPS one),
  ``guardduty-data-v2.<region>.<suffix>`` (link-local path, agent >= 1.17.1); ``--endpoint-url``
  overrides;
* ``/etc/resolv.conf`` (and ``/run/systemd/resolve/resolv.conf`` behind the systemd-resolved
  stub): which resolver answers;
* DNS through the system resolver, each address classified against the VPC CIDR blocks;
* TCP 443, TLS (SNI, verification, issuer) and one unsigned HTTPS request per address: an AWS
  refusal (4xx with ``x-amzn-RequestId``) is the healthy answer, never a denial; through the
  agent's proxy too when it has one (``network.proxy``, in :mod:`gd_doctor.checks.proxy`);
* DNS and TCP 443 for the ssm, ssmmessages and ec2messages endpoints.

Probes of several addresses run in parallel daemon threads, each under its own timeout.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union
from urllib.parse import urlsplit

from gd_doctor.checks.base import Check, Context, check, error, judged, not_applicable
from gd_doctor.checks.proxy import AGENT_FACTS, agent_proxy_url, proxy_as_agent_sees
from gd_doctor.facts.agent import LogFacts
from gd_doctor.facts.imds import ImdsIdentityFacts, ImdsNetworkFacts
from gd_doctor.facts.network import (
    DnsFacts,
    HttpsFacts,
    HttpsProbeResult,
    NameAnswer,
    Nameserver,
    ProxyFacts,
    RegionFacts,
    ResolverFacts,
    SsmEndpoint,
    SsmEndpointsFacts,
    TcpAttempt,
    TcpFacts,
)
from gd_doctor.host import timeouts
from gd_doctor.host.net import HttpsProbe
from gd_doctor.knowledge import load
from gd_doctor.model import Outcome, Status
from gd_doctor.parsers.resolv_conf import parse_resolv_conf
from gd_doctor.redact import redact

T = TypeVar("T")
R = TypeVar("R")


def _conf(section: str) -> Dict[str, Any]:
    """One section of endpoints.json."""
    value = load("endpoints.json")[section]
    assert isinstance(value, dict), section
    return value


def parallel(fn: Callable[[T], R], items: Sequence[T], timeout: float) -> List[Optional[R]]:
    """``fn`` over ``items`` in daemon threads; an item not done by ``timeout`` gives None."""
    results: List[Optional[R]] = [None] * len(items)

    def work(i: int, item: T) -> None:
        results[i] = fn(item)

    threads = [
        threading.Thread(target=work, args=(i, it), daemon=True, name="gd-doctor-probe")
        for i, it in enumerate(items)
    ]
    for t in threads:
        t.start()
    end = time.monotonic() + max(0.05, timeout)
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return results


def _endpoint(ctx: Context) -> Optional[RegionFacts]:
    """network.region's facts when they name an endpoint host (the checks below require it)."""
    region = ctx.facts(RegionFacts)
    return region if region is not None and region.host else None


# --- Region and endpoint names ---------------------------------------------------------------


def partition_of(region: str) -> Tuple[str, str]:
    """(partition id, DNS suffix) of a Region, from endpoints.json.

    >>> partition_of("cn-north-1")
    ('aws-cn', 'amazonaws.com.cn')
    >>> partition_of("us-gov-west-1")
    ('aws-us-gov', 'amazonaws.com')
    >>> partition_of("eu-central-1")
    ('aws', 'amazonaws.com')
    """
    parts = load("endpoints.json")["partitions"]
    assert isinstance(parts, list)
    for part in reversed(parts):  # the specific partitions are listed after aws
        if re.match(part["region_regex"], region):
            return str(part["id"]), str(part["dns_suffix"])
    return "aws", "amazonaws.com"


def valid_region(region: str) -> bool:
    """True for a well-formed Region name.

    >>> valid_region("us-east-1"), valid_region("us-east-1; rm -rf /")
    (True, False)
    """
    return bool(re.match(str(load("endpoints.json")["region_regex"]), region))


def _agent_region(ctx: Context) -> Optional[str]:
    """The Region of the guardduty-data names the agent wrote in its logs."""
    logs = ctx.facts(LogFacts)
    value = logs.region if logs is not None else None
    return value if value and valid_region(value) else None


def _with_names(facts: RegionFacts, identity: Optional[ImdsIdentityFacts]) -> RegionFacts:
    """The endpoint names of ``facts.region`` (a valid Region)."""
    region = str(facts.region)
    gd = _conf("guardduty_data")
    partition, suffix = partition_of(region)
    if identity is not None and identity.services_domain:
        suffix = identity.services_domain  # IMDS knows the partition's domain best
    templates = {k: str(gd[k]) for k in ("primary", "link_local_v2", "fips")}
    # GovCloud's endpoint service is guardduty-data-fips (govcloud-guardduty.html, 2026-12-01)
    templates["primary"] = str(gd.get("primary_by_partition", {}).get(partition, gd["primary"]))
    names = {k: t.format(region=region, dns_suffix=suffix) for k, t in templates.items()}
    return RegionFacts(
        region=region,
        region_source=facts.region_source,
        instance_region=facts.instance_region,
        agent_region=facts.agent_region,
        partition=partition,
        dns_suffix=suffix,
        host=names["primary"],
        v2_host=names["link_local_v2"],
        fips_host=names["fips"] if region in gd["fips_regions"] else None,
        port=int(gd["port"]),
    )


def _with_url(facts: RegionFacts, url: str) -> RegionFacts:
    """``--endpoint-url`` replaces the endpoint names (``problem`` set when it is unusable)."""
    parts = urlsplit(url if "://" in url else "https://" + url)
    unnamed = replace(facts, host=None, v2_host=None, fips_host=None, endpoint_url=url)
    try:
        port = parts.port or 443
    except ValueError:
        return replace(unnamed, problem="--endpoint-url has an invalid port")
    if not parts.hostname:
        return replace(unnamed, problem="--endpoint-url has no host name")
    return replace(unnamed, host=parts.hostname, port=port)


@check(
    "network.region",
    title="Region and GuardDuty data endpoint names",
    category="network",
    facts=RegionFacts,
    reads=(ImdsIdentityFacts, LogFacts),
)
def region_and_endpoint(ctx: Context) -> Outcome:
    """Picks the Region (--region, identity document, agent) and builds the endpoint names."""
    identity = ctx.facts(ImdsIdentityFacts)
    instance_region = identity.region if identity is not None else None
    agent_region = _agent_region(ctx)
    candidates = (
        ("--region", ctx.host.settings.region),
        ("instance identity document", instance_region),
        ("agent", agent_region),
    )
    source, region = next(((s, r) for s, r in candidates if r), (None, None))
    facts = RegionFacts(region, source, instance_region, agent_region)
    if region is not None and not valid_region(region):
        problem = f"{region[:64]!r} is not a Region name"  # hostile IMDS: keep it short
        bad = RegionFacts(None, source, instance_region, agent_region, problem=problem)
        return judged(Status.FAIL, f"{problem} (from {source})", bad)
    if region is not None:
        facts = _with_names(facts, identity)
    url = ctx.host.settings.endpoint_url
    if url:
        facts = _with_url(facts, url)
        if facts.problem:
            return judged(Status.FAIL, facts.problem, facts)
        return judged(Status.OK, f"{facts.host}:{facts.port} (--endpoint-url)", facts)
    if region is None:
        return not_applicable("Region unknown: IMDS gave none; pass --region")
    return judged(Status.OK, f"{facts.host} (Region {region} from {source})", facts)


# --- Resolver ---------------------------------------------------------------------------------


def _ip(address: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    try:
        return ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return None


def _in_cidrs(address: str, cidrs: Sequence[str]) -> bool:
    ip = _ip(address)
    if ip is None:
        return False
    for cidr in cidrs:
        try:
            if ip in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def _vpc_plus_two(cidrs: Sequence[str]) -> List[str]:
    out = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if net.version == 4 and net.num_addresses > 2:
            out.append(str(net.network_address + 2))
    return out


def classify_nameserver(address: str, vpc_cidrs: Sequence[str]) -> str:
    """amazon | vpc+2 | systemd-resolved | loopback | custom | unknown (VPC CIDRs not known).

    >>> classify_nameserver("169.254.169.253", [])
    'amazon'
    >>> classify_nameserver("10.0.0.2", ["10.0.0.0/16"])
    'vpc+2'
    >>> classify_nameserver("127.0.0.53", []), classify_nameserver("10.9.9.9", ["10.0.0.0/16"])
    ('systemd-resolved', 'custom')
    >>> classify_nameserver("10.9.9.9", [])
    'unknown'
    """
    conf = _conf("amazon_resolvers")
    if address in conf["addresses"]:
        return "amazon"
    if address in _vpc_plus_two(vpc_cidrs):
        return "vpc+2"
    if address in conf["systemd_resolved_stubs"]:
        return "systemd-resolved"
    ip = _ip(address)
    if ip is None:
        return "custom"
    if ip.is_loopback:
        return "loopback"
    if ip.is_private and not vpc_cidrs:
        return "unknown"  # could be the VPC resolver (base + 2); the CIDR is needed to tell
    return "custom"


def _vpc_cidrs(ctx: Context) -> Tuple[str, ...]:
    vpc = ctx.facts(ImdsNetworkFacts)
    return vpc.vpc_cidrs if vpc is not None else ()


def _servers(text: str, cidrs: Sequence[str], via: Optional[str] = None) -> List[Nameserver]:
    return [
        Nameserver(a, classify_nameserver(a, cidrs), via)
        for a in parse_resolv_conf(text).nameservers[:16]
    ]


_RESOLVER_TEXT = {
    "none": "/etc/resolv.conf names no nameserver (glibc then asks 127.0.0.1)",
    "amazon": "Amazon-provided DNS (Route 53 Resolver)",
    "systemd-resolved": "systemd-resolved stub (upstream servers not readable)",
}


def _resolver_summary(facts: ResolverFacts) -> Tuple[Status, str]:
    if facts.kind in _RESOLVER_TEXT:
        status = Status.WARN if facts.kind == "none" else Status.OK
        return status, _RESOLVER_TEXT[facts.kind]
    upstream = ", ".join(s.address for s in facts.upstream)
    if facts.kind == "local":
        return Status.OK, (
            f"a local resolver on {upstream} (dnsmasq, unbound or similar): private DNS works "
            "only if it forwards to the VPC resolver"
        )
    if facts.kind == "unknown":
        return Status.OK, (
            f"resolver {upstream} (VPC CIDR unknown: cannot tell whether it is the VPC resolver)"
        )
    custom = ", ".join(s.address for s in facts.upstream if s.kind not in ("amazon", "vpc+2"))
    return Status.WARN, (
        f"custom resolver ({custom}): it must forward the endpoint's name to the VPC resolver "
        "for private DNS to work"
    )


@check(
    "network.resolver",
    title="DNS resolver in use",
    category="network",
    facts=ResolverFacts,
    reads=(ImdsNetworkFacts,),
)
def resolver_in_use(ctx: Context) -> Outcome:
    """Reads /etc/resolv.conf (and systemd-resolved's upstream list) and names the resolver."""
    read = ctx.host.fs.read("/etc/resolv.conf", max_bytes=64 * 1024)
    if not read.ok or read.text is None:
        facts = ResolverFacts("unreadable", problem=read.problem)
        return judged(Status.WARN, f"/etc/resolv.conf: {read.problem}", facts)
    cidrs = _vpc_cidrs(ctx)
    servers = _servers(read.text, cidrs)
    evidence = [f"/etc/resolv.conf: nameserver {s.address}" for s in servers]
    if any(s.kind == "systemd-resolved" for s in servers):
        upstream_file = str(_conf("amazon_resolvers")["systemd_resolved_upstream_file"])
        up = ctx.host.fs.read_text(upstream_file, max_bytes=64 * 1024)
        if up is not None:
            behind = _servers(up, cidrs, via="systemd-resolved")
            servers.extend(behind)
            evidence.extend(f"{upstream_file}: nameserver {s.address}" for s in behind)
    search = parse_resolv_conf(read.text).search
    facts = ResolverFacts.from_nameservers(servers, search, cidrs)
    status, summary = _resolver_summary(facts)
    return judged(status, summary, facts, evidence)


# --- DNS --------------------------------------------------------------------------------------


def classify_address(address: str, vpc_cidrs: Sequence[str]) -> str:
    """vpc | private | link-local | loopback | public | invalid.

    >>> classify_address("10.0.3.7", ["10.0.0.0/16"]), classify_address("172.31.0.9", [])
    ('vpc', 'private')
    >>> classify_address("52.94.1.1", ["10.0.0.0/16"]), classify_address("fd00:ec2::254", [])
    ('public', 'private')
    """
    ip = _ip(address)
    if ip is None:
        return "invalid"
    if _in_cidrs(address, vpc_cidrs):
        return "vpc"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    return "public"


@check(
    "network.guardduty_dns",
    title="guardduty-data name resolves to the VPC endpoint",
    category="network",
    requires=("network.region",),
    after=("network.resolver",),
    needs=("live", "network"),
    facts=DnsFacts,
    reads=(RegionFacts, ImdsNetworkFacts),
)
def guardduty_dns(ctx: Context) -> Outcome:
    """Resolves the endpoint (and the -v2 name) through the system resolver, in parallel."""
    region = _endpoint(ctx)
    if region is None or region.host is None:
        return error("network.region named no endpoint host")
    host = region.host
    names = [host] + ([region.v2_host] if region.v2_host else [])
    limit = ctx.timeout(timeouts.DNS)
    answers = parallel(lambda n: ctx.host.net.resolve(n, timeout=limit), names, limit + 0.1)
    cidrs = _vpc_cidrs(ctx)
    per_name = [
        NameAnswer.from_answer(n, a, lambda addr: classify_address(addr, cidrs))
        for n, a in zip(names, answers)
    ]
    facts = DnsFacts.from_answers(host, per_name, cidrs, override=bool(region.endpoint_url))
    evidence = [
        f"{n.name}: {', '.join(a.address for a in n.addresses) or n.problem}" for n in per_name
    ]
    if facts.endpoint_class == "unresolved":
        return judged(Status.FAIL, f"{host} does not resolve ({facts.problem})", facts, evidence)
    listing = ", ".join(f"{a.address} ({a.kind})" for a in facts.addresses)
    if facts.endpoint_class == "public":
        summary = f"{host} resolves to public addresses only: {listing}"
        return judged(Status.WARN, summary, facts, evidence)
    status = Status.OK if facts.in_vpc else Status.WARN
    return judged(status, f"{host} -> {listing}", facts, evidence)


# --- TCP, TLS and HTTPS -----------------------------------------------------------------------


@check(
    "network.guardduty_tcp",
    title="TCP 443 to guardduty-data",
    category="network",
    requires=("network.guardduty_dns",),
    needs=("live", "network"),
    facts=TcpFacts,
    reads=(RegionFacts, DnsFacts),
)
def guardduty_tcp(ctx: Context) -> Outcome:
    """One TCP connect per resolved address, in parallel."""
    region, dns = _endpoint(ctx), ctx.facts(DnsFacts)
    if region is None or dns is None:
        return error("network.region or network.guardduty_dns gave no facts")
    port = region.port
    addresses = [a.address for a in dns.addresses]
    limit = ctx.timeout(timeouts.TCP_CONNECT)
    results = parallel(
        lambda a: ctx.host.net.tcp_connect(a, port, timeout=limit), addresses, limit + 0.2
    )
    facts = TcpFacts(port, tuple(TcpAttempt.from_result(a, r) for a, r in zip(addresses, results)))
    evidence = [f"{a.address}:{port} {a.state}" for a in facts.attempts]
    if facts.open_addresses:
        status = Status.OK if facts.states == ("ok",) else Status.WARN
        summary = (
            f"TCP {port} open on {len(facts.open_addresses)} of {len(facts.attempts)} addresses"
        )
        return judged(status, summary, facts, evidence)
    summary = f"TCP {port} fails on every address ({', '.join(facts.states)})"
    return judged(Status.FAIL, summary, facts, evidence)


def _probe_line(p: HttpsProbeResult) -> str:
    where = f" via {p.via_proxy}" if p.via_proxy else ""
    if p.tls is None:
        return f"{p.address}{where}: {p.problem or p.tcp}"
    if p.tls != "ok":
        return f"{p.address}{where}: TLS {p.tls} ({p.tls_detail})"
    reply = f"HTTP {p.http_status} {p.error_type or ''}".rstrip()
    request_id = " (AWS request id present)" if p.request_id_present else ""
    return f"{p.address}{where}: TLS ok, issuer {p.issuer or '?'}, {reply}{request_id}"


def _via_proxy(ctx: Context, host: str, port: int, limit: float) -> Optional[HttpsProbeResult]:
    """The probe through the agent's proxy, when the endpoint goes through one."""
    proxy = ctx.facts(ProxyFacts)
    raw = agent_proxy_url(ctx) if proxy is not None and proxy.applies_to_endpoint else None
    if not raw:
        return None
    if "[REDACTED]" in raw:
        # only a redacted copy was readable (not root): probing would send wrong credentials
        return HttpsProbeResult.not_probed(
            host, redact(raw), "proxy credentials not readable; not probed"
        )
    p = ctx.host.net.https_probe(host, port, host, timeout=ctx.timeout(limit), proxy_url=raw)
    return HttpsProbeResult.from_probe(p, _amazon_issuers())


def _amazon_issuers() -> Tuple[str, ...]:
    return tuple(str(o) for o in _conf("tls")["amazon_issuer_organizations"])


def _https_summary(facts: HttpsFacts) -> Tuple[Status, str]:
    host = facts.host
    if facts.service_answered and not facts.intercepted:
        issuer = next(p.issuer_o for p in facts.probes if p.tls == "ok" and p.aws_shaped)
        return Status.OK, f"{host} answered as an AWS service (TLS issued by {issuer})"
    if facts.intercepted:
        suspect = facts.suspect
        issuer = (suspect.issuer_o if suspect else None) or "an untrusted CA"
        return Status.FAIL, f"TLS to {host} is not Amazon's: certificate issued by {issuer}"
    if not facts.probes:
        return Status.FAIL, "no TLS answer from any address"
    if facts.tls_failed:
        return Status.FAIL, f"TLS handshake with {host} failed"
    return Status.FAIL, f"something other than the AWS service answers on {host}"


@check(
    "network.guardduty_https",
    title="TLS and an AWS answer from guardduty-data",
    category="network",
    requires=("network.guardduty_tcp",),
    needs=("live", "network"),
    facts=HttpsFacts,
    reads=(RegionFacts, TcpFacts, ProxyFacts, *AGENT_FACTS),  # the agent's facts: proxy URL
)
def guardduty_https(ctx: Context) -> Outcome:
    """TLS handshake with SNI, issuer check, and one unsigned GET per open address."""
    region, tcp = _endpoint(ctx), ctx.facts(TcpFacts)
    if region is None or region.host is None or tcp is None:
        return error("network.region or network.guardduty_tcp gave no facts")
    host, port = region.host, region.port
    limit = ctx.timeout(timeouts.TLS_HANDSHAKE + timeouts.HTTPS_REQUEST)
    probes = parallel(
        lambda a: ctx.host.net.https_probe(a, port, host, timeout=limit),
        list(tcp.open_addresses),
        limit + 0.2,
    )
    issuers = _amazon_issuers()
    rows = [HttpsProbeResult.from_probe(p, issuers) for p in probes if isinstance(p, HttpsProbe)]
    proxied = _via_proxy(ctx, host, port, limit)
    agent_path = "proxy" if proxied is not None else "direct"
    facts = HttpsFacts.from_probes(host, rows, proxied, agent_path=agent_path)
    evidence = [_probe_line(r) for r in rows] + ([_probe_line(proxied)] if proxied else [])
    status, summary = _https_summary(facts)
    return judged(status, summary, facts, evidence)


# --- SSM endpoints ----------------------------------------------------------------------------


def _ssm_probe(ctx: Context, service: str, host: str, port: int, limit: float) -> SsmEndpoint:
    answer = ctx.host.net.resolve(host, timeout=limit)
    if not answer.addresses:
        return SsmEndpoint.from_probe(service, host, answer, None)
    tcp = ctx.host.net.tcp_connect(answer.addresses[0], port, timeout=limit)
    return SsmEndpoint.from_probe(service, host, answer, tcp)


def _ssm_hosts(region: str, suffix: str) -> Mapping[str, str]:
    services = _conf("ssm")["services"]
    return {k: str(v).format(region=region, dns_suffix=suffix) for k, v in services.items()}


@check(
    "network.ssm_endpoints",
    title="SSM endpoints (ssm, ssmmessages, ec2messages)",
    category="network",
    requires=("network.region",),
    needs=("live", "network"),
    facts=SsmEndpointsFacts,
    reads=(RegionFacts,),
)
def ssm_endpoints(ctx: Context) -> Outcome:
    """DNS and TCP 443 for the three Systems Manager endpoints of the Region, in parallel."""
    region = ctx.facts(RegionFacts)
    if region is None or region.region is None or region.dns_suffix is None:
        return not_applicable("Region unknown")
    hosts = _ssm_hosts(region.region, region.dns_suffix)
    port = int(_conf("ssm")["port"])
    limit = ctx.timeout(timeouts.DNS)
    keys = list(hosts)
    probes = parallel(lambda k: _ssm_probe(ctx, k, hosts[k], port, limit), keys, 2 * limit + 0.2)
    endpoints = tuple(
        p if p is not None else SsmEndpoint.timed_out(k, hosts[k]) for k, p in zip(keys, probes)
    )
    facts = SsmEndpointsFacts(region.region, endpoints)
    evidence = [f"{e.host}: {', '.join(e.addresses) or '-'} tcp {e.tcp}" for e in endpoints]
    if not facts.unreachable:
        summary = "ssm, ssmmessages and ec2messages reachable on 443"
        return judged(Status.OK, summary, facts, evidence)
    bad = ", ".join(e.service for e in facts.unreachable)
    return judged(Status.WARN, f"not reachable: {bad}", facts, evidence)


CHECKS: Tuple[Check, ...] = (
    region_and_endpoint,
    resolver_in_use,
    proxy_as_agent_sees,  # defined in checks/proxy.py; listed here to keep the report's order
    guardduty_dns,
    guardduty_tcp,
    guardduty_https,
    ssm_endpoints,
)
