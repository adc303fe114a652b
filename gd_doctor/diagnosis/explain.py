"""``gd-doctor explain``: find the coverage-issue row behind a text someone pasted.

The text may be an issue id (``agent-disconnected``), an issue type (``No Agent Reporting``), a
message as the console or ``aws guardduty list-coverage`` shows it, with the VPC ids, account
numbers and request ids AWS fills in, or both joined (``No Agent Reporting: Agent disconnected``).
Case, quotes, backticks and punctuation do not matter. A row number as reports print it (``5``,
``row 5``, ``#5``) names that row. Both of AWS's tables for EC2 instances are searched: the EC2
one, then the ECS-EC2 Bottlerocket one (``ECR Image Pull Failed``, ``Not applicable`` messages,
``Agent disconnected`` as a type). The Korean edition's wording is recognised too, typos included
(``knowledge/coverage_issues.json``, ``korean``), with ids filled in before Korean particles
(``vpc-0a1b2c3d의``). Texts from EKS or ECS (Fargate) coverage are named as such instead of being
mis-mapped; text that shares a meaningful word with some row gets the closest rows, noise gets no
match.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Dict, List, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.knowledge import (
    CoverageIssue,
    all_coverage_issues,
    bottlerocket_issues,
    coverage_issues,
    finding_specs,
    load,
)
from gd_doctor.patterns import lazy

# Ids end where an ASCII letter or digit ends, not at a word boundary: in Korean a particle
# follows the id directly (vpc-0a1b2c3d의, 111122223333에는) and \b sees no boundary there.
_UUID = lazy(
    r"(?<![0-9a-z])[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}(?![0-9a-z])"
)
_VPC = lazy(r"(?<![0-9a-z])vpc-[0-9a-f]{8,17}(?![0-9a-z])")
_ACCOUNT = lazy(r"(?<![0-9a-z])[0-9]{12}(?![0-9a-z])")
_PLACEHOLDER_VPC = lazy(r"(?:<\s*vpc\s*id\s*>|(?<![0-9a-z])vpcid(?![0-9a-z]))")
_PLACEHOLDER_ACCOUNT = lazy(r"<\s*(?:account\s*)?id\s*>")
_PLACEHOLDER_REQUEST = lazy(r"<\s*request[\s-]*id\s*>")
_PUNCT = lazy(r"[^\w<>\s]")


def normalise(text: str) -> str:
    """Fold a pasted coverage text to the form the table's patterns are written against.

    >>> normalise("Owner account ID 111122223333 for shared VPC vpc-0a1b2c3d4e5f60718 doesn't")
    'owner account id <accountid> for shared vpc <vpcid> doesnt'
    >>> normalise('"Status Code:400, Request ID: a1b2c3d4-5678-90ab-cdef-EXAMPLE11111)."')
    'status code 400 request id <requestid>'
    >>> normalise("공유 VPC vpc-0a1b2c3d의 소유자 계정 ID 111122223333에는")
    '공유 vpc <vpcid> 의 소유자 계정 id <accountid> 에는'
    """
    t = text.strip().lower()
    t = _UUID.sub(" <requestid> ", t)
    t = _VPC.sub(" <vpcid> ", t)
    t = _ACCOUNT.sub(" <accountid> ", t)
    t = _PLACEHOLDER_REQUEST.sub(" <requestid> ", t)
    t = _PLACEHOLDER_VPC.sub(" <vpcid> ", t)
    t = _PLACEHOLDER_ACCOUNT.sub(" <accountid> ", t)
    t = t.replace("'", "").replace("\u2019", "")
    t = _PUNCT.sub(" ", t)
    return " ".join(t.split())


@dataclass(frozen=True)
class Explanation:
    """What ``explain`` found: matching rows (best first) and how they matched."""

    query: str
    matches: Tuple[CoverageIssue, ...]
    how: str  # "id" | "number" | "message" | "type" | "korean" | "other-resource" | "closest"
    # | "none"
    note: str = ""
    other_resource: Optional[str] = None
    other_doc: Optional[str] = None

    @property
    def recognised(self) -> bool:
        return self.how not in ("closest", "none")


@dataclass(frozen=True)
class KoreanText:
    """How the Korean edition words a row's message or an issue type."""

    text: str
    kind: str  # seed (AWS's words, typos kept) | corrected | translation (gd-doctor's)


def _korean() -> Dict[str, Any]:
    data: Dict[str, Any] = load("coverage_issues.json").get("korean", {})
    return data


def korean_messages(issue_id: str) -> Tuple[KoreanText, ...]:
    """The Korean wordings of a row's message, the document's own first."""
    return tuple(
        KoreanText(m["text"], m["kind"])
        for m in _korean().get("messages", ())
        if m["id"] == issue_id
    )


