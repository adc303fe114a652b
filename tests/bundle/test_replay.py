"""Replay equality: a bundle replays to the same verdict, findings, rows and evidence lines as
the run that made it, over every fixture root and over live-like hosts built from captures."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from gd_doctor.bundle import open_bundle
from gd_doctor.checks import agent as agent_checks
from gd_doctor.checks import ssm as ssm_checks
from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.journal import JournalEntry
from gd_doctor.host.procs import FakeProcesses, ProcessInfo
from gd_doctor.host.settings import HostSettings
from tests.bundle.conftest import bundle_and_replay, comparable, differences
from tests.fakes.dns import FakeResolver
from tests.fakes.imds import FakeImds
from tests.fakes.tls import TlsEndpoint
from tests.hostkit import FIXTURES, NOW, make_host
from tests.network.conftest import HOST, REGION, host_with, net_checks
from tests.ssm.conftest import AGENT_LOG, INSTANCE, PKG_DIR, SSM_ROOT, ec2_tree, text

ROOTS = sorted(p.parent.name for p in (FIXTURES / "roots").glob("*/root"))
DPKG = ("dpkg-query", "-W", "-f", "${Status}|${Version}\\n", "amazon-guardduty-agent")


def _assert_same(host: Host, out: Path, **kw: Any) -> Dict[str, Any]:
    made, again = bundle_and_replay(host, out, **kw)
    diff = differences(comparable(made.run), comparable(again))
    assert diff == [], "\n".join(diff)
    return made.manifest


@pytest.mark.parametrize("name", ROOTS)
def test_fixture_root_replays_the_same(name: str, tmp_path: Path) -> None:
    root = FIXTURES / "roots" / name / "root"
    manifest = _assert_same(Host.from_root(root, HostSettings()), tmp_path / "b.tar.gz")
    assert manifest["live"] is False
    assert (
        any(i["name"] == "root/etc/os-release" for i in manifest["items"])
        or name == "container-docker"
    )


def test_roots_were_found() -> None:
    assert len(ROOTS) >= 7


def test_replay_report_says_replay_of_which_host_and_when(tmp_path: Path) -> None:
    root = FIXTURES / "roots" / "al2023-x86_64" / "root"
    made, again = bundle_and_replay(Host.from_root(root, HostSettings()), tmp_path / "b.tar.gz")
    where = again.report.host.root
    assert where.startswith("replay of bundle b.tar.gz: ")
    assert "ip-10-0-1-25.ec2.internal" in where
    assert made.manifest["recorded_at"][:16] in where


def test_bundle_file_is_private(tmp_path: Path) -> None:
    root = FIXTURES / "roots" / "ubuntu2204" / "root"
    out = tmp_path / "b.tar.gz"
    bundle_and_replay(Host.from_root(root, HostSettings()), out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["b.tar.gz"]  # no temporary file left behind


def _crash_loop_host(tmp: Path) -> Host:
    capture = (FIXTURES / "systemctl/252/activating-auto-restart.props.txt").read_text()
    show = ("systemctl", "show", "amazon-guardduty-agent", "-p")
    from gd_doctor.parsers.systemctl_show import PROPERTIES

    at = NOW
    journal_entries = [
        JournalEntry(
            at - timedelta(minutes=10 - n),
            "amazon-guardduty-agent.service: Main process exited, code=exited, status=1/FAILURE",
            {"UNIT": "amazon-guardduty-agent.service", "_PID": "1", "PRIORITY": "4"},
        )
        for n in range(5)
    ]

    class Journal:
        description = "fake journal (restart loop)"

        def read(
            self, *, units: Any, since: Any, kernel: bool, timeout: float, max_entries: int
        ) -> Any:
            return [e for e in journal_entries if e.timestamp >= since][-max_entries:]

    return make_host(
        tmp,
        commands={DPKG: "install ok installed|1.9.2\n", (*show, ",".join(PROPERTIES)): capture},
        files={
            "/var/log/amzn-guardduty-agent/agent.log": "2026-11-30T11:59:00Z ERROR dispatch failure: Connection refused (os error 111)\n"
        },
        procs=FakeProcesses([ProcessInfo(pid=1, name="systemd")]),
        journal=Journal(),
        clock=FixedClock(at),
    )


def test_live_crash_loop_host_replays_the_same(tmp_path: Path) -> None:
    host = _crash_loop_host(tmp_path / "root")
    manifest = _assert_same(host, tmp_path / "b.tar.gz", checks=agent_checks.CHECKS)
    assert manifest["live"] is True
    with open_bundle(tmp_path / "b.tar.gz") as b:
        ports = {c["port"] for c in b.answers["calls"]}
    assert {"run", "journal", "procs"} <= ports


SSM_SHOW = ("systemctl", "show", "amazon-ssm-agent.service", "-p", ssm_checks.SYSTEMCTL_PROPS)
SSM_ACTIVE = "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n"


@pytest.mark.parametrize("log", ["logs/health-ping-denied-v3.log", "logs/no-manifest.log"])
def test_live_ssm_host_replays_the_same(tmp_path: Path, log: str) -> None:
    files = ec2_tree(
        **{
            AGENT_LOG: text(log),
            f"{PKG_DIR}/installstate": text("state/installstate-failed.json"),
            f"{SSM_ROOT}/{INSTANCE}/document/state/current/a1b2.run": text(
                "state/docstate-failed.json"
            ),
        }
    )
    host = make_host(tmp_path / "root", files=files, commands={SSM_SHOW: SSM_ACTIVE})
    _assert_same(host, tmp_path / "b.tar.gz", checks=ssm_checks.CHECKS)


def test_live_network_host_replays_the_same(tmp_path: Path) -> None:
    """Real probes over loopback (TLS endpoint, IMDS fake): the replay has no socket at all."""
    ssm = {
        f"{s}.{REGION}.amazonaws.com": ["127.0.0.1"] for s in ("ssm", "ssmmessages", "ec2messages")
    }
    with TlsEndpoint(HOST) as ep, FakeImds() as imds:
        res = FakeResolver({HOST: ["127.0.0.1"], **ssm})
        host = host_with(
            tmp_path / "root",
            imds_url=imds.url,
            resolver=res,
            ca_file=ep.ca_file,
            region=REGION,
            endpoint_url=f"https://{HOST}:{ep.address[1]}",
        )
        made, again = bundle_and_replay(
            host, tmp_path / "b.tar.gz", checks=net_checks("network", "imds")
        )
    diff = differences(comparable(made.run), comparable(again))
    assert diff == [], "\n".join(diff)
    with open_bundle(tmp_path / "b.tar.gz") as b:
        kinds = {c["kind"] for c in b.answers["calls"]}
        creds = [c for c in b.answers["calls"] if "identity-credentials" in json.dumps(c["key"])]
    assert {"dns", "https", "imds"} <= kinds
    assert creds, "the run read the instance's identity credentials"
    # the IMDS token and the credentials' secret parts never reach the bundle
    from tests.bundle.test_bundle_secrets import members
    from tests.fakes.imds import TOKEN

    texts = members(tmp_path / "b.tar.gz")
    secrets = (TOKEN, "FAKE-SECRET-MUST-NEVER-BE-PRINTED", "FAKE-SESSION-TOKEN-MUST-NEVER-BE")
    assert [(n, s) for n, t in texts.items() for s in secrets if s in t] == []
    assert "ASIA[REDACTED]" in texts["answers.json"]


class _DatedEndpoint(TlsEndpoint):
    """The AWS endpoint stand-in whose server clock runs ``offset`` ahead of this machine's:
    its replies carry a ``Date`` header, as every AWS endpoint's do."""

    offset = timedelta(minutes=10)
    host_now: Optional[datetime] = None  # the host's clock (a test's is fixed)

    def _handle(self, conn: Any) -> None:
        import ssl
        from email.utils import format_datetime

        from tests.fakes.tls import AWS_REPLY

        conn.settimeout(3)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                base = self.host_now or datetime.now(timezone.utc)
                when = format_datetime(base + self.offset, usegmt=True)
                head, _, rest = AWS_REPLY.partition(b"\r\n")
                tls.sendall(head + b"\r\nDate: " + when.encode() + b"\r\n" + rest)
        except (OSError, ssl.SSLError):
            return


