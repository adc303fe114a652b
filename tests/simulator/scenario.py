"""Loading scenario directories (the format is documented in docs/scenarios.md).

A scenario is a directory holding ``scenario.json`` and optionally ``files/`` (a tree copied into
the simulated host at the same paths) and ``units/`` (unit files for ``/etc/systemd/system``).
``"extends": ["../_bases/NAME", ...]`` merges shared parts first (dicts merge key by key, later
wins; ``files/`` trees are layered). Directories whose name starts with ``_`` are not scenarios.

>>> merge({"a": {"x": 1, "y": 2}, "l": [1]}, {"a": {"y": 3}, "l": [2]})
{'a': {'x': 1, 'y': 3}, 'l': [2]}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "scenarios"
KINDS = ("live", "root")
VERDICTS = ("healthy", "unhealthy", "unknown")
ENDPOINT_BEHAVIOURS = ("service", "access-denied", "refuse", "blackhole", "intercept", "custom")
EXPECT_KEYS = {
    "verdict",
    "exit_code",
    "top_finding",
    "top_issue",
    "findings",
    "issues",
    "forbidden_findings",
    "forbidden_issues",
    "no_findings",
}
TOP_KEYS = {
    "title",
    "description",
    "row",
    "kind",
    "suite",
    "extends",
    "agent",
    "ssm",
    "files",
    "append",
    "delete",
    "units",
    "enable",
    "imds",
    "dns",
    "endpoints",
    "proxy",
    "trust",
    "env",
    "args",
    "wait",
    "journal_exports",
    "expect",
    "known_gap",
    "recorded",
    "container",
    "timeout",
    "kernel",
    "simulator_findings",
    "copy",
    "requires_host_kernel",
    "pairing",
}


class ScenarioError(ValueError):
    """A scenario directory that does not follow the format."""


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> Dict[str, Any]:
    """Deep-merge two JSON objects: dicts merge recursively, anything else is replaced."""
    out: Dict[str, Any] = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Scenario:
    """One scenario: its merged description and the layered file trees it brings."""

    name: str
    path: Path
    spec: Dict[str, Any]
    file_dirs: Tuple[Path, ...] = ()
    unit_dirs: Tuple[Path, ...] = ()
    sources: Tuple[Path, ...] = field(default_factory=tuple)

    @property
    def kind(self) -> str:
        return str(self.spec.get("kind", "live"))

    @property
    def expect(self) -> Dict[str, Any]:
        return dict(self.spec.get("expect", {}))

    @property
    def known_gap(self) -> Optional[str]:
        gap = self.spec.get("known_gap")
        return str(gap) if gap else None

    @property
    def row(self) -> Optional[str]:
        row = self.spec.get("row")
        return str(row) if row else None

    def host_files(self) -> Dict[str, Tuple[bytes, int]]:
        """Host path -> (content, mode) of every file under the layered ``files/`` trees, plus
        the inline ``files`` (inline wins). Executable files keep mode 0755."""
        out: Dict[str, Tuple[bytes, int]] = {}
        for d in self.file_dirs:
            for p in sorted(d.rglob("*")):
                if p.is_file() and not p.is_symlink():
                    mode = 0o755 if p.stat().st_mode & 0o111 else 0o644
                    out["/" + p.relative_to(d).as_posix()] = (p.read_bytes(), mode)
        for path, ref in (self.spec.get("copy") or {}).items():
            src = self.resolve(str(ref))
            out[path] = (src.read_bytes(), 0o755 if src.stat().st_mode & 0o111 else 0o644)
        for path, text in (self.spec.get("files") or {}).items():
            if text is not None:
                out[path] = (str(text).encode("utf-8"), 0o644)
        return out

    def host_symlinks(self) -> Dict[str, str]:
        """Host path -> link target of every symlink under the layered ``files/`` trees."""
        out: Dict[str, str] = {}
        for d in self.file_dirs:
            for p in sorted(d.rglob("*")):
                if p.is_symlink():
                    out["/" + p.relative_to(d).as_posix()] = os.readlink(p)
        return out

    def units(self) -> Dict[str, str]:
        out: Dict[str, str] = {}
        for d in self.unit_dirs:
            for p in sorted(d.glob("*")):
                if p.is_file():
                    out[p.name] = p.read_text(encoding="utf-8")
        return out

    def resolve(self, ref: str) -> Path:
        """A path named in the scenario: ``@repo/...`` is relative to the repository, anything
        else to the scenario directory (or the base that named it)."""
        if ref.startswith("@repo/"):
            return REPO / ref[len("@repo/") :]
        for src in (self.path, *self.sources):
            candidate = src / ref
            if candidate.exists():
                return candidate
        return self.path / ref


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: top level must be an object")
    return data


def _layers(path: Path, seen: Tuple[Path, ...] = ()) -> List[Tuple[Path, Dict[str, Any]]]:
    path = path.resolve()
    if path in seen:
        raise ScenarioError(f"{path}: 'extends' loops")
    spec = _read_json(path / "scenario.json")
    layers: List[Tuple[Path, Dict[str, Any]]] = []
    extends = spec.get("extends", [])
    if isinstance(extends, str):
        extends = [extends]
    for ref in extends:
        layers.extend(_layers(path / ref, (*seen, path)))
    layers.append((path, spec))
    return layers


def validate(spec: Mapping[str, Any], where: str) -> None:
    """Reject unknown keys and values, so a typo never silently weakens a scenario."""
    unknown = set(spec) - TOP_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")
    if spec.get("kind", "live") not in KINDS:
        raise ScenarioError(f"{where}: kind must be one of {KINDS}")
    expect = spec.get("expect")
    if not isinstance(expect, dict):
        raise ScenarioError(f"{where}: 'expect' is required")
    bad = set(expect) - EXPECT_KEYS
    if bad:
        raise ScenarioError(f"{where}: unknown expect keys {sorted(bad)}")
    if expect.get("verdict") not in VERDICTS:
        raise ScenarioError(f"{where}: expect.verdict must be one of {VERDICTS}")
    pairing = spec.get("pairing")
    if pairing is not None and (
        not isinstance(pairing, dict)
        or set(pairing) != {"needs", "why"}
        or not all(isinstance(n, str) for n in pairing["needs"])
    ):
        raise ScenarioError(f'{where}: \'pairing\' is {{"needs": [...], "why": "..."}}')
    for ep in spec.get("endpoints", []):
        if ep.get("behaviour", "service") not in ENDPOINT_BEHAVIOURS:
            raise ScenarioError(f"{where}: endpoint behaviour {ep.get('behaviour')!r}")
        if "name" not in ep or "address" not in ep:
            raise ScenarioError(f"{where}: every endpoint needs 'name' and 'address'")


def load(path: Path) -> Scenario:
    """Load the scenario in directory ``path`` (anywhere on disk)."""
    path = Path(path)
    if not (path / "scenario.json").is_file():
        raise ScenarioError(f"{path}: no scenario.json")
    layers = _layers(path)
    spec: Dict[str, Any] = {}
    for _, layer in layers:
        spec = merge(spec, layer)
    spec.pop("extends", None)
    validate(spec, str(path))
    files = tuple(p / "files" for p, _ in layers if (p / "files").is_dir())
    units = tuple(p / "units" for p, _ in layers if (p / "units").is_dir())
    return Scenario(
        name=path.resolve().name,
        path=path.resolve(),
        spec=spec,
        file_dirs=files,
        unit_dirs=units,
        sources=tuple(p for p, _ in layers[:-1]),
    )


def discover(paths: Sequence[Path] = ()) -> List[Scenario]:
    """Scenarios in ``paths`` (scenario dirs, or dirs holding them); default: the corpus."""
    roots = list(paths) or [CORPUS]
    found: List[Scenario] = []
    for root in roots:
        root = Path(root)
        if (root / "scenario.json").is_file():
            found.append(load(root))
            continue
        for d in sorted(root.iterdir()) if root.is_dir() else []:
            if d.is_dir() and not d.name.startswith(("_", ".")) and (d / "scenario.json").is_file():
                found.append(load(d))
    return found
