"""``python -m tests.simulator``: prepare, run scenarios, print the accuracy report.

python -m tests.simulator prepare            # vendored deps for the container (network)
python -m tests.simulator report [DIR ...]   # run scenarios, print the table; exit 1 < 100 %
python -m tests.simulator run DIR [--text]   # one scenario, its report and judgement
python -m tests.simulator cleanup            # remove namespaces a killed run left behind
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence

from tests.simulator.accuracy import Row, judge, summarize, table
from tests.simulator.netns import remove_stale
from tests.simulator.runner import RunResult, run_scenario, vendor_dir
from tests.simulator.scenario import REPO, Scenario, discover


def _sigterm(*_: Any) -> None:
    # Turn SIGTERM into an exception so every context manager cleans up.
    raise KeyboardInterrupt


def row_for(sc: Scenario, res: RunResult) -> Row:
    """The accuracy row of one run (a leaked secret is a failure of its own)."""
    row = Row(
        name=sc.name,
        row=sc.row or "(healthy)",
        mode=res.mode,
        judgement=None,
        known_gap=sc.known_gap,
        skipped=res.skipped,
        error=res.error,
    )
    if res.skipped or res.error:
        return row
    row.judgement = judge(
        sc.expect, res.report, res.exit_code, ignore=sc.spec.get("simulator_findings", ())
    )
    if res.leaked_secrets:
        row.judgement.problems.append("an IMDS credential reached gd-doctor's output")
    return row


def prepare(force: bool = False) -> int:
    """Install gd-doctor's runtime dependencies (packaging/vendor.lock) for the container."""
    target = vendor_dir()
    if (target / "typer").is_dir() and not force:
        print(f"vendor: {target} (already prepared)")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".vendor-", dir=target.parent))
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                "--only-binary=:all:",
                "--target",
                str(tmp),
                "-r",
                str(REPO / "packaging" / "vendor.lock"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            debs = sorted((REPO / "dist").glob("gd-doctor_*_amd64.deb"))
            if not debs or shutil.which("dpkg-deb") is None:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            # Offline: take the vendored tree of the built package instead.
            x = tmp / "x"
            subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(x)], check=True, timeout=120)
            for item in (x / "usr/lib/gd-doctor/vendor").iterdir():
                shutil.move(str(item), str(tmp / item.name))
            shutil.rmtree(x)
        shutil.rmtree(tmp / "bin", ignore_errors=True)
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"vendor: {target}")
    return 0


def report(paths: Sequence[str], out_json: Optional[str]) -> int:
    scenarios = discover([Path(p) for p in paths])
    rows: List[Row] = []
    results = []
    for sc in scenarios:
        t0 = time.monotonic()
        res = run_scenario(sc)
        row = row_for(sc, res)
        rows.append(row)
        results.append(res)
        print(f"{sc.name}: {row.status} ({time.monotonic() - t0:.0f}s)", file=sys.stderr)
    sys.stdout.write(table(rows))
    if out_json:
        Path(out_json).write_text(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "status": r.status,
                        "mode": r.mode,
                        "known_gap": r.known_gap,
                        "skipped": r.skipped,
                        "error": r.error,
                        "problems": r.judgement.problems if r.judgement else [],
                        "exit_code": res.exit_code,
                        "report": res.report,
                    }
                    for r, res in zip(rows, results)
                ],
                indent=1,
            ),
            encoding="utf-8",
        )
    s = summarize(rows)
    return 0 if s.passed == s.gated and s.gated > 0 else 1


def run_one(path: str, text: bool) -> int:
    sc = discover([Path(path)])[0]
    res = run_scenario(sc, text_output=text)
    row = row_for(sc, res)
    if text and res.stdout_text:
        sys.stdout.write(res.stdout_text)
    else:
        sys.stdout.write(res.stdout or "")
    sys.stdout.write("\n" + table([row]))
    if res.agent_state:
        print("agent unit: " + json.dumps(res.agent_state), file=sys.stderr)
    if res.stderr:
        print("gd-doctor stderr:\n" + res.stderr[-3000:], file=sys.stderr)
    return 0 if row.status == "PASS" else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulator")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="install the container's copy of gd-doctor's dependencies")
    p.add_argument("--force", action="store_true")
    p = sub.add_parser("report", help="run scenarios and print the accuracy table")
    p.add_argument("paths", nargs="*", help="scenario dirs or dirs of them (default: corpus)")
    p.add_argument("--json", dest="out_json", help="also write results as JSON to this file")
    p = sub.add_parser("run", help="run one scenario and show gd-doctor's report")
    p.add_argument("path")
    p.add_argument("--text", action="store_true", help="show the text report instead of JSON")
    sub.add_parser("cleanup", help="remove namespaces left by killed runs")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    if args.cmd == "prepare":
        return prepare(args.force)
    remove_stale()
    if args.cmd == "report":
        return report(args.paths, args.out_json)
    if args.cmd == "run":
        return run_one(args.path, args.text)
    print("removed: " + ", ".join(remove_stale()) or "nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
