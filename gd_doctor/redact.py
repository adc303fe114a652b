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
import re
from enum import Enum
from typing import Any, Dict, Iterator, List, Mapping, Match, Optional, Pattern, Tuple

MASK = "[REDACTED]"
MAX_LINE = 8192
_MAX_PASSES = 4
_CUT_MARK = "…[{n} more characters cut]"

# ---------------------------------------------------------------------------------------------
# Line cap


def _effective_len(line: str) -> int:
    """Length with each mask counted as one character: masking never increases it, so a line
    the cap kept is kept again on a second pass (redaction stays idempotent)."""
    return len(line) - (len(MASK) - 1) * line.count(MASK)


# Characters a token, key or password is made of: a cut drops the run it went through, so the
# first half of a secret cut in two is never shown.
_TAIL_TOKEN = re.compile(r"[A-Za-z0-9+/=_.~%:@\\-]{1,8192}\Z")


def _cut_line(line: str) -> str:
    keep = line[: MAX_LINE - 64]
    tail = _TAIL_TOKEN.search(keep, max(0, len(keep) - 8192))
    if tail:
        keep = keep[: tail.start()]
    return keep + _CUT_MARK.format(n=len(line) - len(keep))


def cap_lines(text: str) -> str:
    """Cut every line longer than :data:`MAX_LINE` characters, saying how much was cut."""
    if len(text) <= MAX_LINE:
        return text
    lines = text.split("\n")
    changed = False
    for i, line in enumerate(lines):
        if len(line) > MAX_LINE and _effective_len(line) > MAX_LINE:
            lines[i] = _cut_line(line)
            changed = True
    return "\n".join(lines) if changed else text


# ---------------------------------------------------------------------------------------------
# PEM private keys

_PEM_BEGIN = re.compile(r"-{3,5} ?BEGIN ?[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)? ?-{3,5}")
_PEM_END = re.compile(r"-{3,5} ?END ?[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)? ?-{3,5}")
# A block without its END (cut by a line limit): the rest of the BEGIN line, then the lines
# that look like key material (base64 or the Proc-Type/DEK-Info/Comment headers).
_PEM_REST = re.compile(r"[^\n]{0,8192}")
_PEM_BODY_LINES = re.compile(
    r"(?:\n[ \t]{0,16}(?:[A-Za-z0-9+/=]{1,128}|(?:Proc-Type|DEK-Info|Comment):[^\n]{0,256})"
    r"[ \t]{0,16}(?=\n|\Z))+"
)


def _pem_body(body: str) -> str:
    """The mask for a block's body, keeping where its first and last line break were."""
    if not body.strip():
        return body
    n = body.count("\n")
    if n == 0:
        return MASK
    if n == 1:
        return MASK + "\n" if body.split("\n")[0].strip() else "\n" + MASK
    return "\n" + MASK + "\n"


def _mask_pem(text: str) -> str:
    if "PRIVATE KEY" not in text:
        return text
    out: List[str] = []
    pos = 0
    end_missing = False  # once no END follows a position, none follows any later one
    while True:
        begin = _PEM_BEGIN.search(text, pos)
        if begin is None:
            break
        out.append(text[pos : begin.end()])
        end = None if end_missing else _PEM_END.search(text, begin.end())
        if end is not None:
            out.append(_pem_body(text[begin.end() : end.start()]))
            out.append(end.group())
            pos = end.end()
            continue
        end_missing = True
        rest = _PEM_REST.match(text, begin.end())
        stop = rest.end() if rest else begin.end()
        out.append(MASK if text[begin.end() : stop].strip() else text[begin.end() : stop])
        body = _PEM_BODY_LINES.match(text, stop)
        if body:
            out.append("\n" + MASK)
            stop = body.end()
        pos = stop
    out.append(text[pos:])
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Credentials in URLs

