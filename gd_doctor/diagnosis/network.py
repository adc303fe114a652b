"""Diagnosis rules over the network checks: DNS, TCP, TLS, who answers, authorization, proxies.

An unsigned probe refused by AWS (a 4xx with ``x-amzn-RequestId``) is the healthy answer and is
never read as a denial; a denial is only diagnosed from the agent's own log lines
(``agent.logs`` signature ``access-denied``), and only once the path itself looks healthy.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from gd_doctor.diagnosis.base import Results, Rule, RuleOutput, finding, rule


def _common(r: Results) -> Dict[str, Any]:
    cidrs = r.data("imds.network", "vpc_cidrs") or []
    return {
        "host": r.data("network.region", "host") or "guardduty-data.<region>.amazonaws.com",
        "region": r.data("network.region", "region") or "<region>",
        "vpc_id": r.data("imds.network", "vpc_id") or "<vpc-id>",
        "vpc_cidrs": ", ".join(str(c) for c in cidrs) if isinstance(cidrs, list) and cidrs
        else "<VPC CIDR>",
        "resolver": _resolver_text(r),
        "account_id": r.data("imds.identity", "account_id") or "<account-id>",
    }


def _resolver_text(r: Results) -> str:
    servers = r.data("network.resolver", "nameservers") or []
    if not isinstance(servers, list) or not servers:
        return "unknown resolver"
    return ", ".join(f"{s.get('address')} ({s.get('kind')})" for s in servers
                     if isinstance(s, dict))


@rule("network.endpoint_unresolvable")
def endpoint_unresolvable(r: Results) -> RuleOutput:
    """The guardduty-data name does not resolve at all."""
    if not r.failed("network.guardduty_dns"):
        return None
    return finding("network.endpoint-unresolvable", evidence=r.evidence("network.guardduty_dns"),
                   checks=["network.guardduty_dns", "network.resolver"],
                   problem=r.data("network.guardduty_dns", "problem") or "no answer",
                   **_common(r))


@rule("network.endpoint_public")
def endpoint_public(r: Results) -> RuleOutput:
    """The name resolves only to public addresses: no endpoint, or private DNS off (row 15)."""
    if r.data("network.guardduty_dns", "endpoint_class") != "public":
        return None
    addresses = r.data("network.guardduty_dns", "addresses") or []
    return finding("network.endpoint-public", evidence=r.evidence("network.guardduty_dns"),
                   checks=["network.guardduty_dns", "network.resolver", "imds.network"],
                   addresses=", ".join(str(a) for a in addresses)  # type: ignore[union-attr]
                   , **_common(r))


@rule("network.custom_resolver")
def custom_resolver(r: Results) -> RuleOutput:
    """A custom resolver is in use and the endpoint does not resolve to the VPC: context."""
    if r.data("network.resolver", "kind") not in ("custom", "local") or r.ok(
            "network.guardduty_dns"):
        return None
    return finding("network.custom-resolver", evidence=r.evidence("network.resolver"),
                   checks=["network.resolver"], **_common(r))


@rule("network.tcp_blocked")
def tcp_blocked(r: Results) -> RuleOutput:
    """TCP 443 fails on every resolved address (timeout: SG/NACL drop; refused: firewall)."""
    if not r.failed("network.guardduty_tcp"):
        return None
    states = r.data("network.guardduty_tcp", "states") or {}
    kinds = sorted({str(s) for s in states.values()}) if isinstance(states, dict) else []
    return finding("network.tcp-blocked", evidence=r.evidence("network.guardduty_tcp"),
                   checks=["network.guardduty_tcp", "network.guardduty_dns"],
                   states=", ".join(kinds) or "no answer", **_common(r))


def _probes(r: Results) -> List[Dict[str, Any]]:
    rows = r.data("network.guardduty_https", "probes") or []
    return [p for p in rows if isinstance(p, dict)] if isinstance(rows, list) else []


@rule("network.tls_intercepted")
def tls_intercepted(r: Results) -> RuleOutput:
    """The certificate is not Amazon's (re-signed or untrusted): TLS inspection in the path."""
    if r.data("network.guardduty_https", "intercepted") is not True:
        return None
    bad = next((p for p in _probes(r) if p.get("tls") != "ok" or p.get("amazon_issuer") is False),
               {})
    issuer = bad.get("issuer_o") or bad.get("issuer_cn") or "an untrusted CA"
    detail = bad.get("tls_detail") or f"TLS {bad.get('tls')}"
    return finding("network.tls-intercepted", evidence=r.evidence("network.guardduty_https"),
                   checks=["network.guardduty_https"], issuer=issuer, detail=detail,
                   **_common(r))