def korean_type(type_name: str) -> Optional[KoreanText]:
    """The Korean name of an issue type."""
    for t in _korean().get("types", ()):
        if t["type"] == type_name:
            return KoreanText(t["text"], t["kind"])
    return None


def _type_aliases() -> Dict[str, str]:
    raw: Dict[str, str] = dict(load("coverage_issues.json").get("type_aliases", {}))
    # A Korean type name that is also a row's Korean message ("에이전트 연결 끊김": Bottlerocket's
    # type, row 3's message) stays the message, as "Agent disconnected" does in English.
    messages = {normalise(m["text"]) for m in _korean().get("messages", ())}
    for t in _korean().get("types", ()):
        if normalise(t["text"]) not in messages:
            raw.setdefault(t["text"], t["type"])
    return {normalise(k): v for k, v in raw.items()}


# Bottlerocket's table shows "Not applicable" where the EC2 table leaves the message empty.
_NO_MESSAGE = ("", "Not applicable")


def _type_names(row: CoverageIssue) -> List[str]:
    """The row's type and every alias of it, normalised (the console spells some both ways)."""
    names = [normalise(row.type)]
    names += [alias for alias, target in _type_aliases().items() if target == row.type]
    return names


def _squash(norm: str) -> str:
    """Korean spacing varies between editions and typists: compare without spaces."""
    return norm.replace(" ", "")


def _match_korean(norm: str) -> List[CoverageIssue]:
    """Rows whose Korean wording is the text, or is inside it (after a Korean type name)."""
    rows = all_coverage_issues()
    texts = [(m["id"], _squash(normalise(m["text"]))) for m in _korean().get("messages", ())]
    for r in rows.values():
        if r.seed_message:
            texts.append((r.id, _squash(normalise(r.seed_message))))
    query = _squash(norm)
    exact = [i for i, t in texts if t == query]
    inner = [i for i, t in texts if len(t) >= 4 and t in query]
    ids = list(dict.fromkeys(exact or inner))
    found = [rows[i] for i in ids if i in rows]
    if len({r.type for r in found}) > 1:
        # Rows 10 and 11 share a message: the Korean type name in the text decides.
        typed = [
            r for r in found if (k := korean_type(r.type)) and _squash(normalise(k.text)) in query
        ]
        return typed or found
    return found


def _rows_of_type(type_name: str) -> List[CoverageIssue]:
    rows = [r for r in all_coverage_issues().values() if r.type.lower() == type_name.lower()]
    # The empty-message row is what the console shows when only the type is given; EC2 first.
    rows.sort(key=lambda r: (r.message not in _NO_MESSAGE, r.table != "ec2", r.number))
    return rows


def _match_message(norm: str) -> List[CoverageIssue]:
    rows = all_coverage_issues().values()
    exact = [r for r in rows if r.message and re.match(r.pattern, norm)]
    if exact:
        # A type that Bottlerocket's table uses with "Not applicable" ("Agent disconnected").
        exact += [r for r in rows if r.message in _NO_MESSAGE[1:] and normalise(r.type) == norm]
        return exact
    # "<type>: <message>" and other wrappers: the message pattern somewhere inside the text.
    inner = []
    for r in rows:
        if not r.message:
            continue
        body = r.pattern.lstrip("^").rstrip("$")
        if re.search(r"(?:^|\s)" + body + r"(?:\s|$)", norm):
            inner.append(r)
    if len(inner) > 1:
        # Prefer rows whose type is also named in the text (rows 10 and 11 share a message).
        typed = [r for r in inner if any(t in norm for t in _type_names(r))]
        return typed or inner
    return inner


def _match_type(norm: str) -> List[CoverageIssue]:
    for r in all_coverage_issues().values():
        if normalise(r.type) == norm:
            return _rows_of_type(r.type)
    alias = _type_aliases().get(norm)
    return _rows_of_type(alias) if alias else []


_ROW = lazy(r"^(?:row\s*|#\s*|no\.?\s*)?(b)?([0-9]{1,3})$", re.IGNORECASE)


def _match_number(text: str) -> Optional[CoverageIssue]:
    """``5``, ``row 5``, ``Row 5``, ``#5``: the row as reports and --list number it; ``B3``,
    ``row B3``: the Bottlerocket table's row 3, as reports print it."""
    m = _ROW.match(text.strip())
    if not m:
        return None
    number = int(m.group(2))
    rows = bottlerocket_issues() if m.group(1) else coverage_issues()
    return next((r for r in rows.values() if r.number == number), None)


# Words that say nothing about which row is meant.
_STOP = frozenset(
    "the a an is are be of to for and or in on at by with not no your my this that it its "
    "what why how does do did has have can cannot from as was were".split()
)


