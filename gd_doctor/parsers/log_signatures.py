"""The known error signatures of the agent's logs (``knowledge/log_signatures.json``) and the
cheap prefilter that keeps busy logs fast.

A busy agent writes 10^5 lines a day, nearly all of them harmless. Running the signatures'
regular expressions on every line costs tens of microseconds a line; instead:

1. every signature is reduced to literal strings of which each match holds at least one
   (:func:`required_literals`, exact for IGNORECASE on ASCII text);
2. the raw bytes of a file's lines are folded once (digits to ``0``, NUL bytes dropped,
   ASCII lower case: one C call each), which maps the many lines of one template (a heartbeat
   with a counter and a timestamp) to a few distinct folded lines;
3. only the distinct folded lines are searched for the (folded) literals, and only the lines
   whose folded form holds one are parsed and matched (:func:`candidate_indexes`).

Folding replaces characters one for one (or drops NULs, which the decoded line drops too), so
a literal inside a line's cleaned text is, folded, inside the folded line: no line a signature
or an endpoint name matches is left out. Non-ASCII lines (IGNORECASE is wider than ASCII lower
case there) and JSON lines (the message is decoded from escapes) are always candidates.

Typical input: the raw lines of ``/var/log/amzn-guardduty-agent/agent.log``::

    2026-11-30T11:59:01.123456Z ERROR amazon_guardduty_agent::sender: dns error: ...
"""

from __future__ import annotations

import re
import sys
import warnings
from functools import lru_cache
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

if sys.version_info >= (3, 11):  # the parser of re itself, under its newer name
    from re import _parser as sre_parse
else:  # pragma: no cover - Python 3.9 and 3.10
    import sre_parse

from gd_doctor.frozen import dataclass
from gd_doctor.knowledge import load
from gd_doctor.patterns import LazyPattern, lazy

ENDPOINT_LITERAL = "guardduty-data"  # every name endpoint_host_in returns holds it
# digits to "0" (so a counter or a timestamp does not make a line distinct), NUL dropped
_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_FOLD = bytes.maketrans(b"123456789" + _UPPER, b"000000000" + _UPPER.lower())
_DROP = b"\x00"
MANY_DISTINCT = 1_000  # distinct folded lines above which the text is searched instead


@dataclass(frozen=True)
class Signature:
    id: str
    pattern: LazyPattern[str]  # compiled when a line holding one of its literals is tried
    finding: str
    issue: Optional[str]
    show: str
    literals: Optional[Tuple[str, ...]]  # lower-case; every ASCII match holds one (None: no such)


@lru_cache(maxsize=1)
def signatures() -> Tuple[Signature, ...]:
    """The log signatures of ``knowledge/log_signatures.json``, in matching order."""
    return tuple(
        Signature(
            s["id"],
            lazy(s["pattern"], re.IGNORECASE),
            s["finding"],
            s["issue"],
            s["show"],
            required_literals(s["pattern"]),
        )
        for s in load("log_signatures.json")["signatures"]
    )


def _literal_runs(tree: Any) -> List[str]:
    """The runs of plain characters at the top level of one parsed sequence."""
    runs, cur = [], []
    for op, arg in tree:
        if op is sre_parse.LITERAL:
            cur.append(chr(arg))
        elif op is sre_parse.AT:  # \b and the like take no room
            continue
        else:
            runs.append("".join(cur))
            cur = []
    runs.append("".join(cur))
    return [r for r in runs if r]


def required_literals(pattern: str) -> Optional[Tuple[str, ...]]:
    """Lower-case strings of which every match of ``pattern`` (case-insensitive) holds at least
    one, or None when some alternative has no such string (then every line is a candidate).

    >>> required_literals("dns error|failed to (set|bump) the rlimit|IMDS")
    ('dns error', ' the rlimit', 'imds')
    >>> required_literals("a|[0-9]+") is None
    True
    """
    try:
        with warnings.catch_warnings():  # sre's FutureWarnings about odd sets are not ours
            warnings.simplefilter("ignore")
            tree: Any = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError, ValueError):  # then no prefilter
        return None
    branches = [tree]
    if len(tree) == 1 and tree[0][0] is sre_parse.BRANCH:
        branches = list(tree[0][1][1])  # (BRANCH, (None, [one parsed sequence per branch]))
    out = []
    for branch in branches:
        runs = _literal_runs(branch)
        if not runs or max(len(r) for r in runs) < 2:
            return None
        out.append(max(runs, key=len).lower())
    return tuple(out)


@lru_cache(maxsize=1)
def prefilter_literals() -> Optional[Tuple[str, ...]]:
    """The literals of every signature and of the endpoint names, or None if some signature
    has an alternative without one."""
    found: List[str] = [ENDPOINT_LITERAL]
    for sig in signatures():
        if sig.literals is None:
            return None
        found.extend(sig.literals)
    unique = list(dict.fromkeys(found))
    # a literal holding a shorter one adds nothing: every line it is in holds the shorter one
    return tuple(a for a in unique if not any(b != a and b in a for b in unique))


def fold(raw: bytes) -> bytes:
    """``raw`` with digits as ``0``, NUL bytes dropped and ASCII letters in lower case.

    >>> fold(b"2026-11-30T11:59:01Z ERROR os error 111\\x00")
    b'0000-00-00t00:00:00z error os error 000'
    """
    return raw.translate(_FOLD, _DROP)  # one C pass: digits, NULs and case at once


