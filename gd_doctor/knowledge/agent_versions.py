"""Which GuardDuty agent a kernel needs: the one kernel -> minimum agent table.

The table lives once, in ``support_matrix.json`` (``kernel_agents``, from AWS's agent release
history, and ``kernel_agent_exceptions``, the distribution-specific footnotes such as Ubuntu
24.04's 6.13/6.14 needing agent 1.9.1), so the agent checks and the platform checks cannot drift
apart again.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Dict, Mapping, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.knowledge import load

Version = Tuple[int, ...]


def version_key(version: str) -> Version:
    """Numeric parts of an agent version (``1.9.2-1.amzn2023`` -> (1, 9, 2)), for ordering.

    >>> version_key("1.16.0") > version_key("1.9.2"), version_key("v1.9")
    (True, (1, 9))
    """
    head = re.split(r"[-~+]", version.strip().lstrip("vV"), maxsplit=1)[0]
    return tuple(int(p) for p in re.findall(r"\d+", head))


def kernel_series(release: str) -> Optional[str]:
    """The leading ``X.Y`` of a kernel release (``6.1.112-124.amzn2023`` -> ``6.1``).

    >>> kernel_series("5.15.0-1051-aws"), kernel_series("garbage")
    ('5.15', None)
    """
    m = re.match(r"(\d+)\.(\d+)", release.strip())
    return f"{m.group(1)}.{m.group(2)}" if m else None


@dataclass(frozen=True)
class KernelAgents:
    """The table: kernel series -> oldest agent supporting it, plus per-distribution rows."""

    date: str
    source: str
    general: Mapping[str, str]
    exceptions: Tuple[Mapping[str, Any], ...]

    @property
    def newest_kernel(self) -> str:
        """The newest kernel series any known agent added."""
        series = list(self.general) + [k for e in self.exceptions for k in e["kernels"]]
        return str(max(series, key=version_key))


@lru_cache(maxsize=1)
def kernel_agents() -> KernelAgents:
    """The kernel -> minimum agent table of the shipped knowledge base."""
    raw: Dict[str, Any] = load("support_matrix.json")
    return KernelAgents(
        date=str(raw["date"]),
        source=str(raw["sources"]["release_history"]),
        general=dict(raw["kernel_agents"]),
        exceptions=tuple(raw["kernel_agent_exceptions"]),
    )


def min_agent_for_kernel(series: str, os_id: str = "", version_id: str = "") -> Optional[str]:
    """The oldest agent that supports kernel ``series`` on this distribution, or None when the
    series predates the release history (every known agent supports it) or is not listed.

    >>> min_agent_for_kernel("6.15"), min_agent_for_kernel("6.1")
    ('1.9.2', None)
    >>> min_agent_for_kernel("6.13", "ubuntu", "24.04"), min_agent_for_kernel("6.13", "amzn")
    ('1.9.1', None)
    """
    table = kernel_agents()
    for exc in table.exceptions:
        if os_id in exc["ids"] and version_id in exc["versions"] and series in exc["kernels"]:
            return str(exc["min_agent"])
    return table.general.get(series)
