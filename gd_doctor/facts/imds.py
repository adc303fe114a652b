"""Facts of the imds checks: what the instance metadata service answered, one type per check.

Each type is built from the host layer's :class:`~gd_doctor.host.imds.ImdsReply` values (and the
identity-document parser's :class:`~gd_doctor.parsers.imds_identity.IdentityDocument`). No field
ever holds a token, a credential or a reply body beyond the few non-secret values named here.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Dict, Optional, Sequence, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.host.imds import ImdsReply
from gd_doctor.model import Facts
from gd_doctor.parsers.imds_identity import IdentityDocument
from gd_doctor.parsers.time_sync import parse_http_date

__all__ = [
    "ImdsCredentialsFacts",
    "ImdsIdentityFacts",
    "ImdsNetworkFacts",
    "ImdsReachableFacts",
    "ImdsTagsFacts",
    "ImdsTokenFacts",
    "answer_of",
    "token_mode",
]

# How IMDS treats session tokens, as imds.reachable measured it.
TOKEN_MODES: Tuple[str, ...] = ("required", "optional", "disabled", "hop-limit", "unknown")


def answer_of(reply: ImdsReply) -> str:
    """``HTTP <status>`` or the transport problem (``timeout``, ``refused``, ...)."""
    if reply.status is not None:
        return f"HTTP {reply.status}"
    return reply.problem or "no answer"


def token_mode(put: ImdsReply, tokenless: ImdsReply) -> str:
    """required | optional | disabled | hop-limit | unknown, from the PUT and a tokenless GET.

    >>> ok = ImdsReply("GET", "/", 200)
    >>> token_mode(ImdsReply("PUT", "/t", 200), ImdsReply("GET", "/", 401))
    'required'
    >>> token_mode(ImdsReply("PUT", "/t", None, problem="timeout"), ok)
    'hop-limit'
    >>> token_mode(ImdsReply("PUT", "/t", 403), ok)
    'disabled'
    """
    if put.ok:
        if tokenless.status == 401:
            return "required"
        return "optional" if tokenless.ok else "unknown"
    if put.problem == "timeout" and tokenless.status is not None:
        return "hop-limit"
    if put.status in (403, 404, 405) and tokenless.ok:
        return "disabled"
    return "unknown"


@dataclass(frozen=True)
class ImdsReachableFacts(Facts):
    """imds.reachable: the token PUT and a tokenless GET of /latest/meta-data/."""

    endpoint: Optional[str]
    token_mode: str
    put_status: Optional[int]
    put_problem: Optional[str]
    get_status: Optional[int]
    get_problem: Optional[str]
    reachable: bool  # any HTTP answer at all
    disabled: bool  # both answered 403: IMDS is turned off for the instance
    usable: bool  # the PUT or the tokenless GET succeeded
    # AWS's clock as IMDS's Date header gave it, and this host's offset from it in seconds
    # (positive: the host is ahead); None when no reply carried a readable Date.
    server_date: Optional[str] = None
    clock_offset_s: Optional[float] = None
    timeout_s: Optional[float] = None  # how long each exchange was given

    @classmethod
    def from_replies(
        cls,
        endpoint: Optional[str],
        put: ImdsReply,
        tokenless: ImdsReply,
        timeout_s: Optional[float] = None,
    ) -> ImdsReachableFacts:
        server_date, offset = clock_offset(tokenless, put)
        return cls(
            endpoint=endpoint,
            token_mode=token_mode(put, tokenless),
            put_status=put.status,
            put_problem=put.problem,
            get_status=tokenless.status,
            get_problem=tokenless.problem,
            reachable=put.status is not None or tokenless.status is not None,
            disabled=put.status == 403 and tokenless.status == 403,
            usable=put.ok or tokenless.ok,
            server_date=server_date,
            clock_offset_s=offset,
            timeout_s=round(timeout_s, 3) if timeout_s is not None else None,
        )

    @property
    def silence(self) -> Optional[str]:
        """ "no answer within 1 s" when neither exchange got an answer before its timeout."""
        if self.reachable or self.get_problem != "timeout" or self.timeout_s is None:
            return None
        return f"no answer within {self.timeout_s:g} s"


def clock_offset(*replies: ImdsReply) -> Tuple[Optional[str], Optional[float]]:
    """The first reply's Date header and the host's offset from it: local wall-clock time at
    the reply's headers minus the Date (whole seconds: the header has no fraction)."""
    for reply in replies:
        when = parse_http_date(reply.date)
        if when is not None and reply.received_at is not None:
            return reply.date, round(reply.received_at - when.timestamp(), 1)
    return None, None


@dataclass(frozen=True)
class ImdsTokenFacts(Facts):
    """imds.token: the token mode, and whether gd-doctor had to fall back to IMDSv1."""

    token_mode: str
    v1_fallback: bool

    @classmethod
    def from_reachable(cls, reach: Optional[ImdsReachableFacts]) -> ImdsTokenFacts:
        mode = reach.token_mode if reach is not None else "unknown"
        return cls(token_mode=mode, v1_fallback=mode in ("disabled", "hop-limit"))


