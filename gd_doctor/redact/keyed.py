"""Secrets found by their key or their place: user:password@ in URLs (plain, scheme-less,
URL-encoded) and the value of every secret-named key, in every assignment form."""

from __future__ import annotations

import functools
import re
from typing import Iterator, List, Match, Optional, Tuple

from gd_doctor.patterns import lazy
from gd_doctor.redact.base import (
    MASK,
)

# ---------------------------------------------------------------------------------------------
# Credentials in URLs

# The @ that ends the user info is the last one before a host (the password may hold @ and /).
_HOST_AFTER_AT = r"(?=[A-Za-z0-9\[])"
_URL_USERINFO = lazy(
    r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,30}://)[^\s'\"<>]{1,256}@" + _HOST_AFTER_AT
)
_BARE_USERINFO = lazy(
    r"(?<![\w.:/@%+~-])[A-Za-z0-9._~%+-]{1,128}:(?!//)[^\s'\"<>]{1,256}@" + _HOST_AFTER_AT
)
_ENCODED_USERINFO = lazy(
    r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,30}%3A%2F%2F)[^\s'\"<>&]{1,256}%40(?=[a-z0-9\[])"
)

# ---------------------------------------------------------------------------------------------
# Secret-named keys

# Keys are split into words (snake, kebab, dotted and camelCase) and joined in lower case; a key
# is a secret when that name ends with one of these (so token_mode and ..._ttl_seconds are not).
_SECRET_SUFFIXES = (
    "password", "passwd", "passphrase", "passcode", "secret", "token", "apikey", "secretkey",
    "accesskey", "privatekey", "privkey", "authkey", "signingkey", "encryptionkey", "masterkey",
    "clientkey", "accountkey", "sessionkey", "credentials", "authorization", "cookie",
    "signature", "registrationkey", "activationcode", "activationkey", "bindpw", "keypass",
    "storepass",
)  # fmt: skip
_SECRET_LAST_WORDS = frozenset({"pass", "pwd", "pw", "auth", "sig"})
_AUTH_KEYS = ("authorization", "cookie")  # the whole rest of the header value is the secret
_WORD = lazy(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_NOT_SECRETS = frozenset({"null", "none", "nil", "true", "false", "undefined"})
_SHELL_VARIABLE = lazy(r"\$(?:\(|\{|[A-Z_][A-Z0-9_]*$)")


def _key_words(key: str) -> List[str]:
    return [w.lower() for w in _WORD.findall(key)]


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a key (an environment variable, a JSON key, a header) names a secret.

    >>> [is_secret_key(k) for k in ("AWS_SECRET_ACCESS_KEY", "_authToken", "X-Amz-Signature")]
    [True, True, True]
    >>> [is_secret_key(k) for k in ("token_mode", "AccessKeyId", "bypass", "HTTPS_PROXY")]
    [False, False, False, False]
    """
    words = _key_words(key[:256])
    if not words:
        return False
    name = "".join(words)
    return words[-1] in _SECRET_LAST_WORDS or name.endswith(_SECRET_SUFFIXES)


def _is_auth_key(key: str) -> bool:
    return "".join(_key_words(key[:256])).endswith(_AUTH_KEYS)


# A key followed by a separator, tried where a hint word was found (see _key_candidates); the
# key itself is at most 160 characters (a hint within its first 129).
_KEY = lazy(
    r"""(?<!\w)
    (?P<pre>-{1,2}|\\{0,3}["']|)
    (?P<key>\w[\w.\-]{0,159})(?![\w.\-])
    (?P<close>\\{0,3}["'])?
    (?:[ \t]{0,4}(?P<sep>=>|:=|[:=]|%3[DdAa])[ \t]{0,4}|(?P<ws>[ \t]{1,4}))""",
    re.VERBOSE,
)
# A value: JSON string, single-quoted, JSON string inside a JSON string, or bare. A bare value
# stops at white space and quotes, and at , ; & only when another key=value follows them.
_VALUE = lazy(
    r"""(?P<o1>")(?P<b1>(?:[^"\\\n]|\\.){1,2048})(?P<c1>")
    |(?P<o2>')(?P<b2>[^'\n]{1,2048})(?P<c2>')
    |(?P<o3>\\{1,3}")(?P<b3>[^"\n]{1,2048}?)(?P<c3>\\{1,3}")
    |(?P<o4>\\{0,3}["']?)(?P<b4>(?:[^\s"'\\,;&]|\\(?![\\"'])
        |[,;&](?![ \t]{0,2}[\w.\-]{1,64}[ \t]{0,2}[:=])){1,2048})""",
    re.VERBOSE,
)
# The rest of an Authorization/Cookie value, up to the end of the line or a closing quote.
_REST = {
    "": lazy(r"[^\n]{1,4096}"),
    '"': lazy(r'(?:[^"\\\n]|\\.){1,4096}'),  # a JSON string: \" inside it is no end
    '\\"': lazy(r'[^"\n]{1,4096}'),  # a JSON string in a JSON string: ends at \"
    "'": lazy(r"[^'\n]{1,4096}"),
}
_AUTH_OPEN = lazy(r"\\{0,3}[\"']")
_SCHEME = lazy(
    r"(?i:Bearer|Basic|Digest|Negotiate|NTLM|AWS4-HMAC-SHA256|AWS|Token|OAuth|ApiKey|SSWS)"
    r"[ \t]{1,4}(?=\S)"
)
# "KEY=value with spaces" (shell, systemd Environment=): the value runs to the closing quote.
_QUOTED_ASSIGNMENT = {
    '"': lazy(r'[^"\n]{1,2048}(?=")'),
    "'": lazy(r"[^'\n]{1,2048}(?=')"),
}
_NETRC_CONTEXT = lazy(r"(?:^|\s)(?:machine|login|default)\s")


def _keep_value(body: str) -> bool:
    """Values that are not secrets: empty/boolean/null markers, shell variables in commands."""
    return body.strip().lower() in _NOT_SECRETS or bool(_SHELL_VARIABLE.match(body))


def _whitespace_separator_allowed(text: str, m: Match[str]) -> bool:
    """``--password x`` and ``.netrc``'s ``password x``; elsewhere a space is no separator."""
    if m.group("pre").startswith("-"):
        return True
    if m.group("key") not in ("password", "passwd"):
        return False
    line_start = text.rfind("\n", max(0, m.start() - 256), m.start()) + 1
    before = text[max(line_start, m.start() - 256) : m.start()]
    return not before.strip() or bool(_NETRC_CONTEXT.search(before))


def _opening_quote(text: str, m: Match[str]) -> str:
    """The quote (with its backslashes) a key follows and its value does not close: the key
    and value are one quoted string, as in ``"KEY=a value"`` or ``'Authorization: Basic x'``."""
    if m.group("close"):
        return ""
    pre = m.group("pre").lstrip("-")
    if pre:
        return pre
    k = m.start("key")
    if text[k - 1 : k] not in ('"', "'"):
        return ""
    j = k - 1
    while j > 0 and k - 1 - j < 3 and text[j - 1] == "\\":
        j -= 1
    return text[j:k]


def _closes_string(text: str, end: int) -> bool:
    """Whether the quote at ``end`` ends a quoted string (what follows is punctuation)."""
    after = text[end + 1 : end + 2]
    return not after or after in ",;:)]} \t\n\\\"'"


def _mask_auth_value(text: str, m: Match[str]) -> Optional[Tuple[int, str]]:
    start = m.end()
    quote = _opening_quote(text, m)
    opened = _AUTH_OPEN.match(text, start)
    prefix = ""
    if opened and not quote:
        quote = opened.group()
        prefix = opened.group()
        start = opened.end()
    if quote.startswith("\\"):
        quote = '\\"' if quote.endswith('"') else "'"
    scheme = _SCHEME.match(text, start) if "authorization" in m.group("key").lower() else None
    if scheme:
        prefix += scheme.group()
        start = scheme.end()
    rest = _REST[quote if quote in _REST else ""].match(text, start)
    if rest is not None and quote and not _closes_string(text, rest.end()):
        rest = _REST[""].match(text, start)  # quotes inside an unquoted header value
    if rest is None:
        return None
    body = rest.group()
    trail = len(body) - len(body.rstrip("\\"))  # backslashes of an escaped closing quote
    if trail:
        body = body[:-trail]
    if not body.strip() or _keep_value(body):
        return None
    return rest.end() - trail, prefix + MASK


_PLAIN_KEY = lazy(r"\w[\w.\-]{0,159}")


def _is_inner_secret_key(text: str, body: str, start: int, end: int, form: str) -> bool:
    """Whether a value just matched (``body``, at ``start``-``end``) is only the key of another
    secret, with its separator, whose own value that key then masks: a bare ``key:``/``key=``,
    or a JSON string followed by a colon. Anything else stays the first key's value."""
    if form == "4" and body[-1:] in (":", "="):
        name = body[:-1]
    elif form == "1" and text[end : end + 4].lstrip(" \t")[:1] == ":":
        name = body
    else:
        return False
    if not _PLAIN_KEY.fullmatch(name) or not is_secret_key(name):
        return False
    inner = _KEY.match(text, start - 1 if form == "1" else start)
    return inner is not None and bool(inner.group("sep")) and _mask_value(text, inner) is not None


def _mask_plain_value(text: str, m: Match[str]) -> Optional[Tuple[int, str]]:
    quote = _opening_quote(text, m)
    if quote and m.group("sep") == "=":
        inner = _QUOTED_ASSIGNMENT[quote[-1]].match(text, m.end())
        if inner:
            body = inner.group()
            trail = len(body) - len(body.rstrip("\\"))  # an escaped closing quote: \"
            if body[: len(body) - trail] and not _keep_value(body):
                return inner.end() - trail, MASK
            return None
    v = _VALUE.match(text, m.end())
    if v is None:
        return None
    for n in "1234":
        body = v.group("b" + n)
        if body is not None:
            break
    if _keep_value(body):
        return None
    if _is_inner_secret_key(text, body, v.start("b" + n), v.end(), n):
        # ``Pass=Authorization: Bearer x``, ``x=DB_PASSWORD='pw'``, ``p="private_key": "k"``:
        # the "value" is another secret's key with its separator; that key masks its own value
        # in its turn (masking the key here would hide it and leave its value)
        return None
    return v.end(), (v.group("o" + n) or "") + MASK + (v.group("c" + n) if n != "4" else "")


def _mask_value(text: str, m: Match[str]) -> Optional[Tuple[int, str]]:
    """The value of the secret key ``m`` matched: a header's whole rest, else its value."""
    masker = _mask_auth_value if _is_auth_key(m.group("key")) else _mask_plain_value
    return masker(text, m)


# Words every secret-named key holds, searched as plain lower-case literals (fast); each hit is
# then widened to the key around it.
_KEY_HINTS = lazy(r"pass|pw|secret|token|key|auth|cookie|sig|credential|activation")
_KEY_CHARS_BACKWARDS = lazy(r"[\w.\-]{0,129}")


def _lower_same_length(text: str) -> str:
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _key_candidates(text: str) -> Iterator[Tuple[int, ...]]:
    """Where the keys holding a hint word may start (with their quote or dashes, without them,
    after a %XX escape), in order, each key once. Each hint costs at most 129 characters of
    backward scan, so the search stays linear whatever the text."""
    last = -1
    for hint in _KEY_HINTS.finditer(_lower_same_length(text)):
        h = hint.start()
        before = text[max(0, h - 129) : h]
        run = _KEY_CHARS_BACKWARDS.match(before[::-1])
        key = h - (run.end() if run else 0)
        if h - key > 128 or key <= last:
            continue  # an identifier too long to be a key, or a key already tried
        last = key
        start = key
        while text[key : key + 1] in (".", "-") and key < h:
            key += 1  # dashes of a --flag stay before the key (its pre), dots are no key
        if text[start - 1 : start] in ('"', "'"):
            quote = start = start - 1
            while start > 0 and quote - start < 3 and text[start - 1] == "\\":
                start -= 1
        yield (start, key, key + 2) if text[key - 1 : key] == "%" else (start, key)


def _is_url_path(text: str, m: Match[str]) -> bool:
    """``/latest/api/token: refused``: a path segment before a colon is no key."""
    key = m.group("key")
    return (
        text[m.start("key") - 1 : m.start("key")] == "/"
        and m.group("sep") == ":"
        and (key.isalpha() and key.islower())
    )


_MAX_INNER = 8


def _past_inner_values(text: str, start: int, end: int) -> int:
    """The end of a masked value moved past the value of every secret key inside it
    (``Pass=aws_secret_access_key = x``: the first key's value is the second key, whose
    value would stay readable behind the mask). At most :data:`_MAX_INNER` extensions; each
    scans only the part of the text it adds."""
    cursor = start
    for _ in range(_MAX_INNER):
        grown = end
        for starts in _key_candidates(text[cursor:end]):
            m = next((k for k in (_KEY.match(text, cursor + s) for s in starts) if k), None)
            if m is None or not is_secret_key(m.group("key")) or not m.group("sep"):
                continue
            inner = _mask_value(text, m)
            if inner is not None and inner[0] > grown:
                grown = inner[0]
        if grown == end:
            return end
        cursor, end = end, grown
    return end


# _KEY ends with a separator (=, :, =>, :=, %3D, %3A) or a blank: every match holds one of these.
_SEPARATOR_LITERALS = (" ", "=", ":", "\t", "%3")


def _mask_keyed_values(text: str) -> str:
    if not any(s in text for s in _SEPARATOR_LITERALS):
        return text  # no key can match, as in most JSON keys (unit_load_state)
    out: List[str] = []
    pos = 0
    for starts in _key_candidates(text):
        m = next((k for k in (_KEY.match(text, s) for s in starts if s >= pos) if k), None)
        if m is None:
            continue
        key = m.group("key")
        masked = None
        if _is_url_path(text, m):
            continue
        if is_secret_key(key) and (m.group("sep") or _whitespace_separator_allowed(text, m)):
            masked = _mask_value(text, m)
        if masked is None:
            continue
        end, replacement = masked
        if replacement.endswith(MASK):  # an unquoted value: a secret's key may hide in it
            end = _past_inner_values(text, m.end(), end)
        out.append(text[pos : m.end()])
        out.append(replacement)
        pos = end
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)
