"""Diagnosis rules over the imds checks: identity document, exclusion tag, tokens, credentials.

Rows: ``identity-document`` (row 7) when IMDS is off, silent or has no identity document;
``exclusion-tag`` (row 4) when ``GuardDutyManaged`` is ``false``. A host that is not EC2 at all is
the platform rules' business: there a failing IMDS check is explained by ``platform.not-ec2``
(these rules add the IMDS check to that finding instead of an IMDS finding of their own).
"""

from __future__ import annotations

from typing import Optional, Tuple, Type

from gd_doctor.diagnosis.base import Rule, RuleOutput, finding, rule
from gd_doctor.facts import Facts
from gd_doctor.facts.imds import (
    ImdsCredentialsFacts,
    ImdsIdentityFacts,
    ImdsReachableFacts,
    ImdsTagsFacts,
    ImdsTokenFacts,
)
from gd_doctor.facts.platform import Ec2Facts
from gd_doctor.model import Finding


def _not_ec2(ec2: Optional[Ec2Facts]) -> bool:
    return ec2 is not None and ec2.is_ec2 is False


def _not_ec2_finding(ec2: Optional[Ec2Facts], explains: Type[Facts]) -> Finding:
    """platform.not-ec2 naming the IMDS check it explains (merged with the platform rule's)."""
    why = "; ".join(ec2.evidence_against) if ec2 else ""
    return finding(
        "platform.not-ec2",
        checks=(explains,),
        evidence_from=(explains,),
        why=why or "no EC2 evidence",
    )


def _failure(problem: str) -> str:
    """The kind of failure that picks the first fix step: timeout, refused, unreachable, other."""
    return problem if problem in ("timeout", "refused", "unreachable") else "other"


def _instance(identity: Optional[ImdsIdentityFacts]) -> str:
    return (identity.instance_id if identity else None) or "<instance-id>"


@rule("imds.unreachable", reads=(ImdsReachableFacts, Ec2Facts))
def imds_unreachable(reach: Optional[ImdsReachableFacts], ec2: Optional[Ec2Facts]) -> RuleOutput:
    """IMDS is off (403) or does not answer, so the identity document cannot be read."""
    if reach is None or reach.usable:
        return None
    if _not_ec2(ec2):
        return _not_ec2_finding(ec2, ImdsReachableFacts)
    if reach.disabled:
        spec, params = "imds.disabled", {"instance_id": "<instance-id>"}
    elif not reach.reachable:
        problem = reach.get_problem or "no answer"
        spec, params = (
            "imds.unreachable",
            {
                "endpoint": str(reach.endpoint),
                "problem": reach.silence or problem,
                "failure": _failure(problem),
            },
        )
    else:
        reason = (
            f"IMDS answers but serves nothing usable (PUT {reach.put_status}, "
            f"GET {reach.get_status})"
        )
        spec, params = "imds.identity-document-missing", {"reason": reason}
    return finding(
        spec, checks=(ImdsReachableFacts,), evidence_from=(ImdsReachableFacts,), **params
    )


@rule("imds.identity_missing", reads=(ImdsIdentityFacts, Ec2Facts))
def identity_missing(identity: Optional[ImdsIdentityFacts], ec2: Optional[Ec2Facts]) -> RuleOutput:
    """IMDS answers but the identity document is absent or not a document."""
    if identity is None or identity.available:
        return None
    if _not_ec2(ec2):
        return _not_ec2_finding(ec2, ImdsIdentityFacts)
    return finding(
        "imds.identity-document-missing",
        checks=(ImdsIdentityFacts,),
        evidence_from=(ImdsIdentityFacts,),
        reason=identity.problem or "not retrieved",
    )


@rule("imds.exclusion_tag", reads=(ImdsTagsFacts, ImdsIdentityFacts))
def exclusion_tag(
    tags: Optional[ImdsTagsFacts], identity: Optional[ImdsIdentityFacts]
) -> RuleOutput:
    """GuardDutyManaged=false excludes the instance (coverage row 4)."""
    if tags is None or tags.excluded is not True:
        return None
    return finding(
        "imds.exclusion-tag",
        checks=(ImdsTagsFacts,),
        evidence_from=(ImdsTagsFacts,),
        value=tags.guardduty_managed,
        instance_id=_instance(identity),
    )


@rule("imds.tags_not_in_metadata", reads=(ImdsTagsFacts, ImdsIdentityFacts))
def tags_not_in_metadata(
    tags: Optional[ImdsTagsFacts], identity: Optional[ImdsIdentityFacts]
) -> RuleOutput:
    """Tags in metadata are off: the exclusion tag is unknown from the host, not absent."""
    if tags is None or tags.tags_in_metadata is not False:
        return None
    return finding(
        "imds.tags-not-in-metadata",
        checks=(ImdsTagsFacts,),
        evidence_from=(ImdsTagsFacts,),
        instance_id=_instance(identity),
    )


@rule("imds.token_trouble", reads=(ImdsTokenFacts, ImdsReachableFacts, ImdsIdentityFacts))
def token_trouble(
    token: Optional[ImdsTokenFacts],
    reach: Optional[ImdsReachableFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """The token PUT times out (hop limit) or is refused while IMDSv1 answers."""
    # imds.token is skipped when imds.reachable fails (HttpTokens=required and the PUT lost to
    # the hop limit: every GET is 401), so read the mode where it was measured.
    mode = token.token_mode if token else reach.token_mode if reach else None
    explains = (ImdsReachableFacts, ImdsTokenFacts)
    if mode == "hop-limit":
        return finding(
            "imds.hop-limit",
            checks=explains,
            evidence_from=(ImdsReachableFacts,),
            instance_id=_instance(identity),
        )
    if mode == "disabled":
        return finding(
            "imds.v2-refused",
            checks=explains,
            evidence_from=(ImdsReachableFacts,),
            status=reach.put_status if reach else None,
        )
    return None


@rule("imds.identity_credentials", reads=(ImdsCredentialsFacts, ImdsIdentityFacts))
def no_identity_credentials(
    creds: Optional[ImdsCredentialsFacts], identity: Optional[ImdsIdentityFacts]
) -> RuleOutput:
    """IMDS works but serves no EC2 instance identity credentials (the agent's identity)."""
    if creds is None or creds.available or identity is None or not identity.available:
        return None
    return finding(
        "imds.no-identity-credentials",
        checks=(ImdsCredentialsFacts,),
        evidence_from=(ImdsCredentialsFacts,),
        reason=creds.problem or "not available",
    )


RULES: Tuple[Rule, ...] = (
    imds_unreachable,
    identity_missing,
    exclusion_tag,
    tags_not_in_metadata,
    token_trouble,
    no_identity_credentials,
)
