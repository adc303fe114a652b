"""The Run Command document's steps, run as the SSM Agent runs them (SSM_* variables, the
orchestration working directory), inside a network namespace with no route out (root).

Stubs on PATH stand in for what the instance has: ``aws`` (records its arguments), ``uname``,
``dpkg-query``/``dpkg``/``rpm`` (the package manager that owns the system, and the install).
gd-doctor is either a stub with a chosen exit code or the real one (``python -m gd_doctor``)
against a fixture root given through extraArguments ``--root``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from tests.packaging.conftest import PACKAGING, TOP

pytestmark = pytest.mark.netns

SSM = PACKAGING / "ssm"
DOC = json.loads((SSM / "gd-doctor-run.json").read_text(encoding="utf-8"))
FIXTURE_ROOT = TOP / "tests" / "fixtures" / "roots" / "al2023-x86_64" / "root"
COMMAND_ID = "0b7c4b8e-5c2a-4d44-9a57-0d7f3c1e2a9b"
IID = "i-0123456789abcdef0"


@pytest.fixture(autouse=True)
def _need_unshare() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for unshare -n")
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")


def step_lines(name: str) -> List[str]:
    for s in DOC["mainSteps"]:
        if s["name"] == name:
            return list(s["inputs"]["runCommand"])
    raise AssertionError(name)


class Instance:
    """A scratch instance: stub bin directory, report paths, the step's working directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.log = tmp / "calls.log"
        self.report = tmp / "state" / "ssm-report.json"
        self.items = tmp / "state" / "compliance-items.json"
        # Run Command runs each step in .../document/orchestration/<command-id>/<step>.
        self.cwd = tmp / "ssm" / IID / "document" / "orchestration" / COMMAND_ID / "runGdDoctor"
        self.cwd.mkdir(parents=True)

    def stub(self, name: str, body: str) -> Path:
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
        path.chmod(0o755)
        return path

    def calls(self, tool: str) -> List[List[str]]:
        """Each recorded call of ``tool``: its arguments, one per line, calls split by a NUL."""
        if not self.log.exists():
            return []
        out = []
        for record in self.log.read_text().split("\0"):
            lines = record.strip("\n").split("\n")
            if lines and lines[0] == tool:
                out.append(lines[1:])
        return out

    def recorder(self, tool: str, then: str = "exit 0\n") -> Path:
        return self.stub(
            tool,
            f"""\
            {{ echo {tool}; printf '%s\\n' "$@"; printf '\\0'; }} >> "{self.log}"
            """
            + textwrap.dedent(then),
        )

    def run(
        self, step: str, env: Dict[str, str], lo_up: bool = False
    ) -> subprocess.CompletedProcess[str]:
        script = self.tmp / f"{step}.sh"
        script.write_text("#!/bin/sh\n" + "\n".join(step_lines(step)) + "\n")
        full = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.tmp),
            "GD_DOCTOR_REPORT": str(self.report),
            "GD_DOCTOR_ITEMS": str(self.items),
            **env,
        }
        inner = f"ip link set lo up && exec /bin/sh {script}" if lo_up else f"exec /bin/sh {script}"
        return subprocess.run(
            ["unshare", "-n", "/bin/sh", "-c", inner],
            capture_output=True,
            text=True,
            env=full,
            cwd=self.cwd,
            timeout=300,
        )


def run_env(**overrides: str) -> Dict[str, str]:
    env = {
        "SSM_format": "ssm",
        "SSM_timeout": "20",
        "SSM_extraArguments": "",
        "SSM_inventory": "false",
        "SSM_compliance": "false",
        "SSM_emf": "false",
        "SSM_failOnUnhealthy": "false",
    }
    env.update(overrides)
    return env


@pytest.fixture
def box(tmp_path: Path) -> Instance:
    assert not Path("/usr/bin/aws").exists() and not Path("/bin/aws").exists()
    return Instance(tmp_path)


def real_gd_doctor(box: Instance) -> Path:
    return box.stub(
        "gd-doctor-real",
        f"""\
        PYTHONPATH={TOP} exec {sys.executable} -m gd_doctor "$@"
        """,
    )


