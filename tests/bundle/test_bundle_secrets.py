"""Planted secrets of every format never reach any member of a bundle (each member scanned
decompressed, rotated .gz logs included), and the manifest counts the redactions."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from gd_doctor.bundle import make_bundle
from gd_doctor.bundle.kinds import KINDS
from gd_doctor.host import Host
from gd_doctor.host.settings import HostSettings
from gd_doctor.redact import MASK
from tests.faults.planting import (
    AGENT_LOG,
    applicable,
    capture_root,
    planted_host,
    with_canary,
)
from tests.faults.secret_formats import ROWS, Planted


def members(path: Path) -> Dict[str, str]:
    """Every member's text, decompressed (gzip inside gzip too)."""
    out: Dict[str, str] = {}
    with tarfile.open(path, "r:gz") as tar:
        for info in tar:
            fh = tar.extractfile(info)
            data = fh.read() if fh else b""
            if data[:2] == b"\x1f\x8b":
                data = gzip.GzipFile(fileobj=io.BytesIO(data)).read()
            out[info.name] = data.decode("utf-8", errors="replace")
    return out


def leaks(rows: List[Planted], texts: Dict[str, str]) -> List[Tuple[str, str, str]]:
    return [(r.id, name, s) for r in rows for name, t in texts.items() for s in r.secrets if s in t]


def test_captured_root_with_every_format_in_every_file_source(tmp_path: Path) -> None:
    root = capture_root(tmp_path / "root")
    rotated = root / (AGENT_LOG.lstrip("/") + ".1.gz")
    rotated.write_bytes(gzip.compress((root / AGENT_LOG.lstrip("/")).read_bytes()))
    out = tmp_path / "b.tar.gz"
    made = make_bundle(Host.from_root(root, HostSettings()), out)
    texts = members(out)
    assert f"root{AGENT_LOG}" in texts and "answers.json" in texts
    assert leaks(list(ROWS), texts) == []
    totals = made.manifest["redactions"]
    assert sum(totals.values()) >= len([r for r in ROWS if not r.multiline])
    # every mask has its kind: the kinds all occur, none is left unclassified
    assert set(KINDS[:7]) <= set(totals), totals
    assert "secret" not in totals, totals
    by_name = {i["name"]: i for i in made.manifest["items"]}
    for name, text in texts.items():
        if name in ("MANIFEST.json", "report.json") or name.endswith(".gz"):
            continue  # the report comes redacted by its renderer
        counted = sum(by_name[name].get("redactions", {}).values())
        assert counted == text.count(MASK), name  # each item's masks, each with a kind
    log = by_name[f"root{AGENT_LOG}"]["redactions"]
    assert log["access-key-id"] >= 3 and log["proxy-password"] >= 3 and log["private-key"] >= 2
    assert "[REDACTED]" not in json.dumps(made.manifest)  # kinds and counts, never a value


def test_journal_every_format_at_once(tmp_path: Path) -> None:
    """Every format, multi-line ones included, in the agent unit's journal entries."""
    from dataclasses import replace

    from tests.faults.planting import FakeJournal, now

    host = planted_host(tmp_path / "root", ROWS[0], "agent-log")
    canaries = [f"gdcanary{n} " for n in range(len(ROWS))]
    journal = FakeJournal([c + r.line for c, r in zip(canaries, ROWS)], now())
    out = tmp_path / "b.tar.gz"
    make_bundle(replace(host, journal=journal), out)
    texts = members(out)
    assert leaks(list(ROWS), texts) == []
    assert all(c in texts["answers.json"] for c in canaries)  # the entries themselves are there


@pytest.mark.parametrize("source", ["systemctl-show", "process-environ"])
def test_live_sources_every_format(tmp_path: Path, source: str) -> None:
    """One bundle per format in the live sources (systemctl show's Environment, the process
    table's environment); the canary proves the planted record itself reached the bundle."""
    missing: List[str] = []
    found: List[Tuple[str, str, str]] = []
    for n, row in enumerate(ROWS):
        if not applicable(row, source):
            continue
        canary, planted = with_canary(row, n, source)
        d = tmp_path / f"{n}"
        host = planted_host(d / "root", planted, source)
        out = d / "b.tar.gz"
        make_bundle(host, out)
        texts = members(out)
        if not any(canary in t for t in texts.values()):
            missing.append(row.id)
        found += leaks([row], texts)
    assert found == []
    assert missing == []


