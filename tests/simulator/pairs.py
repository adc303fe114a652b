"""Pairs of live scenarios: two single causes staged together on one simulated host.

Issue 12 asks that rank order be tested over combinations: for every pair of causes the
simulator can stage together, the report's first finding is the cause and the other is folded
under it or listed after it. This module finds the pairs in the corpus (no hand-written list)
and composes each into one scenario the runner boots like any other.

* **Single causes** (:func:`single_causes`): ``live`` scenarios that name exactly one cause: an
  ``expect.top_finding``, no ``expect.findings``, no ``known_gap``, verdict ``unhealthy`` or
  ``healthy`` (a healthy host with one warning cause, e.g. a proxy without the IMDS exemption:
  "fail before warn" is part of the rank order, and a warning must not be lost under a failure).
* **What a scenario changes** (:func:`changes`): its merged spec compared leaf by leaf with the
  merged spec of the bases it extends, plus the host paths its ``files``/``copy``/``append``/
  ``delete`` and ``files/`` tree change and the units it adds. Leaves are grouped where one value
  decides the meaning of others (see :func:`_resources`): the stand-in agent is one program in
  one state; a name's DNS record and the endpoint behind it are one network path; a proxy or
  the trust is the way to every endpoint; IMDS switched off covers all of IMDS, and its token
  rules are one thing (how any client gets an answer).
* **Compatible** (:func:`compatible`): same bases, and no change of one is the same as, or
  covers, a change of the other; nor of what the other's cause is staged through (its
  ``pairing.needs``, e.g. the SCP denial needs the default agent's own requests); and the
  ``wait`` conditions must merge (:func:`merge_wait`).
* **Composed** (:func:`compose`): the bases, then both scenarios' own layers (files trees
  layered), with the merged ``wait`` and the expectation computed from the knowledge base
  (:func:`expected_first`).

>>> covers(("agent",), ("agent", "mode")), covers(("imds", "tags"), ("imds", "region"))
(True, False)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from gd_doctor.knowledge import finding_specs
from tests.simulator.scenario import Scenario, _layers, discover, merge, validate

Key = Tuple[str, ...]
SEVERITY_ORDER = {"fail": 0, "warn": 1, "info": 2}
# Keys that describe a scenario rather than change the host.
META = (
    "title",
    "description",
    "row",
    "kind",
    "expect",
    "known_gap",
    "recorded",
    "simulator_findings",
    "requires_host_kernel",
    "extends",
    "pairing",
)
# Handled as host paths (what lands in the simulated host), not as spec leaves.
FILE_KEYS = ("files", "copy", "append", "delete")
# IMDS switches that leave no answer at all: they cover every other IMDS leaf.
IMDS_WHOLE = ("reachable", "enabled")
# How a client gets IMDS's answers (the token rules, a hop limit that hangs the token PUT):
# one thing, although the answers themselves (tags, identity document, Date) stay separate.
IMDS_ACCESS = ("token", "hop_limit_exceeded", "hang_seconds")


# --------------------------------------------------------------------------------------------
# the knowledge base's order


def order_key(finding_id: str) -> Tuple[int, int, str]:
    """How the engine orders findings on their own: severity, then rank, then id."""
    spec = finding_specs()[finding_id]
    return (SEVERITY_ORDER[spec.severity], spec.rank, finding_id)


def expected_first(a: str, b: str) -> str:
    """Which of two causes found together must come first: the one whose knowledge-base
    ``folds`` names the other, else the one the engine ranks first on its own."""
    if b in finding_specs()[a].folds:
        return a
    if a in finding_specs()[b].folds:
        return b
    return min(a, b, key=order_key)


# --------------------------------------------------------------------------------------------
# single causes and what they change


def single_causes(scenarios: Optional[Sequence[Scenario]] = None) -> List[Scenario]:
    """The live scenarios of the corpus that stage exactly one cause."""
    out = []
    for sc in discover() if scenarios is None else scenarios:
        e = sc.expect
        if sc.kind != "live" or not e.get("top_finding") or e.get("findings") or sc.known_gap:
            continue
        if e["verdict"] not in ("unhealthy", "healthy"):  # unknown: the scope decides, no cause
            continue
        out.append(sc)
    return out


def base_layers(sc: Scenario) -> Tuple[Tuple[Path, ...], Dict[str, Any]]:
    """The directories ``sc`` extends (in merge order) and their merged spec."""
    layers = _layers(sc.path)[:-1]
    spec: Dict[str, Any] = {}
    for _, layer in layers:
        spec = merge(spec, layer)
    spec.pop("extends", None)
    return tuple(p for p, _ in layers), spec


def own_layer(sc: Scenario) -> Dict[str, Any]:
    """The scenario's own ``scenario.json`` (without its ``extends``)."""
    spec = dict(_layers(sc.path)[-1][1])
    spec.pop("extends", None)
    return spec


