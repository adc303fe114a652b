"""Removing secrets from any text gd-doctor may show: credentials, tokens, keys, passwords.

Checks redact evidence lines when they collect them; the renderers redact the whole report once
more, so a secret that slipped into an exception message is still never printed.
"""

from __future__ import annotations

import re
from typing import Any, List, Pattern, Tuple

MASK = "[REDACTED]"

_RULES: List[Tuple[Pattern[str], str]] = [
    # user:password@ in URLs (proxy URLs often carry them)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s:'\"]+(?::[^/@\s'\"]*)?@"), r"\1" + MASK + "@"),
    # JSON or key=value secrets from IMDS credentials, SDK configs and environments
    (
        re.compile(
            r"""(?ix)
            (?<![\w/.-])([\\"']*(?:secret_?access_?key|aws_secret_access_key|secretaccesskey|session_?token|
            aws_session_token|token|password|passwd|pwd|x-aws-ec2-metadata-token|authorization|
            registrationkey|activation_?code)[\\"']*\s*[:=]\s*)
            (?!\\?["']?\$)  # a shell variable ($TOKEN) in a printed command is not a secret
            (?:\\?"(?:[^"\\]|\\.)*?\\?"|'[^']*'|[^\s,;}&]+)"""
        ),
        r"\1" + MASK,
    ),
    # AWS access key ids (long-term AKIA, temporary ASIA)
    (re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b"), MASK),
    # Bearer tokens
    (re.compile(r"(?i)\bbearer\s+[a-z0-9._~+/=-]+"), "Bearer " + MASK),
]


def redact(text: str) -> str:
    r"""Mask every secret-looking part of ``text``.

    >>> redact("https_proxy=http://alice:s3cret@proxy.corp:3128")
    'https_proxy=http://[REDACTED]@proxy.corp:3128'
    >>> redact('{"AccessKeyId" : "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey" : "wJalr/K7MDENG"}')
    '{"AccessKeyId" : "[REDACTED]", "SecretAccessKey" : [REDACTED]}'
    >>> redact(r'{"raw": "\"SecretAccessKey\": \"wJalr\""}')
    '{"raw": "\\"SecretAccessKey\\": [REDACTED]"}'
    >>> redact("X-aws-ec2-metadata-token: AQAEAFzZ1Jg==")
    'X-aws-ec2-metadata-token: [REDACTED]'

    Paths and shell variables in printed fix commands are left alone:

    >>> redact('PUT /latest/api/token: refused; TOKEN=$(curl -X PUT ...)')
    'PUT /latest/api/token: refused; TOKEN=$(curl -X PUT ...)'
    >>> redact('curl -H "X-aws-ec2-metadata-token: $TOKEN"')
    'curl -H "X-aws-ec2-metadata-token: $TOKEN"'
    """
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text


def redact_value(value: Any) -> Any:
    """Redact every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    return value
