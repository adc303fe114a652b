"""Size caps that keep every report bounded, whatever the host holds.

One junk unit directory once produced 4 million error lines and a 430 MB report; these caps
make the size of a report a function of gd-doctor, not of the host. What is cut is counted, so a
reader knows something was left out.
"""

from __future__ import annotations

from typing import Sequence, Tuple, TypeVar

T = TypeVar("T")

MAX_LIST = 100  # items of any list in a check's facts
MAX_TEXT = 2000  # characters of one string in facts, evidence or a summary
MAX_EVIDENCE = 20  # evidence lines of one check or finding
MAX_SUMMARY = 500
MAX_REPORT_BYTES = 4 * 1024 * 1024  # the JSON report as a whole


def cut_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out.

    >>> cut_text("x" * 30, 10)
    'xxxxxxxxxx… [20 more characters]'
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def cut_lines(lines: Sequence[str], limit: int = MAX_EVIDENCE) -> Tuple[str, ...]:
    """At most ``limit`` lines, each cut to MAX_TEXT; the last says how many were left out.

    >>> cut_lines(["a", "b", "c"], 2)
    ('a', '… and 2 more lines')
    """
    kept = [cut_text(line) for line in lines[:limit]]
    if len(lines) > limit:
        left = len(lines) - limit + 1
        kept[-1] = f"… and {left} more line{'s' * (left != 1)}"
    return tuple(kept)


def first(items: Sequence[T], limit: int = MAX_LIST) -> Tuple[Tuple[T, ...], int]:
    """The first ``limit`` items and how many were left out."""
    return tuple(items[:limit]), max(0, len(items) - limit)