def _leaves(spec: Mapping[str, Any], prefix: Key = ()) -> Dict[Key, Any]:
    """Every leaf of a JSON object: nested objects are walked, lists and scalars are leaves."""
    out: Dict[Key, Any] = {}
    for key, value in spec.items():
        path: Key = (*prefix, key)
        if isinstance(value, Mapping) and value:
            out.update(_leaves(value, path))
        else:
            out[path] = value
    return out


def _endpoint_names(base: Mapping[str, Any], spec: Mapping[str, Any]) -> List[str]:
    """Names whose endpoint differs (changed, added or removed): ``endpoints`` is a list that
    a scenario replaces as a whole, but each entry is one name's server."""
    old = {ep["name"]: ep for ep in base.get("endpoints", [])}
    new = {ep["name"]: ep for ep in spec.get("endpoints", [])}
    return sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))


def _resources(leaf: Key, base: Mapping[str, Any], spec: Mapping[str, Any]) -> List[Key]:
    """What a changed spec leaf stands for on the simulated host."""
    head = leaf[0]
    if head in META or head in FILE_KEYS or head == "wait":
        return []  # descriptions; host paths (see _path_changes); wait (see merge_wait)
    if head == "agent":
        # One stand-in agent in one state: not installed makes its mode moot, and two modes
        # (crash loop, OOM, exits when unreachable) cannot hold at once.
        return [("agent",)]
    if head == "dns" and len(leaf) > 2 and leaf[1] == "records":
        # A name's DNS answer decides which server the name reaches: one network path.
        return [("endpoint", leaf[2])]
    if head == "dns":
        return [("endpoint",)]  # the default answer, for every name
    if head == "endpoints":
        return [("endpoint", name) for name in _endpoint_names(base, spec)]
    if head in ("proxy", "trust"):
        return [("endpoint",)]  # the way to every endpoint, or the trust in all of them
    if head == "imds" and len(leaf) > 1 and leaf[1] in IMDS_WHOLE:
        return [("imds",)]
    if head == "imds" and len(leaf) > 1 and leaf[1] in IMDS_ACCESS:
        return [("imds", "access")]
    return [leaf]


def _path_changes(sc: Scenario, base: Scenario) -> List[Key]:
    """The host paths and units ``sc`` changes relative to ``base``."""
    out: List[Key] = []
    files, base_files = sc.host_files(), base.host_files()
    links, base_links = sc.host_symlinks(), base.host_symlinks()
    for path in set(files) | set(base_files):
        if files.get(path) != base_files.get(path):
            out.append(("file", path))
    for path in set(links) | set(base_links):
        if links.get(path) != base_links.get(path):
            out.append(("file", path))
    appended, base_appended = sc.spec.get("append") or {}, base.spec.get("append") or {}
    for path in set(appended) | set(base_appended):
        if appended.get(path) != base_appended.get(path):
            out.append(("file", path))
    for path in set(sc.spec.get("delete", [])) ^ set(base.spec.get("delete", [])):
        out.append(("file", path))
    units, base_units = sc.units(), base.units()
    for name in set(units) | set(base_units):
        if units.get(name) != base_units.get(name):
            out.append(("unit", name))
    return out


def _base_scenario(sc: Scenario) -> Scenario:
    """The bases ``sc`` extends, as a scenario of their own (for its files and units)."""
    dirs, spec = base_layers(sc)
    return Scenario(
        name=f"{sc.name}:base",
        path=dirs[-1] if dirs else sc.path,
        spec=spec,
        file_dirs=tuple(d / "files" for d in dirs if (d / "files").is_dir()),
        unit_dirs=tuple(d / "units" for d in dirs if (d / "units").is_dir()),
        sources=dirs[:-1],
    )


def changes(sc: Scenario) -> FrozenSet[Key]:
    """Everything ``sc`` changes relative to the bases it extends."""
    base = _base_scenario(sc)
    new, old = _leaves(sc.spec), _leaves(base.spec)
    out: List[Key] = []
    for leaf in set(new) | set(old):
        if new.get(leaf) != old.get(leaf):
            out.extend(_resources(leaf, base.spec, sc.spec))
    out.extend(_path_changes(sc, base))
    return frozenset(out)


