"""Imports run one way: model/knowledge -> parsers -> host -> facts -> checks -> diagnosis ->
report -> pipeline -> cli. Parsers are pure (no I/O), so the host layer may use them to read
what it fetched (the effective systemd unit, the package databases)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

PACKAGE = Path(__file__).resolve().parents[2] / "gd_doctor"

# Layer of each top-level module or subpackage of gd_doctor; a module may import its own layer
# and lower ones only.
LAYERS: Dict[str, int] = {
    "__init__": 0,
    "frozen": 0,  # the fast frozen dataclass decorator, imports nothing of gd_doctor
    "model": 0,
    "limits": 0,
    "patterns": 0,  # regular expressions compiled on first use, imports nothing of gd_doctor
    "knowledge": 0,
    "redact": 0,
    "parsers": 1,
    "host": 2,
    "facts": 3,
    "checks": 4,
    "runner": 4,
    "diagnosis": 5,
    "report": 6,
    "integrations": 7,
    "pipeline": 7,
    "fleet": 7,  # the workstation side: reads report files, never the host (knowledge, explain)
    "bundle": 7,
    "cli": 8,
    "entry": 9,
    "__main__": 9,
}


def _layer_of_module(rel: Path) -> str:
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> Iterator[Tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _violations(package: Path = PACKAGE) -> List[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        own = _layer_of_module(rel)
        assert own in LAYERS, f"{rel}: module not assigned to a layer in this test"
        for lineno, name in _imports(path):
            if not name.startswith("gd_doctor."):
                continue
            target = name.split(".")[1]
            assert target in LAYERS, f"{rel}:{lineno} imports unknown gd_doctor.{target}"
            if LAYERS[target] > LAYERS[own]:
                found.append(f"{rel}:{lineno} ({own}) imports {name} ({target})")
            if own == "parsers" and target == "host":
                found.append(f"{rel}:{lineno}: parsers must stay pure, not import host")
    return found


def test_imports_run_one_way() -> None:
    assert _violations() == []


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    fake = tmp_path / "gd_doctor"
    (fake / "host").mkdir(parents=True)
    (fake / "host" / "bad.py").write_text("from gd_doctor.report.text import render_text\n")
    (fake / "parsers").mkdir()
    (fake / "parsers" / "impure.py").write_text("import gd_doctor.host.fs\n")
    assert _violations(fake) == [
        "host/bad.py:1 (host) imports gd_doctor.report.text (report)",
        "parsers/impure.py:1 (parsers) imports gd_doctor.host.fs (host)",
        "parsers/impure.py:1: parsers must stay pure, not import host",
    ]


def test_only_the_host_layer_touches_the_machine() -> None:
    """subprocess, socket, requests and psutil are used only under gd_doctor/host/."""
    machine_modules = {"subprocess", "socket", "requests", "psutil", "ssl", "urllib3"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "host":
            continue
        for lineno, name in _imports(path):
            if name.split(".")[0] in machine_modules:
                offenders.append(f"{rel}:{lineno} imports {name}")
    assert offenders == []