STUB_GD_DOCTOR = """\
# writes the report (with the host's identity) and the items it was asked for, exits $FAKE_RC
out="" items=""
while [ $# -gt 0 ]; do
    case $1 in --output) out=$2 ;; --compliance) items=$2 ;; esac
    shift
done
[ -n "$out" ] && printf '%s\\n' "$FAKE_REPORT" > "$out"
[ -n "$items" ] && printf '[{"Id": "gd-doctor.verdict", "Severity": "CRITICAL", "Status": "NON_COMPLIANT"}]\\n' > "$items"
echo "UNHEALTHY: (stub)"
exit "$FAKE_RC"
"""
STUB_REPORT = json.dumps(
    {
        "started_at": "2026-12-01T13:04:05+02:00",
        "verdict": "unhealthy",
        "host": {"instance_id": IID, "region": "eu-west-1", "account_id": "111122223333"},
    }
)


# --- exit status: 0/1/3 of gd-doctor -> the step's exit status -------------------------------


@pytest.mark.parametrize(
    ("fail_on_unhealthy", "want"), [("false", 0), ("true", 1)], ids=["default", "failOnUnhealthy"]
)
def test_real_gd_doctor_problems_found_fail_only_when_asked(
    box: Instance, fail_on_unhealthy: str, want: int
) -> None:
    gd = real_gd_doctor(box)
    p = box.run(
        "runGdDoctor",
        {
            "GD_DOCTOR": str(gd),
            **run_env(
                SSM_extraArguments=f"--root {FIXTURE_ROOT}", SSM_failOnUnhealthy=fail_on_unhealthy
            ),
        },
    )
    assert p.returncode == want, p.stderr
    assert " ".join(p.stdout.split()[:2]) in {"gd-doctor: UNHEALTHY", "gd-doctor: UNKNOWN"}
    report = json.loads(box.report.read_text())
    assert report["verdict"] in {"unhealthy", "unknown"}
    assert set(report["host"]) >= {"instance_id", "region", "account_id"}


def test_real_gd_doctor_usage_error_fails(box: Instance) -> None:
    gd = real_gd_doctor(box)
    p = box.run(
        "runGdDoctor",
        {"GD_DOCTOR": str(gd), **run_env(SSM_extraArguments=f"--root {FIXTURE_ROOT} --since 5x")},
    )
    assert p.returncode == 2
    assert not box.report.exists()


@pytest.mark.parametrize(
    ("rc", "fail_on_unhealthy", "want"),
    [
        ("0", "false", 0),
        ("0", "true", 0),
        ("1", "false", 0),
        ("1", "true", 1),
        ("3", "false", 3),
        ("3", "true", 3),
    ],
)
def test_exit_status_policy(box: Instance, rc: str, fail_on_unhealthy: str, want: int) -> None:
    gd = box.stub("gd-doctor", STUB_GD_DOCTOR)
    env = run_env(SSM_failOnUnhealthy=fail_on_unhealthy)
    p = box.run("runGdDoctor", {"GD_DOCTOR": str(gd), "FAKE_RC": rc, "FAKE_REPORT": "{}", **env})
    assert p.returncode == want


def test_gd_doctor_missing_fails(box: Instance) -> None:
    p = box.run("runGdDoctor", {"GD_DOCTOR": str(box.tmp / "nothing"), **run_env()})
    assert p.returncode == 3
    assert p.stdout.startswith("UNKNOWN: gd-doctor is not installed")


# --- compliance upload -----------------------------------------------------------------------


