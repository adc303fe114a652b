"""Diagnosis rules over the network checks: DNS, TCP, TLS, who answers, authorization, proxies.

An unsigned probe refused by AWS (a 4xx with ``x-amzn-RequestId``) is the healthy answer and is
never read as a denial; a denial is only diagnosed from the agent's own log lines
(``agent.logs`` signature ``access-denied``), and only once the path itself looks healthy.

Every failing network check is explained by one of these findings: a bad Region or endpoint URL
(``network.region``), an unresolvable name, blocked TCP, intercepted or failed TLS, or something
other than the service answering (``network.guardduty_https``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Dict, List, Optional, Sequence, Tuple

from gd_doctor.diagnosis.base import Rule, RuleOutput, finding, rule
from gd_doctor.facts.agent_logs import JournalFacts, LogFacts, SignatureHit
from gd_doctor.facts.imds import ImdsIdentityFacts, ImdsNetworkFacts
from gd_doctor.facts.network import (
    DnsFacts,
    HttpsFacts,
    ProxyFacts,
    RegionFacts,
    ResolverFacts,
    TcpFacts,
)
from gd_doctor.frozen import dataclass
from gd_doctor.knowledge import load
from gd_doctor.patterns import LazyPattern, lazy

# What the findings' texts name besides their own facts: the endpoint, the VPC, the resolver.
CONTEXT = (RegionFacts, ResolverFacts, ImdsNetworkFacts, ImdsIdentityFacts)


def _common(
    region: Optional[RegionFacts],
    resolver: Optional[ResolverFacts],
    vpc: Optional[ImdsNetworkFacts],
    identity: Optional[ImdsIdentityFacts],
) -> Dict[str, str]:
    """Placeholders every network finding may use; unknown values stay readable placeholders."""
    return {
        "host": (region.host if region else None) or "guardduty-data.<region>.amazonaws.com",
        "region": (region.region if region else None) or "<region>",
        "vpc_id": (vpc.vpc_id if vpc else None) or "<vpc-id>",
        "vpc_cidrs": ", ".join(vpc.vpc_cidrs) if vpc and vpc.vpc_cidrs else "<VPC CIDR>",
        "resolver": _resolver_text(resolver),
        "account_id": (identity.account_id if identity else None) or "<account-id>",
    }


def _resolver_text(resolver: Optional[ResolverFacts]) -> str:
    if resolver is None or not resolver.nameservers:
        return "unknown resolver"
    return ", ".join(f"{s.address} ({s.kind})" for s in resolver.nameservers)


@rule("network.endpoint_name_invalid", reads=(RegionFacts,))
def endpoint_name_invalid(region: Optional[RegionFacts]) -> RuleOutput:
    """The Region is not a Region name, or --endpoint-url is unusable: nothing can be probed."""
    if region is None or region.problem is None:
        return None
    return finding(
        "network.endpoint-name-invalid",
        checks=(RegionFacts,),
        evidence_from=(RegionFacts,),
        problem=region.problem,
        instance_region=region.instance_region or "<region>",
    )


@rule("network.endpoint_unresolvable", reads=(DnsFacts, *CONTEXT))
def endpoint_unresolvable(
    dns: Optional[DnsFacts],
    region: Optional[RegionFacts],
    resolver: Optional[ResolverFacts],
    vpc: Optional[ImdsNetworkFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """The guardduty-data name does not resolve at all."""
    if dns is None or dns.endpoint_class != "unresolved":
        return None
    return finding(
        "network.endpoint-unresolvable",
        checks=(DnsFacts, ResolverFacts),
        evidence_from=(DnsFacts,),
        problem=dns.problem or "no answer",
        **_common(region, resolver, vpc, identity),
    )


@rule("network.endpoint_public", reads=(DnsFacts, *CONTEXT))
def endpoint_public(
    dns: Optional[DnsFacts],
    region: Optional[RegionFacts],
    resolver: Optional[ResolverFacts],
    vpc: Optional[ImdsNetworkFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """The name resolves only to public addresses: no endpoint, or private DNS off (row 15)."""
    if dns is None or dns.endpoint_class != "public":
        return None
    return finding(
        "network.endpoint-public",
        checks=(DnsFacts, ResolverFacts, ImdsNetworkFacts),
        evidence_from=(DnsFacts,),
        addresses=", ".join(a.address for a in dns.addresses),
        **_common(region, resolver, vpc, identity),
    )


@rule("network.custom_resolver", reads=(DnsFacts, *CONTEXT))
def custom_resolver(
    dns: Optional[DnsFacts],
    region: Optional[RegionFacts],
    resolver: Optional[ResolverFacts],
    vpc: Optional[ImdsNetworkFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """A custom resolver is in use and the endpoint does not resolve to the VPC: context."""
    if resolver is None or resolver.kind not in ("custom", "local"):
        return None
    if dns is not None and dns.in_vpc:
        return None
    return finding(
        "network.custom-resolver",
        checks=(ResolverFacts,),
        evidence_from=(ResolverFacts,),
        **_common(region, resolver, vpc, identity),
    )


def _tcp_failure(states: Sequence[str]) -> str:
    """One kind of failure on every address picks its own first step; else ``mixed``."""
    kinds = set(states) or {"timeout"}
    if len(kinds) == 1 and next(iter(kinds)) in ("timeout", "refused", "unreachable"):
        return next(iter(kinds))
    return "mixed"


@rule("network.tcp_blocked", reads=(TcpFacts, *CONTEXT))
def tcp_blocked(
    tcp: Optional[TcpFacts],
    region: Optional[RegionFacts],
    resolver: Optional[ResolverFacts],
    vpc: Optional[ImdsNetworkFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """TCP 443 fails on every resolved address (timeout: SG/NACL drop; refused: firewall)."""
    if tcp is None or tcp.open_addresses:
        return None
    return finding(
        "network.tcp-blocked",
        checks=(TcpFacts, DnsFacts),
        evidence_from=(TcpFacts,),
        states=", ".join(tcp.states) or "no answer",
        failure=_tcp_failure(tcp.states),
        **_common(region, resolver, vpc, identity),
    )


@rule("network.tls_intercepted", reads=(HttpsFacts, *CONTEXT))
def tls_intercepted(
    https: Optional[HttpsFacts],
    region: Optional[RegionFacts],
    resolver: Optional[ResolverFacts],
    vpc: Optional[ImdsNetworkFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """The certificate is not Amazon's (re-signed or untrusted): TLS inspection in the path."""
    if https is None or not https.intercepted:
        return None
    bad = https.suspect
    issuer = (bad.issuer_o or bad.issuer_cn if bad else None) or "an untrusted CA"
    detail = (bad.tls_detail or f"TLS {bad.tls}") if bad else "TLS not Amazon's"
    return finding(
        "network.tls-intercepted",
        checks=(HttpsFacts,),
        evidence_from=(HttpsFacts,),
        issuer=issuer,
        detail=detail,
        **_common(region, resolver, vpc, identity),
    )