@dataclass(frozen=True)
class ImdsIdentityFacts(Facts):
    """imds.identity: the instance identity document (coverage row 7 when not available).

    ``instance_id`` and ``region`` keep the names the report header reads.
    """

    available: bool
    status: Optional[int]
    problem: Optional[str]  # why it is not available: "HTTP 404", "timeout", "invalid: ..."
    instance_id: Optional[str] = None
    region: Optional[str] = None
    account_id: Optional[str] = None
    instance_type: Optional[str] = None
    architecture: Optional[str] = None
    availability_zone: Optional[str] = None
    private_ip: Optional[str] = None
    services_domain: Optional[str] = None  # /latest/meta-data/services/domain, the DNS suffix

    @classmethod
    def from_document(
        cls, reply: ImdsReply, doc: IdentityDocument, domain: Optional[ImdsReply] = None
    ) -> ImdsIdentityFacts:
        suffix = domain.text.strip() if domain is not None and domain.ok else ""
        return cls(
            available=True,
            status=reply.status,
            problem=None,
            instance_id=doc.instance_id,
            region=doc.region,
            account_id=doc.account_id,
            instance_type=doc.instance_type,
            architecture=doc.architecture,
            availability_zone=doc.availability_zone,
            private_ip=doc.private_ip,
            # a suffix without a dot is not a DNS domain: ignore it rather than build bad names
            services_domain=suffix[:100] if "." in suffix else None,
        )

    @classmethod
    def unavailable(cls, reply: ImdsReply, problem: Optional[str] = None) -> ImdsIdentityFacts:
        """Not retrieved (``problem`` None: the reply's status or transport problem says why)."""
        return cls(available=False, status=reply.status, problem=problem or answer_of(reply))


@dataclass(frozen=True)
class ImdsTagsFacts(Facts):
    """imds.tags: the GuardDutyManaged exclusion tag (coverage row 4).

    None is "could not tell": ``tags_in_metadata`` None when the listing could not be read,
    ``excluded`` None when the tag cannot be seen from the host.
    """

    tags_in_metadata: Optional[bool]
    guardduty_managed: Optional[str]  # the tag's value, None when the instance has no such tag
    excluded: Optional[bool]

    @classmethod
    def from_replies(cls, tag: ImdsReply, listing: Optional[ImdsReply]) -> ImdsTagsFacts:
        """From the GET of the tag and, when it is absent, of the tags listing."""
        if tag.ok:
            value = tag.text.strip()[:256]
            return cls(True, value, value.lower() == "false")
        if listing is not None and listing.ok:
            return cls(True, None, False)
        if listing is not None and listing.status == 404 and tag.status == 404:
            return cls(False, None, None)  # "Allow tags in metadata" is off
        return cls(None, None, None)


def parse_cidrs(text: str) -> Tuple[str, ...]:
    """The CIDR blocks in an IMDS list (one a line), normalised; anything else is dropped.

    >>> parse_cidrs("10.0.0.0/16\\n100.64.0.0/16\\ngarbage")
    ('10.0.0.0/16', '100.64.0.0/16')
    """
    out = []
    for word in text.split()[:64]:
        try:
            out.append(str(ipaddress.ip_network(word.strip(), strict=False)))
        except ValueError:
            continue
    return tuple(out)


@dataclass(frozen=True)
class ImdsNetworkFacts(Facts):
    """imds.network: the VPC of the primary interface (its CIDRs classify DNS answers)."""

    mac: Optional[str]
    vpc_id: Optional[str]
    vpc_cidrs: Tuple[str, ...]

    @classmethod
    def from_replies(
        cls, mac: Optional[str], cidr_replies: Sequence[ImdsReply], vpc: Optional[ImdsReply]
    ) -> ImdsNetworkFacts:
        """``cidr_replies``: vpc-ipv4-cidr-blocks, then vpc-ipv4-cidr-block; the first that
        names a block wins."""
        cidrs: Tuple[str, ...] = ()
        for reply in cidr_replies:
            cidrs = parse_cidrs(reply.text) if reply.ok else ()
            if cidrs:
                break
        vpc_id = None
        if vpc is not None and vpc.ok:
            vpc_id = vpc.text.strip()[:64] or None
        return cls(mac=mac, vpc_id=vpc_id, vpc_cidrs=cidrs)


NOT_JSON = "not a JSON document"


def _credential_fields(text: str) -> Optional[Dict[str, str]]:
    """The non-secret fields of a credentials document; None when it is not a JSON object."""
    try:
        doc: Any = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    # AccessKeyId, SecretAccessKey and Token are dropped here, before anything else sees them
    keep = ("Code", "Expiration", "LastUpdated", "Type")
    return {k: str(doc[k])[:64] for k in keep if isinstance(doc.get(k), str)}


@dataclass(frozen=True)
class ImdsCredentialsFacts(Facts):
    """imds.identity_credentials: the EC2 instance identity credentials (only Code, Expiration).

    ``available`` is True only for ``Code: Success``; ``problem`` says why not otherwise.
    """

    available: bool
    code: Optional[str]
    expiration: Optional[str]
    status: Optional[int]
    problem: Optional[str]

    @classmethod
    def from_reply(cls, reply: ImdsReply) -> ImdsCredentialsFacts:
        if not reply.ok:
            return cls(False, None, None, reply.status, answer_of(reply))
        fields = _credential_fields(reply.text)
        if fields is None:
            return cls(False, None, None, reply.status, NOT_JSON)
        code = fields.get("Code")
        problem = None if code == "Success" else f"Code={code}"
        return cls(code == "Success", code, fields.get("Expiration"), reply.status, problem)