def test_compliance_upload_arguments_come_from_the_report(box: Instance) -> None:
    gd = box.stub("gd-doctor", STUB_GD_DOCTOR)
    box.recorder("aws")
    env = {
        "GD_DOCTOR": str(gd),
        "FAKE_RC": "1",
        "FAKE_REPORT": STUB_REPORT,
        # the agent's variables lose to the report's identity
        "AWS_SSM_INSTANCE_ID": "i-0fffffffffffffff0",
        "AWS_SSM_REGION_NAME": "us-east-1",
        **run_env(SSM_compliance="true"),
    }
    p = box.run("runGdDoctor", env)
    assert p.returncode == 0, p.stderr
    assert box.calls("aws") == [
        [
            "ssm",
            "put-compliance-items",
            "--resource-id",
            IID,
            "--resource-type",
            "ManagedInstance",
            "--compliance-type",
            "Custom:GdDoctor",
            "--upload-type",
            "COMPLETE",
            "--execution-summary",
            f"ExecutionTime=2026-12-01T11:04:05Z,ExecutionType=Command,ExecutionId={COMMAND_ID}",
            "--items",
            f"file://{box.items}",
            "--region",
            "eu-west-1",
            "--cli-read-timeout",
            "30",
            "--cli-connect-timeout",
            "10",
        ]
    ]
    assert f"uploaded Custom:GdDoctor items for {IID} in eu-west-1" in p.stderr


def test_compliance_upload_of_real_items_with_the_agents_identity(box: Instance) -> None:
    """The real gd-doctor on a root has no IMDS: the SSM Agent's variables name the instance."""
    gd = real_gd_doctor(box)
    box.recorder("aws")
    env = {
        "GD_DOCTOR": str(gd),
        "AWS_SSM_INSTANCE_ID": "mi-0123456789abcdef0",
        "AWS_SSM_REGION_NAME": "ap-southeast-2",
        **run_env(SSM_compliance="true", SSM_extraArguments=f"--root {FIXTURE_ROOT}"),
    }
    p = box.run("runGdDoctor", env)
    assert p.returncode == 0, p.stderr
    [call] = box.calls("aws")
    args = dict(zip(call[2::2], call[3::2]))
    assert args["--resource-id"] == "mi-0123456789abcdef0"
    assert args["--region"] == "ap-southeast-2"
    started = json.loads(box.report.read_text())["started_at"]
    assert args["--execution-summary"].startswith(f"ExecutionTime={started[:10]}T")
    items = json.loads(box.items.read_text())
    assert items[0]["Id"] == "gd-doctor.verdict" and items[0]["Status"] == "NON_COMPLIANT"


def test_compliance_without_the_aws_cli_says_so(box: Instance) -> None:
    gd = box.stub("gd-doctor", STUB_GD_DOCTOR)
    env = {"GD_DOCTOR": str(gd), "FAKE_RC": "1", "FAKE_REPORT": STUB_REPORT}
    p = box.run("runGdDoctor", {**env, **run_env(SSM_compliance="true")})
    assert p.returncode == 0
    assert "the AWS CLI (aws) is not installed on this instance: items not uploaded" in p.stderr
    assert box.items.exists()  # kept for whoever wants to upload them


def test_compliance_without_an_instance_id_says_so(box: Instance) -> None:
    gd = box.stub("gd-doctor", STUB_GD_DOCTOR)
    box.recorder("aws")
    env = {"GD_DOCTOR": str(gd), "FAKE_RC": "0", "FAKE_REPORT": '{"host": {"instance_id": null}}'}
    p = box.run("runGdDoctor", {**env, **run_env(SSM_compliance="true")})
    assert p.returncode == 0
    assert "the instance id is unknown" in p.stderr
    assert box.calls("aws") == []


def test_compliance_upload_failure_is_reported_not_fatal(box: Instance) -> None:
    gd = box.stub("gd-doctor", STUB_GD_DOCTOR)
    box.recorder("aws", "echo 'An error occurred (AccessDeniedException)' >&2\nexit 254\n")
    env = {"GD_DOCTOR": str(gd), "FAKE_RC": "1", "FAKE_REPORT": STUB_REPORT}
    p = box.run(
        "runGdDoctor", {**env, **run_env(SSM_compliance="true", SSM_failOnUnhealthy="true")}
    )
    assert p.returncode == 1  # gd-doctor's status, not the upload's
    assert "put-compliance-items failed" in p.stderr and "AccessDeniedException" in p.stderr


def test_compliance_off_never_calls_aws(box: Instance) -> None:
    gd = box.stub("gd-doctor", STUB_GD_DOCTOR)
    box.recorder("aws")
    env = {"GD_DOCTOR": str(gd), "FAKE_RC": "1", "FAKE_REPORT": STUB_REPORT}
    assert box.run("runGdDoctor", {**env, **run_env()}).returncode == 0
    assert box.calls("aws") == [] and not box.items.exists()


