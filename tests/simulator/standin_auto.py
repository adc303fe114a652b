#!/usr/bin/python3
"""gd-doctor simulator: the stand-in agent in mode "auto". NOT the real agent.

Installed in the simulated host as the agent unit's ExecStart (through a drop-in). It does what
the real agent must do before it can report (domain reference 2.2, 11.2): find its Region, resolve
guardduty-data.<region>.amazonaws.com, open TLS to port 443 (through HTTPS_PROXY if set) and send
one request. If that works it becomes the harness stand-in in mode "run" (stays up, logs
heartbeats); if not, it logs why and becomes the stand-in in mode "exit-unreachable" (exit 1, so
systemd restarts it: the restart loop ubicloud observed). Log texts are invented.
"""

import json
import os
import socket
import ssl
import sys
import urllib.parse
import urllib.request

STANDIN = "/opt/aws/amazon-guardduty-agent/bin/amazon-guardduty-agent"
CA = "/etc/gd-sim/ca.pem"
LOG = "/var/log/amzn-guardduty-agent/agent.log"
TIMEOUT = 3.0  # to connect: a black hole fails fast
# Once connected, the answer may be slow only because the machine running the simulator is
# loaded (TLS in a Python proxy on a busy CI box): that is no reason to crash-loop.
ANSWER_TIMEOUT = 8.0


def log(level, message):
    print(f"{level} {message}", flush=True)
    try:
        os.makedirs(os.path.dirname(LOG), exist_ok=True)
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(f"{level} {message}\n")
    except OSError:
        pass


def _token(opener):
    """An IMDSv2 token, or None when the PUT fails (hop limit, refusal): the AWS SDKs then fall
    back to IMDSv1, which works where the instance allows it (HttpTokens=optional)."""
    req = urllib.request.Request(
        "http://169.254.169.254/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
    )
    try:
        return opener.open(req, timeout=TIMEOUT).read().decode()
    except Exception:  # noqa: BLE001
        return None


def region():
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        token = _token(opener)
        req = urllib.request.Request(
            "http://169.254.169.254/latest/dynamic/instance-identity/document",
            headers={"X-aws-ec2-metadata-token": token} if token else {},
        )
        return json.loads(opener.open(req, timeout=TIMEOUT).read())["region"]
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(f"cannot read the instance identity document: {exc}") from None


def connect(host):
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    no_proxy = (os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or "").split(",")
    if proxy and not any(n.strip() and host.endswith(n.strip().lstrip("*")) for n in no_proxy):
        p = urllib.parse.urlsplit(proxy)
        sock = socket.create_connection((p.hostname, p.port or 3128), timeout=TIMEOUT)
        sock.settimeout(ANSWER_TIMEOUT)
        sock.sendall((f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n").encode())
        status = sock.recv(4096).split(b"\r\n", 1)[0]
        if b" 200" not in status:
            raise RuntimeError("proxy refused CONNECT: {}".format(status.decode("latin-1")))
    else:
        addr = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)[0][4]
        sock = socket.create_connection(addr[:2], timeout=TIMEOUT)
        sock.settimeout(ANSWER_TIMEOUT)
    ctx = ssl.create_default_context(cafile=CA if os.path.exists(CA) else None)
    tls = ctx.wrap_socket(sock, server_hostname=host)
    tls.sendall(
        (
            f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    head = tls.recv(65536).decode("latin-1")
    tls.close()
    if "AccessDenied" in head:
        raise RuntimeError("SendSecurityTelemetry: AccessDeniedException")


def main():
    try:
        host = f"guardduty-data.{region()}.amazonaws.com"
        connect(host)
    except Exception as exc:  # noqa: BLE001
        log("ERROR", f"unable to reach the GuardDuty endpoint: {exc}")
        os.execv(STANDIN, [STANDIN, "exit-unreachable"])
    os.environ["GD_STANDIN_REGION"] = host.split(".")[1]
    os.execv(STANDIN, [STANDIN, "run"])


if __name__ == "__main__":
    sys.exit(main())