def test_only_the_environment_gd_doctor_reads_is_kept(tmp_path: Path) -> None:
    from tests.hostkit import make_host

    env = {
        "PATH": "/usr/bin",
        "SSH_CONNECTION": "198.51.100.7 50022 10.0.1.17 22",
        "HTTPS_PROXY": "http://alice:s3cretPw@proxy.corp:3128",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE01",
    }
    host = make_host(tmp_path / "root", files={"/etc/hostname": "h\n"}, commands={}, env=env)
    out = tmp_path / "b.tar.gz"
    make_bundle(host, out)
    with tarfile.open(out, "r:gz") as tar:
        member = tar.extractfile("answers.json")
        assert member is not None
        kept = json.loads(member.read())["env"]
    assert kept == {"HTTPS_PROXY": "http://[REDACTED]@proxy.corp:3128"}


def test_proc_environ_every_format(tmp_path: Path) -> None:
    """PID 1's environment (NUL-separated, read by platform.container) with every single-line
    format, as an assignment of its own and inside another variable's value: each variable is
    redacted on its own, the separators and the innocent variables stay."""
    root = tmp_path / "root"
    (root / "proc/1").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text('ID=ubuntu\nVERSION_ID="22.04"\n')
    rows = [r for r in ROWS if not r.multiline]
    entries = [b"container=systemd-nspawn", b"LANG=C.UTF-8"]
    for n, row in enumerate(rows):
        entries.append(f"GD_ROW_{n}={row.line}".encode())
        if "=" in row.line.split(" ")[0]:
            entries.append(row.line.encode())
    (root / "proc/1/environ").write_bytes(b"\x00".join(entries) + b"\x00")
    out = tmp_path / "b.tar.gz"
    made = make_bundle(Host.from_root(root, HostSettings()), out)
    texts = members(out)
    env = texts["root/proc/1/environ"]
    assert leaks(rows, texts) == []
    assert env.startswith("container=systemd-nspawn\x00LANG=C.UTF-8\x00GD_ROW_0=")
    assert env.count("\x00") == len(entries)
    item = {i["name"]: i for i in made.manifest["items"]}["root/proc/1/environ"]
    assert sum(item["redactions"].values()) == env.count(MASK) >= len(rows)


def test_https_probe_answers_every_format(tmp_path: Path) -> None:
    """An intercepting gateway's answer (headers and body) full of credentials: the probe's
    recorded answer reaches the bundle, its secrets never do."""
    from tests.fakes.dns import FakeResolver
    from tests.fakes.imds import FakeImds
    from tests.fakes.tls import TlsEndpoint
    from tests.network.conftest import HOST, REGION, host_with, net_checks

    lines = [r for r in ROWS if not r.multiline]
    canary = "gdcanary-https-body"
    headers = "".join(f"X-Debug-{n}: {r.line}\r\n" for n, r in enumerate(lines))
    body = (canary + "\n" + "\n".join(r.line for r in lines)).encode()
    reply = (
        "HTTP/1.1 403 Forbidden\r\nServer: corp-gateway\r\nContent-Type: text/plain\r\n"
        f"{headers}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with TlsEndpoint(HOST, reply_bytes=reply) as ep, FakeImds() as imds:
        host = host_with(
            tmp_path / "root",
            imds_url=imds.url,
            resolver=FakeResolver({HOST: ["127.0.0.1"]}),
            ca_file=ep.ca_file,
            region=REGION,
            endpoint_url=f"https://{HOST}:{ep.address[1]}",
        )
        out = tmp_path / "b.tar.gz"
        make_bundle(host, out, checks=net_checks("network", "imds"))
    texts = members(out)
    assert any("corp-gateway" in t for t in texts.values()), "the probe answer was recorded"
    assert any(canary in t for t in texts.values()), "the body itself was recorded"
    assert leaks(lines, texts) == []