# --- installing on a mixed fleet -------------------------------------------------------------

VERSIONS = ["0.9.0", "0.10.0", "0.2.1"]  # 0.10.0 is the newest (sort -V, not sort)
NEWEST = "0.10.0"


def package_names() -> List[str]:
    names = []
    for v in VERSIONS:
        names += [f"gd-doctor_{v}_amd64.deb", f"gd-doctor_{v}_arm64.deb"]
        names += [f"gd-doctor-{v}.x86_64.rpm", f"gd-doctor-{v}.aarch64.rpm"]
    return names


def expected(family: str, machine: str) -> str:
    if family == "deb":
        return f"gd-doctor_{NEWEST}_{ {'x86_64': 'amd64', 'aarch64': 'arm64'}[machine] }.deb"
    return f"gd-doctor-{NEWEST}.{machine}.rpm"


def os_stubs(box: Instance, family: str, machine: str) -> None:
    """uname, and the package manager that owns the system; dpkg -i / rpm -U are recorded."""
    box.stub("uname", f'[ "$1" = -m ] && echo {machine} || echo Linux\n')
    owns_deb = "exit 0" if family == "deb" else "exit 1"
    owns_rpm = "exit 0" if family == "rpm" else "exit 1"
    box.stub("dpkg-query", owns_deb + "\n")
    box.recorder("dpkg")
    box.recorder("rpm", f'[ "$1" = -q ] && {owns_rpm}\nexit 0\n')
    box.stub("gd-doctor", "echo 'gd-doctor (stub) 0.10.0'\n")


def installed(box: Instance) -> List[str]:
    """The file name each install call was given, and that the file was a complete copy."""
    out = []
    for args in box.calls("dpkg") + [c for c in box.calls("rpm") if c[:1] == ["-U"]]:
        out.append(Path(args[-1]).name)
    return out


FLEET = [("deb", "x86_64"), ("deb", "aarch64"), ("rpm", "x86_64"), ("rpm", "aarch64")]


@pytest.mark.parametrize(("family", "machine"), FLEET)
def test_install_from_s3_picks_the_package(box: Instance, family: str, machine: str) -> None:
    os_stubs(box, family, machine)
    listing = "".join(f"2026-12-01 10:00:00    1048576 {n}\\n" for n in package_names())
    box.recorder(
        "aws",
        f"""\
        case "$1 $2" in
            "s3 ls") printf '                           PRE old/\\n{listing}2026-12-01 10:00:00 300 SHA256SUMS\\n' ;;
            "s3 cp") printf 'package %s\\n' "$4" > "$5" ;;
        esac
        exit 0
        """,
    )
    p = box.run(
        "installGdDoctor",
        {
            "SSM_installFrom": "s3://fleet-bucket/gd-doctor/",
            "GD_DOCTOR": str(box.bin / "gd-doctor"),
        },
    )
    assert p.returncode == 0, p.stderr
    name = expected(family, machine)
    assert ["s3", "ls", "s3://fleet-bucket/gd-doctor/"] in box.calls("aws")
    assert ["s3", "cp", "--only-show-errors", f"s3://fleet-bucket/gd-doctor/{name}"] == box.calls(
        "aws"
    )[1][:4]
    assert installed(box) == [name]
    assert f"takes the .{family} package for {machine}" in p.stdout


