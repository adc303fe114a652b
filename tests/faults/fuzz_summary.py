"""Figures of the parser fuzz suite for benchmarks/faults.py: inputs tried and exceptions that
escaped, per parser (every ``escaped`` must be 0)."""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from hypothesis import HealthCheck, given, settings

from gd_doctor.parsers.errors import ParseError
from tests.faults.test_parser_fuzz import PARSERS, _inputs


def _fuzz_one(parse: Callable[[str], Any], seeds: List[str], examples: int) -> Dict[str, Any]:
    counts = {"inputs": 0, "escaped": 0}
    kinds: Dict[str, int] = {}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_inputs(seeds))
    def run(text: str) -> None:
        counts["inputs"] += 1
        try:
            parse(text)
        except ParseError:
            pass
        except Exception as exc:  # noqa: BLE001 - counted, which is the point
            counts["escaped"] += 1
            kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1

    run()
    return {**counts, "kinds": kinds}


def fuzz_summary(examples: int = 10_000) -> Dict[str, Any]:
    rows = [{"parser": name, **_fuzz_one(parse, seeds, examples)} for name, parse, seeds in PARSERS]
    return {
        "parsers": len(rows),
        "inputs": sum(r["inputs"] for r in rows),
        "escaped": sum(r["escaped"] for r in rows),
        "per_parser": rows,
    }
