"""Run the real gd-doctor CLI against one scenario and collect what it said.

``live`` scenarios: a network namespace with no route out (``tests.simulator.netns``) holds the
fake IMDS, the VPC resolver, the guardduty-data endpoint and the proxy
(``tests.simulator.servers``); a real systemd boots in a ``systemd-nspawn`` container placed in
that namespace (``tests.harness.container``), with the scenario's files, units and the stand-in
agent; gd-doctor runs **inside** the container from a read-only bind of this repository's
``gd_doctor`` package and the vendored dependencies, exactly as an operator would run it on the
instance: ``python3 -m gd_doctor check --format json``.

``root`` scenarios (rows that cannot be staged live because the kernel is shared with this
machine, or states this machine cannot produce live): a directory assembled from the scenario's
files and journal exports, checked with ``gd-doctor check --root DIR`` in a network namespace of
its own (``unshare -n``). A root scenario with a ``recorded`` note stands in for live behaviour
and is reported as ``recorded``.

Everything the run makes lives under one temporary directory and is removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from tests.simulator.netns import netns_unavailable_reason, sim_network
from tests.simulator.scenario import REPO, Scenario
from tests.simulator.servers import (
    ENDPOINT_RESPONSES,
    FAKE_SECRET_ACCESS_KEY,
    FAKE_SESSION_TOKEN,
    IMDS_ADDRESS,
)

RESOLVER = "10.0.0.2"  # the VPC resolver is at the VPC CIDR base + 2
CA_PATH = "/etc/gd-sim/ca.pem"
SRC_MOUNT = "/opt/gd-sim/src"
VENDOR_MOUNT = "/opt/gd-sim/vendor"
AUTO_AGENT = "/opt/gd-sim/amazon-guardduty-agent-auto"
DEFAULT_TIMEOUT = 20.0
SERVER_START_TIMEOUT = 15.0
SECRETS = (FAKE_SECRET_ACCESS_KEY, FAKE_SESSION_TOKEN)
STANDIN_AUTO = Path(__file__).resolve().parent / "standin_auto.py"


def cache_root() -> Path:
    return Path(os.environ.get("GD_DOCTOR_CACHE") or "/var/cache/gd-doctor-tests") / "simulator"


def vendor_dir() -> Path:
    """Where ``python -m tests.simulator prepare`` puts gd-doctor's runtime dependencies."""
    return cache_root() / "vendor"


@dataclass
class RunResult:
    """What one scenario run produced."""

    name: str
    mode: str  # live | root | recorded
    exit_code: Optional[int] = None
    report: Dict[str, Any] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    error: Optional[str] = None
    skipped: Optional[str] = None
    duration_s: float = 0.0
    requests: List[Dict[str, Any]] = field(default_factory=list)
    leaked_secrets: bool = False
    agent_state: Dict[str, str] = field(default_factory=dict)
    stdout_text: str = ""
    bundle: Optional[Path] = None  # bundle mode: the bundle the run wrote (report = its report)


def live_unavailable_reason(suite: str = "bookworm") -> Optional[str]:
    """Why live scenarios cannot run here, or None."""
    from tests.harness.container import container_unavailable_reason

    reason = netns_unavailable_reason() or container_unavailable_reason(suite)
    if reason:
        return reason
    if not (vendor_dir() / "typer").is_dir():
        return (
            f"gd-doctor's dependencies are not prepared in {vendor_dir()} "
            "(run: python -m tests.simulator prepare)"
        )
    return None


def root_unavailable_reason() -> Optional[str]:
    return None


# --------------------------------------------------------------------------------------------
# certificates