@pytest.fixture
def https_site(tmp_path: Path) -> Dict[str, Any]:
    """Package files, their SHA256SUMS and a CA-signed certificate for 127.0.0.1."""
    trustme = pytest.importorskip("trustme")
    site = tmp_path / "site" / "gd-doctor"
    site.mkdir(parents=True)
    lines = []
    for name in package_names():
        data = f"package {name}\n".encode()
        (site / name).write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
    (site / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, cert_file = tmp_path / "ca.pem", tmp_path / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    return {"dir": site.parent, "ca": ca_file, "cert": cert_file}


SERVER = """\
import http.server, os, ssl, sys, threading
os.chdir(sys.argv[1])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(sys.argv[3], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
"""


def run_with_https(
    box: Instance, site: Dict[str, Any], url_path: str, corrupt: Optional[str] = None
) -> subprocess.CompletedProcess[str]:
    """The install step and a TLS server for the site, both inside one new namespace."""
    if corrupt:
        (site["dir"] / "gd-doctor" / corrupt).write_bytes(b"tampered\n")
    server = box.tmp / "server.py"
    server.write_text(SERVER)
    port_file = box.tmp / "port"
    script = box.tmp / "installGdDoctor.sh"
    script.write_text("#!/bin/sh\n" + "\n".join(step_lines("installGdDoctor")) + "\n")
    driver = f"""
        ip link set lo up || exit 97
        {sys.executable} {server} {site["dir"]} {site["cert"]} {port_file} 2>/dev/null &
        srv=$!
        i=0; while [ ! -s {port_file} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
        SSM_installFrom="https://127.0.0.1:$(cat {port_file})/{url_path}" /bin/sh {script}
        rc=$?
        kill $srv
        exit $rc
    """
    env = {
        "PATH": f"{box.bin}:/usr/bin:/bin",
        "SSL_CERT_FILE": str(site["ca"]),
        "GD_DOCTOR": str(box.bin / "gd-doctor"),
    }
    return subprocess.run(
        ["unshare", "-n", "/bin/sh", "-c", driver],
        capture_output=True,
        text=True,
        env=env,
        cwd=box.tmp,
        timeout=300,
    )


@pytest.mark.parametrize(("family", "machine"), FLEET)
def test_install_from_https_base_url_picks_and_checks_the_package(
    box: Instance, https_site: Dict[str, Any], family: str, machine: str
) -> None:
    os_stubs(box, family, machine)
    p = run_with_https(box, https_site, "gd-doctor/")
    assert p.returncode == 0, p.stderr
    assert installed(box) == [expected(family, machine)]


def test_install_from_https_refuses_a_package_that_does_not_match_sha256sums(
    box: Instance, https_site: Dict[str, Any]
) -> None:
    os_stubs(box, "rpm", "aarch64")
    p = run_with_https(box, https_site, "gd-doctor", corrupt=expected("rpm", "aarch64"))
    assert p.returncode == 3
    assert "does not match its SHA256SUMS line" in p.stderr
    assert installed(box) == []


@pytest.mark.parametrize(
    ("family", "url", "ok"),
    [
        ("deb", "gd-doctor/gd-doctor_0.2.1_arm64.deb", True),  # one package: used as it is
        ("rpm", "gd-doctor/gd-doctor-0.9.0.x86_64.rpm?X-Amz-Signature=abc", True),
        ("rpm", "gd-doctor/gd-doctor_0.2.1_amd64.deb", False),  # the wrong format: said plainly
    ],
)
def test_install_from_one_https_package(
    box: Instance, https_site: Dict[str, Any], family: str, url: str, ok: bool
) -> None:
    os_stubs(box, family, "x86_64")
    p = run_with_https(box, https_site, url)
    name = url.split("?")[0].rsplit("/", 1)[1]
    if ok:
        assert p.returncode == 0, p.stderr
        assert installed(box) == [name]
    else:
        assert p.returncode == 3
        assert f"{name} is not a .rpm package, which this instance needs" in p.stderr
        assert installed(box) == []


def test_install_with_no_route_out_fails_plainly(box: Instance) -> None:
    """In the namespace nothing answers: the download fails within the step, exit 3."""
    os_stubs(box, "deb", "x86_64")
    p = box.run("installGdDoctor", {"SSM_installFrom": "https://packages.example.com/gd-doctor/"})
    assert p.returncode == 3
    assert "cannot download https://packages.example.com/gd-doctor/SHA256SUMS" in p.stderr


def test_install_unsupported_architecture(box: Instance) -> None:
    os_stubs(box, "rpm", "s390x")
    p = box.run("installGdDoctor", {"SSM_installFrom": "s3://b/p/"})
    assert p.returncode == 3 and "unsupported architecture s390x" in p.stderr
