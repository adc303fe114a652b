"""Benchmark of the network stage: bounded when everything is black-holed, cheap when healthy.

    sudo python3 -m benchmarks.network_bench [-n 9]      # from the repository root, as root

Both cases run ``python -m gd_doctor check`` inside a network namespace this script makes (the
recipe of tests/network/netns.py: loopback plus a veth black hole, nothing routed out):

* **black-holed**: IMDS (169.254.169.254), the resolver in resolv.conf and every endpoint lead
  into the black hole. Target: ``check --timeout 5`` returns in <= 5.25 s wall (median), with
  and without ``--region`` (which lets the DNS and endpoint probes start).
* **healthy**: a fake IMDS on 169.254.169.254, a fake DNS server on 127.0.0.1:53 and a trustme
  TLS endpoint on a VPC address, all inside the namespace. Target: the full run takes at most
  50 ms longer (median) than the same run with ``--skip imds --skip network`` (the offline run).

Exit status 0 when both targets hold, 1 otherwise, 2 when not root.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.dns import FakeDnsServer  # noqa: E402
from tests.fakes.imds import FakeImds  # noqa: E402
from tests.fakes.tls import TlsEndpoint  # noqa: E402
from tests.network.netns import inside, make_netns, unavailable_reason  # noqa: E402

HOST = "guardduty-data.us-east-1.amazonaws.com"
ENDPOINT_IP = "192.0.2.25"  # inside the fake IMDS's VPC CIDR 192.0.2.0/24


def _time(ns: str, args: Sequence[str], env: Optional[dict] = None) -> float:  # type: ignore[type-arg]
    full = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
        **(env or {}),
    }
    start = time.perf_counter()
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            sys.executable,
            "-m",
            "gd_doctor",
            "check",
            "--format",
            "json",
            *args,
        ],
        capture_output=True,
        env=full,
        timeout=60,
        cwd=str(REPO),
        check=False,
    )
    return time.perf_counter() - start


def _median(ns: str, runs: int, args: Sequence[str], env: Optional[dict] = None) -> float:  # type: ignore[type-arg]
    _time(ns, args, env)  # warm-up: bytecode and page cache
    return statistics.median(_time(ns, args, env) for _ in range(runs))


def black_holed(runs: int) -> List[str]:
    rows = []
    with make_netns() as ns:
        for extra in ([], ["--region", "us-east-1"]):
            wall = _median(ns, runs, ["--timeout", "5", *extra])
            verdict = "PASS" if wall <= 5.25 else "FAIL"
            rows.append(
                f"black-holed check --timeout 5 {' '.join(extra)}: "
                f"{wall:.2f} s (target <= 5.25 s) {verdict}"
            )
    return rows


def healthy(runs: int) -> List[str]:
    with make_netns(
        addresses=["169.254.169.254", ENDPOINT_IP], resolv_conf="nameserver 127.0.0.1\n"
    ) as ns:
        imds = inside(ns, lambda: FakeImds("169.254.169.254", 80, tokens="required"))
        dns = inside(
            ns,
            lambda: FakeDnsServer(
                "127.0.0.1",
                53,
                names={
                    HOST: [ENDPOINT_IP],
                    "guardduty-data-v2.us-east-1.amazonaws.com": [ENDPOINT_IP],
                    **{
                        f"{s}.us-east-1.amazonaws.com": [ENDPOINT_IP]
                        for s in ("ssm", "ssmmessages", "ec2messages")
                    },
                },
            ),
        )
        tls = inside(ns, lambda: TlsEndpoint(HOST, host=ENDPOINT_IP, port=443))
        with imds, dns, tls:
            env = {"AWS_CA_BUNDLE": tls.ca_file}
            full = _median(ns, runs, ["--timeout", "20"], env)
            offline = _median(
                ns, runs, ["--timeout", "20", "--skip", "imds", "--skip", "network"], env
            )
    added = (full - offline) * 1000
    verdict = "PASS" if added <= 50 else "FAIL"
    return [
        f"healthy fakes: full {full * 1000:.0f} ms, offline {offline * 1000:.0f} ms, "
        f"network stage adds {added:.0f} ms (target <= 50 ms) {verdict}"
    ]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=9, help="timed runs (median)")
    options = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        print(f"network_bench: {reason}", file=sys.stderr)
        return 2
    rows = black_holed(options.runs) + healthy(options.runs)
    print("\n".join(rows))
    print(f"median of {options.runs} runs each; python {sys.version.split()[0]}")
    return 0 if all(r.endswith("PASS") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
