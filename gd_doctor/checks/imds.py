"""Checks of the imds domain: the instance metadata service as GuardDuty needs it.

Reads, through ``host.imds`` (IMDSv2 first, never through a proxy):

* ``PUT /latest/api/token`` and a tokenless ``GET /latest/meta-data/``: reachable, and whether
  tokens are required, optional or refused; a PUT that times out while the GET answers is the
  hop-limit case (a container one hop further than the PUT reply's hop limit of 1);
* ``/latest/dynamic/instance-identity/document``: coverage row 7 when it cannot be retrieved;
* ``/latest/meta-data/tags/instance/GuardDutyManaged``: the exclusion tag (coverage row 4), which
  GuardDuty reads through IMDS, so "tags in metadata" switched off is unknown, not healthy;
* ``/latest/meta-data/mac`` and ``network/interfaces/macs/<mac>/vpc-ipv4-cidr-blocks``;
* ``/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance``: only
  ``Code`` and ``Expiration`` are kept, never the keys or the token.
"""

from __future__ import annotations

import threading
from typing import Dict, List, Optional, Tuple

from gd_doctor.checks.base import Check, Context, check, judged, skip
from gd_doctor.facts.imds import (
    NOT_JSON,
    ImdsCredentialsFacts,
    ImdsIdentityFacts,
    ImdsNetworkFacts,
    ImdsReachableFacts,
    ImdsTagsFacts,
    ImdsTokenFacts,
    answer_of,
)
from gd_doctor.host import timeouts
from gd_doctor.host.imds import ImdsReply
from gd_doctor.model import Outcome, SkipReason, Status
from gd_doctor.parsers.imds_identity import IdentityParseError, parse_identity_document

IDENTITY_PATH = "/latest/dynamic/instance-identity/document"
TAG_PATH = "/latest/meta-data/tags/instance/GuardDutyManaged"
TAGS_PATH = "/latest/meta-data/tags/instance/"
MAC_PATH = "/latest/meta-data/mac"
CIDRS_PATH = "/latest/meta-data/network/interfaces/macs/{mac}/vpc-ipv4-cidr-blocks"
CIDR_PATH = "/latest/meta-data/network/interfaces/macs/{mac}/vpc-ipv4-cidr-block"
VPC_ID_PATH = "/latest/meta-data/network/interfaces/macs/{mac}/vpc-id"
DOMAIN_PATH = "/latest/meta-data/services/domain"
CREDS_PATH = "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance"


def _describe(reply: ImdsReply) -> str:
    """One evidence line for an exchange (never the body of a credential or token)."""
    token = " (IMDSv2)" if reply.used_token else ""
    tries = f" ({reply.attempts} attempts)" if reply.attempts > 1 else ""
    return f"{reply.method} {reply.path}{token}: {answer_of(reply)}{tries}"


def _unavailable(ctx: Context) -> Optional[Outcome]:
    if ctx.host.imds.endpoint is None:
        reason = getattr(ctx.host.imds, "reason", "IMDS not available")
        return skip(SkipReason.NOT_APPLICABLE, f"IMDS not queried: {reason}")
    return None


def _get(ctx: Context, path: str) -> ImdsReply:
    return ctx.host.imds.get(path, timeout=ctx.timeout(timeouts.IMDS_CALL))


