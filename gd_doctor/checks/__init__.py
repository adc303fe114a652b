"""The explicit registry of every check, in display order.

Each domain module lists its checks in a ``CHECKS`` tuple; the order here is the order of the
report. A conformance test asserts that ids are unique, that every ``requires``/``after`` names
an earlier check, and that every check defined in a domain module is registered.
"""

from __future__ import annotations

from typing import AbstractSet, Iterable, List, Set, Tuple

from gd_doctor.checks import agent, imds, kernel, network, node, platform, ssm
from gd_doctor.checks.base import Check

# The platform domain's checks live in two modules (the machine's, the kernel's); the report
# shows them in this order.
PLATFORM_CHECKS: Tuple[Check, ...] = (
    platform.os_distribution,
    kernel.kernel_version,
    platform.cpu_architecture,
    kernel.kernel_btf,
    kernel.kernel_features,
    kernel.memlock_limit,
    platform.init_system,
    platform.container,
    platform.ec2_instance,
    *node.CHECKS,  # Bottlerocket, EKS/ECS node role (checks/node.py)
)

ALL_CHECKS: Tuple[Check, ...] = (
    *PLATFORM_CHECKS,
    *imds.CHECKS,
    *agent.CHECKS,
    *ssm.CHECKS,
    *network.CHECKS,
    *node.NETWORK_CHECKS,
)


class UnknownSelection(ValueError):
    """--only/--skip named something that is neither a check id nor a category."""


def _expand(names: Iterable[str], checks: Tuple[Check, ...]) -> Set[str]:
    ids = {c.id for c in checks}
    categories = {c.category for c in checks}
    picked: Set[str] = set()
    for raw in names:
        for name in (n.strip() for n in raw.split(",")):
            if not name:
                continue
            if name in ids:
                picked.add(name)
            elif name in categories:
                picked.update(c.id for c in checks if c.category == name)
            elif any(i.startswith(name + ".") for i in ids):
                picked.update(i for i in ids if i.startswith(name + "."))
            else:
                raise UnknownSelection(name)
    return picked


def select_checks(
    only: Iterable[str] = (), skip: Iterable[str] = (), checks: Tuple[Check, ...] = ALL_CHECKS
) -> Tuple[Tuple[Check, ...], AbstractSet[str]]:
    """The checks to run and the ids to report as skipped on request.

    ``--only`` keeps the named checks and categories plus everything they require or read
    from (transitively);
    ``--skip`` keeps them in the report as SKIP so their dependants say why they did not run.
    """
    only_ids = _expand(only, checks)
    skip_ids = _expand(skip, checks)
    by_id = {c.id: c for c in checks}
    if only_ids:
        stack: List[str] = list(only_ids)
        while stack:
            chk = by_id[stack.pop()]
            for dep in chk.waits_on:
                if dep in by_id and dep not in only_ids:
                    only_ids.add(dep)
                    stack.append(dep)
        chosen = tuple(c for c in checks if c.id in only_ids)
    else:
        chosen = checks
    return chosen, frozenset(skip_ids)
