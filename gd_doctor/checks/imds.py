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

import json
import threading
from typing import Any, Dict, List, Optional, Tuple

from gd_doctor.checks.base import Check, Context, check, fail, ok, outcome, skip, warn
from gd_doctor.host import timeouts
from gd_doctor.host.imds import ImdsReply
from gd_doctor.model import JSONValue, Outcome, SkipReason, Status
from gd_doctor.parsers.imds_identity import IdentityParseError, parse_identity_document
from gd_doctor.redact import redact

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
    answer = f"HTTP {reply.status}" if reply.status is not None else reply.problem
    token = " (IMDSv2)" if reply.used_token else ""
    tries = f" ({reply.attempts} attempts)" if reply.attempts > 1 else ""
    return f"{reply.method} {reply.path}{token}: {answer}{tries}"


def _unavailable(ctx: Context) -> Optional[Outcome]:
    if ctx.host.imds.endpoint is None:
        reason = getattr(ctx.host.imds, "reason", "IMDS not available")
        return skip(SkipReason.NOT_APPLICABLE, f"IMDS not queried: {reason}")
    return None


def _token_mode(put: ImdsReply, tokenless: ImdsReply) -> str:
    """required | optional | disabled | hop-limit | unknown, from the PUT and a tokenless GET."""
    if put.ok:
        if tokenless.status == 401:
            return "required"
        return "optional" if tokenless.ok else "unknown"
    if put.problem == "timeout" and tokenless.status is not None:
        return "hop-limit"
    if put.status in (403, 404, 405) and tokenless.ok:
        return "disabled"
    return "unknown"


@check(
    "imds.reachable",
    title="Instance metadata service answers",
    category="imds",
    needs=("live", "network"),
)
def imds_reachable(ctx: Context) -> Outcome:
    """Asks IMDS for a session token, then reads /latest/meta-data/ with it (v1 if v2 failed)."""
    off = _unavailable(ctx)
    if off:
        return off
    imds = ctx.host.imds
    limit = ctx.timeout(timeouts.IMDS_CALL)
    # The PUT and the tokenless GET are independent: run them side by side so a silent IMDS
    # costs one timeout (plus its retry), not two.
    box: Dict[str, ImdsReply] = {}
    getter = threading.Thread(
        target=lambda: box.update(get=imds.get("/latest/meta-data/", timeout=limit,
                                               use_token=False)),
        name="gd-doctor-imds-get", daemon=True)
    getter.start()
    put = imds.fetch_token(timeout=limit)
    getter.join(max(0.05, ctx.timeout(2 * limit * (1 + timeouts.IMDS_RETRIES))))
    tokenless = box.get("get") or ImdsReply("GET", "/latest/meta-data/", None,
                                            problem="timeout")
    mode = _token_mode(put, tokenless)
    evidence = (_describe(put), _describe(tokenless))
    data: Dict[str, JSONValue] = {
        "endpoint": imds.endpoint, "token_mode": mode, "put_status": put.status,
        "put_problem": put.problem, "get_status": tokenless.status,
        "get_problem": tokenless.problem, "reachable": True, "disabled": False,
    }
    if put.status is None and tokenless.status is None:
        data["reachable"] = False
        return outcome(Status.FAIL, f"IMDS at {imds.endpoint} does not answer "
                        f"({tokenless.problem})", data, evidence)
    if put.status == 403 and tokenless.status == 403:
        data["disabled"] = True
        return outcome(Status.FAIL, "IMDS answers 403 Forbidden: the metadata service is "
                        "turned off for this instance", data, evidence)
    if put.ok or tokenless.ok:
        return outcome(Status.OK, f"IMDS answers at {imds.endpoint}", data, evidence)
    return outcome(Status.FAIL, f"IMDS answers but serves nothing usable (PUT {put.status}, "
                    f"GET {tokenless.status})", data, evidence)