@check(
    "imds.reachable",
    title="Instance metadata service answers",
    category="imds",
    needs=("live", "network"),
    facts=ImdsReachableFacts,
)
def imds_reachable(ctx: Context) -> Outcome:
    """Asks IMDS for a session token, then reads /latest/meta-data/ with it (v1 if v2 failed)."""
    off = _unavailable(ctx)
    if off:
        return off
    imds = ctx.host.imds
    limit = ctx.timeout(timeouts.IMDS_CALL)
    # The PUT and the tokenless GET are independent: run them side by side so a silent IMDS
    # costs one timeout, not two (a timeout is never retried).
    box: Dict[str, ImdsReply] = {}

    def tokenless_get() -> None:
        box["get"] = imds.get("/latest/meta-data/", timeout=limit, use_token=False)

    getter = threading.Thread(target=tokenless_get, name="gd-doctor-imds-get", daemon=True)
    getter.start()
    put = imds.fetch_token(timeout=limit)
    getter.join(max(0.05, ctx.timeout(2 * limit * (1 + timeouts.IMDS_RETRIES))))
    tokenless = box.get("get") or ImdsReply("GET", "/latest/meta-data/", None, problem="timeout")
    facts = ImdsReachableFacts.from_replies(imds.endpoint, put, tokenless, limit)
    evidence = (_describe(put), _describe(tokenless))
    if not facts.reachable:
        # a silent connect is not retried (host.imds): one timeout is the whole cost
        why = facts.silence or tokenless.problem
        summary = f"IMDS at {imds.endpoint} does not answer ({why})"
        return judged(Status.FAIL, summary, facts, evidence)
    if facts.disabled:
        summary = "IMDS answers 403 Forbidden: the metadata service is turned off for this instance"
        return judged(Status.FAIL, summary, facts, evidence)
    if facts.usable:
        return judged(Status.OK, f"IMDS answers at {imds.endpoint}", facts, evidence)
    summary = f"IMDS answers but serves nothing usable (PUT {put.status}, GET {tokenless.status})"
    return judged(Status.FAIL, summary, facts, evidence)


_MODE_TEXT = {
    "required": "IMDSv2 tokens are required (HttpTokens=required)",
    "optional": "IMDSv2 works; tokens are optional (IMDSv1 also accepted)",
    "disabled": "IMDSv2 token requests are refused; only IMDSv1 works",
    "hop-limit": "the token request gets no answer while plain GETs do: the PUT response hop "
    "limit is too low for where gd-doctor runs (a container?)",
    "unknown": "could not tell how IMDS treats tokens",
}


@check(
    "imds.token",
    title="IMDSv2 session token",
    category="imds",
    requires=("imds.reachable",),
    needs=("live", "network"),
    facts=ImdsTokenFacts,
    reads=(ImdsReachableFacts,),
)
def imds_token(ctx: Context) -> Outcome:
    """Classifies token handling from imds.reachable's PUT and tokenless GET."""
    facts = ImdsTokenFacts.from_reachable(ctx.facts(ImdsReachableFacts))
    status = Status.OK if facts.token_mode in ("required", "optional") else Status.WARN
    return judged(status, _MODE_TEXT.get(facts.token_mode, facts.token_mode), facts)


@check(
    "imds.identity",
    title="Instance identity document can be retrieved",
    category="imds",
    requires=("imds.reachable",),
    after=("imds.token",),
    needs=("live", "network"),
    facts=ImdsIdentityFacts,
)
def imds_identity(ctx: Context) -> Outcome:
    """GET /latest/dynamic/instance-identity/document (coverage row 7 when missing)."""
    reply = _get(ctx, IDENTITY_PATH)
    line = _describe(reply)
    if not reply.ok:
        facts = ImdsIdentityFacts.unavailable(reply)
        return judged(Status.FAIL, f"identity document not retrieved ({line})", facts, (line,))
    try:
        doc = parse_identity_document(reply.text)
    except IdentityParseError as exc:
        facts = ImdsIdentityFacts.unavailable(reply, f"not an identity document: {exc}")
        summary = f"IMDS served something that is not an identity document: {exc}"
        return judged(Status.FAIL, summary, facts, (line, reply.text[:200]))
    facts = ImdsIdentityFacts.from_document(reply, doc, _get(ctx, DOMAIN_PATH))
    summary = (
        f"{doc.instance_id} in {doc.region} (account {doc.account_id}, "
        f"{doc.instance_type}, {doc.architecture})"
    )
    return judged(Status.OK, summary, facts, (line,))


