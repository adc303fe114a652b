#!/usr/bin/env python3
"""``gd-doctor fleet summary`` at Organization scale, side by side with ``jq``.

Generates, in a temporary directory, N host reports in the Run Command S3 layout
(``<prefix>/<command-id>/<instance-id>/awsrunShellScript/0.awsrunShellScript/stdout``, the JSON
report indented as gd-doctor prints it) plus an N-resource ``list-coverage`` export, then runs,
interleaved, several times each:

* ``gd-doctor fleet summary DIR --coverage us-east-1=FILE --format json`` (the whole roll-up);
* the baseline ``find DIR -name stdout -print0 | xargs -0 cat | jq -n 'reduce inputs as $r
  ({}; .[$r.verdict] += 1)'``: jq doing only the count by verdict over the same report files.

It prints the median wall time with min-max, the peak RSS of each side (``wait4``: the largest
process of the pipeline), the ratios, and the idle RSS of ``fleet summary`` (the same command over
an empty directory) to show that memory does not grow with the number of reports (target: at
most 2x idle; time target: at least 2x faster than jq).

    python3 benchmarks/fleet_bench.py                 # 100,000 reports, 3 runs each
    python3 benchmarks/fleet_bench.py -N 20000 -n 5   # smaller, more runs
    python3 benchmarks/fleet_bench.py --json

The base reports come from ``gd-doctor check --root`` over the fixture roots in
tests/fixtures/roots (real reports); one of them is also written as a healthy report (verdict
healthy, no findings) so the verdicts are mixed. Exit status 0 when both targets are met, 1 when
not, 2 when jq is missing (install it: apt-get install jq).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
ROOTS = REPO / "tests" / "fixtures" / "roots"
PY = sys.executable
IID, REGION, STARTED = "i-00000000PLACEHOLD", "pl-placeholder-1", "1999-01-01T00:00:00+00:00"
JQ_COUNT = "reduce inputs as $r ({}; .[$r.verdict] += 1)"


def base_reports() -> List[str]:
    """Real reports of the fixture roots as templates (identity fields as placeholders)."""
    out: List[str] = []
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    for root in sorted(p for p in ROOTS.iterdir() if p.is_dir()):
        proc = subprocess.run(
            [
                PY,
                "-m",
                "gd_doctor",
                "check",
                "--root",
                str(root / "root"),
                "--format",
                "json",
                "--timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(REPO),
            timeout=120,
            check=False,
        )
        doc = json.loads(proc.stdout)
        doc["host"].update({"instance_id": IID, "region": REGION})
        doc["started_at"] = STARTED
        out.append(json.dumps(doc, indent=2) + "\n")
        if len(out) == 1:  # a healthy one too, so the verdicts are mixed
            healthy = dict(doc, verdict="healthy", findings=[])
            out.append(json.dumps(healthy, indent=2) + "\n")
    return out


def generate(top: Path, n: int, seed: int = 16) -> Tuple[Path, Path]:
    """N reports under ``top/s3`` and an N-resource coverage export ``top/coverage.json``."""
    rng = random.Random(seed)
    bases = base_reports()
    cmd = str(uuid.UUID(int=rng.getrandbits(128)))
    s3 = top / "s3" / "gd-doctor" / cmd
    resources: List[Dict[str, Any]] = []
    accounts = [f"{rng.randrange(10**11, 10**12):012d}" for _ in range(12)]
    for i in range(n):
        iid = f"i-{rng.getrandbits(68):017x}"
        text = bases[i % len(bases)]
        started = f"2026-11-30T{8 + (i % 10):02d}:{i % 60:02d}:00+00:00"
        text = text.replace(IID, iid).replace(REGION, "us-east-1").replace(STARTED, started)
        d = s3 / iid / "awsrunShellScript" / "0.awsrunShellScript"
        d.mkdir(parents=True)
        (d / "stdout").write_text(text, encoding="utf-8")
        healthy = '"verdict": "healthy"' in text
        resources.append(
            {
                "ResourceId": iid,
                "DetectorId": "12abc34d567e8fa901bc2d34e56789f0",
                "AccountId": accounts[i % len(accounts)],
                "ResourceDetails": {
                    "Ec2InstanceDetails": {
                        "InstanceId": iid,
                        "InstanceType": "m5.large",
                        "AgentDetails": {"Version": "1.17.1"},
                        "ManagementType": "AUTO_MANAGED",
                    },
                    "ResourceType": "EC2",
                },
                "CoverageStatus": "HEALTHY" if healthy else "UNHEALTHY",
                "Issue": "" if healthy else "Waiting for SSM notification",
                "UpdatedAt": "2026-11-30T07:30:00.000000+00:00",
            }
        )
    cov = top / "coverage.json"
    with open(cov, "w", encoding="utf-8") as fh:
        json.dump({"Resources": resources}, fh, indent=4)
    return top / "s3", cov


def run(argv: Sequence[str], shell: bool = False) -> Tuple[float, int]:
    """Wall time and peak RSS (KiB) of one run, the largest process of a pipeline."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv if not shell else ["/bin/sh", "-c", argv[0]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=str(REPO),
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{argv[0]} ... exited {proc.returncode}: {err[-400:]}")
    return elapsed, int(usage.ru_maxrss)