def _make_certs(sc: Scenario, state: Path) -> Dict[str, Any]:
    """A CA for the scenario's endpoints and a second one for an intercepting proxy.

    The "service" CA carries the organisation name Amazon as a stand-in for the real chain;
    the intercepting CA is named like a corporate TLS inspection box.
    """
    import trustme

    service_ca = trustme.CA(organization_name="Amazon", organization_unit_name="Server CA 1B")
    intercept_ca = trustme.CA(
        organization_name="Example Corp", organization_unit_name="TLS Inspection"
    )
    out: Dict[str, Any] = {"endpoints": []}
    for n, ep in enumerate(sc.spec.get("endpoints", [])):
        ca = intercept_ca if ep.get("behaviour") == "intercept" else service_ca
        org = "Example Corp" if ep.get("behaviour") == "intercept" else "Amazon"
        leaf = ca.issue_cert(ep["name"], common_name=ep["name"], organization_name=org)
        chain, key = state / f"ep{n}-chain.pem", state / f"ep{n}-key.pem"
        chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
        out["endpoints"].append((str(chain), str(key)))
    trust = sc.spec.get("trust", "scenario")
    bundle = b""
    if trust in ("scenario", "scenario+intercept"):
        bundle += service_ca.cert_pem.bytes()
    if trust == "scenario+intercept":
        bundle += intercept_ca.cert_pem.bytes()
    out["bundle"] = bundle
    return out


def _server_config(sc: Scenario, certs: Dict[str, Any]) -> Dict[str, Any]:
    spec = sc.spec
    cfg: Dict[str, Any] = {"parent_pid": os.getpid()}
    imds = spec.get("imds")
    if imds is not None and imds.get("reachable", True):
        cfg["imds"] = imds
    dns = dict(spec.get("dns") or {})
    dns["address"] = RESOLVER
    cfg["dns"] = dns
    eps = []
    for n, ep in enumerate(spec.get("endpoints", [])):
        behaviour = ep.get("behaviour", "service")
        response = ep.get("response") or ENDPOINT_RESPONSES.get(
            "access-denied" if behaviour == "access-denied" else "service"
        )
        chain, key = certs["endpoints"][n]
        eps.append(dict(ep, behaviour=behaviour, response=response, cert_chain=chain, key=key))
    cfg["endpoints"] = eps
    if spec.get("proxy"):
        cfg["proxy"] = spec["proxy"]
    return cfg


def _lo_addresses(cfg: Dict[str, Any]) -> List[str]:
    addrs = [RESOLVER]
    if "imds" in cfg:
        addrs.append(IMDS_ADDRESS)
    for ep in cfg["endpoints"]:
        if ep["behaviour"] != "blackhole":
            addrs.append(ep["address"])
    if "proxy" in cfg:
        addrs.append(cfg["proxy"]["address"])
    return addrs


def _wait_ready(state: Path, proc: "subprocess.Popen[bytes]", log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not (state / "ready").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"the simulated services did not start:\n{tail}")
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# the simulated host's files


def _agent_files(sc: Scenario) -> Dict[str, Any]:
    from tests.harness.container import File, standin_agent_files

    agent = sc.spec.get("agent") or {}
    if not agent.get("installed", True):
        return {}
    mode = agent.get("mode", "run")
    dropins = dict(agent.get("dropins") or {})
    files: Dict[str, Any] = {}
    if mode == "auto":
        # The stand-in decides like the agent would: it reaches its endpoint or it exits.
        files[AUTO_AGENT] = File(STANDIN_AUTO.read_bytes(), 0o755)
        dropins["00-gd-sim-auto.conf"] = f"[Service]\nExecStart=\nExecStart={AUTO_AGENT}\n"
        mode = "run"
    files.update(
        standin_agent_files(
            mode,
            memory=agent.get("memory"),
            enabled=bool(agent.get("enabled", True)) and not agent.get("start_after_boot"),
            extra_service_lines=tuple(agent.get("extra_service_lines", ())),
            dropins=dropins,
        )
    )
    return files


def _container_files(sc: Scenario, certs: Dict[str, Any], lower: Path) -> Dict[str, Any]:
    from tests.harness.container import File, Symlink

    files: Dict[str, Any] = {}
    files.update(_agent_files(sc))
    files.update(_kernel_files(sc))
    # The VPC resolver. A symlink, because systemd-nspawn replaces a regular /etc/resolv.conf
    # with this machine's at boot but leaves a symlink alone.
    files["/etc/resolv.conf"] = Symlink("/etc/gd-sim/resolv.conf")
    files["/etc/gd-sim/resolv.conf"] = f"nameserver {RESOLVER}\noptions timeout:2 attempts:1\n"
    files[CA_PATH] = certs["bundle"]
    for path, (content, mode) in sc.host_files().items():
        files[path] = File(content, mode)
    for path, target in sc.host_symlinks().items():
        files[path] = Symlink(target)
    for path, text in (sc.spec.get("append") or {}).items():
        base = lower / path.lstrip("/")
        old = base.read_bytes() if base.is_file() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        files[path] = old + (b"\n" if old else b"") + str(text).encode("utf-8")
    for path in sc.spec.get("delete", []):
        files[path] = None
    return files


