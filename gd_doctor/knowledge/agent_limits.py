"""The limits AWS documents for the agent: memory caps, CPU budget and the memlock minimum.

Memory caps and the CPU budget come from ``agent_limits.json``; the RLIMIT_MEMLOCK minimum and
the kernels that need it from ``support_matrix.json`` (the platform checks read the same entry).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.knowledge import load


@dataclass(frozen=True)
class MemoryCap:
    """One row: instances with less than ``below`` bytes of memory (None: any) get ``cap``."""

    below: Optional[int]
    cap: int


@dataclass(frozen=True)
class AgentLimits:
    cpu_budget_percent: float
    memory_caps: Tuple[MemoryCap, ...]
    memlock_min_bytes: int
    memlock_kernel_max: Tuple[int, int]  # kernels up to this X.Y need the memlock minimum
    source: str
    date: str

    def documented_memory_cap(self, total_memory: int) -> int:
        """AWS's agent memory cap for an instance with this much memory.

        >>> cap = limits().documented_memory_cap
        >>> cap(4 << 30) >> 20, cap(16 << 30) >> 20, cap(64 << 30) >> 20
        (128, 256, 1024)
        """
        for row in self.memory_caps:
            if row.below is None or total_memory < row.below:
                return row.cap
        return self.memory_caps[-1].cap

    def memlock_needed(self, major: int, minor: int) -> bool:
        """Whether a kernel of this series needs RLIMIT_MEMLOCK of ``memlock_min_bytes``."""
        return (major, minor) <= self.memlock_kernel_max


@lru_cache(maxsize=1)
def limits() -> AgentLimits:
    """The documented agent limits of the shipped knowledge base."""
    raw: Dict[str, Any] = load("agent_limits.json")
    memlock: Dict[str, Any] = load("support_matrix.json")["memlock"]
    major, minor = (int(x) for x in str(memlock["kernel_max"]).split(".")[:2])
    return AgentLimits(
        cpu_budget_percent=float(raw["cpu_budget_percent"]),
        memory_caps=tuple(
            MemoryCap(row["below_bytes"], int(row["cap_bytes"])) for row in raw["memory_caps"]
        ),
        memlock_min_bytes=int(memlock["min_bytes"]),
        memlock_kernel_max=(major, minor),
        source=str(raw["source"]),
        date=str(raw["date"]),
    )
