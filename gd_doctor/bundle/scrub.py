"""``--redact-more``: account ids, IP addresses and host names replaced consistently.

The same value always maps to the same placeholder, so the bundle stays readable and a replay
still sees one address where the live run saw one. Placeholders keep their kind's syntax (a
12-digit number, an address of the documentation ranges), so parsers still accept them. The
service addresses gd-doctor itself reasons about (loopback, link-local IMDS and resolver) are
kept: they identify nobody.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from typing import Dict, Iterable, Optional

from gd_doctor.patterns import lazy

_ACCOUNT = lazy(r"(?<![0-9])[0-9]{12}(?![0-9])")
_IPV4 = lazy(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9]|\.[0-9])")
_EC2_NAME = lazy(r"\bip-[0-9]{1,3}(?:-[0-9]{1,3}){3}(?:\.[a-z0-9-]+)*\b")


class Scrubber:
    """One bundle's consistent placeholders; ``counts`` per kind for the manifest."""

    def __init__(self, hostnames: Iterable[str] = ()) -> None:
        self._maps: Dict[str, Dict[str, str]] = {"account-id": {}, "ip-address": {}, "hostname": {}}
        self.counts: Dict[str, int] = {k: 0 for k in self._maps}
        self._hosts = sorted({h for h in hostnames if h and len(h) >= 3}, key=len, reverse=True)
        self._lock = threading.Lock()

    def _placeholder(self, kind: str, value: str) -> str:
        with self._lock:
            table = self._maps[kind]
            if value not in table:
                n = len(table) + 1
                if kind == "account-id":
                    table[value] = f"{n:012d}"
                elif kind == "hostname":
                    table[value] = f"host-{n}"
                else:
                    table[value] = _ip_placeholder(value, n)
            self.counts[kind] += 1
            return table[value]

    def _ip(self, m: "re.Match[str]") -> str:
        text = m.group(0)
        try:
            addr = ipaddress.IPv4Address(text)
        except ValueError:
            return text  # 999.1.1.1: a version number, not an address
        if addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast:
            return text
        return self._placeholder("ip-address", text)

    def __call__(self, text: str) -> str:
        for host in self._hosts:
            if host in text:
                text = text.replace(host, self._placeholder("hostname", host))
        text = _EC2_NAME.sub(lambda m: self._placeholder("hostname", m.group(0)), text)
        text = _ACCOUNT.sub(lambda m: self._placeholder("account-id", m.group(0)), text)
        return _IPV4.sub(self._ip, text)


def _ip_placeholder(value: str, n: int) -> str:
    """Private addresses stay private (10.200/16), public ones become TEST-NET-3 (203.0.113/24,
    then 198.51.100/24): whether a name resolves to a private address is a finding."""
    private: Optional[bool]
    try:
        private = ipaddress.IPv4Address(value).is_private
    except ValueError:
        private = None
    if private:
        return f"10.200.{n // 250}.{n % 250 + 1}"
    block = ("203.0.113", "198.51.100", "192.0.2")[min(2, n // 250)]
    return f"{block}.{n % 250 + 1}"
