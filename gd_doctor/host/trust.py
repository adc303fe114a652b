"""The CA certificates a TLS probe needs, taken from the trust store by the chain it is shown.

Loading a whole CA store into an OpenSSL 3 context parses every certificate in it: about
250 M instructions for the 145 certificates of a stock Debian store, more than all of
gd-doctor's own modules cost to import, for a probe that needs one or two of them. So a probe
first looks at the chain the server presents (a handshake that verifies nothing), then verifies
in a second handshake against a context holding only the store's certificates that chain
building can reach from it, and falls back to the whole store whenever that handshake fails.

Why the answer is the whole store's:

* OpenSSL finds a certificate's issuer in a store by subject name. :func:`reachable` starts from
  the subject and issuer names of every certificate the server sent and adds each store
  certificate whose subject is such a name, then that certificate's issuer, until nothing new
  is added: every certificate a chain could be built through is in the small context.
* Names are compared as DER bytes, while OpenSSL compares canonical forms, so a store may hold
  an issuer under an encoding this module does not match. The small context then lacks it, its
  handshake fails, and the probe verifies again against the whole store: a failure is always
  the whole store's answer, a success needs a chain to a certificate of the store.
* A store this module cannot index exactly (a block other than ``CERTIFICATE``, a certificate
  it cannot parse, a file over the size cap, no PEM at all) is not indexed; the probe then
  loads the whole store as OpenSSL reads it, with OpenSSL's own errors.
"""

from __future__ import annotations

import binascii
import os
import stat
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

MAX_STORE_BYTES = 16 * 1024 * 1024  # a store larger than this is loaded whole by OpenSSL
_PEM_BEGIN = b"-----BEGIN "
_CERT_BEGIN = b"-----BEGIN CERTIFICATE-----"
_CERT_END = b"-----END CERTIFICATE-----"
# what a PEM body may hold: base64 and line breaks (a header such as Proc-Type: is refused)
_BASE64_AND_SPACE = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n\x0b\x0c"
)


class NotRegularFile(OSError):
    """The CA bundle named is a FIFO, a device or a directory: opening it could block."""


def read_bundle(path: str) -> bytes:
    """The bytes of a CA bundle, without blocking on a special file; OSError when unreadable.

    OpenSSL opens a bundle with ``fopen``, which waits forever on a FIFO with no writer; this
    opens it non-blocking and refuses anything that is not a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"CA bundle {path} is not a regular file")
        chunks: List[bytes] = []
        size = 0
        while size <= MAX_STORE_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _tlv(data: bytes, pos: int) -> Tuple[int, int, int]:
    """(tag, start of the content, end) of the DER element at ``pos``; ValueError if malformed.

    >>> _tlv(bytes.fromhex("3003020101"), 0)
    (48, 2, 5)
    """
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or pos + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def names(der: bytes) -> Tuple[bytes, bytes]:
    """(subject, issuer) of a DER certificate, each the DER of its Name; ValueError if it is not
    a certificate this reader understands."""
    tag, body, _ = _tlv(der, 0)
    tbs_tag, pos, tbs_end = _tlv(der, body)
    if tag != 0x30 or tbs_tag != 0x30:
        raise ValueError("not a certificate")
    fields: List[Tuple[int, int, int]] = []  # (tag, start of the element, end)
    while pos < tbs_end and len(fields) < 6:
        field_tag, _, end = _tlv(der, pos)
        fields.append((field_tag, pos, end))
        pos = end
    if fields and fields[0][0] == 0xA0:  # [0] version, absent in a v1 certificate
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject
    if len(fields) < 5 or fields[0][0] != 0x02 or fields[2][0] != 0x30 or fields[4][0] != 0x30:
        raise ValueError("not a certificate")
    issuer = der[fields[2][1] : fields[2][2]]
    subject = der[fields[4][1] : fields[4][2]]
    return subject, issuer


class TrustIndex:
    """The certificates of one PEM store by subject name (DER bytes)."""

    def __init__(self, certificates: Sequence[bytes]) -> None:
        self.by_subject: Dict[bytes, List[Tuple[bytes, bytes]]] = {}  # subject: [(der, issuer)]
        for der in certificates:
            subject, issuer = names(der)
            self.by_subject.setdefault(subject, []).append((der, issuer))
        self.size = len(certificates)

    def reachable(self, chain: Iterable[bytes]) -> FrozenSet[bytes]:
        """The store's certificates chain building can reach from the certificates sent."""
        wanted: List[bytes] = []
        for der in chain:
            subject, issuer = names(der)
            wanted += [subject, issuer]
        found: Dict[bytes, None] = {}
        seen: set[bytes] = set()
        while wanted:
            name = wanted.pop()
            if name in seen:
                continue
            seen.add(name)
            for der, issuer in self.by_subject.get(name, ()):
                found[der] = None
                wanted.append(issuer)
        return frozenset(found)


def index_pem(data: bytes) -> Optional[TrustIndex]:
    """The index of a PEM store, or None when it holds anything this module would not read
    exactly as OpenSSL does (then the whole store is loaded instead). Blocks are found with
    ``bytes.find``: a regular expression over a 200 KB store cost as much as 40 handshakes."""
    certificates: List[bytes] = []
    pos = data.find(_PEM_BEGIN)
    while pos >= 0:
        if not data.startswith(_CERT_BEGIN, pos):
            return None  # another kind of block: a CRL, a TRUSTED CERTIFICATE, a key
        body_start = pos + len(_CERT_BEGIN)
        end = data.find(_CERT_END, body_start)
        if end < 0:
            return None
        body = data[body_start:end]
        if body[:1] not in (b"\n", b"\r") or body.translate(None, _BASE64_AND_SPACE):
            return None  # not a line break after BEGIN, or not base64
        try:
            certificates.append(binascii.a2b_base64(body))
        except binascii.Error:
            return None
        pos = data.find(_PEM_BEGIN, end + len(_CERT_END))
    if not certificates:
        return None
    try:
        return TrustIndex(certificates)
    except ValueError:
        return None


def load_index(path: Optional[str]) -> Optional[TrustIndex]:
    """The index of the bundle at ``path``; None when there is none or it cannot be indexed."""
    if not path:
        return None
    try:
        data = read_bundle(path)
    except OSError:
        return None
    if len(data) > MAX_STORE_BYTES:
        return None
    return index_pem(data)


def to_pem(certificates: Iterable[bytes]) -> str:
    """``cadata`` for an SSL context: PEM text of DER certificates, in a stable order."""
    out = []
    for der in sorted(certificates):
        body = binascii.b2a_base64(der, newline=False).decode("ascii")
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        out.append(f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n")
    return "".join(out)
