"""The simulated VPC's services, run inside the scenario's network namespace.

``python -m tests.simulator.servers CONFIG.json`` (started by the runner with
``ip netns exec NAME``) serves, as the config says:

* **IMDS** on ``169.254.169.254:80``: the documented paths and response shapes (EC2 User Guide,
  section 9 of the domain reference), IMDSv2 tokens required or optional, tags in metadata on or
  off, identity document present or missing, IMDS switched off (403), and a hop limit that is too
  small (the token PUT is never answered, as when a container is one hop too far away).
* **DNS** on ``<resolver>:53`` (``tests.simulator.dns``), the scenario's records only.
* **The guardduty-data endpoint**: a TLS server with a certificate for the endpoint name, issued by
  the scenario's CA (or by an intercepting CA), answering with the scenario's HTTP response.
* **An HTTP proxy** (CONNECT tunnels, or a refusal).

It writes ``ready`` into its state directory once every socket listens, and appends one JSON line
per request to ``requests.jsonl`` (what the tool under test asked). It stops on SIGTERM. All
values are synthetic; the credentials are fakes whose only purpose is to prove they never reach
the tool's output.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Tuple

from tests.simulator.dns import DnsServer, Zone

IMDS_ADDRESS = "169.254.169.254"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
#: Stands in for IMDS credentials; a scenario run fails if either string reaches the report.
FAKE_SECRET_ACCESS_KEY = "SIMsecretKEY/do+not+print/0123456789abcdefEXAMPLE"
FAKE_SESSION_TOKEN = "SIMsessionTOKEN" + "Zm9vYmFy" * 8

_UNAUTHORIZED = (
    '<?xml version="1.0" encoding="iso-8859-1"?>\n'
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
    '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
    " <head>\n  <title>401 - Unauthorized</title>\n </head>\n"
    " <body>\n  <h1>401 - Unauthorized</h1>\n </body>\n</html>\n"
)


class _Log:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def write(self, **entry: Any) -> None:
        entry["t"] = round(time.time(), 3)
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


# --------------------------------------------------------------------------------------------
# IMDS


def imds_tree(cfg: Dict[str, Any]) -> Dict[str, Optional[str]]:
    """Path -> body of every IMDS item the scenario's instance has (None = 404)."""
    region = cfg.get("region", "us-east-1")
    iid = cfg.get("instance_id", "i-0abc1234def567890")
    itype = cfg.get("instance_type", "m5.large")
    arch = cfg.get("architecture", "x86_64")
    az = cfg.get("availability_zone", region + "a")
    ip = cfg.get("private_ip", "10.0.0.15")
    mac = cfg.get("mac", "0e:1a:2b:3c:4d:5e")
    vpc_cidr = cfg.get("vpc_cidr", "10.0.0.0/16")
    account = cfg.get("account_id", "111122223333")
    ami = cfg.get("image_id", "ami-0123456789abcdef0")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
    doc = {
        "accountId": account,
        "architecture": arch,
        "availabilityZone": az,
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": ami,
        "instanceId": iid,
        "instanceType": itype,
        "kernelId": None,
        "pendingTime": cfg.get("pending_time", "2026-11-30T08:00:00Z"),
        "privateIp": ip,
        "ramdiskId": None,
        "region": region,
        "version": "2017-09-30",
    }
    creds = {
        "Code": "Success",
        "LastUpdated": now,
        "Type": "AWS-HMAC",
        "AccessKeyId": "ASIASIMULATEDEXAMPLE",
        "SecretAccessKey": FAKE_SECRET_ACCESS_KEY,
        "Token": FAKE_SESSION_TOKEN,
        "Expiration": expires,
    }
    md = "/latest/meta-data/"
    net = f"{md}network/interfaces/macs/{mac}/"
    tree: Dict[str, Optional[str]] = {
        md + "ami-id": ami,
        md + "hostname": f"ip-{ip.replace('.', '-')}.{region}.compute.internal",
        md + "instance-id": iid,
        md + "instance-type": itype,
        md + "local-ipv4": ip,
        md + "mac": mac,
        md + "placement/availability-zone": az,
        md + "placement/region": region,
        md + "services/domain": cfg.get("domain", "amazonaws.com"),
        md + "services/partition": cfg.get("partition", "aws"),
        net + "vpc-ipv4-cidr-block": vpc_cidr,
        net + "vpc-ipv4-cidr-blocks": vpc_cidr,
        net + "subnet-ipv4-cidr-block": cfg.get("subnet_cidr", "10.0.0.0/24"),
        net + "local-ipv4s": ip,
        net + "vpc-id": cfg.get("vpc_id", "vpc-0a1b2c3d4e5f67890"),
        md + "identity-credentials/ec2/info": json.dumps(
            {"Code": "Success", "LastUpdated": now, "AccountId": account}, indent=2
        ),
        md + "identity-credentials/ec2/security-credentials/ec2-instance": json.dumps(
            creds, indent=2
        ),
    }
    if cfg.get("identity_document", True):
        tree["/latest/dynamic/instance-identity/document"] = json.dumps(doc, indent=2)
        tree["/latest/dynamic/instance-identity/pkcs7"] = (
            "MIAGCSqGSIb3DQEHAqCAMIACAQExCzAJBgUrDgMCGgUA"
        )
        tree["/latest/dynamic/instance-identity/signature"] = "c2ltdWxhdGVkIHNpZ25hdHVyZQ=="
    role = cfg.get("iam_role")
    if role:
        tree[md + "iam/info"] = json.dumps(
            {
                "Code": "Success",
                "LastUpdated": now,
                "InstanceProfileArn": f"arn:aws:iam::{account}:instance-profile/{role}",
                "InstanceProfileId": "AIPASIMULATEDEXAMPLE",
            },
            indent=2,
        )
        tree[md + f"iam/security-credentials/{role}"] = json.dumps(creds, indent=2)
    if cfg.get("tags_in_metadata", True):
        tags = cfg.get("tags", {"Name": "gd-doctor-sim"})
        for key, value in tags.items():
            tree[md + f"tags/instance/{key}"] = str(value)
    for path, body in (cfg.get("paths") or {}).items():
        tree[path] = body
    return {k: v for k, v in tree.items()}


