"""Facts of the network checks: the path from the instance to GuardDuty's data endpoint.

One type per check; per-address results (DNS answers, TCP connects, HTTPS probes) and per-name
or per-service results are tuples of small frozen dataclasses built from the host layer's
:class:`~gd_doctor.host.net.DnsAnswer`, :class:`~gd_doctor.host.net.TcpResult` and
:class:`~gd_doctor.host.net.HttpsProbe`. Judgements that need the knowledge base (is this
nameserver Amazon's, is this issuer Amazon's) are made by the checks and handed in.

No field holds a proxy's credentials: proxies appear as :attr:`ProxyUrl.display` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from gd_doctor.host.net import DnsAnswer, HttpsProbe, TcpResult
from gd_doctor.model import Facts
from gd_doctor.parsers.aws_error import parse_aws_reply
from gd_doctor.parsers.proxy_env import ProxySettings, ProxyUrlError, parse_proxy_url

__all__ = [
    "DnsFacts",
    "HttpsFacts",
    "HttpsProbeResult",
    "NameAnswer",
    "Nameserver",
    "ProxyFacts",
    "ProxySource",
    "RegionFacts",
    "ResolvedAddress",
    "ResolverFacts",
    "SsmEndpoint",
    "SsmEndpointsFacts",
    "TcpAttempt",
    "TcpFacts",
]

Classify = Callable[[str], str]


# --- network.region ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionFacts(Facts):
    """network.region: the Region in use, where it came from, and the endpoint names built.

    ``problem`` says why no endpoint could be named (a bad Region or --endpoint-url); ``region``
    keeps the name the report header reads.
    """

    region: Optional[str]
    region_source: Optional[str]  # --region | instance identity document | agent
    instance_region: Optional[str]
    agent_region: Optional[str]
    partition: Optional[str] = None
    dns_suffix: Optional[str] = None
    host: Optional[str] = None
    v2_host: Optional[str] = None
    fips_host: Optional[str] = None
    port: int = 443
    endpoint_url: Optional[str] = None
    problem: Optional[str] = None


# --- network.resolver -------------------------------------------------------------------------


@dataclass(frozen=True)
class Nameserver:
    """One nameserver and what it is (amazon, vpc+2, systemd-resolved, loopback, custom, ...)."""

    address: str
    kind: str
    via: Optional[str] = None  # "systemd-resolved": an upstream of the local stub


@dataclass(frozen=True)
class ResolverFacts(Facts):
    """network.resolver: which resolver answers for the system resolver.

    ``kind``: amazon | systemd-resolved (upstreams not readable) | local | unknown (VPC CIDR
    unknown) | custom | none (no nameserver line) | unreadable (``problem`` says why).
    """

    kind: str
    nameservers: Tuple[Nameserver, ...] = ()
    search: Tuple[str, ...] = ()
    vpc_cidrs: Tuple[str, ...] = ()
    problem: Optional[str] = None

    @property
    def upstream(self) -> Tuple[Nameserver, ...]:
        """The servers that really answer (the systemd-resolved stub itself left out)."""
        return tuple(s for s in self.nameservers if s.kind != "systemd-resolved")

    @classmethod
    def from_nameservers(
        cls,
        servers: Sequence[Nameserver],
        search: Sequence[str],
        vpc_cidrs: Sequence[str],
    ) -> ResolverFacts:
        """The overall kind, from the classified servers of resolv.conf (and the stub's)."""
        kinds = {s.kind for s in servers if s.kind != "systemd-resolved"}
        if not servers:
            kind = "none"
        elif kinds and kinds <= {"amazon", "vpc+2"}:
            kind = "amazon"
        elif not kinds:
            kind = "systemd-resolved"
        elif kinds == {"loopback"}:
            kind = "local"
        elif "custom" not in kinds and "loopback" not in kinds:
            kind = "unknown"
        else:
            kind = "custom"
        return cls(kind, tuple(servers), tuple(search), tuple(vpc_cidrs))


# --- network.guardduty_dns --------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedAddress:
    """One address of a name and its class: vpc, private, link-local, loopback, public, invalid."""

    address: str
    kind: str


@dataclass(frozen=True)
class NameAnswer:
    """What the system resolver said about one name."""

    name: str
    addresses: Tuple[ResolvedAddress, ...]
    problem: Optional[str]

    @classmethod
    def from_answer(cls, name: str, answer: Optional[DnsAnswer], classify: Classify) -> NameAnswer:
        """``answer`` None: the lookup did not finish in time."""
        if answer is None:
            return cls(name, (), "timeout")
        found = tuple(ResolvedAddress(a, classify(a)) for a in answer.addresses[:32])
        return cls(name, found, answer.problem)


def endpoint_class(addresses: Sequence[ResolvedAddress]) -> str:
    """unresolved | vpc | private | public | mixed, over the classes of a name's addresses.

    >>> endpoint_class([ResolvedAddress("10.0.0.5", "vpc")])
    'vpc'
    >>> endpoint_class([ResolvedAddress("52.94.1.1", "public"), ResolvedAddress("10.0.0.5", "vpc")])
    'mixed'
    """
    kinds = {a.kind for a in addresses}
    if not kinds:
        return "unresolved"
    if kinds <= {"vpc"}:
        return "vpc"
    if kinds <= {"vpc", "private", "loopback", "link-local"}:
        return "private"
    if kinds <= {"public"}:
        return "public"
    return "mixed"


@dataclass(frozen=True)
class DnsFacts(Facts):
    """network.guardduty_dns: the endpoint's addresses, classified against the VPC's CIDRs.

    ``endpoint_class``: unresolved | vpc | private | public | mixed | override (--endpoint-url:
    the user chose the address, no VPC judgement). ``names`` holds every name asked (the
    endpoint and the -v2 name).
    """

    host: str
    addresses: Tuple[ResolvedAddress, ...]
    endpoint_class: str
    problem: Optional[str]
    names: Tuple[NameAnswer, ...]
    vpc_cidrs: Tuple[str, ...]

    @classmethod
    def from_answers(
        cls, host: str, names: Sequence[NameAnswer], vpc_cidrs: Sequence[str], *, override: bool
    ) -> DnsFacts:
        main = next((n for n in names if n.name == host), NameAnswer(host, (), "not asked"))
        overall = endpoint_class(main.addresses)
        if override and overall in ("mixed", "public"):
            overall = "override"
        return cls(host, main.addresses, overall, main.problem, tuple(names), tuple(vpc_cidrs))

    @property
    def in_vpc(self) -> bool:
        """The endpoint resolves inside the VPC (or privately, where the VPC is not known)."""
        return self.endpoint_class == "vpc" or (
            self.endpoint_class == "private" and not self.vpc_cidrs
        )


# --- network.guardduty_tcp --------------------------------------------------------------------


@dataclass(frozen=True)
class TcpAttempt:
    """One TCP connect: ``state`` ok, refused, timeout, unreachable or error."""

    address: str
    state: str

    @classmethod
    def from_result(cls, address: str, result: Optional[TcpResult]) -> TcpAttempt:
        """``result`` None: the connect did not finish in time."""
        return cls(address, result.state if result is not None else "timeout")


@dataclass(frozen=True)
class TcpFacts(Facts):
    """network.guardduty_tcp: one connect per resolved address."""

    port: int
    attempts: Tuple[TcpAttempt, ...]

    @property
    def open_addresses(self) -> Tuple[str, ...]:
        return tuple(a.address for a in self.attempts if a.state == "ok")

    @property
    def states(self) -> Tuple[str, ...]:
        """The distinct states, sorted."""
        return tuple(sorted({a.state for a in self.attempts}))


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


# --- network.ssm_endpoints --------------------------------------------------------------------


@dataclass(frozen=True)
class SsmEndpoint:
    """DNS and TCP 443 of one Systems Manager endpoint (``tcp``: ok, ..., dns-failed)."""

    service: str  # ssm | ssmmessages | ec2messages
    host: str
    addresses: Tuple[str, ...]
    tcp: str
    problem: Optional[str] = None

    @classmethod
    def from_probe(
        cls, service: str, host: str, answer: DnsAnswer, tcp: Optional[TcpResult]
    ) -> SsmEndpoint:
        """``tcp`` None: the name did not resolve, so no connect was made."""
        if tcp is None:
            return cls(service, host, answer.addresses[:32], "dns-failed", answer.problem)
        return cls(service, host, answer.addresses[:32], tcp.state, tcp.detail or None)

    @classmethod
    def timed_out(cls, service: str, host: str) -> SsmEndpoint:
        return cls(service, host, (), "timeout", "timeout")


@dataclass(frozen=True)
class SsmEndpointsFacts(Facts):
    """network.ssm_endpoints: the ssm, ssmmessages and ec2messages endpoints of the Region."""

    region: str
    endpoints: Tuple[SsmEndpoint, ...]

    def get(self, service: str) -> Optional[SsmEndpoint]:
        return next((e for e in self.endpoints if e.service == service), None)

    @property
    def unreachable(self) -> Tuple[SsmEndpoint, ...]:
        return tuple(e for e in self.endpoints if e.tcp != "ok")


# --- network.bottlerocket_endpoints (checks/node.py) ---


@dataclass(frozen=True)
class BottlerocketEndpoint:
    """One endpoint a Bottlerocket host needs: its answers, their kinds, TCP 443's result."""

    service: str
    host: str
    addresses: Tuple[str, ...]
    kinds: Tuple[str, ...]
    tcp: Optional[str]  # "ok", the failure, or None when nothing resolved
    problem: Optional[str] = None

    @property
    def reachable(self) -> bool:
        return self.tcp == "ok"


@dataclass(frozen=True)
class BottlerocketEndpointsFacts(Facts):
    """network.bottlerocket_endpoints: ECR api/dkr, S3 and guardduty-data from this host.

    ``public_ok`` names the services reached on public addresses by design (the S3 gateway
    endpoint); the others answer privately when an interface endpoint with private DNS exists.
    """

    region: str
    endpoints: Tuple[BottlerocketEndpoint, ...]
    public_ok: Tuple[str, ...] = ()

    @property
    def unreachable(self) -> Tuple[BottlerocketEndpoint, ...]:
        return tuple(e for e in self.endpoints if not e.reachable)

    @property
    def public_only(self) -> Tuple[BottlerocketEndpoint, ...]:
        return tuple(
            e
            for e in self.endpoints
            if e.service not in self.public_ok and e.kinds and all(k == "public" for k in e.kinds)
        )