def covers(a: Key, b: Key) -> bool:
    """``a`` is ``b`` or a group holding it (("agent",) covers ("agent", "mode"))."""
    return b[: len(a)] == a


def clashes(a: FrozenSet[Key], b: FrozenSet[Key]) -> List[Tuple[Key, Key]]:
    """The changes of ``a`` and ``b`` that touch the same thing."""
    return sorted((x, y) for x in a for y in b if covers(x, y) or covers(y, x))


# --------------------------------------------------------------------------------------------
# wait


def _installed(spec: Mapping[str, Any]) -> bool:
    return bool((spec.get("agent") or {}).get("installed", True))


def merge_wait(
    one: Scenario, two: Scenario, spec: Mapping[str, Any]
) -> Tuple[Optional[Dict[str, Any]], str]:
    """The ``wait`` of the pair, or None and why it cannot be merged.

    ``timeout`` and ``settle`` take the longer. The agent state to wait for (``agent``,
    ``min_restarts``) is chosen, in this order:

    1. none when the pair has no agent installed: a wait describes the agent's reaction to a
       cause, and there is no agent to react;
    2. the wait of the scenario that changes the agent (its crash loop, its OOM kill): the
       other one's wait described the default agent's reaction to its own cause, a reaction
       the first replaced;
    3. the wait of the unhealthy one when the other is a healthy host with a warning: that one
       waited for an active agent to earn its healthy verdict, which the pair does not have;
    4. otherwise both describe the same default agent and must agree (restarting because its
       endpoint is unreachable, against active because it reaches it, is a contradiction).
    """
    waits = [dict(sc.spec.get("wait") or {}) for sc in (one, two)]
    out: Dict[str, Any] = {}
    for key in ("timeout", "settle"):
        values = [float(w[key]) for w in waits if key in w]
        if values:
            out[key] = max(values)
    owners = [w for sc, w in zip((one, two), waits) if ("agent",) in changes(sc)]
    if not _installed(spec):
        return out, ""
    sick = [w for sc, w in zip((one, two), waits) if sc.expect["verdict"] == "unhealthy"]
    if owners or len(sick) == 1:
        (owner,) = owners or sick  # both changing the agent is a clash, never composed
        chosen = {k: owner[k] for k in ("agent", "min_restarts") if k in owner}
    else:
        states = {w["agent"] for w in waits if w.get("agent")}
        if len(states) > 1:
            return None, f"they wait for the agent in different states {sorted(states)}"
        chosen = {"agent": states.pop()} if states else {}
        restarts = [int(w["min_restarts"]) for w in waits if "min_restarts" in w]
        if restarts:
            chosen["min_restarts"] = max(restarts)
    out.update(chosen)
    return out, ""


# --------------------------------------------------------------------------------------------
# pairs


@dataclass(frozen=True)
class Pair:
    """Two single causes, and whether (and as what) they can be staged together."""

    one: Scenario
    two: Scenario
    composed: Optional[Scenario]
    why_not: str = ""

    @property
    def name(self) -> str:
        return f"{self.one.name}+{self.two.name}"

    @property
    def first(self) -> str:
        """The cause the report must list first."""
        return expected_first(
            str(self.one.expect["top_finding"]), str(self.two.expect["top_finding"])
        )

    @property
    def other(self) -> str:
        a, b = str(self.one.expect["top_finding"]), str(self.two.expect["top_finding"])
        return b if self.first == a else a


def needs(sc: Scenario) -> FrozenSet[Key]:
    """What the scenario's cause is staged through without changing it itself (its
    ``pairing.needs``, in the names :func:`changes` uses: ``agent``, ``imds access``, ...)."""
    return frozenset(tuple(n.split()) for n in (sc.spec.get("pairing") or {}).get("needs", ()))


def _names(clash: Sequence[Tuple[Key, Key]]) -> str:
    # name the wider of each clashing two ("agent", not "agent mode")
    return ", ".join(sorted({" ".join(x if len(x) <= len(y) else y) for x, y in clash}))


