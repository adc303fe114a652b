r"""Removing secrets from any text gd-doctor may show: credentials, tokens, keys, passwords.

Checks redact evidence lines when they collect them; the renderers redact the whole report once
more, so a secret that slipped into an exception message is still never printed.

What is masked (the mask is ``[REDACTED]``; a known prefix stays readable, ``AKIA[REDACTED]``,
``ghp_[REDACTED]``, ``Bearer [REDACTED]``, ``http://[REDACTED]@proxy:3128``):

* PEM private key blocks (RSA, EC, DSA, OPENSSH, PGP, ENCRYPTED, SSH2), also cut ones;
* user:password@ in URLs, scheme-less (``alice:pw@proxy:3128``) and URL-encoded
  (``http%3A%2F%2Falice%3Apw%40proxy``), passwords holding ``@`` or ``/`` included;
* the value of every secret-named key, in ``k=v``, ``k: v``, ``"k": "v"``, ``\"k\": \"v\"``,
  ``--k v``, ``k%3Dv`` and ``.netrc`` forms: passwords, secrets, tokens (session, security,
  IMDS, auth), API/secret/private/access keys, client secrets, SigV4 signatures, cookies,
  docker ``auth``; ``Authorization``/``Proxy-Authorization``/``Cookie`` keep only the scheme;
* token formats without a key: AWS access key ids, 40-character secret access keys, session
  tokens, IMDSv2 tokens, JWTs, Bearer/Basic credentials, GitHub, GitLab, Slack, OpenAI-style,
  Stripe, Google, npm, PyPI, Vault, SendGrid, DigitalOcean, Telegram, Shopify and Mailchimp
  tokens, and long base64 runs.

Redaction takes time linear in the text (Python's ``re`` has no possessive quantifiers before
3.11, so this is by construction): every pattern starts with a literal the engine skips to, or
with a one-character look-behind that fails at once inside a run; what a match attempt can scan
before it fails is bounded (at most 8 KiB, mostly 64-256 characters) or is a class the next
token cannot match, so no backtracking multiplies. Keys are found from hint words with a backward
scan of at most 129 characters; PEM blocks look for their END once and stop looking after a
miss; the loops only move forward; at most :data:`_MAX_PASSES` passes run (until nothing
changes). Lines longer than :data:`MAX_LINE` characters are cut before the patterns run, and
the token the cut went through is dropped (no half secret is shown).

:func:`neutralise_controls` and :func:`terminal_safe` make host text harmless to print: ESC/CSI/
OSC sequences, C0/C1 controls other than tab and newline, and bidi overrides become visible
escapes.
"""

from __future__ import annotations

import dataclasses
import functools
from enum import Enum
from typing import Any, Dict, Mapping

from gd_doctor.redact.base import (
    _MAX_PASSES,
    MASK,
    MAX_LINE,
    cap_lines,
)
from gd_doctor.redact.keyed import (
    _BARE_USERINFO,
    _ENCODED_USERINFO,
    _URL_USERINFO,
    _keep_value,
    _mask_keyed_values,
    is_secret_key,
)
from gd_doctor.redact.tokens import (
    _RUN,
    _TOKEN_LITERALS,
    _TOKENS,
    _mask_pem,
    _mask_run,
)


def _redact_patterns(text: str) -> str:
    """Every masking pattern, without the line cap (the linearity tests time this)."""
    text = _mask_pem(text)
    # Each pattern runs only on a text holding the literals every match of it holds (a unit
    # name like a@b.service has no "://" nor ":"): a skipped pattern is never even compiled.
    if "@" in text:
        if "://" in text:
            text = _URL_USERINFO.sub(r"\1" + MASK + "@", text)
        if ":" in text:
            text = _BARE_USERINFO.sub(MASK + "@", text)
    if "%40" in text:
        text = _ENCODED_USERINFO.sub(r"\1" + MASK + "%40", text)
    text = _mask_keyed_values(text)
    if len(text) > 256 or _TOKEN_LITERALS.search(text):
        for pattern, repl in _TOKENS:
            text = pattern.sub(repl, text)
    return _RUN.sub(_mask_run, text) if len(text) >= 32 else text


