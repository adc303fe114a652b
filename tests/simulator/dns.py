"""A small authoritative-only DNS server for the simulated VPC resolver (stdlib, UDP).

It answers what the scenario declares and nothing else; it never forwards a query anywhere.
Per name (case-insensitive, without the trailing dot) a record set may hold:

* ``{"A": ["10.0.1.25"], "AAAA": ["fd00::25"]}``: addresses;
* ``{"CNAME": "other.name"}``: an alias, followed inside the same answer (as a resolver does);
* ``{"rcode": "NXDOMAIN"}`` / ``"SERVFAIL"`` / ``"REFUSED"``: that error;
* ``{"drop": true}``: no answer at all (the client times out).

A name with no record set gets ``default`` (NXDOMAIN unless told otherwise). A name that exists
but has no record of the asked type gets NOERROR with an empty answer (NODATA), like a real server.

>>> zone = Zone({"a.example": {"A": ["10.0.0.5"]}, "b.example": {"CNAME": "a.example"}})
>>> q = build_query("B.example", QTYPE["A"], 7)
>>> reply = zone.answer(q)
>>> parse_reply(reply)["answers"]
[('B.example', 'CNAME', 'a.example'), ('a.example', 'A', '10.0.0.5')]
>>> parse_reply(zone.answer(build_query("c.example", QTYPE["A"], 8)))["rcode"]
'NXDOMAIN'
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple

QTYPE: Dict[str, int] = {"A": 1, "CNAME": 5, "AAAA": 28}
QTYPE_NAME: Dict[int, str] = {v: k for k, v in QTYPE.items()}
RCODE: Dict[str, int] = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "REFUSED": 5}
RCODE_NAME: Dict[int, str] = {v: k for k, v in RCODE.items()}
TTL = 60
MAX_CNAME_HOPS = 8


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out += bytes([len(raw)]) + raw
    return out + b"\x00"


def _decode_name(msg: bytes, offset: int) -> Tuple[str, int]:
    """A (possibly compressed) name at ``offset``; returns it and the offset after it."""
    labels: List[str] = []
    end: Optional[int] = None
    hops = 0
    while True:
        if offset >= len(msg):
            raise ValueError("name runs past the message")
        length = msg[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(msg):
                raise ValueError("truncated pointer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | msg[offset + 1]
            hops += 1
            if hops > 32:
                raise ValueError("pointer loop")
            continue
        offset += 1
        if length == 0:
            break
        labels.append(msg[offset : offset + length].decode("ascii", "replace"))
        offset += length
    return ".".join(labels), (end if end is not None else offset)


def build_query(name: str, qtype: int, qid: int) -> bytes:
    """A standard recursive query (used by tests and by :func:`resolve`)."""
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    return header + _encode_name(name) + struct.pack("!HH", qtype, 1)


def _rr(name: str, rtype: str, value: str) -> bytes:
    if rtype == "A":
        data = ipaddress.IPv4Address(value).packed
    elif rtype == "AAAA":
        data = ipaddress.IPv6Address(value).packed
    else:
        data = _encode_name(value)
    return _encode_name(name) + struct.pack("!HHIH", QTYPE[rtype], 1, TTL, len(data)) + data


class Zone:
    """The scenario's records and what to do with names it does not know."""

    def __init__(self, records: Mapping[str, Mapping[str, Any]], default: str = "NXDOMAIN") -> None:
        self.records = {k.lower().rstrip("."): dict(v) for k, v in records.items()}
        self.default = default

    def _lookup(self, name: str) -> Optional[Dict[str, Any]]:
        return self.records.get(name.lower().rstrip("."))

    def answer(self, query: bytes) -> Optional[bytes]:
        """The reply to ``query``, or None to send nothing (a dropped query)."""
        if len(query) < 12:
            return None
        qid, flags, qdcount = struct.unpack("!HHH", query[:6])
        if qdcount != 1 or flags & 0x8000:
            return None
        try:
            qname, off = _decode_name(query, 12)
            qtype, _qclass = struct.unpack("!HH", query[off : off + 4])
        except (ValueError, struct.error):
            return None
        question = query[12 : off + 4]
        answers: List[bytes] = []
        rcode = RCODE["NOERROR"]
        name = qname
        for _ in range(MAX_CNAME_HOPS):
            rec = self._lookup(name)
            if rec is None:
                if not answers:
                    if self.default == "drop":
                        return None
                    rcode = RCODE.get(self.default, RCODE["NXDOMAIN"])
                break
            if rec.get("drop"):
                return None
            if "rcode" in rec:
                rcode = RCODE.get(str(rec["rcode"]).upper(), RCODE["SERVFAIL"])
                break
            if "CNAME" in rec and qtype != QTYPE["CNAME"]:
                target = str(rec["CNAME"])
                answers.append(_rr(name, "CNAME", target))
                name = target
                continue
            want = QTYPE_NAME.get(qtype)
            if want == "CNAME":
                if "CNAME" in rec:
                    answers.append(_rr(name, "CNAME", str(rec["CNAME"])))
            elif want is not None:
                answers.extend(_rr(name, want, str(v)) for v in rec.get(want, []))
            break
        # QR, opcode 0, AA, RD copied, RA
        out_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
        header = struct.pack("!HHHHHH", qid, out_flags, 1, len(answers), 0, 0)
        return header + question + b"".join(answers)


def parse_reply(msg: bytes) -> Dict[str, Any]:
    """rcode and answers of a reply, for tests: ``{"rcode": ..., "answers": [(name, type, value)]}``."""
    _qid, flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        _, off = _decode_name(msg, off)
        off += 4
    answers: List[Tuple[str, str, str]] = []
    for _ in range(an):
        name, off = _decode_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[off : off + 10])
        off += 10
        rdata = msg[off : off + rdlen]
        tname = QTYPE_NAME.get(rtype, str(rtype))
        if tname == "A":
            value = str(ipaddress.IPv4Address(rdata))
        elif tname == "AAAA":
            value = str(ipaddress.IPv6Address(rdata))
        elif tname == "CNAME":
            value, _ = _decode_name(msg, off)
        else:
            value = rdata.hex()
        answers.append((name, tname, value))
        off += rdlen
    return {"rcode": RCODE_NAME.get(flags & 0xF, str(flags & 0xF)), "answers": answers}


class DnsServer:
    """Serves a :class:`Zone` on UDP ``(host, port)`` from a daemon thread until closed."""

    def __init__(self, zone: Zone, host: str = "127.0.0.1", port: int = 53) -> None:
        self.zone = zone
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.address: Tuple[str, int] = self.sock.getsockname()
        self.queries: List[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sim-dns", daemon=True)

    def start(self) -> DnsServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                name, _ = _decode_name(data, 12)
                self.queries.append(name)
            except ValueError:
                pass
            reply = self.zone.answer(data)
            if reply is not None:
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
