"""``/proc/cpuinfo``: which Arm core an aarch64 instance runs on.

First-generation Graviton (A1 instances) is an Arm Cortex-A72 (implementer ``0x41``, part
``0xd08``); Graviton2 is Neoverse N1 (``0xd0c``), Graviton3 Neoverse V1 (``0xd40``), Graviton4
Neoverse V2 (``0xd4f``). GuardDuty does not support A1 (guardduty.md 1.1). Typical input (one
processor block of an aarch64 ``/proc/cpuinfo``)::

    processor       : 0
    BogoMIPS        : 243.75
    Features        : fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid
    CPU implementer : 0x41
    CPU architecture: 8
    CPU variant     : 0x3
    CPU part        : 0xd0c
    CPU revision    : 1
"""

from __future__ import annotations

from typing import NamedTuple, Optional

ARM_CORES = {
    "0xd08": ("Cortex-A72", "Graviton (first generation, A1)"),
    "0xd0c": ("Neoverse N1", "Graviton2"),
    "0xd40": ("Neoverse V1", "Graviton3"),
    "0xd4f": ("Neoverse V2", "Graviton4"),
}


class CpuInfo(NamedTuple):
    """What gd-doctor needs from /proc/cpuinfo."""

    implementer: Optional[str] = None
    part: Optional[str] = None
    model_name: Optional[str] = None

    @property
    def arm_core(self) -> Optional[str]:
        if self.implementer != "0x41" or self.part is None:
            return None
        return ARM_CORES.get(self.part, (None, None))[0]

    @property
    def graviton(self) -> Optional[str]:
        """The Graviton generation the core implies, or None (not Arm, or unknown)."""
        if self.implementer != "0x41" or self.part is None:
            return None
        return ARM_CORES.get(self.part, (None, None))[1]

    @property
    def is_first_generation_graviton(self) -> bool:
        return self.implementer == "0x41" and self.part == "0xd08"


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's implementer, part and model name.

    >>> info = parse_cpuinfo('''processor       : 0
    ... BogoMIPS        : 243.75
    ... CPU implementer : 0x41
    ... CPU architecture: 8
    ... CPU variant     : 0x3
    ... CPU part        : 0xd0c
    ... CPU revision    : 1
    ... ''')
    >>> info.part, info.graviton, info.is_first_generation_graviton
    ('0xd0c', 'Graviton2', False)
    >>> parse_cpuinfo("model name\\t: AMD EPYC\\n").model_name
    'AMD EPYC'
    >>> parse_cpuinfo("\\x00").part is None
    True
    """
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key and key not in values:
            values[key] = value.strip()
    return CpuInfo(
        implementer=values.get("cpu implementer", "").lower() or None,
        part=values.get("cpu part", "").lower() or None,
        model_name=values.get("model name") or None,
    )