@rule("network.not_the_service")
def not_the_service(r: Results) -> RuleOutput:
    """TLS works but the reply is not an AWS refusal: a middlebox or a wrong address answers."""
    if r.data("network.guardduty_https", "not_the_service") is not True:
        return None
    if r.data("network.guardduty_https", "intercepted") is True:
        return None  # the interception finding already explains it
    probe = next((p for p in _probes(r) if p.get("tls") == "ok"), {})
    server = f", Server: {probe['server']}" if probe.get("server") else ""
    return finding("network.not-the-service", evidence=r.evidence("network.guardduty_https"),
                   checks=["network.guardduty_https", "network.guardduty_dns"],
                   status=probe.get("http_status") or "none", server=server, **_common(r))


def _access_denied_signature(r: Results) -> Dict[str, Any]:
    sigs = r.data("agent.logs", "signatures") or []
    if not isinstance(sigs, list):
        return {}
    for sig in sigs:
        if isinstance(sig, dict) and sig.get("id") == "access-denied":
            return sig
    return {}


@rule("network.access_denied")
def access_denied(r: Results) -> RuleOutput:
    """The agent logs AccessDenied while the endpoint itself answers: SCP or endpoint policy."""
    sig = _access_denied_signature(r)
    if not sig:
        return None
    if r.ran("network.guardduty_https") and not r.data("network.guardduty_https",
                                                        "service_answered"):
        return None  # the path is broken; the network findings come first
    evidence = [str(sig.get("last_line") or ""), *r.evidence("network.guardduty_https")]
    return finding("network.access-denied", evidence=evidence,
                   checks=["agent.logs", "network.guardduty_https"],
                   count=sig.get("count") or 1, **_common(r))


@rule("network.region_mismatch")
def region_mismatch(r: Results) -> RuleOutput:
    """The agent's Region (from its own facts) differs from the instance's."""
    agent = r.data("network.region", "agent_region")
    instance = r.data("network.region", "instance_region")
    if not agent or not instance or agent == instance:
        return None
    return finding("network.region-mismatch", evidence=r.evidence("network.region"),
                   checks=["network.region", "imds.identity"], agent_region=agent,
                   instance_region=instance)


@rule("network.proxy")
def proxy_settings(r: Results) -> RuleOutput:
    """A proxy in the agent's environment without no_proxy for IMDS, or a malformed one."""
    source = r.data("network.proxy", "agent_source") or "the agent's environment"
    if r.data("network.proxy", "malformed"):
        return finding("network.proxy-malformed", evidence=r.evidence("network.proxy"),
                       checks=["network.proxy"], detail=r.data("network.proxy", "malformed"),
                       source=source)
    if r.data("network.proxy", "applies_to_imds") is not True:
        return None
    return finding("network.proxy-without-imds-exemption", evidence=r.evidence("network.proxy"),
                   checks=["network.proxy"], proxy=r.data("network.proxy", "proxy"),
                   source=source, **_common(r))


RULES: Tuple[Rule, ...] = (
    endpoint_unresolvable,
    endpoint_public,
    custom_resolver,
    tcp_blocked,
    tls_intercepted,
    not_the_service,
    access_denied,
    region_mismatch,
    proxy_settings,
)
