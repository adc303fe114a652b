"""The kernel ring buffer, read once a run for every check that needs it.

``agent.kernel_log`` looks in it for OOM kills of the agent, ``security.*`` for LSM denials of
its eBPF programs. ``dmesg`` formats the whole buffer each time it runs (thousands of lines, tens
of milliseconds of CPU), so the first check to ask runs it and the other gets the same answer;
a check asking while the command runs waits for it.
"""

from __future__ import annotations

import threading
from weakref import WeakKeyDictionary

from gd_doctor.checks.base import Context
from gd_doctor.host import timeouts
from gd_doctor.host.commands import CommandResult

DMESG = ("dmesg", "--time-format=iso", "--kernel", "--nopager")

_guard = threading.Lock()
# per command runner (one per run), so runs in one process (tests, a fleet tool) never share
_answers: "WeakKeyDictionary[object, CommandResult]" = WeakKeyDictionary()
_pending: "WeakKeyDictionary[object, threading.Lock]" = WeakKeyDictionary()


def read_ring_buffer(ctx: Context) -> CommandResult:
    """``dmesg --time-format=iso --kernel`` of this run, run at most once."""
    runner = ctx.host.run
    with _guard:
        lock = _pending.setdefault(runner, threading.Lock())
    with lock:
        answer = _answers.get(runner)
        if answer is None:
            answer = runner.run(DMESG, timeout=ctx.timeout(timeouts.COMMAND))
            _answers[runner] = answer
    return answer
