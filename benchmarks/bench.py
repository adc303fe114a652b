#!/usr/bin/env python3
"""Start-up benchmarks of gd-doctor, each measured side by side with a baseline in one run.

Stdlib only, plus the ``gd_doctor`` package of this checkout. Each *section* is a function
registered with ``@section(name)`` that returns cases; a case runs a command and its baseline
N times each, interleaved (so both see the same machine load), and compares the medians. Every
figure is printed as its median with the min-max of the runs, and as a ratio against its
baseline with the min-max of the run-by-run ratios:

    python3 benchmarks/bench.py                 # every section, 15 runs each
    python3 benchmarks/bench.py -n 31 startup   # one section, more runs
    python3 benchmarks/bench.py --json          # machine-readable

A case measures wall time (``wall``) or the CPU time, user plus system, of the child process
(``cpu``, from ``getrusage(RUSAGE_CHILDREN)``, so the machine's load does not inflate it).

Exit status: 0 when every case meets its target ratio, 1 otherwise, 2 on usage errors.
To add a section, write a function taking the parsed options and returning ``List[Case]``,
decorate it with ``@section("name")``, and it is listed, run and printed like the others;
``benchmarks/network_bench.py`` uses the same cases and table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / "tests" / "fixtures" / "roots" / "al2023-x86_64" / "root"
PY = sys.executable
CPU_BASELINE = "import typer, requests, psutil"


@dataclass
class Case:
    """One comparison: ``command`` must take at most ``target`` times ``baseline``.

    ``also`` are more baseline commands whose times are added to the baseline's in each run
    (``python -I -c pass`` plus the import of one module, for instance). ``allowance`` is added
    to the baseline for the ratio, for a target of "at most the baseline plus 1.3 s".
    """

    name: str
    command: Sequence[str]
    baseline: Sequence[str]
    target: float
    ok_codes: Sequence[int] = (0,)
    baseline_ok_codes: Sequence[int] = (0,)
    metric: str = "wall"
    also: Sequence[Sequence[str]] = ()
    baseline_name: str = ""
    allowance: float = 0.0
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
        base = self.base_median + self.allowance
        return self.median / base if base else float("inf")

    @property
    def ratios(self) -> List[float]:
        """The run-by-run ratios (run i of the command against run i of the baseline)."""
        return [
            t / (b + self.allowance) if b + self.allowance else float("inf")
            for t, b in zip(self.times, self.base_times)
        ]

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


def import_in_isolation(module: str) -> List[str]:
    """``python -I`` importing one module of this checkout (-I ignores PYTHONPATH and cwd)."""
    return [PY, "-I", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); import {module}"]


@section("startup")
def startup(options: argparse.Namespace) -> List[Case]:
    """What a user waits for before anything is checked."""
    cli = gd_doctor_cmd(options)
    root = str(options.root)
    return [
        Case(
            "gd-doctor --version",
            [*cli, "--version"],
            [PY, "-I", "-c", "pass"],
            # "at most 2x python3 -I -c pass plus its own module's import": the baseline is
            # pass + (pass + import gd_doctor.entry), the second run holding the import
            also=[import_in_isolation("gd_doctor.entry")],
            target=1.0,
            baseline_name="python -I -c pass, twice, + import gd_doctor.entry",
        ),
        Case(
            f"gd-doctor check --root {Path(root).parent.name} (CPU)",
            [*cli, "check", "--root", root, "--format", "json", "--timeout", "30"],
            [PY, "-c", CPU_BASELINE],
            1.5,
            ok_codes=(0, 1),  # 1 = problems found, which a fixture root may well have
            metric="cpu",
            baseline_name=f'python -c "{CPU_BASELINE}"',
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(
    argv: Sequence[str], ok_codes: Sequence[int], env: Dict[str, str], metric: str = "wall"
) -> float:
    """One run of ``argv``: its wall time, or the CPU time it used (``metric="cpu"``)."""
    cpu0, start = _children_cpu(), time.perf_counter()
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
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if proc.returncode not in ok_codes:
        tail = proc.stderr.decode(errors="replace")[-500:]
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {tail}")
    return cpu if metric == "cpu" else elapsed


def measure(
    case: Case, runs: int, warmup: int, env: Dict[str, str], prefix: Sequence[str] = ()
) -> None:
    """Run ``case`` and its baseline ``runs`` times each, interleaved, after ``warmup`` runs."""

    def command() -> float:
        return run_once([*prefix, *case.command], case.ok_codes, env, case.metric)

    def baseline() -> float:
        parts = [case.baseline, *case.also]
        codes = case.baseline_ok_codes
        return sum(run_once([*prefix, *p], codes, env, case.metric) for p in parts)

    for _ in range(warmup):  # fill the page cache and .pyc files for both sides
        command()
        baseline()
    for _ in range(runs):
        case.times.append(command())
        case.base_times.append(baseline())


def _span(values: Sequence[float], scale: float, unit: str, digits: int = 0) -> str:
    def fmt(v: float) -> str:
        return f"{v * scale:.{digits}f}"

    return f"{fmt(statistics.median(values))} {unit} ({fmt(min(values))}-{fmt(max(values))})"


def row_of(section_name: str, case: Case) -> Tuple[str, ...]:
    """One table row: medians with min-max; the ratio judged (median against median) with the
    min-max of the run-by-run ratios."""
    unit = "ms CPU" if case.metric == "cpu" else "ms"
    return (
        section_name,
        case.name,
        _span(case.times, 1000, unit),
        _span(case.base_times, 1000, unit),
        f"{case.ratio:.2f}x ({min(case.ratios):.2f}-{max(case.ratios):.2f})",
        f"<= {case.target:g}x",
        "PASS" if case.passed else "FAIL",
    )


HEADER = ("section", "case", "median (min-max)", "baseline", "ratio", "target", "result")


def render_table(rows: List[Tuple[str, ...]]) -> str:
    table = [HEADER, *rows]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(HEADER))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def baselines_text(cases: Sequence[Tuple[str, Case]]) -> str:
    """What each case's baseline is, once per distinct baseline."""
    seen: Dict[str, None] = {}
    for _, c in cases:
        seen.setdefault(f"  {c.name}: baseline = {c.baseline_name or ' '.join(c.baseline)}")
    return "\n".join(seen)


def as_json(results: Sequence[Tuple[str, Case]]) -> List[Dict[str, Any]]:
    return [
        {
            "section": s,
            "case": c.name,
            "metric": c.metric,
            "median_s": c.median,
            "min_s": min(c.times),
            "max_s": max(c.times),
            "baseline_s": c.base_median,
            "baseline_min_s": min(c.base_times),
            "baseline_max_s": max(c.base_times),
            "ratio": c.ratio,
            "ratio_min": min(c.ratios),
            "ratio_max": max(c.ratios),
            "target": c.target,
            "passed": c.passed,
            "runs": len(c.times),
        }
        for s, c in results
    ]


def report(results: Sequence[Tuple[str, Case]], runs: int, as_json_output: bool) -> None:
    if as_json_output:
        print(json.dumps(as_json(results), indent=2))
        return
    print(render_table([row_of(s, c) for s, c in results]))
    print(baselines_text(results))
    print(f"\nmedian of {runs} runs each, interleaved; python {sys.version.split()[0]}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
    report(results, options.runs, options.json)
    return 0 if all(c.passed for _, c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
