"""Secrets found by their shape: PEM private key blocks and the token formats that need no
key (AWS ids and keys, JWTs, vendor tokens, long random runs)."""

from __future__ import annotations

from typing import Any, List, Match, Tuple

from gd_doctor.patterns import LazyPattern, lazy
from gd_doctor.redact.base import (
    MASK,
)

# ---------------------------------------------------------------------------------------------
# PEM private keys

_PEM_BEGIN = lazy(r"-{3,5} ?BEGIN ?[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)? ?-{3,5}")
_PEM_END = lazy(r"-{3,5} ?END ?[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)? ?-{3,5}")
# A block without its END (cut by a line limit): the rest of the BEGIN line, then the lines
# that look like key material (base64 or the Proc-Type/DEK-Info/Comment headers).
_PEM_REST = lazy(r"[^\n]{0,8192}")
_PEM_BODY_LINES = lazy(
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
_TOKENS: Tuple[Tuple[LazyPattern[str], Any], ...] = tuple(
    (lazy(p), _keep_prefix if "(?P<k>" in p else _mask_whole) for p in _PREFIXED
)
# For short strings one scan for the literals is cheaper than a pass of every pattern.
_TOKEN_LITERALS = lazy(
    r"AKIA|ASIA|AROA|AIDA|AGPA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA|eyJ|FwoG|FQoG|AQoD|AQoE|IQoJ|IgoJ|"
    r"IQoD|AQA|Bearer|bearer|BEARER|Basic|gh[pousr]_|github_pat_|gl|xox|xapp|hooks\.slack|sk-|"
    r"_live_|_test_|AIza|npm_|pypi-|hv[sbr]\.|SG\.|_v1_|shp"
)


# Formats without a prefix are found as runs of token characters, checked one by one.
_RUN = lazy(r"[A-Za-z0-9+/=_:-]{32,16384}")
_B64_PART = lazy(r"[A-Za-z0-9+/]+={0,2}")
_TELEGRAM = lazy(r"[0-9]{8,10}:AA[\w-]{33}")
_MAILCHIMP = lazy(r"[0-9a-f]{32}(-us[0-9]{1,2})")


def _looks_random(part: str) -> bool:
    """Mixed case with a digit, not a path: what base64 keys look like, and words do not."""
    return (not part.startswith("/") and any(c.isdigit() for c in part)
            and any(c.isupper() for c in part) and any(c.islower() for c in part))  # fmt: skip


def _mask_run(m: Match[str]) -> str:
    run = m.group()
    # the literal tests skip the patterns that cannot match (":AA", "-us" are in every match)
    if ":AA" in run and _TELEGRAM.fullmatch(run):
        return MASK
    chimp = _MAILCHIMP.fullmatch(run) if "-us" in run else None
    if chimp:
        return MASK + chimp.group(1)
    if len(run) < 40:
        return run  # no part of it is as long as the shortest key masked below
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
