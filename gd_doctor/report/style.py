"""Symbols and colours for the text renderers; ASCII and plain fallbacks for dumb outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

from gd_doctor.model import Severity, Status, Verdict

_UNICODE = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "–", "error": "?", "dash": "—"}
_ASCII = {"ok": "+", "warn": "!", "fail": "x", "skip": "-", "error": "?", "dash": "-"}
_COLORS = {
    "ok": "32",
    "warn": "33",
    "fail": "31",
    "skip": "90",
    "error": "35",
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

    def verdict(self, verdict: Verdict) -> str:
        key = {Verdict.HEALTHY: "ok", Verdict.UNHEALTHY: "fail", Verdict.UNKNOWN: "warn"}[verdict]
        return self.paint(f"{self.symbols[key]} {verdict.value.upper()}", key)