def _words(text: str) -> set:  # type: ignore[type-arg]
    return (
        {w for w in normalise(text).replace("-", " ").split() if len(w) >= 3}
        - _STOP
        - {
            "<vpcid>",
            "<accountid>",
            "<requestid>",
        }
    )


def _shares_a_word(norm: str, row: CoverageIssue) -> bool:
    vocabulary = _words(f"{row.id} {row.type} {row.message}")
    for k in korean_messages(row.id):
        vocabulary |= _words(k.text)
    return bool(_words(norm) & vocabulary)


def _other_resource(norm: str) -> Optional[Tuple[str, str]]:
    for entry in load("coverage_issues.json").get("other_resource_types", []):
        if any(marker in f" {norm} " or marker in norm for marker in entry["markers"]):
            return entry["resource"], entry["doc"]
    return None


def _closest(norm: str, limit: int = 3) -> List[CoverageIssue]:
    scored = []
    for r in all_coverage_issues().values():
        if not _shares_a_word(norm, r):
            continue  # noise gets no "closest rows"
        keys = [r.id.replace("-", " "), normalise(r.type)]
        if r.message:
            keys.append(normalise(r.message))
            keys.append(normalise(f"{r.type} {r.message}"))
        best = max(difflib.SequenceMatcher(None, norm, k).ratio() for k in keys)
        scored.append((best, r.number, r))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [r for score, _, r in scored[:limit] if score > 0.3]


def _prefer_ec2(found: List[CoverageIssue]) -> Tuple[List[CoverageIssue], str]:
    """The EC2 rows when there are any, and a note naming the Bottlerocket rows set aside
    (the two tables share most rows; Bottlerocket's own rows stand alone)."""
    ec2 = [r for r in found if r.table == "ec2"]
    other = [r for r in found if r.table != "ec2"]
    if not ec2 or not other:
        return found, ""
    ids = ", ".join(r.id for r in other)
    return ec2, (
        "On a Bottlerocket (ECS-EC2) instance, read the Bottlerocket table's row instead: "
        f"gd-doctor explain {ids}"
    )


def _join(*notes: str) -> str:
    return " ".join(n for n in notes if n)


def explain(text: str) -> Explanation:
    """Find the coverage-issue rows that ``text`` names."""
    rows = all_coverage_issues()
    stripped = text.strip().strip("\"'`").strip()
    if stripped.lower() in rows:
        return Explanation(text, (rows[stripped.lower()],), "id")
    numbered = _match_number(stripped)
    if numbered is not None:
        return Explanation(text, (numbered,), "number")
    norm = normalise(stripped)
    if not norm:
        return Explanation(
            text,
            tuple(_rows_of_type("No Agent Reporting")[:1]),
            "type",
            note="An empty issue message: with type 'No Agent Reporting' this is row 2; with the "
            "legacy type 'Agent not reporting' it is row 17.",
        )
    found = _match_message(norm)
    if found:
        found, also = _prefer_ec2(found)
        note = ""
        if len({r.type for r in found}) > 1:
            note = "This message belongs to more than one issue type; the type decides which row."
        return Explanation(text, tuple(found), "message", note=_join(note, also))
    found = _match_type(norm)
    if found:
        found, also = _prefer_ec2(found)
        note = also
        if len(found) > 1:
            note = _join(
                f"'{found[0].type}' has {len(found)} messages; the first row is the one "
                "with an empty message, the others follow.",
                also,
            )
        return Explanation(text, tuple(found), "type", note=note)
    found = _match_korean(norm)
    if found:
        # Bottlerocket rows reuse the EC2 rows' Korean words: the EC2 row first, as in English
        found, also = _prefer_ec2(found)
        note = "Matched the Korean edition of the table."
        if len({r.type for r in found}) > 1:
            note += " This message belongs to more than one issue type; the type decides."
        return Explanation(text, tuple(found), "korean", note=_join(note, also))
    other = _other_resource(norm)
    if other:
        return Explanation(
            text,
            (),
            "other-resource",
            other_resource=other[0],
            other_doc=other[1],
            note=f"This looks like an Amazon {other[0]} coverage issue, not an EC2 one.",
        )
    closest = _closest(norm)
    return Explanation(text, tuple(closest), "closest" if closest else "none")


def checks_bearing_on(issue_id: str) -> Tuple[str, ...]:
    """Check ids that the findings of a coverage row read, in first-seen order."""
    seen: List[str] = []
    for spec in finding_specs().values():
        if spec.issue == issue_id:
            for chk in spec.checks:
                if chk not in seen:
                    seen.append(chk)
    return tuple(seen)
