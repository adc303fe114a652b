"""The mask and the line caps every redaction step shares."""

from __future__ import annotations

from gd_doctor.patterns import lazy

MASK = "[REDACTED]"
MAX_LINE = 8192
_MAX_PASSES = 4
_CUT_MARK = "…[{n} more characters cut]"

# ---------------------------------------------------------------------------------------------
# Line cap


def _effective_len(line: str) -> int:
    """Length with each mask counted as one character: masking never increases it, so a line
    the cap kept is kept again on a second pass (redaction stays idempotent)."""
    return len(line) - (len(MASK) - 1) * line.count(MASK)


# Characters a token, key or password is made of: a cut drops the run it went through, so the
# first half of a secret cut in two is never shown.
_TAIL_TOKEN = lazy(r"[A-Za-z0-9+/=_.~%:@\\-]{1,8192}\Z")


def _cut_line(line: str) -> str:
    keep = line[: MAX_LINE - 64]
    tail = _TAIL_TOKEN.search(keep, max(0, len(keep) - 8192))
    if tail:
        keep = keep[: tail.start()]
    return keep + _CUT_MARK.format(n=len(line) - len(keep))


def cap_lines(text: str) -> str:
    """Cut every line longer than :data:`MAX_LINE` characters, saying how much was cut."""
    if len(text) <= MAX_LINE:
        return text
    lines = text.split("\n")
    changed = False
    for i, line in enumerate(lines):
        if len(line) > MAX_LINE and _effective_len(line) > MAX_LINE:
            lines[i] = _cut_line(line)
            changed = True
    return "\n".join(lines) if changed else text