_MODE_TEXT = {
    "required": "IMDSv2 tokens are required (HttpTokens=required)",
    "optional": "IMDSv2 works; tokens are optional (IMDSv1 also accepted)",
    "disabled": "IMDSv2 token requests are refused; only IMDSv1 works",
    "hop-limit": "the token request gets no answer while plain GETs do: the PUT response hop "
    "limit is too low for where gd-doctor runs (a container?)",
    "unknown": "could not tell how IMDS treats tokens",
}


@check("imds.token", title="IMDSv2 session token", category="imds",
       requires=("imds.reachable",), needs=("live", "network"))
def imds_token(ctx: Context) -> Outcome:
    """Classifies token handling from imds.reachable's PUT and tokenless GET."""
    mode = str(ctx.fact("imds.reachable", "token_mode") or "unknown")
    summary = _MODE_TEXT.get(mode, mode)
    data: Dict[str, JSONValue] = {
        "token_mode": mode, "v1_fallback": mode in ("disabled", "hop-limit")
    }
    status = Status.OK if mode in ("required", "optional") else Status.WARN
    return outcome(status, summary, data)


@check("imds.identity", title="Instance identity document can be retrieved", category="imds",
       requires=("imds.reachable",), after=("imds.token",), needs=("live", "network"))
def imds_identity(ctx: Context) -> Outcome:
    """GET /latest/dynamic/instance-identity/document (coverage row 7 when missing)."""
    reply = ctx.host.imds.get(IDENTITY_PATH, timeout=ctx.timeout(timeouts.IMDS_CALL))
    evidence = (_describe(reply),)
    if not reply.ok:
        return fail(f"identity document not retrieved ({_describe(reply)})", evidence=evidence,
                    available=False, status=reply.status, problem=reply.problem)
    try:
        doc = parse_identity_document(reply.text)
    except IdentityParseError as exc:
        return fail(f"IMDS served something that is not an identity document: {exc}",
                    evidence=(*evidence, redact(reply.text[:200])), available=False,
                    status=reply.status, problem=f"invalid: {exc}")
    domain = ctx.host.imds.get(DOMAIN_PATH, timeout=ctx.timeout(timeouts.IMDS_CALL))
    dns_suffix = domain.text.strip() if domain.ok and "." in domain.text.strip() else None
    data: Dict[str, JSONValue] = {"available": True, "services_domain": dns_suffix}
    data.update(doc.as_data())
    return outcome(Status.OK, f"{doc.instance_id} in {doc.region} (account {doc.account_id}, "
                    f"{doc.instance_type}, {doc.architecture})", data, evidence)


@check("imds.tags", title="GuardDutyManaged instance tag", category="imds",
       requires=("imds.reachable",), after=("imds.token",), needs=("live", "network"))
def imds_tags(ctx: Context) -> Outcome:
    """GET tags/instance/GuardDutyManaged; 404 on tags/instance/ means tags in metadata is off."""
    imds = ctx.host.imds
    tag = imds.get(TAG_PATH, timeout=ctx.timeout(timeouts.IMDS_CALL))
    if tag.ok:
        value = tag.text.strip()[:256]
        excluded = value.lower() == "false"
        data: Dict[str, JSONValue] = {
            "tags_in_metadata": True, "guardduty_managed": value, "excluded": excluded
        }
        line = f"GuardDutyManaged = {value!r}"
        if excluded:
            return outcome(Status.FAIL, f"{line}: the instance is excluded from Runtime "
                            "Monitoring", data, (_describe(tag), line))
        return outcome(Status.OK, line, data, (_describe(tag),))
    listing = imds.get(TAGS_PATH, timeout=ctx.timeout(timeouts.IMDS_CALL))
    evidence = (_describe(tag), _describe(listing))
    if listing.ok:
        return ok("no GuardDutyManaged tag (tags in metadata enabled)", evidence=evidence,
                  tags_in_metadata=True, guardduty_managed=None, excluded=False)
    if listing.status == 404 and tag.status == 404:
        return warn("tags in instance metadata are switched off: the exclusion tag cannot be "
                    "read from the host (unknown)", evidence=evidence, tags_in_metadata=False,
                    guardduty_managed=None, excluded=None)
    return warn("could not read instance tags", evidence=evidence, tags_in_metadata=None,
                guardduty_managed=None, excluded=None)


