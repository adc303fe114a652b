#!/usr/bin/env python3
"""The fault suite's figures, for the README's reliability section.

    python3 benchmarks/faults.py              # everything, 10,000 fuzz inputs per parser
    python3 benchmarks/faults.py --quick      # 300 fuzz inputs per parser, no control run
    python3 benchmarks/faults.py --json

Prints: hostile roots tried and escapes, secrets planted and leaked, runs past the time budget
(timeout x 1.05 + 0.5 s), processes left behind, host writes, fuzz inputs and unhandled
exceptions per parser. Every "must be 0" figure that is not 0 makes the exit status 1.
Run from the repository's top directory (it imports the suite from tests/faults/); the
hostile-root and live-write parts need root (namespaces, strace) and say so when skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _section(name: str, fn: Any, *args: Any, **kwargs: Any) -> Dict[str, Any]:
    started = time.monotonic()
    try:
        figures = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a section that cannot run is reported, not fatal
        return {"section": name, "error": f"{type(exc).__name__}: {exc}"}
    return {"section": name, "seconds": round(time.monotonic() - started, 1), **figures}


MUST_BE_ZERO = {
    "hostile": ("escapes", "runs_over_budget", "processes_left", "host_writes"),
    "secrets": ("leaked", "cli_leaked"),
    "fuzz": ("escaped",),
}


def _bad(result: Dict[str, Any]) -> List[str]:
    if "error" in result:
        return [f"{result['section']}: {result['error']}"]
    out = []
    for key in MUST_BE_ZERO[result["section"]]:
        value = result.get(key)
        count = len(value) if isinstance(value, list) else value
        if count not in (0, None):
            out.append(f"{result['section']}.{key} = {count}")
    return out


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="300 fuzz inputs per parser")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.chdir(REPO)
    from tests.faults.fuzz_summary import fuzz_summary

    results = []
    try:
        from tests.faults.hostile import hostile_summary

        results.append(_section("hostile", hostile_summary, live=os.geteuid() == 0))
    except ImportError as exc:
        results.append({"section": "hostile", "error": f"not available: {exc}"})
    try:
        from tests.faults.secrets_summary import secrets_summary

        results.append(_section("secrets", secrets_summary, control=not args.quick))
    except ImportError as exc:
        results.append({"section": "secrets", "error": f"not available: {exc}"})
    results.append(_section("fuzz", fuzz_summary, 300 if args.quick else 10_000))
    problems = [p for r in results for p in _bad(r)]
    if args.json:
        print(json.dumps({"results": results, "problems": problems}, indent=2, default=str))
    else:
        for r in results:
            shown = {k: v for k, v in r.items() if k not in ("per_parser", "leaks", "escaped_list")}
            print(
                f"{r['section']:8} "
                + ", ".join(f"{k}={v}" for k, v in shown.items() if k != "section")
            )
        fuzz = next(r for r in results if r["section"] == "fuzz")
        for row in fuzz.get("per_parser", []):
            print(f"  fuzz {row['parser']:45} inputs={row['inputs']:6} escaped={row['escaped']}")
        print("faults: " + ("all zero" if not problems else "; ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
