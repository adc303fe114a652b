"""DNS doubles: an injected resolver for unit tests, a UDP server for netns end-to-end tests.

:class:`FakeResolver` implements ``gd_doctor.host.net.Resolver``: a table of name -> addresses
(or a problem string such as ``"no such name"``), an optional delay per name to exercise the
deadline, and a log of the names asked. It never touches the real resolver.

:class:`FakeDnsServer` answers A/AAAA queries over UDP from a table (stdlib only): ``names`` maps
a name to addresses, ``cname`` maps a name to another name (chains are followed into the
answer), a name in neither gets NXDOMAIN, and ``silent=True`` answers nothing at all. Run it inside
a test-made network namespace and point ``/etc/netns/<ns>/resolv.conf`` at it.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

from gd_doctor.host.net import DnsAnswer
from tests.fakes.background import BackgroundServer

Entry = Union[Sequence[str], str]


class FakeResolver:
    description = "fake resolver (test)"

    def __init__(self, table: Dict[str, Entry], delays: Optional[Dict[str, float]] = None):
        self.table = dict(table)
        self.delays = dict(delays or {})
        self.asked: List[str] = []

    def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
        self.asked.append(name)
        start = time.monotonic()
        delay = self.delays.get(name, 0.0)
        if delay:
            time.sleep(min(delay, timeout))
            if delay >= timeout:
                return DnsAnswer(name, problem="timeout", elapsed_s=time.monotonic() - start)
        try:
            ipaddress.ip_address(name.strip("[]"))
            return DnsAnswer(name, (name.strip("[]"),))
        except ValueError:
            pass
        entry = self.table.get(name, "no such name")
        if isinstance(entry, str):
            return DnsAnswer(name, problem=entry, elapsed_s=time.monotonic() - start)
        if not entry:
            return DnsAnswer(name, problem="no address")
        return DnsAnswer(name, tuple(entry), elapsed_s=time.monotonic() - start)


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def _decode_question(data: bytes) -> Tuple[str, int, int]:
    labels = []
    i = 12
    while data[i] != 0:
        n = data[i]
        labels.append(data[i + 1 : i + 1 + n].decode())
        i += 1 + n
    qtype, _ = struct.unpack("!HH", data[i + 1 : i + 5])
    return ".".join(labels), qtype, i + 5


class FakeDnsServer(BackgroundServer):
    """A tiny authoritative-style DNS server over UDP (A, AAAA, CNAME; NXDOMAIN otherwise)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        names: Optional[Dict[str, List[str]]] = None,
        cname: Optional[Dict[str, str]] = None,
        silent: bool = False,
    ) -> None:
        self.names = {k.lower(): v for k, v in (names or {}).items()}
        self.cname = {k.lower(): v for k, v in (cname or {}).items()}
        self.silent = silent
        self.queries: List[Tuple[str, int]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self._prepare_thread()

    @property
    def address(self) -> Tuple[str, int]:
        addr = self.sock.getsockname()
        return str(addr[0]), int(addr[1])

    def _answer(self, data: bytes) -> bytes:
        name, qtype, end = _decode_question(data)
        self.queries.append((name, qtype))
        records = b""
        count = 0
        current = name.lower()
        seen = 0
        while current in self.cname and seen < 20:
            target = self.cname[current]
            rdata = _encode_name(target)
            records += _encode_name(current) + struct.pack("!HHIH", 5, 1, 60, len(rdata)) + rdata
            count += 1
            current, seen = target.lower(), seen + 1
        rcode = 0
        if current in self.names:
            for addr in self.names[current]:
                ip = ipaddress.ip_address(addr)
                rtype = 1 if ip.version == 4 else 28
                if rtype != qtype:
                    continue
                records += (
                    _encode_name(current)
                    + struct.pack("!HHIH", rtype, 1, 60, len(ip.packed))
                    + ip.packed
                )
                count += 1
        elif not count:
            rcode = 3  # NXDOMAIN
        header = data[:2] + struct.pack("!HHHHH", 0x8180 | rcode, 1, count, 0, 0)
        return header + data[12:end] + records

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except OSError:
                continue
            if self.silent or len(data) < 17:
                continue
            try:
                self.sock.sendto(self._answer(data), peer)
            except (OSError, IndexError, struct.error, UnicodeDecodeError):
                continue