def fmt_times(ts: Sequence[float]) -> str:
    return f"{statistics.median(ts):7.2f} s ({min(ts):.2f}-{max(ts):.2f})"


def main(argv: Sequence[str] = ()) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-N", "--reports", type=int, default=100_000)
    ap.add_argument("-n", "--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    opts = ap.parse_args(list(argv) or None)
    if shutil.which("jq") is None:
        print("fleet_bench: jq is not installed (apt-get install jq)", file=sys.stderr)
        return 2
    tmp = opts.keep or Path(tempfile.mkdtemp(prefix="gd-fleet-bench-"))
    try:
        t0 = time.perf_counter()
        if opts.keep and (tmp / "coverage.json").exists():
            reports, cov = tmp / "s3", tmp / "coverage.json"
        else:
            reports, cov = generate(tmp, opts.reports)
        gen_s = time.perf_counter() - t0
        empty = tmp / "empty"
        empty.mkdir(exist_ok=True)
        fleet = [
            PY,
            "-m",
            "gd_doctor",
            "fleet",
            "summary",
            str(reports),
            "--coverage",
            f"us-east-1={cov}",
            "--format",
            "json",
            "--no-progress",
        ]
        idle_cmd = [PY, "-m", "gd_doctor", "fleet", "summary", str(empty), "--format", "json"]
        jq = [f"find {reports} -name stdout -print0 | xargs -0 cat | jq -n '{JQ_COUNT}'"]
        run(fleet)  # warm-up: page cache and .pyc for both sides
        run(jq, shell=True)
        ft: List[float] = []
        fr: List[int] = []
        jt: List[float] = []
        jr: List[int] = []
        for _ in range(opts.runs):  # interleaved, so both see the same machine load
            t, r = run(fleet)
            ft.append(t)
            fr.append(r)
            t, r = run(jq, shell=True)
            jt.append(t)
            jr.append(r)
        idle = statistics.median(run(idle_cmd)[1] for _ in range(3))
        fm, jm = statistics.median(ft), statistics.median(jt)
        result = {
            "reports": opts.reports,
            "coverage_resources": opts.reports,
            "runs": opts.runs,
            "generate_s": round(gen_s, 1),
            "fleet_summary_s": {"median": fm, "min": min(ft), "max": max(ft)},
            "jq_count_s": {"median": jm, "min": min(jt), "max": max(jt)},
            "speedup_vs_jq": jm / fm if fm else None,
            "fleet_peak_rss_mib": max(fr) / 1024,
            "jq_peak_rss_mib": max(jr) / 1024,
            "fleet_idle_rss_mib": idle / 1024,
            "fleet_peak_over_idle": max(fr) / idle if idle else None,
        }
        ok = result["speedup_vs_jq"] >= 2.0 and result["fleet_peak_over_idle"] <= 2.0  # type: ignore[operator]
        result["targets_met"] = ok
        if opts.json:
            print(json.dumps(result, indent=2))
        else:
            print(
                f"fleet_bench: {opts.reports:,} reports + {opts.reports:,}-resource "
                f"list-coverage export (generated in {gen_s:.0f} s), {opts.runs} runs each"
            )
            print(
                f"  gd-doctor fleet summary   {fmt_times(ft)}   peak RSS {max(fr) / 1024:6.1f} MiB"
            )
            print(
                f"  jq count by verdict       {fmt_times(jt)}   peak RSS {max(jr) / 1024:6.1f} MiB"
            )
            print(
                f"  fleet summary is {result['speedup_vs_jq']:.2f}x faster than jq (target >= 2x)"
            )
            print(
                f"  fleet summary idle RSS {idle / 1024:.1f} MiB; peak/idle "
                f"{result['fleet_peak_over_idle']:.2f}x (target <= 2x)"
            )
            print(f"  targets {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