def _listing(tree: Dict[str, Optional[str]], path: str) -> Optional[str]:
    """The newline-separated listing of a directory path (sub-trees end in ``/``)."""
    if not path.endswith("/"):
        path += "/"
    names: List[str] = []
    for key, body in tree.items():
        if body is None or not key.startswith(path):
            continue
        rest = key[len(path) :]
        head, sep, _ = rest.partition("/")
        item = head + ("/" if sep else "")
        if item and item not in names:
            names.append(item)
    return "\n".join(names) if names else None


class ImdsHandler(BaseHTTPRequestHandler):
    server_version = "EC2ws"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    cfg: ClassVar[Dict[str, Any]] = {}
    tree: ClassVar[Dict[str, Optional[str]]] = {}
    tokens: ClassVar[Dict[str, float]] = {}
    log: Optional[_Log] = None

    def log_message(self, format: str, *args: Any) -> None:
        return

    def date_time_string(self, timestamp: Optional[float] = None) -> str:
        # The Date header is "AWS's clock": imds.host_clock_ahead_s puts the instance's clock
        # that far ahead of it (gd-doctor's platform.clock measures the offset from it).
        when = time.time() if timestamp is None else timestamp
        return super().date_time_string(when - float(self.cfg.get("host_clock_ahead_s", 0)))

    def _send(self, code: int, body: str = "", ctype: str = "text/plain") -> None:
        raw = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _record(self, code: Optional[int]) -> None:
        if self.log:
            self.log.write(service="imds", method=self.command, path=self.path, status=code)

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if not self.cfg.get("enabled", True):
            self._record(403)
            return self._send(403, "")
        if self.path != "/latest/api/token":
            self._record(403 if "/api/token" in self.path else 404)
            return self._send(403 if "/api/token" in self.path else 404, "")
        if self.headers.get("X-Forwarded-For"):
            self._record(403)
            return self._send(403, "")
        if self.cfg.get("hop_limit_exceeded"):
            # The response would need one hop more than allowed: it never arrives.
            self._record(None)
            time.sleep(float(self.cfg.get("hang_seconds", 30)))
            self.close_connection = True
            return None
        ttl = self.headers.get(TOKEN_TTL_HEADER, "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            self._record(400)
            return self._send(400, "")
        token = "AQAEA" + uuid.uuid4().hex + uuid.uuid4().hex
        self.tokens[token] = time.time() + int(ttl)
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header(TOKEN_TTL_HEADER, ttl)
        self.send_header("Content-Length", str(len(token)))
        self.end_headers()
        self.wfile.write(token.encode("ascii"))
        return None

    def do_GET(self) -> None:
        if not self.cfg.get("enabled", True):
            self._record(403)
            return self._send(403, "")
        token = self.headers.get(TOKEN_HEADER)
        if token is not None:
            if self.tokens.get(token, 0) < time.time():
                self._record(401)
                return self._send(401, _UNAUTHORIZED, "text/html")
        elif self.cfg.get("token", "required") == "required":
            self._record(401)
            return self._send(401, _UNAUTHORIZED, "text/html")
        path = self.path.split("?", 1)[0]
        body = self.tree.get(path)
        if body is None and path.endswith("/"):
            body = _listing(self.tree, path)
        if body is None and path in ("/latest/meta-data", "/latest/dynamic"):
            body = _listing(self.tree, path)
        if body is None:
            self._record(404)
            return self._send(404, "", "text/html")
        self._record(200)
        ctype = "application/json" if body.startswith("{") else "text/plain"
        return self._send(200, body, ctype)


# --------------------------------------------------------------------------------------------
# The guardduty-data endpoint

#: Named responses; a scenario may also give {"status", "headers", "body"} itself. The service's
#: real answer to an unsigned request is not documented: "service" is modelled on the error shape
#: of AWS JSON REST services (x-amzn-ErrorType plus a JSON body).
ENDPOINT_RESPONSES: Dict[str, Dict[str, Any]] = {
    "service": {
        "status": 403,
        "headers": {"x-amzn-ErrorType": "MissingAuthenticationTokenException"},
        "body": {"message": "Missing Authentication Token"},
    },
    "access-denied": {
        "status": 403,
        "headers": {"x-amzn-ErrorType": "AccessDeniedException"},
        "body": {
            "__type": "AccessDeniedException",
            "Message": "User: arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/"
            "i-0abc1234def567890 is not authorized to perform: "
            "guardduty:SendSecurityTelemetry with an explicit deny in a service control policy",
        },
    },
}


class EndpointHandler(BaseHTTPRequestHandler):
    server_version = "Server"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    response: ClassVar[Dict[str, Any]] = {}
    log: Optional[_Log] = None

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status = int(self.response.get("status", 403))
        body = self.response.get("body", "")
        raw = (json.dumps(body) if not isinstance(body, str) else body).encode("utf-8")
        if self.log:
            self.log.write(service="endpoint", method=self.command, path=self.path, status=status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (self.response.get("headers") or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = _answer
    do_POST = _answer
    do_PUT = _answer
    do_HEAD = _answer


class _Server(ThreadingHTTPServer):
    """HTTPServer without the reverse DNS lookup its server_bind does (no resolver here)."""

    daemon_threads = True

    def server_bind(self) -> None:
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _TLSServer(_Server):
    def __init__(self, addr: Tuple[str, int], handler: Any, context: ssl.SSLContext) -> None:
        super().__init__(addr, handler)
        self.context = context

    def get_request(self) -> Tuple[socket.socket, Any]:
        sock, peer = super().get_request()
        sock.settimeout(10)
        try:
            return self.context.wrap_socket(sock, server_side=True), peer
        except (ssl.SSLError, OSError):
            # A client that refuses the certificate: close and wait for the next one.
            sock.close()
            raise


# --------------------------------------------------------------------------------------------
# HTTP proxy


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    behaviour = "forward"
    log: Optional[_Log] = None

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_CONNECT(self) -> None:
        if self.log:
            self.log.write(service="proxy", method="CONNECT", path=self.path)
        host, _, port = self.path.rpartition(":")
        if self.behaviour != "forward":
            self.send_response(403, "Forbidden")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            upstream = socket.create_connection((host, int(port or 443)), timeout=5)
        except OSError:
            self.send_response(502, "Bad Gateway")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        conns = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(conns, [], [], 10)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is self.connection else self.connection).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()

    def _refuse_plain(self) -> None:
        # Plain HTTP through the proxy (e.g. IMDS calls without no_proxy): the proxy is outside
        # the instance and cannot reach its link-local IMDS.
        if self.log:
            self.log.write(service="proxy", method=self.command, path=self.path)
        self.send_response(502, "Bad Gateway")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = _refuse_plain
    do_PUT = _refuse_plain
    do_POST = _refuse_plain


# --------------------------------------------------------------------------------------------


def _serve(server: ThreadingHTTPServer, name: str) -> None:
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()


def start_all(cfg: Dict[str, Any], state: Path) -> List[Any]:
    """Start every service the config names; returns the server objects."""
    log = _Log(state / "requests.jsonl")
    servers: List[Any] = []
    imds = cfg.get("imds")
    if imds is not None and imds.get("reachable", True):
        ImdsHandler.cfg = imds
        ImdsHandler.tree = imds_tree(imds)
        ImdsHandler.log = log
        srv = _Server((IMDS_ADDRESS, 80), ImdsHandler)
        _serve(srv, "imds")
        servers.append(srv)
    dns = cfg.get("dns")
    if dns is not None:
        zone = Zone(dns.get("records", {}), default=dns.get("default", "NXDOMAIN"))
        servers.append(DnsServer(zone, dns["address"], 53).start())
    for ep in cfg.get("endpoints", []):
        if ep.get("behaviour") in ("refuse", "blackhole"):
            continue  # nothing listens: RST, or the address is routed into the black hole
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(ep["cert_chain"], ep["key"])
        EndpointHandlerN = type(
            "EndpointHandlerN",
            (EndpointHandler,),
            {"response": ep["response"], "log": log},
        )
        tls = _TLSServer((ep["address"], int(ep.get("port", 443))), EndpointHandlerN, ctx)
        _serve(tls, "endpoint")
        servers.append(tls)
    proxy = cfg.get("proxy")
    if proxy is not None:
        ProxyHandlerN = type(
            "ProxyHandlerN",
            (ProxyHandler,),
            {"behaviour": proxy.get("behaviour", "forward"), "log": log},
        )
        psrv = _Server((proxy["address"], int(proxy.get("port", 3128))), ProxyHandlerN)
        _serve(psrv, "proxy")
        servers.append(psrv)
    return servers


def main(argv: List[str]) -> int:
    cfg_path = Path(argv[0])
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    state = cfg_path.parent
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    start_all(cfg, state)
    (state / "ready").write_text("ready\n", encoding="ascii")
    # Never outlive the runner: stop when told to, or when the parent goes away.
    parent = int(cfg.get("parent_pid", 0))
    while not stop.wait(0.5):
        if parent and not Path(f"/proc/{parent}").exists():
            break
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