def _kernel_files(sc: Scenario) -> Dict[str, Any]:
    """The simulated instance's ``/boot/config-<release>`` (what distributions install).

    The kernel is this machine's; its build config comes from this machine's ``/proc/config.gz``
    with the scenario's ``kernel.config_overrides`` applied (e.g. ``CONFIG_KPROBES=y``: every
    EC2 distribution kernel has kprobes, this machine's test kernel does not). gd-doctor reads
    ``/boot/config-<release>`` before ``/proc/config.gz``, as on a real instance.
    """
    import gzip

    kernel = sc.spec.get("kernel") or {}
    overrides = kernel.get("config_overrides")
    if not overrides:
        return {}
    try:
        text = gzip.decompress(Path("/proc/config.gz").read_bytes()).decode("utf-8", "replace")
    except OSError:
        text = ""
    lines = [
        ln
        for ln in text.splitlines()
        if not any(ln.startswith(k + "=") or ln == f"# {k} is not set" for k in overrides)
    ]
    lines.append("# gd-doctor simulator: overrides of the simulated instance's kernel")
    lines += [f"{k}={v}" if v != "n" else f"# {k} is not set" for k, v in overrides.items()]
    return {f"/boot/config-{os.uname().release}": "\n".join(lines) + "\n"}


def _agent_wait(c: Any, wait: Dict[str, Any]) -> None:
    """Wait until the agent unit is in the state the scenario needs before gd-doctor looks."""
    want = wait.get("agent")
    min_restarts = int(wait.get("min_restarts", 0))
    timeout = float(wait.get("timeout", 45))
    if want:

        def ready(p: Dict[str, str]) -> bool:
            state = f"{p.get('ActiveState')}/{p.get('SubState')}"
            restarts = int(p.get("NRestarts") or 0)
            if restarts < min_restarts:
                return False
            if want == "active":
                return state == "active/running"
            if want == "restarting":
                return p.get("SubState") == "auto-restart" or restarts >= max(1, min_restarts)
            if want == "failed":
                return p.get("ActiveState") == "failed"
            if want == "signal":
                return p.get("Result") in ("signal", "oom-kill")
            return True

        c.wait_for(ready, timeout=timeout, what=f"agent {want}")
    settle = float(wait.get("settle", 0))
    if settle:
        time.sleep(settle)


def _parse_report(stdout: str) -> Dict[str, Any]:
    try:
        data = json.loads(stdout)
    except ValueError as exc:
        raise RuntimeError(
            f"gd-doctor did not print a JSON report ({exc}): {stdout[:400]!r}"
        ) from None
    if not isinstance(data, dict):
        raise RuntimeError("the JSON report is not an object")
    return data


def _requests(state: Path) -> List[Dict[str, Any]]:
    path = state / "requests.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


@contextlib.contextmanager
def _tempdir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="gd-sim-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


BUNDLE_IN_CONTAINER = "/run/gd-sim-bundle.tar.gz"


def _bundle_argv(
    python: List[str], timeout: float, output: str, args: List[str], root: Optional[Path] = None
) -> List[str]:
    """``gd-doctor bundle`` instead of ``check``: its checks get the same budget as the check
    run would (the bundle spends 0.7 of its budget on the run, the rest on writing)."""
    where = ["--root", str(root)] if root is not None else []
    budget = str(round(timeout / 0.7, 1))
    return [*python, "bundle", *where, "--output", output, "--timeout", budget, *args]


