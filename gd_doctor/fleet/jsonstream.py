"""Reading the items of a large JSON array without loading the whole document.

``aws guardduty list-coverage`` prints one object ``{"Resources": [...], "NextToken": ...}``; for
an Organization that is tens of megabytes. :func:`iter_array_items` walks the top-level object
key by key and decodes only one array item at a time, so memory stays at one item plus one read
chunk. Several top-level objects in one file (pages concatenated with ``cat``) and a bare
top-level array (``--query Resources``) are read too.

>>> import io
>>> list(iter_array_items(io.StringIO('{"Resources":[{"a":1},{"a":2}],"NextToken":"x"}'),
...                       ("Resources",)))
[('Resources', {'a': 1}), ('Resources', {'a': 2})]
>>> list(iter_array_items(io.StringIO('[1, 2]'), ("Resources",)))
[('', 1), ('', 2)]
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Sequence, TextIO, Tuple

from gd_doctor.patterns import lazy

_WS = lazy(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_MARGIN = 32  # longer than any JSON literal or number cut at a chunk end
CHUNK = 1 << 18  # 256 KiB of text per read: memory stays at one chunk plus one item


class StreamError(ValueError):
    """The text is not the JSON expected; ``truncated`` when it simply ends too early."""

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


class _Buffer:
    def __init__(self, fh: TextIO, chunk: int) -> None:
        self.fh = fh
        self.chunk = chunk
        self.buf = ""
        self.pos = 0
        self.eof = False

    def fill(self) -> bool:
        if self.eof:
            return False
        data = self.fh.read(self.chunk)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def peek(self) -> str:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def expect(self, chars: str) -> str:
        ch = self.peek()
        if ch == "":
            raise StreamError(f"ends where one of {chars!r} was expected", truncated=True)
        if ch not in chars:
            raise StreamError(f"{ch!r} where one of {chars!r} was expected")
        self.pos += 1
        return ch

    def value(self) -> Any:
        if self.peek() == "":
            raise StreamError("ends where a value was expected", truncated=True)
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # An error near the end of the buffer may just be a token cut by the chunk
                # (`nu`, `1.5e`, `"a\`): read more. Elsewhere it is invalid JSON, reported at
                # once, so a bad file is never re-parsed chunk after chunk.
                near_end = exc.pos >= len(self.buf) - _MARGIN or exc.msg.startswith("Unterminated")
                if not near_end:
                    raise StreamError(f"invalid JSON: {exc.msg}") from None
                if not self.fill():
                    raise StreamError(f"ends inside a value: {exc.msg}", truncated=True) from None
                continue
            if end >= len(self.buf) - _MARGIN and not self.eof and self.fill():
                continue  # a number or literal at the end of the buffer may go on
            self.pos = end
            return obj


def iter_array_items(
    fh: TextIO, keys: Sequence[str], chunk: int = CHUNK
) -> Iterator[Tuple[str, Any]]:
    """Yield ``(key, item)`` for every item of the arrays under ``keys`` of each top-level object.

    A top-level array yields its items with key ``""``. Raises :class:`StreamError` on text that
    is not JSON (``truncated`` set when it ends early); items yielded before stay valid.
    """
    b = _Buffer(fh, chunk)
    if b.peek() == "":
        raise StreamError("empty", truncated=False)
    while b.peek() != "":
        ch = b.expect("{[")
        if ch == "[":
            yield from _array(b, "")
            continue
        if b.peek() == "}":
            b.pos += 1
            continue
        while True:
            key = b.value()
            if not isinstance(key, str):
                raise StreamError("an object key that is not a string")
            b.expect(":")
            if key in keys and b.peek() == "[":
                b.pos += 1
                yield from _array(b, key)
            else:
                b.value()
            if b.expect(",}") == "}":
                break


def _array(b: _Buffer, key: str) -> Iterator[Tuple[str, Any]]:
    if b.peek() == "]":
        b.pos += 1
        return
    while True:
        yield key, b.value()
        if b.expect(",]") == "]":
            return
