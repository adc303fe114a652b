"""Facts of the network checks: the path from the instance to GuardDuty's data endpoint.

One type per check; per-address results (DNS answers, TCP connects, HTTPS probes) and per-name
or per-service results are tuples of small frozen dataclasses built from the host layer's
:class:`~gd_doctor.host.net.DnsAnswer`, :class:`~gd_doctor.host.net.TcpResult` and
:class:`~gd_doctor.host.net.HttpsProbe`. Judgements that need the knowledge base (is this
nameserver Amazon's, is this issuer Amazon's) are made by the checks and handed in.

The facts of the TLS/HTTPS and proxy checks are in :mod:`gd_doctor.facts.network_tls` (named
here too, so ``from gd_doctor.facts.network import HttpsFacts`` keeps working).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

from gd_doctor.facts.network_tls import HttpsFacts, HttpsProbeResult, ProxyFacts, ProxySource
from gd_doctor.frozen import dataclass
from gd_doctor.host.net import DnsAnswer, TcpResult
from gd_doctor.model import Facts

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
