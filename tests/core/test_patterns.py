"""Patterns are compiled on first use (gd_doctor/patterns.py), never at import: compiling all of
gd-doctor's ~130 patterns cost ~75 M instructions at import while a live run uses ~20 of them."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import gd_doctor
from gd_doctor.checks.ssm_traces import _signatures as ssm_signatures
from gd_doctor.diagnosis.network import denial_kinds
from gd_doctor.parsers.log_signatures import signatures as agent_signatures
from gd_doctor.patterns import LazyPattern, lazy

PACKAGE = Path(gd_doctor.__file__).resolve().parent

# Module-level re.compile calls still allowed, per file: files another change was editing when
# patterns became lazy. Convert them to lazy() and lower the count.
# module: compiles at import allowed there. frozen.py's annotation reader runs for every frozen
# dataclass a module defines, so every run compiles it while importing the checks anyway.
COMPILED_AT_IMPORT: Dict[str, int] = {"frozen.py": 1}


def _import_time_compiles(source: str) -> List[int]:
    """Lines of the re.compile calls that run when the module is imported: anywhere but inside
    a function or lambda body (decorators and default values run at import too)."""
    found: List[int] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            for sub in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
                visit(sub)
            if not isinstance(node, ast.Lambda):
                for sub in node.decorator_list:
                    visit(sub)
            return
        func = node.func if isinstance(node, ast.Call) else None
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "compile"
            and isinstance(func.value, ast.Name)
            and func.value.id == "re"
        ):
            found.append(node.lineno)  # type: ignore[attr-defined]
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def test_no_module_compiles_a_pattern_at_import() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        lines = _import_time_compiles(path.read_text(encoding="utf-8"))
        if len(lines) > COMPILED_AT_IMPORT.get(rel, 0):
            found[rel] = lines
    assert found == {}, "use gd_doctor.patterns.lazy() instead of a module-level re.compile"


def test_the_walk_finds_compiles_that_run_at_import_and_only_those() -> None:
    source = """
import re
A = re.compile("a")
B = {"x": re.compile("b")}
C = tuple(re.compile(p) for p in ("c",))
class K:
    D = re.compile("d")
def f(x=re.compile("e")):
    return re.compile("not at import")
@deco(re.compile("g"))
def g():
    pass
h = lambda: re.compile("not at import either")
"""
    assert _import_time_compiles(source) == [3, 4, 5, 7, 8, 10]


def _lazy_patterns(value: Any, depth: int = 0) -> Iterator[LazyPattern[Any]]:
    """The lazy patterns in a module attribute, in the tuples and dicts that hold them too."""
    if isinstance(value, LazyPattern):
        yield value
    elif depth < 3 and isinstance(value, (tuple, list)):
        for item in value:
            yield from _lazy_patterns(item, depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for item in value.values():
            yield from _lazy_patterns(item, depth + 1)


def test_every_pattern_compiles() -> None:
    """A typo in a pattern no longer fails at import: it must fail here."""
    patterns = []
    for info in pkgutil.walk_packages([str(PACKAGE)], "gd_doctor."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            patterns += [(f"{info.name}.{name}", p) for p in _lazy_patterns(value)]
    patterns += [(f"agent signature {s.id}", s.pattern) for s in agent_signatures()]
    patterns += [(f"ssm signature {s.id}", s.pattern) for s in ssm_signatures()[0]]
    patterns += [(f"denial kind {k.id}", k.pattern) for k in denial_kinds()]
    assert len(patterns) > 130
    for where, pattern in patterns:
        assert isinstance(pattern.compiled(), re.Pattern), where


def test_a_lazy_pattern_answers_as_the_compiled_one() -> None:
    text = "key=1 KEY=22\nother=333"
    source, flags = r"^(?P<k>[a-z]+)=(\d+)", re.IGNORECASE | re.MULTILINE
    want, got = re.compile(source, flags), lazy(source, flags)
    assert got.pattern == want.pattern
    for _ in range(2):  # before and after the compiled methods replace the lazy ones
        assert str(got.match(text)) == str(want.match(text))
        assert str(got.match(text, 6)) == str(want.match(text, 6))
        assert str(got.search(text, 1, 9)) == str(want.search(text, 1, 9))
        assert str(got.fullmatch("KEY=22")) == str(want.fullmatch("KEY=22"))
        assert [m.span() for m in got.finditer(text)] == [m.span() for m in want.finditer(text)]
        assert got.findall(text) == want.findall(text)
        assert got.sub(r"\g<k>:", text) == want.sub(r"\g<k>:", text)
        assert got.sub(lambda m: m.group("k"), text, 1) == want.sub(lambda m: m.group("k"), text, 1)
        assert got.subn("", text) == want.subn("", text)
        assert got.split(text, 1) == want.split(text, 1)
    assert got.flags == want.flags and got.groups == want.groups
    assert lazy(rb"\n[ \t]").split(b"a\n b") == [b"a", b"b"]


def test_nothing_is_compiled_before_the_first_use() -> None:
    pattern = lazy(r"(unbalanced")  # compiling it raises
    assert pattern.pattern == "(unbalanced"
    with pytest.raises(re.error):
        pattern.search("x")


def test_after_the_first_use_calls_go_straight_to_the_compiled_pattern() -> None:
    pattern = lazy(r"a+")
    assert pattern.match("aa") is not None
    compiled = pattern.compiled()
    assert compiled is re.compile(r"a+")  # re's own cache: the same object
    for name in ("match", "search", "fullmatch", "finditer", "findall", "sub", "subn", "split"):
        assert getattr(pattern, name).__self__ is compiled, name


def test_threads_racing_on_the_first_use_all_get_the_answer() -> None:
    pattern = lazy(r"(\d+)-(\d+)")
    results: List[Any] = []
    start = threading.Barrier(8)

    def use() -> None:
        start.wait()
        m = pattern.search("range 10-20")
        results.append(m.groups() if m else None)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [("10", "20")] * 8


def test_lazy_patterns_are_equal_as_compiled_ones_are() -> None:
    assert lazy("a", re.I) == lazy("a", re.I)
    assert lazy("a") != lazy("a", re.I) and lazy("a") != lazy(b"a")
    assert len({lazy("a"), lazy("a"), lazy("b")}) == 2
