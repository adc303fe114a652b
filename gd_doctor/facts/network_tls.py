"""Facts of the network checks, part 2: TLS and HTTPS to guardduty-data, and the agent's proxy.

Built from the host layer's :class:`~gd_doctor.host.net.HttpsProbe`; whether an issuer is
Amazon's is judged by the check (knowledge base) and handed in. No field holds a proxy's
credentials: proxies appear as :attr:`ProxyUrl.display` only.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.host.net import HttpsProbe
from gd_doctor.model import Facts
from gd_doctor.parsers.aws_error import parse_aws_reply
from gd_doctor.parsers.proxy_env import ProxySettings, ProxyUrlError, parse_proxy_url

# --- network.guardduty_https ------------------------------------------------------------------


@dataclass(frozen=True)
class HttpsProbeResult:
    """TLS and one unsigned GET to one address (or through the agent's proxy)."""

    address: str
    via_proxy: Optional[str]  # the proxy's display form, never its credentials
    tcp: Optional[str]
    tls: Optional[str] = None  # ok | untrusted | name-mismatch | expired | failed | None
    proxy_status: Optional[int] = None
    tls_detail: str = ""
    tls_version: Optional[str] = None
    subject_cn: Optional[str] = None
    issuer_o: Optional[str] = None
    issuer_cn: Optional[str] = None
    not_after: Optional[str] = None
    amazon_issuer: Optional[bool] = None  # None when no certificate was verified
    http_status: Optional[int] = None
    aws_shaped: bool = False  # a 4xx with an AWS request id: the service refused the probe
    request_id_present: bool = False
    error_type: Optional[str] = None
    server: Optional[str] = None
    problem: Optional[str] = None

    @classmethod
    def from_probe(cls, p: HttpsProbe, amazon_issuers: Sequence[str]) -> HttpsProbeResult:
        reply = parse_aws_reply(p.http_status, p.headers, p.body) if p.http_status else None
        return cls(
            address=p.address,
            via_proxy=p.via_proxy,
            tcp=p.tcp,
            tls=p.tls,
            proxy_status=p.proxy_status,
            tls_detail=p.tls_detail,
            tls_version=p.tls_version,
            subject_cn=p.cert.get("subject_cn"),
            issuer_o=p.cert.get("issuer_o"),
            issuer_cn=p.cert.get("issuer_cn"),
            not_after=p.cert.get("not_after"),
            amazon_issuer=p.cert.get("issuer_o", "") in amazon_issuers if p.tls == "ok" else None,
            http_status=p.http_status,
            aws_shaped=reply.aws_shaped if reply else False,
            request_id_present=reply.request_id_present if reply else False,
            error_type=reply.error_type if reply else None,
            server=reply.server if reply else None,
            problem=p.problem,
        )

    @classmethod
    def not_probed(cls, address: str, via_proxy: str, problem: str) -> HttpsProbeResult:
        return cls(address=address, via_proxy=via_proxy, tcp=None, problem=problem)

    @property
    def issuer(self) -> Optional[str]:
        return " / ".join(x for x in (self.issuer_o, self.issuer_cn) if x) or None


UNTRUSTED = ("untrusted", "name-mismatch", "expired")


@dataclass(frozen=True)
class HttpsFacts(Facts):
    """network.guardduty_https: who answers on the endpoint, per address and via the proxy.

    ``service_answered``: some address answered as an AWS service (the unsigned probe refused);
    ``intercepted``: a certificate that is not Amazon's (re-signed, or untrusted with no good
    answer); ``tls_failed``: every probe failed before TLS completed; ``not_the_service``: TLS
    works but no answer is AWS-shaped.
    """

    host: str
    probes: Tuple[HttpsProbeResult, ...]
    via_proxy: Optional[HttpsProbeResult]
    agent_path: str  # proxy | direct
    service_answered: bool
    intercepted: bool
    tls_failed: bool
    not_the_service: bool

    @classmethod
    def from_probes(
        cls,
        host: str,
        probes: Sequence[HttpsProbeResult],
        via_proxy: Optional[HttpsProbeResult],
        *,
        agent_path: str,
    ) -> HttpsFacts:
        good = [p for p in probes if p.tls == "ok" and p.aws_shaped]
        resigned = [p for p in probes if p.tls == "ok" and p.amazon_issuer is False]
        untrusted = [p for p in probes if p.tls in UNTRUSTED]
        return cls(
            host=host,
            probes=tuple(probes),
            via_proxy=via_proxy,
            agent_path=agent_path,
            service_answered=bool(good),
            intercepted=bool(resigned) or bool(untrusted and not good),
            tls_failed=bool(probes) and all(p.tls != "ok" for p in probes),
            not_the_service=not good and any(p.tls == "ok" and not p.aws_shaped for p in probes),
        )

    @property
    def suspect(self) -> Optional[HttpsProbeResult]:
        """The probe that shows the interception: a re-signed certificate first, then one that
        did not verify, then any failed handshake."""
        resigned = [p for p in self.probes if p.tls == "ok" and p.amazon_issuer is False]
        untrusted = [p for p in self.probes if p.tls in UNTRUSTED]
        failed = [p for p in self.probes if p.tls != "ok"]
        return next(iter(resigned + untrusted + failed), None)


# --- network.proxy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxySource:
    """One place that sets a proxy or no_proxy for the agent, with the proxy's display form."""

    source: str
    variable: Optional[str]
    no_proxy: Tuple[str, ...]
    proxy: Optional[str] = None
    malformed: Optional[str] = None  # why the value is not a usable proxy URL

    @classmethod
    def from_settings(cls, source: str, s: ProxySettings) -> ProxySource:
        proxy, malformed = _display(s.https_proxy)
        return cls(source, s.https_variable, s.no_proxy, proxy, malformed)


def _display(raw: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """(display form, None) of a proxy value, or (None, why it is malformed)."""
    if not raw:
        return None, None
    try:
        return parse_proxy_url(raw).display, None
    except ProxyUrlError as exc:
        return None, str(exc)


@dataclass(frozen=True)
class ProxyFacts(Facts):
    """network.proxy: the proxy the agent's process uses and where it was set.

    ``agent_source`` names the environment the agent has (its /proc environ, else its unit's
    settings merged); ``applies_to_imds``/``applies_to_endpoint``: requests to 169.254.169.254 /
    the endpoint would go through the proxy (no no_proxy entry matches).
    """

    sources: Tuple[ProxySource, ...]
    agent_source: str
    variable: Optional[str]
    proxy: Optional[str]
    malformed: Optional[str]
    applies_to_imds: bool
    applies_to_endpoint: bool
    no_proxy: Tuple[str, ...]

    @classmethod
    def from_settings(
        cls,
        sources: Sequence[ProxySource],
        agent_source: str,
        agent: ProxySettings,
        *,
        imds_bypassed: bool,
        endpoint_bypassed: bool,
    ) -> ProxyFacts:
        proxy, malformed = _display(agent.https_proxy)
        return cls(
            sources=tuple(sources),
            agent_source=agent_source,
            variable=agent.https_variable,
            proxy=proxy,
            malformed=malformed,
            applies_to_imds=bool(agent.https_proxy) and not imds_bypassed,
            applies_to_endpoint=proxy is not None and not endpoint_bypassed,
            no_proxy=agent.no_proxy,
        )
