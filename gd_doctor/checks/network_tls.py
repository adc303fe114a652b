"""Checks of the network domain, part 3: TLS and an AWS answer from guardduty-data.

One TLS handshake (SNI, verification, issuer) and one unsigned HTTPS request per open address:
an AWS refusal (4xx with ``x-amzn-RequestId``) is the healthy answer, never a denial; through
the agent's proxy too when it has one (``network.proxy``, in :mod:`gd_doctor.checks.proxy`).
"""

from __future__ import annotations

from typing import Optional, Tuple

from gd_doctor.checks.base import Context, check, error, judged
from gd_doctor.checks.network_names import conf, endpoint_of, parallel
from gd_doctor.checks.proxy import AGENT_FACTS, agent_proxy_url
from gd_doctor.facts.network import HttpsFacts, HttpsProbeResult, ProxyFacts, RegionFacts, TcpFacts
from gd_doctor.host import timeouts
from gd_doctor.host.net import HttpsProbe
from gd_doctor.model import Outcome, Status
from gd_doctor.redact import redact


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
    return tuple(str(o) for o in conf("tls")["amazon_issuer_organizations"])


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
    region, tcp = endpoint_of(ctx), ctx.facts(TcpFacts)
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
