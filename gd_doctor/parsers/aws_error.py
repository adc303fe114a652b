"""An HTTP reply to gd-doctor's unsigned probe: did an AWS service answer, or something else?

An AWS endpoint refuses an unsigned request with a 4xx that carries a request id header and an
AWS error body. Typical reply of an AWS JSON-protocol endpoint to an unsigned ``GET /``::

    HTTP/1.1 403 Forbidden
    Content-Type: application/json
    x-amzn-RequestId: 5d1c5c4b-7c1e-4a0b-9d8e-1f2a3b4c5d6e
    x-amzn-ErrorType: MissingAuthenticationTokenException

    {"message":"Missing Authentication Token"}

That refusal is the healthy answer: the service itself answered. A 200 HTML page, a proxy's
``407`` or a block page without a request id means something else is answering on the endpoint.
"""

from __future__ import annotations

from typing import Mapping, Optional

from gd_doctor.frozen import dataclass
from gd_doctor.parsers.errors import ParseError, loads_json
from gd_doctor.patterns import lazy

_REQUEST_ID_HEADERS = ("x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id")
_XML_CODE = lazy(r"<Code>\s*([A-Za-z0-9_.:-]{1,100})\s*</Code>")
_XML_MESSAGE = lazy(r"<Message>\s*([^<]{0,300})</Message>")


@dataclass(frozen=True)
class AwsReply:
    """What the reply says about who answered."""

    status: int
    aws_shaped: bool  # a 4xx with an AWS request id: the service refused the unsigned request
    request_id_present: bool
    error_type: Optional[str] = None
    message: Optional[str] = None
    server: Optional[str] = None


def _error_type(headers: Mapping[str, str], body: str) -> Optional[str]:
    raw = headers.get("x-amzn-errortype")
    if raw:
        return raw.split(":", 1)[0].strip() or None
    m = _XML_CODE.search(body)
    if m:
        return m.group(1)
    try:
        doc = loads_json(body)
    except ParseError:
        return None
    if isinstance(doc, dict):
        for key in ("__type", "code", "Code"):
            if isinstance(doc.get(key), str):
                return str(doc[key]).split("#")[-1]
    return None


def _message(body: str) -> Optional[str]:
    m = _XML_MESSAGE.search(body)
    if m:
        return m.group(1).strip()[:200]
    try:
        doc = loads_json(body)
    except ParseError:
        return None
    if isinstance(doc, dict):
        for key in ("message", "Message"):
            if isinstance(doc.get(key), str):
                return str(doc[key])[:200]
    return None


def parse_aws_reply(status: int, headers: Mapping[str, str], body: str) -> AwsReply:
    """Classify one reply; header names are matched case-insensitively.

    >>> r = parse_aws_reply(403, {"x-amzn-RequestId": "5d1c5c4b-7c1e-4a0b-9d8e-1f2a3b4c5d6e",
    ...     "x-amzn-ErrorType": "MissingAuthenticationTokenException",
    ...     "Content-Type": "application/json"}, '{"message":"Missing Authentication Token"}')
    >>> r.aws_shaped, r.error_type, r.message
    (True, 'MissingAuthenticationTokenException', 'Missing Authentication Token')
    >>> parse_aws_reply(200, {"Server": "squid/5.7"}, "<html>blocked</html>").aws_shaped
    False
    """
    lower = {k.lower(): v for k, v in headers.items()}
    has_id = any(lower.get(h) for h in _REQUEST_ID_HEADERS)
    return AwsReply(
        status=status,
        aws_shaped=has_id and 400 <= status < 500,
        request_id_present=has_id,
        error_type=_error_type(lower, body),
        message=_message(body),
        server=lower.get("server"),
    )
