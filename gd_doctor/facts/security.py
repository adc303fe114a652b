"""Facts of ``platform.bpf_restrictions``: kernel lockdown and SELinux, which may refuse the
agent's eBPF programs on a kernel that has every feature they need.

What other eBPF agents hit (cilium/tetragon #5507, rancher/rke2 #1273, flatcar/Flatcar #696) is
an analogue for the GuardDuty agent: its findings say "may" (knowledge/findings/security.json).
``lockdown`` and ``selinux`` are None when they could not be read, never "none" by default.
"""

from __future__ import annotations

from typing import Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.model import Facts


@dataclass(frozen=True)
class BpfRestrictionFacts(Facts):
    """platform.bpf_restrictions: the lockdown mode, SELinux's mode, and the refusals logged.

    ``lockdown_refusals``/``avc_denials`` are the latest redacted lines naming the agent's
    process (comm ``amazon-guarddut``); ``*_count`` count those lines in what was read.
    ``avc_enforced`` is whether one of the agent's denials was enforced (``permissive=0``).
    """

    lockdown: Optional[str]
    selinux: Optional[str]  # enforcing, permissive, or None (not enabled, or unknown)
    lockdown_refusals: Tuple[str, ...] = ()
    lockdown_count: int = 0
    avc_denials: Tuple[str, ...] = ()
    avc_count: int = 0
    avc_perms: Tuple[str, ...] = ()
    avc_enforced: bool = False
    sources: Tuple[str, ...] = ()
    problems: Tuple[str, ...] = ()
