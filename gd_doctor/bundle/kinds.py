"""What kind of secret each mask of the redactor hides, for the bundle's manifest.

The redactor (gd_doctor/redact.py) only replaces spans with one mask. To say "2 access key ids,
1 proxy password" without the secrets, the masked text is aligned with the original: the text
between two masks is unchanged, so the original span of each mask is found, and its kind is
told from the words right before it (``AKIA``, ``Authorization:``, ``password=``...), the
character after it (``@`` closes the user part of a proxy URL) and its own shape. Only the kind
and the count leave this module. When the alignment fails (it never should), the masks count
as ``secret``.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Mapping

from gd_doctor.patterns import lazy
from gd_doctor.redact import MASK, cap_lines, is_secret_key, redact, redact_value

KINDS = (
    "access-key-id",
    "secret-access-key",
    "session-token",
    "imds-token",
    "authorization-header",
    "proxy-password",
    "private-key",
    "password",
    "other-secret",
)
_SECRET_KEY = lazy(r"^[A-Za-z0-9/+]{40}$")
_SESSION_WORDS = ("session_token", "sessiontoken", "security_token", "security-token",
                  "securitytoken", '"token"', "token=", "token :", "token:")  # fmt: skip
_PASSWORD_WORDS = ("password", "passwd", "pwd", "_pass", "pass=", "pass:")


def classify(before: str, secret: str, after: str) -> str:
    """The kind of the secret ``secret`` found after ``before`` and before ``after``."""
    ctx = before[-48:].lower()
    if "private key" in ctx or "private_key" in ctx or "privatekey" in ctx:
        return "private-key"
    if ctx.endswith(("akia", "asia")):  # the redactor keeps an access key id's prefix
        return "access-key-id"
    if after.startswith(("@", "%40")):
        return "proxy-password"
    if "authorization" in ctx or "cookie" in ctx:
        return "authorization-header"
    if "metadata-token" in ctx or secret.startswith("AQAE"):
        return "imds-token"
    if any(w in ctx for w in _SESSION_WORDS) or secret.startswith(("FwoG", "IQoJ")):
        return "session-token"
    if "secret" in ctx or _SECRET_KEY.match(secret):
        return "secret-access-key"
    if any(w in ctx for w in _PASSWORD_WORDS):
        return "password"
    return "other-secret"


def _add(counts: Dict[str, int], kind: str, n: int = 1) -> None:
    counts[kind] = counts.get(kind, 0) + n


def kinds(original: str, masked: str) -> Dict[str, int]:
    """The masks ``masked`` added to ``original`` (``masked == redact(original)``), by kind."""
    added = masked.count(MASK) - original.count(MASK)
    if added <= 0:
        return {}
    base = cap_lines(original)
    pieces = masked.split(MASK)
    if MASK in base or not base.startswith(pieces[0]):
        return {"secret": added}
    out: Dict[str, int] = {}
    pos = len(pieces[0])
    last = len(pieces) - 1
    for n, nxt in enumerate(pieces[1:], start=1):
        if n == last:
            end = len(base) - len(nxt) if base.endswith(nxt) else -1
        else:
            end = base.find(nxt, pos) if nxt else pos
        if end < pos:
            _add(out, "secret", added - sum(out.values()))
            return out
        _add(out, classify(base[max(0, pos - 64) : pos], base[pos:end], nxt[:4]))
        pos = end + len(nxt)
    return out


class Tally:
    """A redactor that counts what it masked, by kind (thread-safe)."""

    def __init__(self) -> None:
        self.counts: Dict[str, int] = {}
        self._lock = threading.Lock()

    def merge(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            for k, v in counts.items():
                _add(self.counts, k, v)

    def redact(self, text: str) -> str:
        masked = redact(text)
        if masked != text:
            self.merge(kinds(text, masked))
        return masked

    def redact_map(self, value: Mapping[str, Any], then: Callable[[str], str]) -> Dict[str, Any]:
        """A mapping from the host (journal fields, environments, headers): a secret-named
        key's value masked whole (its kind told from the key), every other string redacted."""
        out: Dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            if is_secret_key(key) and isinstance(v, str) and v:
                ((name, masked),) = redact_value({key: v}).items()
                if masked != v:
                    self.merge({classify(key + "=", v, ""): 1})
                out[name] = masked
            else:
                out[redact(key)] = then(self.redact(v)) if isinstance(v, str) else v
        return out