def _run_live(
    sc: Scenario, res: RunResult, text_output: bool, bundle_dir: Optional[Path] = None
) -> None:
    from tests.harness.container import booted_container, prepared_root

    suite = str(sc.spec.get("suite", "bookworm"))
    lower = prepared_root(suite)
    assert lower is not None
    agent = sc.spec.get("agent") or {}
    ct = sc.spec.get("container") or {}
    timeout = float(sc.spec.get("timeout", DEFAULT_TIMEOUT))
    with _tempdir() as tmp:
        state = tmp / "state"
        state.mkdir()
        certs = _make_certs(sc, state)
        cfg = _server_config(sc, certs)
        (state / "servers.json").write_text(json.dumps(cfg, indent=1), encoding="utf-8")
        log = state / "servers.log"
        with sim_network(_lo_addresses(cfg)) as net:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
            proc = net.spawn(
                [sys.executable, "-m", "tests.simulator.servers", str(state / "servers.json")],
                cwd=str(REPO),
                env=env,
                log=log,
            )
            _wait_ready(state, proc, log)
            files = _container_files(sc, certs, lower)
            with booted_container(
                lower,
                files=files,
                units=sc.units(),
                enable=tuple(sc.spec.get("enable", ())),
                network_namespace=net.name,
                bind_ro={
                    str(REPO / "gd_doctor"): f"{SRC_MOUNT}/gd_doctor",
                    str(vendor_dir()): VENDOR_MOUNT,
                },
                memory_limit=ct.get("memory_limit"),
                kmsg=bool(ct.get("kmsg", False)),
            ) as c:
                if agent.get("start_after_boot"):
                    c.run(
                        ["systemctl", "start", "--no-block", "amazon-guardduty-agent"], timeout=30
                    )
                _agent_wait(c, dict(sc.spec.get("wait") or {}))
                with contextlib.suppress(Exception):
                    res.agent_state = c.systemctl_show(
                        props=("LoadState", "ActiveState", "SubState", "Result", "NRestarts")
                    )
                run_env = {
                    "PYTHONPATH": f"{SRC_MOUNT}:{VENDOR_MOUNT}",
                    "PYTHONDONTWRITEBYTECODE": "1",
                    "REQUESTS_CA_BUNDLE": CA_PATH,
                    "AWS_CA_BUNDLE": CA_PATH,
                }
                run_env.update({k: str(v) for k, v in (sc.spec.get("env") or {}).items()})
                argv = [
                    "python3",
                    "-m",
                    "gd_doctor",
                    "check",
                    "--format",
                    "json",
                    "--timeout",
                    str(timeout),
                    *sc.spec.get("args", []),
                ]
                if bundle_dir is not None:
                    argv = _bundle_argv(
                        argv[:3], timeout, BUNDLE_IN_CONTAINER, list(sc.spec.get("args", []))
                    )
                out = c.run(argv, timeout=timeout + 60, env=run_env)
                res.exit_code, res.stdout, res.stderr = out.returncode, out.stdout, out.stderr
                if bundle_dir is not None:
                    res.bundle = bundle_dir / f"{sc.name}.tar.gz"
                    shutil.copyfile(c.path(BUNDLE_IN_CONTAINER), res.bundle)
                if text_output and bundle_dir is None:
                    txt = c.run(
                        [*argv[:4], "--format", "text", *argv[6:]],
                        timeout=timeout + 60,
                        env=run_env,
                    )
                    res.stdout_text = txt.stdout
        res.requests = _requests(state)


def build_root(sc: Scenario, root: Path) -> None:
    from tests.harness.journal_files import journal_from_export

    for path, (content, mode) in sc.host_files().items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    for path, link in sc.host_symlinks().items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        os.symlink(link, target)
    for path, text in (sc.spec.get("append") or {}).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab") as f:
            f.write(str(text).encode("utf-8"))
    for path in sc.spec.get("delete", []):
        target = root / path.lstrip("/")
        if target.is_symlink() or target.is_file():
            target.unlink()
    for name, text in sc.units().items():
        target = root / "etc/systemd/system" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for item in sc.spec.get("journal_exports", []):
        export = sc.resolve(item["export"] if isinstance(item, dict) else item)
        machine = (item.get("machine_id") if isinstance(item, dict) else None) or (
            (root / "etc/machine-id").read_text(encoding="ascii").strip()
            if (root / "etc/machine-id").exists()
            else "0" * 31 + "1"
        )
        journal_from_export(export, root / "var/log/journal" / machine)


