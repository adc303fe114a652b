#!/usr/bin/env python3
"""Start-up benchmarks of gd-doctor, each measured side by side with a baseline in one run.

Stdlib only, plus the installed ``gd_doctor`` package. Each *section* is a function registered
with ``@section(name)`` that returns cases; a case runs a command and its baseline N times each
(interleaved, so both see the same machine load) and compares the medians:

    python3 benchmarks/bench.py                 # every section, 15 runs each
    python3 benchmarks/bench.py -n 31 startup   # one section, more runs
    python3 benchmarks/bench.py --json          # machine-readable

Exit status: 0 when every case meets its target ratio, 1 otherwise, 2 on usage errors.
To add a section, write a function taking the parsed options and returning ``List[Case]``,
decorate it with ``@section("name")``, and it is listed, run and printed like the others.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / "tests" / "fixtures" / "roots" / "al2023-x86_64" / "root"
PY = sys.executable


@dataclass
class Case:
    """One comparison: ``command`` must take at most ``target`` times ``baseline``."""

    name: str
    command: Sequence[str]
    baseline: Sequence[str]
    target: float
    ok_codes: Sequence[int] = (0,)
    times: List[float] = field(default_factory=list)
    base_times: List[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def base_median(self) -> float:
        return statistics.median(self.base_times)

    @property
    def ratio(self) -> float:
        return self.median / self.base_median if self.base_median else float("inf")

    @property
    def passed(self) -> bool:
        return self.ratio <= self.target


SectionFn = Callable[[argparse.Namespace], List[Case]]
SECTIONS: Dict[str, SectionFn] = {}


def section(name: str) -> Callable[[SectionFn], SectionFn]:
    """Register a section of cases under ``name`` (the order of registration is the order run)."""

    def wrap(fn: SectionFn) -> SectionFn:
        if name in SECTIONS:
            raise ValueError(f"section {name!r} registered twice")
        SECTIONS[name] = fn
        return fn

    return wrap


def gd_doctor_cmd(options: argparse.Namespace) -> List[str]:
    """How to start gd-doctor: the installed console script if asked, else ``python -m``."""
    if options.script:
        return [options.script]
    return [PY, "-m", "gd_doctor"]


@section("startup")
def startup(options: argparse.Namespace) -> List[Case]:
    """What a user waits for before anything is checked."""
    cli = gd_doctor_cmd(options)
    root = str(options.root)
    return [
        Case("gd-doctor --version", [*cli, "--version"], [PY, "-c", "import typer"], 2.0),
        Case(
            f"gd-doctor check --root {Path(root).parent.name}",
            [*cli, "check", "--root", root, "--format", "json", "--timeout", "30"],
            [PY, "-c", "import typer, requests, psutil"],
            1.5,
            ok_codes=(0, 1),  # 1 = problems found, which a fixture root may well have
        ),
    ]


def bench_env(pycache: str) -> Dict[str, str]:
    """The children's environment: bytecode caching on, into a private directory.

    Installed packages (pip, .deb, .rpm) run from compiled bytecode; a source checkout under
    PYTHONDONTWRITEBYTECODE=1 would recompile gd_doctor on every start while the baseline's
    site-packages are compiled, which measures the checkout rather than the tool. Both sides
    write and read their bytecode under ``pycache`` (PYTHONPYCACHEPREFIX), filled by the warm-up
    runs, so the work tree is left untouched.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"NO_COLOR": "1", "PYTHONPYCACHEPREFIX": pycache})
    return env


def _run_once(argv: Sequence[str], ok_codes: Sequence[int], env: Dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=str(REPO),  # so `python -m gd_doctor` finds a source checkout too
        timeout=120,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        tail = proc.stderr.decode(errors="replace")[-500:]
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {tail}")
    return elapsed


def measure(case: Case, runs: int, warmup: int, env: Dict[str, str]) -> None:
    for _ in range(warmup):  # fill the page cache and .pyc files for both sides
        _run_once(case.command, case.ok_codes, env)
        _run_once(case.baseline, (0,), env)
    for _ in range(runs):
        case.times.append(_run_once(case.command, case.ok_codes, env))
        case.base_times.append(_run_once(case.baseline, (0,), env))


def render_table(rows: List[tuple]) -> str:  # type: ignore[type-arg]
    header = ("section", "case", "median", "baseline", "ratio", "target", "result")
    table = [header, *rows]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sections", nargs="*", help=f"sections to run (default all: {', '.join(SECTIONS)})"
    )
    parser.add_argument(
        "-n", "--runs", type=int, default=15, help="timed runs per command (median)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="fixture root for 'check'")
    parser.add_argument(
        "--script", help="path of an installed gd-doctor script (default: python -m gd_doctor)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    options = parser.parse_args(argv)
    unknown = [s for s in options.sections if s not in SECTIONS]
    if unknown or options.runs < 1:
        parser.error(f"unknown section(s) {unknown}" if unknown else "--runs must be >= 1")
    results = []
    with tempfile.TemporaryDirectory(prefix="gd-doctor-bench-") as pycache:
        env = bench_env(pycache)
        for name in options.sections or list(SECTIONS):
            for case in SECTIONS[name](options):
                measure(case, options.runs, options.warmup, env)
                results.append((name, case))
    if options.json:
        print(
            json.dumps(
                [
                    {
                        "section": s,
                        "case": c.name,
                        "median_s": c.median,
                        "baseline_s": c.base_median,
                        "ratio": c.ratio,
                        "target": c.target,
                        "passed": c.passed,
                        "runs": len(c.times),
                    }
                    for s, c in results
                ],
                indent=2,
            )
        )
    else:
        rows = [
            (
                s,
                c.name,
                f"{c.median * 1000:.0f} ms",
                f"{c.base_median * 1000:.0f} ms",
                f"{c.ratio:.2f}x",
                f"<= {c.target:g}x",
                "PASS" if c.passed else "FAIL",
            )
            for s, c in results
        ]
        print(render_table(rows))
        print(f"\nmedian of {options.runs} runs each, interleaved; python {sys.version.split()[0]}")
    return 0 if all(c.passed for _, c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
