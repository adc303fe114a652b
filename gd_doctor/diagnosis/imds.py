"""Diagnosis rules over the imds checks: identity document, exclusion tag, tokens, credentials.

Rows: ``identity-document`` (row 7) when IMDS is off, silent or has no identity document;
``exclusion-tag`` (row 4) when ``GuardDutyManaged`` is ``false``. A host that is not EC2 at all is
the platform rules' business, so these rules stay quiet when ``platform.ec2`` says ``is_ec2`` false.
"""

from __future__ import annotations

from typing import Tuple

from gd_doctor.diagnosis.base import Results, Rule, RuleOutput, finding, rule


def _not_ec2(r: Results) -> bool:
    return r.data("platform.ec2", "is_ec2") is False


def _instance(r: Results) -> str:
    return str(r.data("imds.identity", "instance_id") or "<instance-id>")


@rule("imds.unreachable")
def imds_unreachable(r: Results) -> RuleOutput:
    """IMDS is off (403) or does not answer, so the identity document cannot be read."""
    if not r.failed("imds.reachable") or _not_ec2(r):
        return None
    ev = r.evidence("imds.reachable")
    if r.data("imds.reachable", "disabled"):
        return finding("imds.disabled", evidence=ev, checks=["imds.reachable"],
                       instance_id=_instance(r))
    if r.data("imds.reachable", "reachable") is False:
        return finding("imds.unreachable", evidence=ev, checks=["imds.reachable"],
                       endpoint=r.data("imds.reachable", "endpoint"),
                       problem=r.data("imds.reachable", "get_problem") or "no answer")
    return finding("imds.identity-document-missing", evidence=ev, checks=["imds.reachable"],
                   reason=r.summary("imds.reachable"))


@rule("imds.identity_missing")
def identity_missing(r: Results) -> RuleOutput:
    """IMDS answers but the identity document is absent or not a document."""
    if not r.failed("imds.identity") or _not_ec2(r):
        return None
    return finding("imds.identity-document-missing", evidence=r.evidence("imds.identity"),
                   checks=["imds.identity", "imds.reachable"],
                   reason=r.summary("imds.identity"))


@rule("imds.exclusion_tag")
def exclusion_tag(r: Results) -> RuleOutput:
    """GuardDutyManaged=false excludes the instance (coverage row 4)."""
    if r.data("imds.tags", "excluded") is not True:
        return None
    return finding("imds.exclusion-tag", evidence=r.evidence("imds.tags"), checks=["imds.tags"],
                   value=r.data("imds.tags", "guardduty_managed"), instance_id=_instance(r))


@rule("imds.tags_not_in_metadata")
def tags_not_in_metadata(r: Results) -> RuleOutput:
    """Tags in metadata are off: the exclusion tag is unknown from the host, not absent."""
    if r.data("imds.tags", "tags_in_metadata") is not False:
        return None
    return finding("imds.tags-not-in-metadata", evidence=r.evidence("imds.tags"),
                   checks=["imds.tags"], instance_id=_instance(r))


@rule("imds.token_trouble")
def token_trouble(r: Results) -> RuleOutput:
    """The token PUT times out (hop limit) or is refused while IMDSv1 answers."""
    # imds.token is skipped when imds.reachable fails (HttpTokens=required and the PUT lost to
    # the hop limit: every GET is 401), so read the mode where it was measured.
    mode = r.data("imds.token", "token_mode") or r.data("imds.reachable", "token_mode")
    ev = r.evidence("imds.reachable")
    if mode == "hop-limit":
        return finding("imds.hop-limit", evidence=ev, checks=["imds.reachable", "imds.token"],
                       instance_id=_instance(r))
    if mode == "disabled":
        return finding("imds.v2-refused", evidence=ev, checks=["imds.reachable", "imds.token"],
                       status=r.data("imds.reachable", "put_status"))
    return None


@rule("imds.identity_credentials")
def no_identity_credentials(r: Results) -> RuleOutput:
    """IMDS works but serves no EC2 instance identity credentials (the agent's identity)."""
    if not r.warned("imds.identity_credentials") or not r.ok("imds.identity"):
        return None
    return finding("imds.no-identity-credentials",
                   evidence=r.evidence("imds.identity_credentials"),
                   checks=["imds.identity_credentials"],
                   reason=r.summary("imds.identity_credentials"))


RULES: Tuple[Rule, ...] = (
    imds_unreachable,
    identity_missing,
    exclusion_tag,
    tags_not_in_metadata,
    token_trouble,
    no_identity_credentials,
)