def _run_root(
    sc: Scenario, res: RunResult, text_output: bool, bundle_dir: Optional[Path] = None
) -> None:
    timeout = float(sc.spec.get("timeout", DEFAULT_TIMEOUT))
    with _tempdir() as tmp:
        root = tmp / "root"
        root.mkdir()
        build_root(sc, root)
        argv = [
            sys.executable,
            "-m",
            "gd_doctor",
            "check",
            "--root",
            str(root),
            "--format",
            "json",
            "--timeout",
            str(timeout),
            *sc.spec.get("args", []),
        ]
        if bundle_dir is not None:
            res.bundle = bundle_dir / f"{sc.name}.tar.gz"
            argv = _bundle_argv(
                argv[:3], timeout, str(res.bundle), list(sc.spec.get("args", [])), root
            )
        # No network at all for a root analysis: a namespace of its own with nothing in it.
        prefix = ["unshare", "-n", "--"] if os.geteuid() == 0 and shutil.which("unshare") else []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HTTP", "http"))}
        env["PYTHONPATH"] = str(REPO)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update({k: str(v) for k, v in (sc.spec.get("env") or {}).items()})
        out = subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            cwd=str(REPO),
            env=env,
            timeout=timeout + 60,
            stdin=subprocess.DEVNULL,
        )
        res.exit_code, res.stdout, res.stderr = out.returncode, out.stdout, out.stderr
        if text_output and bundle_dir is None:
            txt = subprocess.run(
                [*prefix, *argv[:6], "--format", "text", *argv[8:]],
                capture_output=True,
                text=True,
                cwd=str(REPO),
                env=env,
                timeout=timeout + 60,
                stdin=subprocess.DEVNULL,
            )
            res.stdout_text = txt.stdout


def _bundle_report(res: RunResult) -> str:
    """The report.json the bundle holds (read directly: the bundle is the subject under test,
    replay verifies it)."""
    import tarfile

    if res.exit_code != 0 or res.bundle is None or not res.bundle.is_file():
        raise RuntimeError(f"gd-doctor bundle failed (exit {res.exit_code}): {res.stderr[-1500:]}")
    with tarfile.open(res.bundle, "r:gz") as tar:
        member = tar.extractfile("report.json")
        return member.read().decode("utf-8") if member is not None else ""


def _xy(release: str) -> tuple:  # type: ignore[type-arg]
    parts = [int(p) for p in release.split("-")[0].split(".")[:2] if p.isdigit()]
    return tuple(parts)


def run_scenario(
    sc: Scenario, *, text_output: bool = False, bundle_dir: Optional[Path] = None
) -> RunResult:
    """Run one scenario; never raises for the scenario's own trouble (it lands in ``error``).

    With ``bundle_dir``, the run is ``gd-doctor bundle`` instead of ``check``: the bundle lands
    in ``bundle_dir/<name>.tar.gz`` and ``report`` is the report it holds (the live run's)."""
    if sc.kind == "live":
        mode = "live"
    else:
        mode = "recorded" if sc.spec.get("recorded") else "root"
    res = RunResult(name=sc.name, mode=mode)
    need = (sc.spec.get("requires_host_kernel") or {}).get("min")
    if need and _xy(os.uname().release) < _xy(str(need)):
        res.skipped = f"needs this machine's kernel to be {need} or newer (it shares it)"
        return res
    if sc.kind == "live":
        reason = live_unavailable_reason(str(sc.spec.get("suite", "bookworm")))
        if reason:
            res.skipped = reason
            return res
    t0 = time.monotonic()
    try:
        (_run_live if sc.kind == "live" else _run_root)(sc, res, text_output, bundle_dir)
        res.report = _parse_report(res.stdout if res.bundle is None else _bundle_report(res))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - one scenario's failure is reported, not fatal
        res.error = f"{type(exc).__name__}: {exc}".strip()
        if res.stderr:
            res.error += "\nstderr: " + res.stderr[-1500:]
    finally:
        res.duration_s = round(time.monotonic() - t0, 1)
    blob = res.stdout + res.stderr + res.stdout_text
    res.leaked_secrets = any(s in blob for s in SECRETS)
    return res