@check(
    "imds.tags",
    title="GuardDutyManaged instance tag",
    category="imds",
    requires=("imds.reachable",),
    after=("imds.token",),
    needs=("live", "network"),
    facts=ImdsTagsFacts,
)
def imds_tags(ctx: Context) -> Outcome:
    """GET tags/instance/GuardDutyManaged; 404 on tags/instance/ means tags in metadata is off."""
    tag = _get(ctx, TAG_PATH)
    listing = None if tag.ok else _get(ctx, TAGS_PATH)
    facts = ImdsTagsFacts.from_replies(tag, listing)
    evidence = [_describe(r) for r in (tag, listing) if r is not None]
    if facts.guardduty_managed is not None:
        line = f"GuardDutyManaged = {facts.guardduty_managed!r}"
        if facts.excluded:
            summary = f"{line}: the instance is excluded from Runtime Monitoring"
            return judged(Status.FAIL, summary, facts, (*evidence, line))
        return judged(Status.OK, line, facts, evidence)
    if facts.tags_in_metadata:
        summary = "no GuardDutyManaged tag (tags in metadata enabled)"
        return judged(Status.OK, summary, facts, evidence)
    if facts.tags_in_metadata is False:
        summary = (
            "tags in instance metadata are switched off: the exclusion tag cannot be read "
            "from the host (unknown)"
        )
        return judged(Status.WARN, summary, facts, evidence)
    return judged(Status.WARN, "could not read instance tags", facts, evidence)


def _plain_mac(reply: ImdsReply) -> Optional[str]:
    """The MAC when the reply is one (it goes into the next paths, so nothing else passes)."""
    text = reply.text.strip()
    if not reply.ok or not text or "/" in text or len(text) > 64:
        return None
    return text


@check(
    "imds.network",
    title="VPC of the primary network interface",
    category="imds",
    requires=("imds.reachable",),
    after=("imds.token",),
    needs=("live", "network"),
    facts=ImdsNetworkFacts,
)
def imds_network(ctx: Context) -> Outcome:
    """GET mac, then network/interfaces/macs/<mac>/vpc-ipv4-cidr-blocks and vpc-id."""
    reply = _get(ctx, MAC_PATH)
    mac = _plain_mac(reply)
    if mac is None:
        facts = ImdsNetworkFacts.from_replies(None, (), None)
        summary = "primary interface MAC not available from IMDS"
        return judged(Status.WARN, summary, facts, (_describe(reply),))
    blocks: List[ImdsReply] = [_get(ctx, CIDRS_PATH.format(mac=mac))]
    if not ImdsNetworkFacts.from_replies(mac, blocks, None).vpc_cidrs:
        blocks.append(_get(ctx, CIDR_PATH.format(mac=mac)))  # older IMDS: one block only
    facts = ImdsNetworkFacts.from_replies(mac, blocks, _get(ctx, VPC_ID_PATH.format(mac=mac)))
    evidence = [_describe(b) for b in blocks]
    if not facts.vpc_cidrs:
        return judged(Status.WARN, "VPC CIDR blocks not available from IMDS", facts, evidence)
    summary = f"{facts.vpc_id or 'VPC'}: {', '.join(facts.vpc_cidrs)}"
    return judged(Status.OK, summary, facts, evidence)


@check(
    "imds.identity_credentials",
    title="EC2 instance identity credentials",
    category="imds",
    requires=("imds.reachable",),
    after=("imds.token",),
    needs=("live", "network"),
    facts=ImdsCredentialsFacts,
)
def imds_identity_credentials(ctx: Context) -> Outcome:
    """GET identity-credentials/ec2/security-credentials/ec2-instance (the agent's identity)."""
    reply = _get(ctx, CREDS_PATH)
    facts = ImdsCredentialsFacts.from_reply(reply)
    evidence = (_describe(reply),)
    if facts.available:
        return judged(Status.OK, f"available (expire {facts.expiration})", facts, evidence)
    if not reply.ok:
        summary = f"identity credentials not available ({_describe(reply)})"
    elif facts.problem == NOT_JSON:
        summary = "identity credentials path returned something that is not JSON"
    else:
        summary = f"identity credentials reported Code={facts.code}"
    return judged(Status.WARN, summary, facts, evidence)


CHECKS: Tuple[Check, ...] = (
    imds_reachable,
    imds_token,
    imds_identity,
    imds_tags,
    imds_network,
    imds_identity_credentials,
)
