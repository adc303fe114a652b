"""Checks of the network domain, part 2: the resolver, DNS and TCP 443.

* ``/etc/resolv.conf`` (and ``/run/systemd/resolve/resolv.conf`` behind the systemd-resolved
  stub): which resolver answers;
* DNS of the guardduty-data names through the system resolver, each address classified against
  the VPC CIDR blocks; one TCP connect to 443 per address;
* DNS and TCP 443 for the ssm, ssmmessages and ec2messages endpoints.

Probes of several addresses run in parallel daemon threads, each under its own timeout. When the
command line names the Region (or the endpoint), the probes start with the run (``early=``),
alongside IMDS, and the checks read their answers when their turn comes.
"""

from __future__ import annotations

import ipaddress
from typing import AbstractSet, List, Mapping, Optional, Sequence, Tuple, Union

from gd_doctor.checks.base import Context, check, error, judged, not_applicable
from gd_doctor.checks.network_names import conf, endpoint_of, known_endpoint, parallel
from gd_doctor.facts.imds import ImdsNetworkFacts
from gd_doctor.facts.network import (
    DnsFacts,
    NameAnswer,
    Nameserver,
    RegionFacts,
    ResolverFacts,
    SsmEndpoint,
    SsmEndpointsFacts,
    TcpAttempt,
    TcpFacts,
)
from gd_doctor.host import Host, timeouts
from gd_doctor.host.early import EarlyNetwork
from gd_doctor.host.parallel import start_warm_up
from gd_doctor.model import Outcome, Status
from gd_doctor.parsers.resolv_conf import parse_resolv_conf

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
    known = conf("amazon_resolvers")
    if address in known["addresses"]:
        return "amazon"
    if address in _vpc_plus_two(vpc_cidrs):
        return "vpc+2"
    if address in known["systemd_resolved_stubs"]:
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
        upstream_file = str(conf("amazon_resolvers")["systemd_resolved_upstream_file"])
        up = ctx.host.fs.read_text(upstream_file, max_bytes=64 * 1024)
        if up is not None:
            behind = _servers(up, cidrs, via="systemd-resolved")
            servers.extend(behind)
            evidence.extend(f"{upstream_file}: nameserver {s.address}" for s in behind)
    search = parse_resolv_conf(read.text).search
    facts = ResolverFacts.from_nameservers(servers, search, cidrs)
    status, summary = _resolver_summary(facts)
    return judged(status, summary, facts, evidence)


# --- Probes started with the run ---------------------------------------------------------------


def _early_net(host: Host) -> Optional[EarlyNetwork]:
    return host.net if isinstance(host.net, EarlyNetwork) else None


def start_endpoint_probes(host: Host, will_run: AbstractSet[str], budget_s: float) -> None:
    """DNS of the guardduty-data names, TCP 443 and HTTPS per address, started at once when
    the command line names the endpoint (the checks read the answers in their turn)."""
    if "network.guardduty_https" in will_run:  # the CA store loads, Region known or not
        start_warm_up(host.net)
    net, facts = _early_net(host), known_endpoint(host.settings)
    if net is None or facts is None or facts.host is None:
        return
    dns = min(timeouts.DNS, budget_s)
    tcp = min(timeouts.TCP_CONNECT, budget_s) if "network.guardduty_tcp" in will_run else None
    https = timeouts.TLS_HANDSHAKE + timeouts.HTTPS_REQUEST
    wanted = "network.guardduty_https" in will_run
    net.start_chain(
        [facts.host],
        facts.port,
        dns_timeout=dns,
        tcp_timeout=tcp,
        https_timeout=min(https, budget_s) if wanted else None,
    )
    if facts.v2_host:
        net.start_chain([facts.v2_host], facts.port, dns_timeout=dns)


def start_ssm_probes(host: Host, will_run: AbstractSet[str], budget_s: float) -> None:
    """DNS and TCP 443 of the three SSM endpoints, started at once when --region is given."""
    net, facts = _early_net(host), known_endpoint(host.settings)
    if net is None or facts is None or facts.region is None or facts.dns_suffix is None:
        return
    limit = min(timeouts.DNS, budget_s)
    hosts = _ssm_hosts(facts.region, facts.dns_suffix)
    port = int(conf("ssm")["port"])
    net.start_chain(
        list(hosts.values()), port, dns_timeout=limit, tcp_timeout=limit, addresses_per_name=1
    )


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
    early=start_endpoint_probes,
)
def guardduty_dns(ctx: Context) -> Outcome:
    """Resolves the endpoint (and the -v2 name) through the system resolver, in parallel."""
    region = endpoint_of(ctx)
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


# --- TCP -----------------------------------------------------------------------------------


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
    region, dns = endpoint_of(ctx), ctx.facts(DnsFacts)
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


# --- SSM endpoints ----------------------------------------------------------------------------


def _ssm_probe(ctx: Context, service: str, host: str, port: int, limit: float) -> SsmEndpoint:
    answer = ctx.host.net.resolve(host, timeout=limit)
    if not answer.addresses:
        return SsmEndpoint.from_probe(service, host, answer, None)
    tcp = ctx.host.net.tcp_connect(answer.addresses[0], port, timeout=limit)
    return SsmEndpoint.from_probe(service, host, answer, tcp)


def _ssm_hosts(region: str, suffix: str) -> Mapping[str, str]:
    services = conf("ssm")["services"]
    return {k: str(v).format(region=region, dns_suffix=suffix) for k, v in services.items()}


@check(
    "network.ssm_endpoints",
    title="SSM endpoints (ssm, ssmmessages, ec2messages)",
    category="network",
    requires=("network.region",),
    needs=("live", "network"),
    facts=SsmEndpointsFacts,
    reads=(RegionFacts,),
    early=start_ssm_probes,
)
def ssm_endpoints(ctx: Context) -> Outcome:
    """DNS and TCP 443 for the three Systems Manager endpoints of the Region, in parallel."""
    region = ctx.facts(RegionFacts)
    if region is None or region.region is None or region.dns_suffix is None:
        return not_applicable("Region unknown")
    hosts = _ssm_hosts(region.region, region.dns_suffix)
    port = int(conf("ssm")["port"])
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