def test_clock_skew_from_the_bundles_https_date_headers(tmp_path: Path) -> None:
    """The endpoint's clock is 10 minutes ahead: the bundle's timeline says this host's clock
    is about 600 s behind, a failure (SigV4 allows 5 minutes); the replay is still the same."""
    from gd_doctor.bundle import timeline as tl
    from gd_doctor.cli import app
    from tests.hostkit import cli_runner

    ssm = {
        f"{s}.{REGION}.amazonaws.com": ["127.0.0.1"] for s in ("ssm", "ssmmessages", "ec2messages")
    }
    with _DatedEndpoint(HOST) as ep, FakeImds() as imds:
        host = host_with(
            tmp_path / "root",
            imds_url=imds.url,
            resolver=FakeResolver({HOST: ["127.0.0.1"], **ssm}),
            ca_file=ep.ca_file,
            region=REGION,
            endpoint_url=f"https://{HOST}:{ep.address[1]}",
        )
        ep.host_now = host.clock.now()
        made, again = bundle_and_replay(host, tmp_path / "b.tar.gz", checks=net_checks("network"))
    assert differences(comparable(made.run), comparable(again)) == []
    with open_bundle(tmp_path / "b.tar.gz") as b:
        (skew,) = tl.clock_skew(b.answers)
    offset = int(skew.text.split("clock is ")[1].split(" s ")[0])
    assert 595 <= offset <= 605 and "behind" in skew.text and skew.failure
    res = cli_runner().invoke(app, ["timeline", "--bundle", str(tmp_path / "b.tar.gz")])
    assert "clock skew: this host's clock is" in res.stdout


def test_bundle_keeps_only_the_dpkg_entries_the_checks_asked_about(tmp_path: Path) -> None:
    """The host's software list is not evidence: the bundle's dpkg status holds the stanzas of
    the packages the checks queried, and the replay still reads the same package facts."""
    import shutil
    import tarfile

    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "roots" / "ubuntu2204" / "root", root, symlinks=True)
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    # real Debian 12 stanzas (base-files, libc6, passwd, systemd) plus the agent's (synthetic)
    shutil.copy(FIXTURES / "dpkg" / "status-bookworm-with-agent", status)
    out = tmp_path / "b.tar.gz"
    manifest = _assert_same(Host.from_root(root, HostSettings()), out)
    with tarfile.open(out) as tar:
        member = tar.extractfile("root/var/lib/dpkg/status")
        assert member is not None
        kept = member.read().decode()
    assert "Package: amazon-guardduty-agent" in kept and "Version: 1.9.2" in kept
    assert "Package: libc6" not in kept and "Package: systemd" not in kept
    item = next(i for i in manifest["items"] if i["name"] == "root/var/lib/dpkg/status")
    assert "1 of its 5 entries" in item["note"], item