def redact(text: str) -> str:
    r"""Mask every secret-looking part of ``text``.

    >>> redact("https_proxy=http://alice:s3cret@proxy.corp:3128")
    'https_proxy=http://[REDACTED]@proxy.corp:3128'
    >>> redact('{"AccessKeyId" : "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey" : "wJalr/K7MDENG"}')
    '{"AccessKeyId" : "ASIA[REDACTED]", "SecretAccessKey" : "[REDACTED]"}'
    >>> redact(r'{"raw": "\"SecretAccessKey\": \"wJalr\""}')
    '{"raw": "\\"SecretAccessKey\\": \\"[REDACTED]\\""}'
    >>> redact("X-aws-ec2-metadata-token: AQAEAFzZ1Jg==")
    'X-aws-ec2-metadata-token: [REDACTED]'
    >>> redact("Authorization: Bearer eyJhbGciOi.abc def")
    'Authorization: Bearer [REDACTED]'
    >>> redact("HTTPS_PROXY=bob:p@ss/w0rd@10.0.0.9:3128 --password hunter2")
    'HTTPS_PROXY=[REDACTED]@10.0.0.9:3128 --password [REDACTED]'

    Paths and shell variables in printed fix commands are left alone:

    >>> redact('PUT /latest/api/token: refused; TOKEN=$(curl -X PUT ...)')
    'PUT /latest/api/token: refused; TOKEN=$(curl -X PUT ...)'
    >>> redact('curl -H "X-aws-ec2-metadata-token: $TOKEN"')
    'curl -H "X-aws-ec2-metadata-token: $TOKEN"'
    """
    if not text:
        return text
    if len(text) <= _CACHED_LEN:
        return _redact_cached(text)
    return _redact_text(text)


def _redact_text(text: str) -> str:
    text = cap_lines(text)
    # A mask can open a context for another rule (a token run that ended inside a key), so the
    # patterns run again until nothing changes: redact(redact(x)) == redact(x).
    for _ in range(_MAX_PASSES):
        masked = _redact_patterns(text)
        if masked == text:
            break
        text = masked
    return text


# A report repeats its strings (a check's summary in its finding, one fix step under several
# findings, evidence already redacted when it was collected): short ones are done once a run.
_CACHED_LEN = 4096
_redact_cached = functools.lru_cache(maxsize=4096)(_redact_text)


def redact_value(value: Any) -> Any:
    """Redact every string inside a JSON-like value, dictionary keys included; the value of a
    secret-named key (``password``, ``SecretAccessKey``, ``auth``...) is masked whole."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, Mapping):
        out: Dict[Any, Any] = {}
        for k, v in value.items():
            name = redact(k) if isinstance(k, str) else k
            while name in out:  # two keys masked alike must not overwrite each other
                name = f"{name}'"
            out[name] = _mask_all(v) if isinstance(k, str) and is_secret_key(k) else redact_value(v)
        return out
    return value


def _mask_all(value: Any) -> Any:
    """The value under a secret-named key: every string or number in it is masked."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return value if (not value or _keep_value(value)) else MASK
    if isinstance(value, (int, float)):
        return MASK
    if isinstance(value, (list, tuple)):
        return type(value)(_mask_all(v) for v in value)
    if isinstance(value, Mapping):
        return {redact(k) if isinstance(k, str) else k: _mask_all(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------
# Terminal safety

_CONTROLS: Dict[int, str] = {c: f"\\x{c:02x}" for c in range(0x20) if c not in (0x09, 0x0A)}
_CONTROLS[0x7F] = "\\x7f"
_CONTROLS.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})
# Bidi embeddings, overrides and isolates (Trojan Source), marks, and line/paragraph separators
_CONTROLS.update(
    {c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F),
                                *range(0x2066, 0x206A))}
)  # fmt: skip


def neutralise_controls(text: str) -> str:
    r"""Host text made safe for a terminal: controls become visible escapes.

    >>> neutralise_controls("ok\x1b[2J\x1b]0;pwned\x07 \u202eevil\r\nnext\tcol")
    'ok\\x1b[2J\\x1b]0;pwned\\x07 \\u202eevil\nnext\tcol'
    """
    if text.isprintable():
        return text
    return text.replace("\r\n", "\n").translate(_CONTROLS)


def terminal_safe(value: Any) -> Any:
    """``value`` (a Report, or any dataclass, tuple, list, mapping or string in it) with every
    string neutralised; enums, numbers and the typed facts are kept as they are."""
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        return neutralise_controls(value)
    if isinstance(value, (list, tuple)):
        return type(value)(terminal_safe(v) for v in value)
    if isinstance(value, Mapping):
        return {terminal_safe(k): terminal_safe(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: terminal_safe(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.init and f.name != "facts"
        }
        return dataclasses.replace(value, **changes)
    return value


__all__ = [
    "MASK",
    "MAX_LINE",
    "cap_lines",
    "is_secret_key",
    "neutralise_controls",
    "redact",
    "redact_value",
    "terminal_safe",
]
