"""Benchmark of the network stage: a black hole costs about a second, a healthy run little CPU.

    sudo python3 -m benchmarks.network_bench [-n 9]      # from the repository root, as root

Every case runs the real ``python -m gd_doctor check`` inside a network namespace this script
makes (the recipe of tests/network/netns.py: loopback plus a veth black hole, nothing routed
out), side by side with its baseline in the same namespace, interleaved; each figure is the
median of the runs with their min-max (benchmarks/bench.py's cases and table):

* **black hole** (IMDS at 169.254.169.254, the resolver of resolv.conf and every endpoint lead
  into the black hole), without and with ``--region`` (which lets the DNS, TCP and HTTPS
  probes start at once, alongside IMDS). Baseline, the start-up: the same run with ``--skip
  imds,network`` that imports ssl first (gd-doctor's own start-up, its local checks, and the
  standard library's TLS module every live run with network checks loads; the offline run does
  not load it). Target: at most 1.3 s more than the baseline
  (shown as the ratio against baseline + 1.3 s, which must stay <= 1).
* **healthy, CPU**: a fake IMDS on 169.254.169.254, a fake DNS server on 127.0.0.1:53 and a
  trustme TLS endpoint on a VPC address answering as AWS does, all inside the namespace, the
  run trusting this machine's CA store with the fake endpoint's CA added (a store as large as
  an instance's, whose loading is part of the cost); the CPU time (user + system) of the whole
  run against ``python -c "import typer, requests, psutil"`` in the same namespace. Target:
  <= 1.5x. The host's own files are this machine's (no GuardDuty agent here), so the agent
  checks find nothing to read at length.
* **healthy, wall**: the same full run against the same start-up baseline. Target: the network
  stage adds at most 50 ms (ratio against baseline + 50 ms <= 1).

Exit status 0 when every target holds, 1 otherwise, 2 when not root.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench import CPU_BASELINE, PY, Case, bench_env, measure, report  # noqa: E402
from tests.fakes.dns import FakeDnsServer  # noqa: E402
from tests.fakes.imds import FakeImds  # noqa: E402
from tests.fakes.tls import TlsEndpoint  # noqa: E402
from tests.network.netns import inside, make_netns, unavailable_reason  # noqa: E402

HOST = "guardduty-data.us-east-1.amazonaws.com"
ENDPOINT_IP = "192.0.2.25"  # inside the fake IMDS's VPC CIDR 192.0.2.0/24
BLACK_HOLE_S = 1.3
NETWORK_STAGE_S = 0.05
SSM_SERVICES = ("ssm", "ssmmessages", "ec2messages")
CHECK = [PY, "-m", "gd_doctor", "check", "--format", "json"]
OFFLINE = ["--skip", "imds,network"]
# The offline run with the TLS module loaded as the live run loads it (an offline run does not
# import it), so that the healthy wall case measures the network stage itself.
OFFLINE_WITH_TLS = [
    PY,
    "-c",
    "import runpy, sys, ssl; "
    f"sys.argv = ['gd-doctor', 'check', '--format', 'json', *{OFFLINE!r}]; "
    "runpy.run_module('gd_doctor', run_name='__main__')",
]


def _allowance(name: str, command: Sequence[str], allowance: float) -> Case:
    """``command`` against the offline run (with the TLS module loaded), plus ``allowance``."""
    return Case(
        name,
        command,
        OFFLINE_WITH_TLS,
        1.0,
        ok_codes=(0, 1),
        baseline_ok_codes=(0, 1),
        baseline_name="start-up: the same run with --skip imds,network and ssl imported, "
        f"+ {allowance:g} s",
        allowance=allowance,
    )


def black_hole_cases() -> List[Case]:
    return [
        _allowance("black hole, check", CHECK, BLACK_HOLE_S),
        _allowance(
            "black hole, check --region us-east-1", [*CHECK, "--region", "us-east-1"], BLACK_HOLE_S
        ),
    ]


def healthy_cases() -> List[Case]:
    return [
        Case(
            "healthy fakes, check (CPU)",
            CHECK,
            [PY, "-c", CPU_BASELINE],
            1.5,
            ok_codes=(0, 1),  # no agent on this machine: the verdict is not healthy
            metric="cpu",
            baseline_name=f'python -c "{CPU_BASELINE}"',
        ),
        _allowance("healthy fakes, check (wall)", CHECK, NETWORK_STAGE_S),
    ]


def _healthy_fakes(stack: ExitStack, ns: str) -> str:
    """Start the fakes inside ``ns``; returns the CA bundle the run must trust."""
    names: Dict[str, List[str]] = {
        HOST: [ENDPOINT_IP],
        "guardduty-data-v2.us-east-1.amazonaws.com": [ENDPOINT_IP],
        **{
            f"{s}.us-east-1.amazonaws.com": [ENDPOINT_IP]
            for s in ("ssm", "ssmmessages", "ec2messages")
        },
    }
    stack.enter_context(inside(ns, lambda: FakeImds("169.254.169.254", 80, tokens="required")))
    stack.enter_context(inside(ns, lambda: FakeDnsServer("127.0.0.1", 53, names=names)))
    tls = stack.enter_context(inside(ns, lambda: TlsEndpoint(HOST, host=ENDPOINT_IP, port=443)))
    return _store_with(Path(tls.ca_file), Path(stack.enter_context(tempfile.TemporaryDirectory())))


def _store_with(ca_file: Path, into: Path) -> str:
    """This machine's CA store with the fake endpoint's CA added: what the run loads is as
    large as the store of a real instance (a one-certificate bundle would hide its cost)."""
    system = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    store = into / "ca-bundle.pem"
    parts = [Path(system).read_bytes()] if Path(system).is_file() else []
    store.write_bytes(b"\n".join([*parts, ca_file.read_bytes()]))
    return str(store)


def _inside(ns: str) -> Tuple[str, ...]:
    """Run in the namespace, and in a PID namespace of its own: the live checks look for the
    agent's process, and on a shared machine another test's container may be running a
    stand-in agent with a proxy in its environment, which would send the probes elsewhere."""
    return ("ip", "netns", "exec", ns, "unshare", "--pid", "--fork", "--mount-proc")


def run(runs: int, warmup: int) -> List[Tuple[str, Case]]:
    results: List[Tuple[str, Case]] = []
    with tempfile.TemporaryDirectory(prefix="gd-doctor-bench-") as pycache:
        env = {**bench_env(pycache), "PYTHONPATH": str(REPO)}
        with make_netns() as ns:
            for case in black_hole_cases():
                measure(case, runs, warmup, env, prefix=_inside(ns))
                results.append(("network", case))
        healthy_ns = make_netns(
            addresses=["169.254.169.254", ENDPOINT_IP], resolv_conf="nameserver 127.0.0.1\n"
        )
        with healthy_ns as ns, ExitStack() as stack:
            env = {**env, "AWS_CA_BUNDLE": _healthy_fakes(stack, ns)}
            for case in healthy_cases():
                measure(case, runs, warmup, env, prefix=_inside(ns))
                results.append(("network", case))
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=9, help="timed runs (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    options = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        print(f"network_bench: {reason}", file=sys.stderr)
        return 2
    results = run(options.runs, options.warmup)
    report(results, options.runs, options.json)
    return 0 if all(c.passed for _, c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
