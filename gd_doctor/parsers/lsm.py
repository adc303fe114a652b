"""Parsers for what may stop eBPF programs besides the kernel's build: kernel lockdown and
SELinux.

* ``/sys/kernel/security/lockdown`` lists the modes with the active one in brackets:
  ``none integrity [confidentiality]`` (kernel_lockdown(7)).
* The kernel logs each refusal as ``Lockdown: <comm>: <what> is restricted; see man
  kernel_lockdown.7`` (security/lockdown/lockdown.c), ``<what>`` being e.g. ``use of bpf to read
  kernel RAM``, ``use of kprobes``, ``use of perf``.
* SELinux logs AVC denials as ``avc:  denied  { prog_load } for  pid=.. comm="<comm>" ...
  tclass=bpf permissive=0`` (the bpf class: map_create, map_read, map_write, prog_load,
  prog_run) and ``{ bpf }`` / ``{ perfmon }`` with ``tclass=capability2``, in the audit log and,
  without auditd, in the kernel log.

Hostile text never makes these raise.
"""

from __future__ import annotations

import re
from typing import List, Optional

from gd_doctor.frozen import dataclass
from gd_doctor.patterns import lazy

_MODE = lazy(r"\[(none|integrity|confidentiality)\]")
_LOCKDOWN = lazy(
    r"Lockdown: (?P<comm>[^:\n]{1,64}): (?P<what>use of (?:bpf|kprobes|perf|tracefs)[^;\n]{0,80})"
    r" is restricted"
)
_AVC = lazy(r"avc:\s+denied\s+\{ (?P<perms>[^}\n]{1,200}) \}(?P<rest>[^\n]{0,2000})", re.IGNORECASE)
_BPF_PERMS = frozenset({"prog_load", "prog_run", "map_create", "map_read", "map_write", "bpf"})
_COMM = lazy(r'\bcomm="?(?P<comm>[^"\s]{1,64})"?')
_TCLASS = lazy(r"\btclass=(?P<tclass>\w{1,40})")
MAX_LINES = 200_000


def lockdown_mode(text: str) -> Optional[str]:
    """The active mode of ``/sys/kernel/security/lockdown``.

    >>> lockdown_mode("none integrity [confidentiality]\\n")
    'confidentiality'
    >>> lockdown_mode("[none] integrity confidentiality") , lockdown_mode("garbage")
    ('none', None)
    """
    found = _MODE.search(text[:4096])
    return found.group(1) if found else None


@dataclass(frozen=True)
class LockdownRefusal:
    comm: str
    what: str
    line: str


def lockdown_refusals(text: str) -> List[LockdownRefusal]:
    """Every ``Lockdown: <comm>: use of ... is restricted`` line about bpf, kprobes, perf or
    tracefs (the facilities eBPF agents use).

    >>> r = lockdown_refusals("[  3.1] Lockdown: amazon-guarddut: use of bpf to read kernel RAM "
    ...                       "is restricted; see man kernel_lockdown.7")
    >>> (r[0].comm, r[0].what)
    ('amazon-guarddut', 'use of bpf to read kernel RAM')
    """
    out: List[LockdownRefusal] = []
    for line in text.splitlines()[:MAX_LINES]:
        if "Lockdown:" not in line:
            continue
        found = _LOCKDOWN.search(line)
        if found:
            out.append(LockdownRefusal(found.group("comm"), found.group("what"), line[:400]))
    return out


@dataclass(frozen=True)
class AvcDenial:
    perms: str
    comm: Optional[str]
    tclass: Optional[str]
    permissive: bool
    line: str


def bpf_avc_denials(text: str) -> List[AvcDenial]:
    """SELinux AVC denials of a bpf permission (``prog_load``, ``map_create``..., or the
    ``bpf`` capability).

    >>> d = bpf_avc_denials('type=AVC msg=audit(1764590000.123:412): avc:  denied  '
    ...     '{ prog_load } for  pid=1502 comm="amazon-guarddut" '
    ...     'scontext=system_u:system_r:unconfined_service_t:s0 '
    ...     'tcontext=system_u:system_r:unconfined_service_t:s0 tclass=bpf permissive=0')
    >>> (d[0].perms, d[0].comm, d[0].tclass, d[0].permissive)
    ('prog_load', 'amazon-guarddut', 'bpf', False)
    """
    out: List[AvcDenial] = []
    for line in text.splitlines()[:MAX_LINES]:
        if "denied" not in line:
            continue
        found = _AVC.search(line)
        if not found:
            continue
        perms = found.group("perms").split()
        if not _BPF_PERMS.intersection(perms):
            continue
        rest = found.group("rest")
        comm = _COMM.search(rest)
        tclass = _TCLASS.search(rest)
        out.append(
            AvcDenial(
                perms=" ".join(perms)[:200],
                comm=comm.group("comm") if comm else None,
                tclass=tclass.group("tclass") if tclass else None,
                permissive="permissive=1" in rest,
                line=line[:400],
            )
        )
    return out
