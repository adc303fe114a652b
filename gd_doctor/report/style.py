"""Symbols and colours for the text renderers; ASCII and plain fallbacks for dumb outputs."""

from __future__ import annotations

from typing import Dict

from gd_doctor.frozen import dataclass
from gd_doctor.model import Severity, Status, Verdict

# "unknown" (a verdict that could not be earned) and "error" (a check that did not finish) are
# never drawn as a pass: both get the question mark.
_UNICODE = {
    "ok": "✓",
    "warn": "!",
    "fail": "✗",
    "skip": "–",
    "error": "?",
    "unknown": "?",
    "dash": "—",
    "bullet": "•",
    "ellipsis": "…",
    "arrow": "→",
}
_ASCII = {
    "ok": "+",
    "warn": "!",
    "fail": "x",
    "skip": "-",
    "error": "?",
    "unknown": "?",
    "dash": "-",
    "bullet": "-",
    "ellipsis": "...",
    "arrow": ">",
}
_COLORS = {
    "ok": "32",
    "warn": "33",
    "fail": "31",
    "skip": "90",
    "error": "35",
    "unknown": "33",
    "bold": "1",
    "dim": "2",
}


@dataclass(frozen=True)
class Style:
    """How to draw: unicode symbols or ASCII, colours or none."""

    unicode: bool = True
    color: bool = False

    @property
    def symbols(self) -> Dict[str, str]:
        return _UNICODE if self.unicode else _ASCII

    def paint(self, text: str, key: str) -> str:
        if not self.color or key not in _COLORS:
            return text
        return f"\x1b[{_COLORS[key]}m{text}\x1b[0m"

    def mark(self, status: Status) -> str:
        return self.paint(self.symbols[status.value], status.value)

    def severity_mark(self, severity: Severity) -> str:
        key = {Severity.FAIL: "fail", Severity.WARN: "warn", Severity.INFO: "skip"}[severity]
        return self.paint(self.symbols[key], key)

    def verdict_plain(self, verdict: Verdict) -> str:
        """The verdict word with its mark, without colour (its width on screen)."""
        return f"{self.symbols[_VERDICT_KEY[verdict]]} {verdict.value.upper()}"

    def verdict(self, verdict: Verdict) -> str:
        return self.paint(self.verdict_plain(verdict), _VERDICT_KEY[verdict])


_VERDICT_KEY = {Verdict.HEALTHY: "ok", Verdict.UNHEALTHY: "fail", Verdict.UNKNOWN: "unknown"}