@lru_cache(maxsize=1)
def _folded_literals() -> Optional[Tuple[bytes, ...]]:
    lits = prefilter_literals()
    if lits is None:
        return None
    return tuple(dict.fromkeys(fold(lit.encode()) for lit in lits))


_SPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.strip() takes off an ASCII line


def _hot(line: bytes, literals: Tuple[bytes, ...]) -> bool:
    if not line.isascii() or line.lstrip(_SPACE).startswith(b"{"):
        return True
    return any(lit in line for lit in literals)


def candidate_indexes(raws: Sequence[bytes]) -> List[int]:
    """Indexes of the raw lines that may match a signature or name an endpoint; the others
    cannot (see the module's docstring). Costs a few C passes over the bytes plus one Python
    step per distinct folded line (and one per line when some line is a candidate)."""
    literals = _folded_literals()
    if literals is None:
        return list(range(len(raws)))
    text = fold(b"\n".join(raws))
    folded = text.split(b"\n")
    distinct = set(folded)
    if len(distinct) > MANY_DISTINCT and len(distinct) * 4 > len(folded):
        # few repeats (an id on every line): one C search of the text per literal is cheaper
        # than a Python step per distinct line
        return _searched(text, folded, literals)
    hot: FrozenSet[bytes] = frozenset(u for u in distinct if _hot(u, literals))
    if not hot:
        return []
    if len(hot) > 16:
        return [i for i, line in enumerate(folded) if line in hot]
    return _line_numbers(b"\n" + text + b"\n", hot)


def _covers(literals: Sequence[bytes], shortest: int = 4) -> Tuple[bytes, ...]:
    """Fewer strings, each inside some literals, such that every literal holds one (greedy:
    the string inside the most literals first). A line holding a literal holds its cover, so
    searching the covers and checking the lines found against the literals loses nothing.

    >>> _covers([b"os error 110", b"os error 111", b"tls"])
    (b'os error 11', b'tls')
    """
    left = set(literals)
    out: List[bytes] = []
    while left:
        inside: Dict[bytes, Set[bytes]] = {}
        for lit in left:
            n = min(shortest, len(lit.strip()))
            for i in range(len(lit)):
                for j in range(i + n, len(lit) + 1):
                    if len(lit[i:j].strip()) >= n:
                        inside.setdefault(lit[i:j], set()).add(lit)
        best = max(sorted(inside), key=lambda c: (len(inside[c]), len(c)))
        out.append(best)
        left -= inside[best]
    return tuple(out)


@lru_cache(maxsize=1)
def _search_covers() -> Tuple[bytes, ...]:
    return _covers(_folded_literals() or ())


def _searched(text: bytes, folded: List[bytes], literals: Tuple[bytes, ...]) -> List[int]:
    """:func:`candidate_indexes` by searching the folded ``text`` for each cover of the
    literals, then checking each line found against the literals themselves."""
    starts = set()
    covers = _search_covers() if literals == _folded_literals() else literals
    for lit in covers:
        pos = text.find(lit)
        while pos >= 0:
            starts.add(text.rfind(b"\n", 0, pos) + 1)
            end = text.find(b"\n", pos)
            pos = text.find(lit, end) if end >= 0 else -1
    found: Set[int] = set()
    index = last = 0
    for pos in sorted(starts):  # line numbers by counting newlines once, left to right
        index += text.count(b"\n", last, pos)
        last = pos
        if _hot(folded[index], literals):
            found.add(index)
    if not text.isascii() or b"{" in text:  # the lines that are candidates whatever they hold
        found.update(
            i
            for i, line in enumerate(folded)
            if not line.isascii() or line.lstrip(_SPACE).startswith(b"{")
        )
    return sorted(found)


def _line_numbers(text: bytes, hot: FrozenSet[bytes]) -> List[int]:
    """The numbers of the lines of ``text`` (newline-framed) equal to one of ``hot``, found by
    C searches and one newline count over the text instead of a Python step per line."""
    starts: List[int] = []
    for line in hot:
        needle = b"\n" + line + b"\n"
        pos = text.find(needle)
        while pos >= 0:
            starts.append(pos)
            pos = text.find(needle, pos + len(needle) - 1)
    found: List[int] = []
    index = last = 0
    for pos in sorted(starts):  # line numbers by counting newlines once, left to right
        index += text.count(b"\n", last, pos)
        last = pos
        found.append(index)
    return found


@lru_cache(maxsize=4096)  # an error flood repeats the same few messages
def first_match(message: str) -> Optional[Signature]:
    """The first signature whose expression finds ``message``, or None.

    A signature's expression runs only on a message holding one of its literals (exact for
    ASCII): the expressions cost tens of microseconds a line, the literal tests one.

    >>> first_match("lookup guardduty-data.eu-west-1.amazonaws.com: dns error").id
    'dns'
    >>> first_match("heartbeat ok") is None
    True
    """
    low = message.lower() if message.isascii() else None
    for sig in signatures():
        lits = sig.literals
        if low is not None and lits is not None and not any(lit in low for lit in lits):
            continue
        if sig.pattern.search(message):
            return sig
    return None