@rule("network.tls_failed", reads=(HttpsFacts, *CONTEXT))
def tls_failed(
    https: Optional[HttpsFacts],
    region: Optional[RegionFacts],
    resolver: Optional[ResolverFacts],
    vpc: Optional[ImdsNetworkFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """TCP connects but no TLS session completes (reset, timeout, no common protocol), and no
    certificate says interception."""
    if https is None or https.intercepted or https.service_answered or https.not_the_service:
        return None
    if https.probes and not https.tls_failed:
        return None
    first = https.probes[0] if https.probes else None
    detail = (first.tls_detail or first.problem if first else None) or "no TLS answer in time"
    return finding(
        "network.tls-failed",
        checks=(HttpsFacts,),
        evidence_from=(HttpsFacts,),
        detail=detail,
        **_common(region, resolver, vpc, identity),
    )


@rule("network.not_the_service", reads=(HttpsFacts, *CONTEXT))
def not_the_service(
    https: Optional[HttpsFacts],
    region: Optional[RegionFacts],
    resolver: Optional[ResolverFacts],
    vpc: Optional[ImdsNetworkFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """TLS works but the reply is not an AWS refusal: a middlebox or a wrong address answers."""
    if https is None or not https.not_the_service or https.intercepted:
        return None  # interception, when present, is the finding that explains it
    probe = next((p for p in https.probes if p.tls == "ok"), None)
    server = f", Server: {probe.server}" if probe and probe.server else ""
    return finding(
        "network.not-the-service",
        checks=(HttpsFacts, DnsFacts),
        evidence_from=(HttpsFacts,),
        status=(probe.http_status if probe else None) or "none",
        server=server,
        **_common(region, resolver, vpc, identity),
    )


def _access_denied_signature(
    logs: Optional[LogFacts], journal: Optional[JournalFacts]
) -> Tuple[Optional[SignatureHit], Tuple[type, ...]]:
    """The agent's AccessDenied hits, from its log files and its journal (the same failure
    wherever it is logged) as one, and the checks that saw them."""
    hits: List[Tuple[SignatureHit, type]] = []
    for facts, source in ((logs, LogFacts), (journal, JournalFacts)):
        if facts is not None:
            sig = next((s for s in facts.signatures if s.id == "access-denied"), None)
            if sig is not None:
                hits.append((sig, source))
    if not hits:
        return None, ()
    merged = hits[0][0]
    for sig, _ in hits[1:]:
        merged = merged.plus(sig)
    return merged, tuple(source for _, source in hits)


@dataclass(frozen=True)
class DenialKind:
    """A policy type AWS's access denied message names (log_signatures.json denial_kinds)."""

    id: str
    pattern: LazyPattern[str]
    finding: str


@cache
def denial_kinds() -> Tuple[DenialKind, ...]:
    raw = load("log_signatures.json")["denial_kinds"]["kinds"]
    return tuple(DenialKind(k["id"], lazy(k["pattern"], re.IGNORECASE), k["finding"]) for k in raw)


_PRINCIPAL = lazy(r"\bUser: (arn:[\w-]+:(?:iam|sts)::\d{12}:[\w+=,.@/:-]{1,300})")


def denial_kind(lines: Sequence[str]) -> Tuple[Optional[DenialKind], Optional[str], str]:
    """The kind of the latest line naming one (None: generic), its principal ARN when AWS's
    message names one, and the line that decided."""
    for line in reversed(lines):
        for kind in denial_kinds():
            if kind.pattern.search(line):
                found = _PRINCIPAL.search(line)
                return kind, (found.group(1) if found else None), line
    return None, None, lines[-1] if lines else ""


@rule("network.access_denied", reads=(HttpsFacts, LogFacts, JournalFacts, *CONTEXT))
def access_denied(
    https: Optional[HttpsFacts],
    logs: Optional[LogFacts],
    journal: Optional[JournalFacts],
    region: Optional[RegionFacts],
    resolver: Optional[ResolverFacts],
    vpc: Optional[ImdsNetworkFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """The agent logs AccessDenied while the endpoint itself answers: the policy type AWS's
    message names (SCP, permissions boundary, identity-based or VPC endpoint policy) picks the
    finding; a message naming none gets the generic one."""
    sig, source = _access_denied_signature(logs, journal)
    if sig is None:
        return None
    if https is not None and not https.service_answered:
        return None  # the path is broken; the network findings come first
    kind, principal, line = denial_kind(sig.lines)
    return finding(
        kind.finding if kind else "network.access-denied",
        evidence=[line],  # the latest line, or the latest naming a policy type
        checks=(*source, HttpsFacts),
        evidence_from=(HttpsFacts,),
        count=sig.count or 1,
        principal=principal or "the principal AWS's message names",
        **_common(region, resolver, vpc, identity),
    )


@rule("network.region_mismatch", reads=(RegionFacts,))
def region_mismatch(region: Optional[RegionFacts]) -> RuleOutput:
    """The agent's Region (from its own log lines) differs from the instance's."""
    if region is None or not region.agent_region or not region.instance_region:
        return None
    if region.agent_region == region.instance_region:
        return None
    return finding(
        "network.region-mismatch",
        checks=(RegionFacts, ImdsIdentityFacts),
        evidence_from=(RegionFacts,),
        agent_region=region.agent_region,
        instance_region=region.instance_region,
    )


@rule("network.proxy", reads=(ProxyFacts, *CONTEXT))
def proxy_settings(
    proxy: Optional[ProxyFacts],
    region: Optional[RegionFacts],
    resolver: Optional[ResolverFacts],
    vpc: Optional[ImdsNetworkFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """A proxy in the agent's environment without no_proxy for IMDS, or a malformed one."""
    if proxy is None:
        return None
    source = proxy.agent_source or "the agent's environment"
    if proxy.malformed:
        return finding(
            "network.proxy-malformed",
            checks=(ProxyFacts,),
            evidence_from=(ProxyFacts,),
            detail=proxy.malformed,
            source=source,
        )
    if not proxy.applies_to_imds:
        return None
    return finding(
        "network.proxy-without-imds-exemption",
        checks=(ProxyFacts,),
        evidence_from=(ProxyFacts,),
        proxy=proxy.proxy,
        source=source,
        **_common(region, resolver, vpc, identity),
    )


RULES: Tuple[Rule, ...] = (
    endpoint_name_invalid,
    endpoint_unresolvable,
    endpoint_public,
    custom_resolver,
    tcp_blocked,
    tls_intercepted,
    tls_failed,
    not_the_service,
    access_denied,
    region_mismatch,
    proxy_settings,
)