def _cidrs(text: str) -> List[str]:
    import ipaddress

    out: List[str] = []
    for word in text.split():
        try:
            out.append(str(ipaddress.ip_network(word.strip(), strict=False)))
        except ValueError:
            continue
    return out


@check("imds.network", title="VPC of the primary network interface", category="imds",
       requires=("imds.reachable",), after=("imds.token",), needs=("live", "network"))
def imds_network(ctx: Context) -> Outcome:
    """GET mac, then network/interfaces/macs/<mac>/vpc-ipv4-cidr-blocks and vpc-id."""
    imds = ctx.host.imds
    mac = imds.get(MAC_PATH, timeout=ctx.timeout(timeouts.IMDS_CALL))
    mac_text = mac.text.strip()
    if not mac.ok or not mac_text or "/" in mac_text or len(mac_text) > 64:
        return warn("primary interface MAC not available from IMDS",
                    evidence=(_describe(mac),), vpc_cidrs=[], vpc_id=None)
    blocks = imds.get(CIDRS_PATH.format(mac=mac_text), timeout=ctx.timeout(timeouts.IMDS_CALL))
    cidrs = _cidrs(blocks.text) if blocks.ok else []
    evidence: Tuple[str, ...] = (_describe(blocks),)
    if not cidrs:
        one = imds.get(CIDR_PATH.format(mac=mac_text), timeout=ctx.timeout(timeouts.IMDS_CALL))
        cidrs = _cidrs(one.text) if one.ok else []
        evidence += (_describe(one),)
    vpc = imds.get(VPC_ID_PATH.format(mac=mac_text), timeout=ctx.timeout(timeouts.IMDS_CALL))
    vpc_id = vpc.text.strip()[:64] if vpc.ok else None
    if not cidrs:
        return warn("VPC CIDR blocks not available from IMDS", evidence=evidence,
                    vpc_cidrs=[], vpc_id=vpc_id, mac=mac_text)
    return ok(f"{vpc_id or 'VPC'}: {', '.join(cidrs)}", evidence=evidence, vpc_cidrs=cidrs,
              vpc_id=vpc_id, mac=mac_text)


def _creds_fields(text: str) -> Optional[Dict[str, str]]:
    try:
        doc: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    # only the non-secret fields; AccessKeyId, SecretAccessKey and Token are dropped here
    return {k: str(doc[k])[:64] for k in ("Code", "Expiration", "LastUpdated", "Type")
            if isinstance(doc.get(k), str)}


@check("imds.identity_credentials", title="EC2 instance identity credentials", category="imds",
       requires=("imds.reachable",), after=("imds.token",), needs=("live", "network"))
def imds_identity_credentials(ctx: Context) -> Outcome:
    """GET identity-credentials/ec2/security-credentials/ec2-instance (the agent's identity)."""
    reply = ctx.host.imds.get(CREDS_PATH, timeout=ctx.timeout(timeouts.IMDS_CALL))
    evidence = (_describe(reply),)
    if not reply.ok:
        return warn(f"identity credentials not available ({_describe(reply)})",
                    evidence=evidence, available=False, code=None, expiration=None,
                    status=reply.status)
    fields = _creds_fields(reply.text)
    if fields is None:
        return warn("identity credentials path returned something that is not JSON",
                    evidence=evidence, available=False, code=None, expiration=None,
                    status=reply.status)
    code = fields.get("Code")
    data: Dict[str, JSONValue] = {
        "available": code == "Success", "code": code, "expiration": fields.get("Expiration"),
        "status": reply.status,
    }
    if code != "Success":
        return outcome(Status.WARN, f"identity credentials reported Code={code}", data,
                        evidence)
    return outcome(Status.OK, f"available (expire {data['expiration']})", data, evidence)


CHECKS: Tuple[Check, ...] = (
    imds_reachable,
    imds_token,
    imds_identity,
    imds_tags,
    imds_network,
    imds_identity_credentials,
)