# The @ that ends the user info is the last one before a host (the password may hold @ and /).
_HOST_AFTER_AT = r"(?=[A-Za-z0-9\[])"
_URL_USERINFO = re.compile(
    r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,30}://)[^\s'\"<>]{1,256}@" + _HOST_AFTER_AT
)
_BARE_USERINFO = re.compile(
    r"(?<![\w.:/@%+~-])[A-Za-z0-9._~%+-]{1,128}:(?!//)[^\s'\"<>]{1,256}@" + _HOST_AFTER_AT
)
_ENCODED_USERINFO = re.compile(
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
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_NOT_SECRETS = frozenset({"null", "none", "nil", "true", "false", "undefined"})
_SHELL_VARIABLE = re.compile(r"\$(?:\(|\{|[A-Z_][A-Z0-9_]*$)")


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
_KEY = re.compile(
    r"""(?<!\w)
    (?P<pre>-{1,2}|\\{0,3}["']|)
    (?P<key>\w[\w.\-]{0,159})(?![\w.\-])
    (?P<close>\\{0,3}["'])?
    (?:[ \t]{0,4}(?P<sep>=>|:=|[:=]|%3[DdAa])[ \t]{0,4}|(?P<ws>[ \t]{1,4}))""",
    re.VERBOSE,
)
# A value: JSON string, single-quoted, JSON string inside a JSON string, or bare. A bare value
# stops at white space and quotes, and at , ; & only when another key=value follows them.
_VALUE = re.compile(
    r"""(?P<o1>")(?P<b1>(?:[^"\\\n]|\\.){1,2048})(?P<c1>")
    |(?P<o2>')(?P<b2>[^'\n]{1,2048})(?P<c2>')
    |(?P<o3>\\{1,3}")(?P<b3>[^"\n]{1,2048}?)(?P<c3>\\{1,3}")
    |(?P<o4>\\{0,3}["']?)(?P<b4>(?:[^\s"'\\,;&]|\\(?![\\"'])
        |[,;&](?![ \t]{0,2}[\w.\-]{1,64}[ \t]{0,2}[:=])){1,2048})""",
    re.VERBOSE,
)
# The rest of an Authorization/Cookie value, up to the end of the line or a closing quote.
_REST = {
    "": re.compile(r"[^\n]{1,4096}"),
    '"': re.compile(r'(?:[^"\\\n]|\\.){1,4096}'),  # a JSON string: \" inside it is no end
    '\\"': re.compile(r'[^"\n]{1,4096}'),  # a JSON string in a JSON string: ends at \"
    "'": re.compile(r"[^'\n]{1,4096}"),
}
_AUTH_OPEN = re.compile(r"\\{0,3}[\"']")
_SCHEME = re.compile(
    r"(?i:Bearer|Basic|Digest|Negotiate|NTLM|AWS4-HMAC-SHA256|AWS|Token|OAuth|ApiKey|SSWS)"
    r"[ \t]{1,4}(?=\S)"
)
# "KEY=value with spaces" (shell, systemd Environment=): the value runs to the closing quote.
_QUOTED_ASSIGNMENT = {
    '"': re.compile(r'[^"\n]{1,2048}(?=")'),
    "'": re.compile(r"[^'\n]{1,2048}(?=')"),
}
_NETRC_CONTEXT = re.compile(r"(?:^|\s)(?:machine|login|default)\s")


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
    return v.end(), (v.group("o" + n) or "") + MASK + (v.group("c" + n) if n != "4" else "")


# Words every secret-named key holds, searched as plain lower-case literals (fast); each hit is
# then widened to the key around it.
_KEY_HINTS = re.compile(r"pass|pw|secret|token|key|auth|cookie|sig|credential|activation")
_KEY_CHARS_BACKWARDS = re.compile(r"[\w.\-]{0,129}")


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


def _mask_keyed_values(text: str) -> str:
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
            masked = (_mask_auth_value if _is_auth_key(key) else _mask_plain_value)(text, m)
        if masked is None:
            continue
        end, replacement = masked
        out.append(text[pos : m.end()])
        out.append(replacement)
        pos = end
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Token formats recognisable without a key

# Formats with a fixed prefix, each written literal first (the regex engine then skips to the
# literal; a leading look-behind would make it try every position). The look-behind after the
# literal checks the character before it. (?P<k>...) is kept before the mask.
_PREFIXED: Tuple[str, ...] = (
    # AWS access key ids (long-term AKIA, temporary ASIA, and the other IAM unique-id prefixes)
    r"(?P<k>AKIA|ASIA|AROA|AIDA|AGPA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA)(?<![A-Za-z0-9]....)"
    r"[A-Z0-9]{12,40}(?![A-Z0-9])",
    # JSON Web Tokens
    r"eyJ(?<![\w-]...)[\w-]{5,4096}\.eyJ[\w-]{5,8192}\.[\w-]{0,2048}(?![\w-])",
    # AWS session tokens (STS, instance-profile credentials) by their fixed prefixes
    # (FwoGZXIvYXdz, FQoGZXIvYXdz, AQoDYXdz, IQoJb3JpZ2lu, IgoJb3JpZ2lu...: their first four)
    r"(?:FwoG|FQoG|AQoD|AQoE|IQoJ|IgoJ|IQoD)(?<![A-Za-z0-9+/]....)[A-Za-z0-9+/]{16,8192}={0,2}",
    # IMDSv2 session tokens
    r"AQA(?<![\w+/-]...)[A-Z]A[\w+/-]{30,200}={0,2}",
    # Bearer and Basic credentials wherever they appear
    r"(?P<k>(?:Bearer|bearer|BEARER)(?<![\w]......)[ \t]{1,4})[A-Za-z0-9._~+/=-]{8,4096}",
    r"(?P<k>Basic(?<![\w].....)[ \t]{1,4})(?=[A-Za-z0-9+/]{1,255}[A-Z0-9+/=])"
    r"[A-Za-z0-9+/]{8,4096}={0,2}",
    # GitHub, GitLab, Slack, OpenAI/Anthropic-style, Stripe, Google, npm, PyPI, Vault,
    # SendGrid, DigitalOcean, Shopify
    r"(?P<k>gh[pousr]_)(?<![A-Za-z0-9_]....)[A-Za-z0-9]{20,255}(?![A-Za-z0-9])",
    r"(?P<k>github_pat_)(?<![A-Za-z0-9_]...........)[A-Za-z0-9_]{20,255}",
    r"(?P<k>gl(?<![\w-]..)(?:pat|dt|rt|ptt|cbt|soat|oas)-)[\w-]{20,255}",
    r"(?P<k>(?:xox[abposre]|xapp)-)(?<![\w-].....)[A-Za-z0-9-]{10,255}",
    r"(?P<k>hooks\.slack\.com/services/)[A-Za-z0-9/_-]{20,255}",
    r"(?P<k>sk-(?<![\w-]...)(?:proj-|ant-(?:api[0-9]{2}-)?|svcacct-|admin-)?)[\w-]{20,255}",
    r"(?P<k>(?:sk|rk|pk)_(?<![A-Za-z0-9]...)(?:live|test)_)[A-Za-z0-9]{10,255}",
    r"(?P<k>AIza)(?<![\w-]....)[\w-]{35,64}",
    r"(?P<k>npm_)(?<![\w-]....)[A-Za-z0-9]{36}(?![A-Za-z0-9])",
    r"(?P<k>pypi-)(?<![\w-].....)AgE[\w-]{20,4096}",
    r"(?P<k>hv[sbr]\.)(?<![\w.-]....)[\w-]{20,255}",
    r"(?P<k>SG\.)(?<![\w.-]...)[\w-]{16,64}\.[\w-]{16,64}",
    r"(?P<k>do[opr]_v1_)(?<![\w-].......)[a-f0-9]{64}",
    r"(?P<k>shp(?:at|ca|pa|ss)_)(?<![\w-]......)[a-fA-F0-9]{32}",
)


def _keep_prefix(m: Match[str]) -> str:
    return m.group("k") + MASK


def _mask_whole(m: Match[str]) -> str:
    return MASK


# One pattern each: an alternation of them would lose the engine's skip to the literal.
_TOKENS: Tuple[Tuple[Pattern[str], Any], ...] = tuple(
    (re.compile(p), _keep_prefix if "(?P<k>" in p else _mask_whole) for p in _PREFIXED
)
# For short strings one scan for the literals is cheaper than a pass of every pattern.
_TOKEN_LITERALS = re.compile(
    r"AKIA|ASIA|AROA|AIDA|AGPA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA|eyJ|FwoG|FQoG|AQoD|AQoE|IQoJ|IgoJ|"
    r"IQoD|AQA|Bearer|bearer|BEARER|Basic|gh[pousr]_|github_pat_|gl|xox|xapp|hooks\.slack|sk-|"
    r"_live_|_test_|AIza|npm_|pypi-|hv[sbr]\.|SG\.|_v1_|shp"
)


# Formats without a prefix are found as runs of token characters, checked one by one.
_RUN = re.compile(r"[A-Za-z0-9+/=_:-]{32,16384}")
_B64_PART = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_TELEGRAM = re.compile(r"[0-9]{8,10}:AA[\w-]{33}")
_MAILCHIMP = re.compile(r"[0-9a-f]{32}(-us[0-9]{1,2})")


def _looks_random(part: str) -> bool:
    """Mixed case with a digit, not a path: what base64 keys look like, and words do not."""
    return (not part.startswith("/") and any(c.isdigit() for c in part)
            and any(c.isupper() for c in part) and any(c.islower() for c in part))  # fmt: skip


def _mask_run(m: Match[str]) -> str:
    run = m.group()
    if _TELEGRAM.fullmatch(run):
        return MASK
    chimp = _MAILCHIMP.fullmatch(run)
    if chimp:
        return MASK + chimp.group(1)
    out: List[str] = []
    pos = 0
    for part in _B64_PART.finditer(run):
        body = part.group().rstrip("=")
        # a bare 40-character AWS secret access key, or any longer base64 key or token
        if (len(body) == 40 or len(body) >= 64) and _looks_random(body):
            out += [run[pos : part.start()], MASK]
            pos = part.end()
    if not out:
        return run
    out.append(run[pos:])
    return "".join(out)


def _redact_patterns(text: str) -> str:
    """Every masking pattern, without the line cap (the linearity tests time this)."""
    text = _mask_pem(text)
    if "@" in text:
        text = _URL_USERINFO.sub(r"\1" + MASK + "@", text)
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
    text = cap_lines(text)
    # A mask can open a context for another rule (a token run that ended inside a key), so the
    # patterns run again until nothing changes: redact(redact(x)) == redact(x).
    for _ in range(_MAX_PASSES):
        masked = _redact_patterns(text)
        if masked == text:
            break
        text = masked
    return text


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
