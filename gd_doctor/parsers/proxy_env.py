"""Proxy settings as a process sees them: environment files, unit drop-ins, ``/proc/PID/environ``.

Sources and their formats:

* ``/etc/environment`` and systemd ``EnvironmentFile=`` files: ``KEY=value`` lines, optional
  quotes, ``#`` comments, an optional ``export`` prefix;
* unit drop-ins (``/etc/systemd/system/amazon-guardduty-agent.service.d/*.conf``):
  ``Environment="https_proxy=http://proxy:3128" "no_proxy=169.254.169.254"`` and
  ``EnvironmentFile=-/etc/sysconfig/proxy`` lines, as AWS documents for the SSM Agent;
* ``/proc/PID/environ``: NUL-separated ``KEY=value`` entries.

Proxy URLs may carry ``user:password@``: :class:`ProxyUrl` keeps only whether credentials were
present, and :attr:`ProxyUrl.display` is safe to print.
"""

from __future__ import annotations

import ipaddress
from typing import Dict, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from gd_doctor.frozen import dataclass
from gd_doctor.parsers.errors import ParseError

PROXY_VARIABLES: Tuple[str, ...] = (
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
)


def parse_env_file(text: str) -> Dict[str, str]:
    """``KEY=value`` lines as systemd's EnvironmentFile= and pam_env read them.

    >>> parse_env_file('''# /etc/environment on Ubuntu 22.04
    ... PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games"
    ... export https_proxy=http://proxy.corp:3128
    ... no_proxy='169.254.169.254,.amazonaws.com'
    ... garbage line
    ... ''')["no_proxy"]
    '169.254.169.254,.amazonaws.com'
    """
    env: Dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "a").isalnum():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key] = value
    return env


def parse_environ(data: bytes) -> Dict[str, str]:
    """``/proc/PID/environ`` (NUL-separated, any bytes).

    >>> parse_environ(b"LANG=C.UTF-8\\x00https_proxy=http://p:3128\\x00\\xff\\xfe\\x00")
    {'LANG': 'C.UTF-8', 'https_proxy': 'http://p:3128'}
    """
    env: Dict[str, str] = {}
    for item in data.split(b"\x00"):
        key, sep, value = item.decode("utf-8", errors="replace").partition("=")
        if sep and key and "\ufffd" not in key:
            env[key] = value
    return env


@dataclass(frozen=True)
class ProxyUrl:
    """A proxy URL without its secrets: scheme, host, port and whether credentials were set."""

    scheme: str
    host: str
    port: int
    has_credentials: bool = False

    @property
    def display(self) -> str:
        creds = "[REDACTED]@" if self.has_credentials else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{creds}{host}:{self.port}"


class ProxyUrlError(ParseError):
    """A proxy value that no client could use; the message never contains credentials."""


def parse_proxy_url(value: str) -> ProxyUrl:
    """Parse a proxy variable's value (a scheme-less ``host:port`` means http, as curl reads it).

    >>> parse_proxy_url("http://alice:s3cret@proxy.corp:3128").display
    'http://[REDACTED]@proxy.corp:3128'
    >>> parse_proxy_url("http://[REDACTED]@proxy.corp:3128").has_credentials
    True
    >>> parse_proxy_url("proxy.corp:8080")
    ProxyUrl(scheme='http', host='proxy.corp', port=8080, has_credentials=False)
    >>> parse_proxy_url("http://proxy:port")
    Traceback (most recent call last):
    ...
    gd_doctor.parsers.proxy_env.ProxyUrlError: port is not a number
    """
    text = value.strip()
    if not text:
        raise ProxyUrlError("empty")
    if "://" not in text:
        text = "http://" + text
    # a value another check already redacted still names a proxy that needs credentials
    text = text.replace("[REDACTED]@", "redacted:redacted@")
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        raise ProxyUrlError("not a URL") from None
    try:
        port = parts.port
    except ValueError:
        raise ProxyUrlError("port is not a number") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "socks4", "socks4a", "socks5", "socks5h"):
        raise ProxyUrlError(f"unsupported scheme {scheme!r}")
    if not host:
        raise ProxyUrlError("no host")
    default = 443 if scheme == "https" else 1080 if scheme.startswith("socks") else 80
    return ProxyUrl(scheme, host, port or default, bool(parts.username or parts.password))


def split_no_proxy(value: str) -> Tuple[str, ...]:
    """``no_proxy`` entries, lower-cased, without blanks.

    >>> split_no_proxy(" 169.254.169.254, .amazonaws.com ,,localhost")
    ('169.254.169.254', '.amazonaws.com', 'localhost')
    """
    return tuple(e.strip().lower() for e in value.replace(" ", ",").split(",") if e.strip())


def _host_in_cidr(host: str, entry: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False


def no_proxy_matches(entries: Sequence[str], host: str) -> bool:
    """True when ``host`` bypasses the proxy (curl/Go rules: ``*``, exact, domain suffix, CIDR).

    >>> no_proxy_matches(("169.254.169.254",), "169.254.169.254")
    True
    >>> no_proxy_matches((".amazonaws.com",), "guardduty-data.us-east-1.amazonaws.com")
    True
    >>> no_proxy_matches(("amazonaws.com",), "guardduty-data.us-east-1.amazonaws.com")
    True
    >>> no_proxy_matches(("169.254.0.0/16",), "169.254.169.254")
    True
    >>> no_proxy_matches(("localhost", "10.0.0.0/8"), "169.254.169.254")
    False
    """
    name = host.lower().strip("[]").rstrip(".")
    for raw in entries:
        entry = raw.lower().strip("[]")
        if entry == "*":
            return True
        if ":" in entry and entry.count(":") == 1:
            entry = entry.split(":", 1)[0]  # host:port: the port is ignored here
        if "/" in entry:
            if _host_in_cidr(name, entry):
                return True
            continue
        entry = entry.lstrip("*").lstrip(".")
        if entry and (name == entry or name.endswith("." + entry)):
            return True
    return False


@dataclass(frozen=True)
class ProxySettings:
    """The proxy a client would use for HTTPS and the no_proxy list, from one environment."""

    https_proxy: Optional[str]  # the raw value (may hold credentials: never print it)
    https_variable: Optional[str]
    no_proxy: Tuple[str, ...]
    no_proxy_variable: Optional[str]


def proxy_settings(env: Mapping[str, str]) -> ProxySettings:
    """Pick the HTTPS proxy as curl and most SDKs do: lower case first, then upper case.

    >>> s = proxy_settings({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "169.254.169.254"})
    >>> s.https_variable, s.no_proxy
    ('HTTPS_PROXY', ('169.254.169.254',))
    >>> proxy_settings({"LANG": "C"}).https_proxy is None
    True
    """
    https_var = next(
        (v for v in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY") if env.get(v)),
        None,
    )
    no_var = next((v for v in ("no_proxy", "NO_PROXY") if v in env), None)
    return ProxySettings(
        https_proxy=env[https_var] if https_var else None,
        https_variable=https_var,
        no_proxy=split_no_proxy(env[no_var]) if no_var else (),
        no_proxy_variable=no_var,
    )
