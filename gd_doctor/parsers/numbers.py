"""Numbers from hostile text: never an OverflowError, never Python's int-digits ValueError."""

from __future__ import annotations

import math
from typing import Optional

# Sizes and durations beyond 2**64 are no value systemd or the kernel can hold.
MAX_VALUE = 2**64
MAX_DIGITS = 40


def scaled(number: str, scale: int = 1) -> Optional[int]:
    """``number`` (``"128"``, ``"1.5"``) times ``scale`` as an int; None when it is not a plain
    ASCII decimal or the result is out of range.

    >>> scaled("1.5", 1024), scaled("9" * 5000), scaled("١٢"), scaled("nan")
    (1536, None, None, None)
    """
    text = number.strip()
    if not text or len(text) > MAX_DIGITS or not text.isascii():
        return None
    try:
        value = float(text) * scale
    except ValueError:
        return None
    if not math.isfinite(value) or not 0 <= value < MAX_VALUE:
        return None
    return int(value)
