"""The one way gd-doctor runs work in parallel under a deadline.

Some calls cannot be interrupted from Python (``getaddrinfo``, an HTTP read stuck in the
kernel), so each runs in its own daemon thread that we stop waiting for at the deadline. Such a
thread ends by itself when its call's own timeout fires; it never keeps the process alive.
Every other thread gd-doctor starts (the runner's workers) ends with the run.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, List, Optional, Sequence, TypeVar

from gd_doctor.frozen import dataclass

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Timed(Generic[R]):
    """What a call under a deadline gave: its value, the exception it raised, or nothing."""

    done: bool
    value: Optional[R] = None
    error: Optional[BaseException] = None
    elapsed_s: float = 0.0


def start_warm_up(port: object) -> None:
    """Start a port's warm-up when it has one (``warm()``: the network's trust store, read in
    a daemon thread while the local checks run)."""
    warm = getattr(port, "warm", None)
    if callable(warm):
        warm()


def call_with_timeout(fn: Callable[[], R], timeout: float, *, name: str) -> Timed[R]:
    """Run ``fn`` in a daemon thread and wait for it at most ``timeout`` seconds."""
    return map_with_deadline(lambda _: fn(), [None], timeout, name=name)[0]


def map_with_deadline(
    fn: Callable[[T], R], items: Sequence[T], timeout: float, *, name: str
) -> List[Timed[R]]:
    """``fn`` over ``items``, all at once; what is not done by ``timeout`` is ``done=False``.

    >>> [t.value for t in map_with_deadline(lambda n: n * 2, [1, 2, 3], 1.0, name="doc")]
    [2, 4, 6]
    >>> map_with_deadline(lambda n: time.sleep(n), [5], 0.05, name="doc")[0].done
    False
    """
    start = time.monotonic()
    boxes: List[Timed[R]] = [Timed(False) for _ in items]

    def work(i: int, item: T) -> None:
        t0 = time.monotonic()
        try:
            boxes[i] = Timed(True, fn(item), None, time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 - handed back to the caller as a value
            boxes[i] = Timed(True, None, exc, time.monotonic() - t0)

    threads = [
        threading.Thread(target=work, args=(i, item), name=f"gd-doctor-{name}", daemon=True)
        for i, item in enumerate(items)
    ]
    for t in threads:
        t.start()
    end = start + max(0.0, timeout)
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    elapsed = time.monotonic() - start
    return [b if b.done else Timed(False, elapsed_s=elapsed) for b in boxes]