def compatible(one: Scenario, two: Scenario) -> str:
    """Why ``one`` and ``two`` cannot be staged together, or "" when they can (their waits
    are checked by :func:`compose`)."""
    if base_layers(one)[0] != base_layers(two)[0]:
        return "they extend different bases"
    if one.spec.get("suite", "bookworm") != two.spec.get("suite", "bookworm"):
        return "they boot different suites"
    clash = clashes(changes(one), changes(two))
    if clash:
        return "both change " + _names(clash)
    for a, b in ((one, two), (two, one)):
        clash = clashes(needs(a), changes(b))
        if clash:
            why = (a.spec.get("pairing") or {}).get("why", "")
            return f"{b.name} changes {_names(clash)}, which {a.name} needs: {why}"
    return ""


def compose(one: Scenario, two: Scenario) -> Pair:
    """The two single causes as one scenario, or why they cannot be one."""
    why = compatible(one, two)
    if why:
        return Pair(one, two, None, why)
    _, spec = base_layers(one)
    for sc in (one, two):
        layer = {k: v for k, v in own_layer(sc).items() if k not in META and k != "wait"}
        spec = merge(spec, layer)
    wait, why = merge_wait(one, two, spec)
    if wait is None:
        return Pair(one, two, None, why)
    first = expected_first(one.expect["top_finding"], two.expect["top_finding"])
    unhealthy = "unhealthy" in (one.expect["verdict"], two.expect["verdict"])
    ignore = [*one.spec.get("simulator_findings", ()), *two.spec.get("simulator_findings", ())]
    spec.update(
        title=f"{one.name} and {two.name} together",
        description=f"Composed by tests/simulator/pairs.py from {one.name} and {two.name}.",
        row=None,
        kind="live",
        wait=wait,
        simulator_findings=list(dict.fromkeys(ignore)),
        expect={"verdict": "unhealthy" if unhealthy else "healthy", "top_finding": first},
    )
    if not spec["wait"]:
        del spec["wait"]
    validate(spec, f"{one.name}+{two.name}")
    composed = Scenario(
        name=f"{one.name}+{two.name}",
        path=one.path,
        spec=spec,
        file_dirs=tuple(dict.fromkeys((*one.file_dirs, *two.file_dirs))),
        unit_dirs=tuple(dict.fromkeys((*one.unit_dirs, *two.unit_dirs))),
        # copy refs resolve against either scenario and every base
        sources=tuple(dict.fromkeys((*one.sources, two.path, *two.sources))),
    )
    return Pair(one, two, composed)


def all_pairs(singles: Optional[Sequence[Scenario]] = None) -> List[Pair]:
    """Every pair of single causes of the corpus, composed or with the reason it is not."""
    found = single_causes() if singles is None else list(singles)
    return [compose(a, b) for a, b in itertools.combinations(found, 2)]


# --------------------------------------------------------------------------------------------
# the order a pair's report must show


def order_problems(
    report: Mapping[str, Any], first: str, other: str, ignore: Sequence[str] = ()
) -> List[str]:
    """What is wrong with the order of a pair's report (empty when right): the first problem
    finding (fail or warn, leaving out ``ignore``: findings true of the simulator itself) is
    ``first``, so nothing comes before either cause; ``other`` is folded under a problem
    (``consequences``) or listed as one, which then is after ``first``: never lost.

    >>> rep = {"findings": [{"id": "a.x", "severity": "fail", "consequences": [{"id": "b.y"}]},
    ...                     {"id": "c.z", "severity": "warn", "consequences": []}]}
    >>> order_problems(rep, "a.x", "b.y"), order_problems(rep, "a.x", "c.z")
    ([], [])
    >>> order_problems(rep, "c.z", "a.x")
    ["first problem is a.x, expected c.z: ['a.x', 'c.z']"]
    >>> order_problems(rep, "a.x", "d.w")
    ["d.w is lost (neither listed nor folded under a problem): ['a.x', 'c.z']"]
    """
    problems = [
        f
        for f in report.get("findings", [])
        if f.get("severity") in ("fail", "warn") and f.get("id") not in ignore
    ]
    ids = [str(f.get("id")) for f in problems]
    out: List[str] = []
    if not ids or ids[0] != first:
        out.append(f"first problem is {ids[0] if ids else None}, expected {first}: {ids}")
    # With ``first`` at the top, ``other`` anywhere else (listed, or folded under any problem,
    # ``first`` included) is after it or under it.
    seen = set(ids) | {str(c.get("id")) for f in problems for c in f.get("consequences", [])}
    if other not in seen:
        out.append(f"{other} is lost (neither listed nor folded under a problem): {ids}")
    return out
