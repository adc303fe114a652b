"""gd_doctor.frozen collects the same fields as the standard decorator, for every class shape.

Two checks: every frozen or plain dataclass gd-doctor defines is made again, in a fresh
interpreter, from a copy of its own class body taken before any decorator touched it, by the
standard ``dataclasses.dataclass(frozen=True)`` (or ``dataclasses.dataclass``), and both classes
must describe alike (fields, class
attributes, methods set, signature, docstring, repr, hash, equality, construction); and small
class bodies of the shapes the standard decorator treats specially (ClassVar and InitVar
spellings, inherited defaults, ``field()`` options, the errors it raises) go through both.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import inspect
import json
import os
import pickle
import re
import subprocess
import sys
import typing
from dataclasses import InitVar, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

import pytest

from gd_doctor import frozen

REPO = Path(__file__).resolve().parents[2]
KW_ONLY = getattr(dataclasses, "KW_ONLY", None)  # Python 3.10+
CV = ClassVar  # an alias the standard decorator follows through the module's globals
METHODS = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__")
_ABSENT = "<absent>"


def _text(value: Any) -> str:
    return repr(value) if value is not dataclasses.MISSING else "MISSING"


def describe(cls: type) -> Dict[str, Any]:
    """What a frozen dataclass looks like from outside, as JSON-safe text."""
    own = cls.__dict__
    fields = [
        [
            f.name,
            _text(f.type),
            _text(f.default),
            _text(f.default_factory),
            f.init,
            f.repr,
            f.compare,
            _text(f.hash),
            _text(dict(f.metadata)),
            _text(getattr(f, "kw_only", None)),
            f._field_type.name,  # type: ignore[attr-defined]
        ]
        for f in cls.__dataclass_fields__.values()  # type: ignore[attr-defined]
    ]
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return {
        "fields": fields,
        "dataclasses.fields": names,
        "class attributes": {n: _text(own.get(n, _ABSENT)) for n in cls.__dataclass_fields__},  # type: ignore[attr-defined]
        "methods set": sorted(m for m in METHODS if m in own),
        "abstract methods": sorted(getattr(cls, "__abstractmethods__", ())),
        "hash is None": cls.__hash__ is None,  # type: ignore[comparison-overlap]
        "match_args": _text(getattr(cls, "__match_args__", None)),
        "params": repr(cls.__dataclass_params__),  # type: ignore[attr-defined]
        "signature": str(inspect.signature(cls)),
        "init signature": str(inspect.signature(cls.__init__)),  # type: ignore[misc]
        "doc": cls.__doc__,
        "instances": _behaviour(cls, names),
    }


def _behaviour(cls: type, names: List[str]) -> Dict[str, str]:
    """repr, hash and equality of an instance with the same values in both classes, set without
    __init__; then __init__ with a value for every parameter (post-init checks may refuse it)."""
    value = object.__new__(cls)
    for i, name in enumerate(names):
        object.__setattr__(value, name, f"v{i}")
    try:
        hashed = str(hash(value))
    except TypeError as exc:
        hashed = f"TypeError: {exc}"
    out = {"repr": repr(value), "hash": hashed, "equal to itself": str(value == value)}
    params = [p for p in inspect.signature(cls).parameters.values()]
    try:
        made = cls(**{p.name: f"v{i}" for i, p in enumerate(params)})
        out["init"] = repr(made)
    except (TypeError, ValueError) as exc:  # what a __post_init__ raises, the same in both
        out["init"] = type(exc).__name__
    return out


def twin_of(cls: type) -> type:
    """A copy of a class body as its class statement made it: the ``field()`` objects copied,
    since the decorators write into them."""
    ns = {
        key: copy.copy(value) if isinstance(value, dataclasses.Field) else value
        for key, value in cls.__dict__.items()
        if key not in ("__dict__", "__weakref__")
    }
    if "__annotations__" in ns:
        ns["__annotations__"] = dict(ns["__annotations__"])
    return type(cls)(cls.__name__, cls.__bases__, ns)


# Runs in a fresh interpreter: each class that reaches frozen._frozen is copied first, then made
# by it and by the standard decorator; prints both descriptions and the classes found afterwards.
PROBE = """
import dataclasses, importlib, json, pkgutil, sys
import gd_doctor
from gd_doctor import frozen
from tests.core.test_frozen_equivalence import describe, twin_of

pairs = []

def recording(fast, standard):
    def record(cls, *args, **kwargs):
        twin = twin_of(cls)
        made = fast(cls, *args, **kwargs)
        pairs.append((made, standard(twin)))
        return made
    return record

frozen._frozen = recording(frozen._frozen, dataclasses.dataclass(frozen=True))
frozen._plain = recording(frozen._plain, dataclasses.dataclass)
FAST = (frozen._PARAMS, frozen._PLAIN_PARAMS)
for info in pkgutil.walk_packages(gd_doctor.__path__, "gd_doctor."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
found = sorted(
    f"{value.__module__}.{value.__qualname__}"
    for name, module in list(sys.modules.items()) if name.startswith("gd_doctor")
    for value in vars(module).values()
    if isinstance(value, type) and value.__module__ == name
    and value not in (frozen._FROZEN_MODEL, frozen._PLAIN_MODEL)
    and value.__dict__.get("__dataclass_params__") in FAST
)
print(json.dumps({
    "found": found,
    "pairs": [
        {"name": f"{ours.__module__}.{ours.__qualname__}",
         "fast": ours.__dict__.get("__dataclass_params__") in FAST,
         "frozen": ours.__dataclass_params__.frozen,
         "ours": describe(ours), "standard": describe(std)}
        for ours, std in pairs
    ],
}))
"""


@pytest.fixture(scope="module")
def gd_doctor_classes() -> Dict[str, Any]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_every_gd_doctor_frozen_dataclass_matches_the_standard_decorator(
    gd_doctor_classes: Dict[str, Any],
) -> None:
    pairs = gd_doctor_classes["pairs"]
    fast = [p["name"] for p in pairs if p["fast"]]
    assert len(fast) >= 100  # gd-doctor defines well over a hundred
    plain = {p["name"] for p in pairs if p["fast"] and not p["frozen"]}
    assert {"gd_doctor.checks.agent_logs._LogScan", "gd_doctor.host.fs.Walk"} <= plain
    for pair in pairs:
        assert pair["ours"] == pair["standard"], pair["name"]
    # the classes the walk finds afterwards are the ones that were compared
    assert set(gd_doctor_classes["found"]) <= set(fast)
    assert len(gd_doctor_classes["found"]) >= 100


def test_the_classvar_gd_doctor_declares_stays_a_class_attribute(
    gd_doctor_classes: Dict[str, Any],
) -> None:
    (root_fs,) = [p for p in gd_doctor_classes["pairs"] if p["name"] == "gd_doctor.host.fs.RootFS"]
    assert root_fs["fast"]
    kinds = {name: kind for name, *_, kind in root_fs["ours"]["fields"]}
    assert kinds == {"root": "_FIELD", "resolver": "_FIELD_CLASSVAR"}
    assert root_fs["ours"]["class attributes"]["resolver"] == "'auto'"


# ---------------------------------------------------------------------------------------------
# Class bodies of the shapes the standard decorator treats specially.


@dataclasses.dataclass(frozen=True)
class StdBase:
    """A standard frozen base."""

    a: int = 1
    b: str = "b"


@frozen.dataclass(frozen=True)
class OurBase:
    """A base made here."""

    a: int = 1
    b: str = "b"


def _class_vars() -> type:
    class Limits:
        """ClassVar in every spelling the standard decorator recognises, and look-alikes."""

        name: str
        bare: ClassVar = 1
        limit: ClassVar[int] = 3
        qualified: typing.ClassVar[str] = "q"
        aliased: CV[int] = 5
        other_module: os.ClassVar[int] = 6  # type: ignore[name-defined]  # not typing: a field
        not_a_marker: Optional[int] = None

    return Limits


def _options() -> type:
    class Options:
        """field() options, with and without defaults."""

        first: str = field(repr=False)
        second: int = field(default=2, hash=False)
        third: Tuple[str, ...] = field(default=(), compare=False, metadata={"unit": "s"})
        items: List[str] = field(default_factory=list)
        hidden: int = field(default=0, init=False)
        made: Dict[str, int] = field(default_factory=dict, init=False, repr=False)

    return Options


def _inherited_default() -> Callable[[], type]:
    def make() -> type:
        class Child(OurBase):
            """Re-annotates a base field without a default: the base's class attribute stays."""

            a: int
            c: float = 0.5

        return Child

    return make


def _from_standard_base() -> type:
    class Mixed(StdBase):
        """A standard frozen base."""

        b: str = field(default="x", compare=False)
        c: Optional[str] = None

    return Mixed


def _no_docstring() -> type:
    class Bare:
        x: int
        y: Tuple[int, ...] = field(default_factory=tuple)

    return Bare


def _init_var() -> type:
    class Seeded:
        """InitVar goes to the standard decorator, which passes it to __post_init__."""

        value: int = 0
        seed: InitVar[int] = 0
        qualified: dataclasses.InitVar[str] = ""

        def __post_init__(self, seed: int, qualified: str) -> None:
            object.__setattr__(self, "value", self.value + seed + len(qualified))

    return Seeded


def _slotted() -> type:
    class Slotted:
        """__slots__ goes to the standard decorator."""

        __slots__ = ("x",)
        x: int

    return Slotted


def _annotation_objects() -> type:
    """Annotations that are objects, and a string with the spacing the standard regex allows."""
    annotations = {
        "a": int,
        "b": ClassVar[int],
        "c": typing.ClassVar,
        "d": Optional[str],
        "spaced": " typing . ClassVar[int]",
        "spaced_alias": "  CV [int]",
    }
    defaults = {"b": 1, "c": 2, "d": None, "spaced": 3, "spaced_alias": 4}
    ns = {"__module__": __name__, "__doc__": "Objects.", "__annotations__": annotations}
    return type("Objects", (), {**ns, **defaults})


class Shown(abc.ABC):
    """An ABC whose abstract __repr__ the decorator implements."""

    @abc.abstractmethod
    def __repr__(self) -> str: ...


def _abstract_repr() -> type:
    class Concrete(Shown):
        """Instantiable once the decorator has added __repr__ (Python 3.10+ sees it)."""

        a: int = 0

    return Concrete


def _self_field() -> type:
    class Selfish:
        """A field named self goes to the standard decorator."""

        self: int = 0

    return Selfish


def _kw_only_marker() -> type:
    class Marked:
        """KW_ONLY goes to the standard decorator."""

        a: int
        _: KW_ONLY  # type: ignore[valid-type]
        b: int = 0

    return Marked


def _kw_only_field() -> type:
    class KeywordOnly:
        """A keyword-only field goes to the standard decorator."""

        a: int = field(kw_only=True)  # type: ignore[call-overload, unused-ignore]
        b: int = 0

    return KeywordOnly


SHAPES = {
    "annotation objects": _annotation_objects,
    "field named self": _self_field,
    "class vars": _class_vars,
    "field options": _options,
    "inherited default": _inherited_default(),
    "standard base": _from_standard_base,
    "no docstring": _no_docstring,
    "InitVar": _init_var,
    "slots": _slotted,
}
if sys.version_info >= (3, 10):  # KW_ONLY; 3.9's decorator leaves an ABC abstract
    SHAPES.update(
        {
            "KW_ONLY": _kw_only_marker,
            "kw_only field": _kw_only_field,
            "abstract repr": _abstract_repr,
        }
    )


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_class_shape_comes_out_as_from_the_standard_decorator(shape: str) -> None:
    body = SHAPES[shape]
    ours = frozen.dataclass(frozen=True)(body())
    std = dataclasses.dataclass(frozen=True)(body())
    assert describe(ours) == describe(std)


def test_the_special_shapes_take_the_path_they_should() -> None:
    fast = {
        name
        for name, body in SHAPES.items()
        if frozen.dataclass(frozen=True)(body()).__dict__.get("__dataclass_params__")
        is frozen._PARAMS
    }
    expected = {
        "annotation objects",
        "class vars",
        "field options",
        "inherited default",
        "standard base",
        "no docstring",
    }
    assert fast == expected | ({"abstract repr"} if "abstract repr" in SHAPES else set())
    assert frozen.dataclass(frozen=True)(_init_var())(1, 2, "ab").value == 5


def _mutable(kind: type) -> Callable[[], type]:
    def make() -> type:
        class Holder:
            """A mutable default."""

            items: Any = kind()

        return Holder

    return make


def _default_order() -> type:
    class Order:
        """A non-default field after a default one."""

        a: int = 0
        b: int  # type: ignore[misc]

    return Order


def _order_across_bases() -> type:
    class Later(OurBase):
        """A non-default field after the base's default ones."""

        c: int  # type: ignore[misc]

    return Later


def _unannotated_field() -> type:
    class Loose:
        """A field() without an annotation."""

        a: int = 0
        b = field(default=1)

    return Loose


def _own_setattr() -> type:
    class Settable:
        """A frozen dataclass may not define __setattr__."""

        a: int = 0

        def __setattr__(self, name: str, value: Any) -> None:
            pass

    return Settable


def _classvar_factory() -> type:
    class Factory:
        """A ClassVar may not have a default factory."""

        a: ClassVar[List[int]] = field(default_factory=list)

    return Factory


def _frozen_over_loose() -> type:
    @dataclasses.dataclass
    class Loose:
        a: int = 0

    class Tight(Loose):
        """A frozen dataclass may not extend a non-frozen one."""

        b: int = 0

    return Tight


ERRORS = {
    "mutable list": (_mutable(list), ValueError),
    "mutable dict": (_mutable(dict), ValueError),
    "mutable set": (_mutable(set), ValueError),
    "default order": (_default_order, TypeError),
    "default order across bases": (_order_across_bases, TypeError),
    "field without annotation": (_unannotated_field, TypeError),
    "own __setattr__": (_own_setattr, TypeError),
    "ClassVar with a factory": (_classvar_factory, TypeError),
    "frozen over non-frozen": (_frozen_over_loose, TypeError),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_a_class_the_standard_decorator_refuses_is_refused_alike(case: str) -> None:
    body, error = ERRORS[case]
    with pytest.raises(error) as std:
        dataclasses.dataclass(frozen=True)(body())
    with pytest.raises(error) as ours:
        frozen.dataclass(frozen=True)(body())
    assert str(ours.value) == str(std.value)


def test_the_lazy_signature_is_a_full_signature() -> None:
    ours = frozen.dataclass(frozen=True)(_options())
    std = dataclasses.dataclass(frozen=True)(_options())
    fresh = frozen.dataclass(frozen=True)(_options()).__init__.__signature__
    assert type(fresh) is not inspect.Signature  # (else this test would test nothing lazy)
    # copied and pickled before its parameters were ever read (a copied "<factory>" is another
    # object, as with the standard signature, so these compare as text)
    assert str(pickle.loads(pickle.dumps(fresh))) == str(inspect.signature(std.__init__))
    assert str(copy.deepcopy(fresh)) == str(inspect.signature(std.__init__))
    sig = inspect.signature(ours)
    assert sig == inspect.signature(std) and hash(sig) == hash(inspect.signature(std))
    assert str(sig.replace(return_annotation="x")) == str(
        inspect.signature(std).replace(return_annotation="x")
    )
    assert str(inspect.signature(ours("f").__init__)) == str(inspect.signature(std("f").__init__))
    assert ours.__init__.__signature__.bind(ours, "f", second=3).arguments["second"] == 3


def test_the_lazy_docstring_is_the_standard_one_and_stays() -> None:
    ours = frozen.dataclass(frozen=True)(_no_docstring())
    std = dataclasses.dataclass(frozen=True)(_no_docstring())
    assert ours.__dict__["__doc__"] is not std.__doc__  # made when read
    assert ours.__doc__ == std.__doc__ == "Bare(x: 'int', y: 'Tuple[int, ...]' = <factory>)"
    assert ours(1).__doc__ == std.__doc__ and ours.__dict__["__doc__"] == std.__doc__


def test_plain_defaults_come_out_alike_through_field_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # the path of an interpreter whose Field() takes other arguments than field() passes it
    monkeypatch.setattr(frozen, "_FIELD_REST", None)
    for body in (_class_vars, _options, _inherited_default(), _no_docstring):
        assert describe(frozen.dataclass(frozen=True)(body())) == describe(
            dataclasses.dataclass(frozen=True)(body())
        )


# ---------------------------------------------------------------------------------------------
# Plain (not frozen) classes, and the compiled __init__ of hot classes.


def _plain_shapes() -> Dict[str, Callable[[], type]]:
    """The shapes above, a plain body with a factory and a __post_init__, one with its own
    __hash__, one over a plain base, one with its own __setattr__."""

    def factory() -> type:
        class Scan:
            """Mutable while reading."""

            lines: List[str] = field(default_factory=list)
            seen: int = 0
            note: str = field(default="", repr=False)
            later: List[int] = field(default_factory=list, init=False)

            def __post_init__(self) -> None:
                self.seen += len(self.lines)

        return Scan

    def own_hash() -> type:
        class Hashed:
            """Hashable by its own hand."""

            a: int = 0

            def __hash__(self) -> int:
                return 7

        return Hashed

    def plain_base() -> type:
        @dataclasses.dataclass
        class Base:
            a: int = 0

        class Child(Base):
            """Over a plain base."""

            b: int = 1

        return Child

    def own_setattr() -> type:
        class Watched:
            """Its own __setattr__, which the standard __init__ calls."""

            a: int = 0

            def __setattr__(self, name: str, value: Any) -> None:
                object.__setattr__(self, name, value * 2)

        return Watched

    def helper_names() -> type:
        class Named:
            """Fields named as helpers of generated code might be."""

            _set: int = 0
            _FACTORY: int = 1
            _d0: List[int] = field(default_factory=list)
            object: str = "o"

        return Named

    shapes = {name: body for name, body in SHAPES.items() if name != "standard base"}
    shapes.update(
        {
            "factory": factory,
            "own hash": own_hash,
            "plain base": plain_base,
            "setattr": own_setattr,
            "helper names": helper_names,
        }
    )
    return shapes


PLAIN_SHAPES = _plain_shapes()


@pytest.mark.parametrize("shape", sorted(PLAIN_SHAPES))
def test_a_plain_class_comes_out_as_from_the_standard_decorator(shape: str) -> None:
    body = PLAIN_SHAPES[shape]
    try:
        std = dataclasses.dataclass(body())
    except TypeError as exc:  # a plain class over a frozen base
        with pytest.raises(TypeError, match=re.escape(str(exc))):
            frozen.dataclass(body())
        return
    assert describe(frozen.dataclass(body())) == describe(std)


def test_plain_classes_take_the_fast_path_only_where_they_can() -> None:
    fast = set()
    for name, body in PLAIN_SHAPES.items():
        try:
            made = frozen.dataclass(body())
        except TypeError:  # refused, as by the standard decorator (the test above)
            continue
        if made.__dict__.get("__dataclass_params__") is frozen._PLAIN_PARAMS:
            fast.add(name)
    assert {"factory", "own hash", "class vars", "field options", "no docstring"} <= fast
    assert not fast & {"plain base", "setattr", "InitVar", "slots", "field named self"}
    made = frozen.dataclass(PLAIN_SHAPES["factory"]())(["x", "y"], 1)
    made.seen += 1  # plain: assignable
    assert (made.lines, made.seen, made.later) == (["x", "y"], 4, [])


def _calls(cls: type) -> List[str]:
    """What constructing ``cls`` in several ways gives: a repr, or the error's type and text."""
    out = []
    for args, kwargs in (((), {}), ((1,), {}), ((1, 2), {}), ((), {"a": 1}), ((1,), {"a": 2})):
        try:
            out.append(repr(cls(*args, **kwargs)))
        except (TypeError, ValueError) as exc:
            out.append(f"{type(exc).__name__}: {exc}")
    return out


HOT_SHAPES = [(name, {"frozen": True}) for name in sorted(SHAPES)] + [
    (name, {}) for name in sorted(PLAIN_SHAPES)
]


@pytest.mark.parametrize(
    "shape,options", HOT_SHAPES, ids=[f"{n}-{'frozen' if o else 'plain'}" for n, o in HOT_SHAPES]
)
def test_a_hot_class_compiles_the_standard_init(shape: str, options: Dict[str, Any]) -> None:
    body = (SHAPES if options else PLAIN_SHAPES)[shape]
    try:
        std = dataclasses.dataclass(**options)(body())
    except TypeError as exc:  # a plain body the standard decorator refuses frozen, or so
        with pytest.raises(TypeError, match=re.escape(str(exc))):
            frozen.hot_dataclass(**options)(body())
        return
    hot = frozen.hot_dataclass(**options)(body())
    before = describe(hot)  # (describe() constructs it: the compiled __init__ is in place now)
    assert before == describe(std)
    assert describe(hot) == describe(std)
    assert _calls(hot) == _calls(std)
    assert str(inspect.signature(hot)) == str(inspect.signature(std))


def test_a_hot_class_has_compiled_code_after_its_first_instance() -> None:
    hot = frozen.hot_dataclass(frozen=True)(_options())
    stub = hot.__dict__["__init__"]
    required = [p.name for p in inspect.signature(hot).parameters.values() if p.default is p.empty]
    hot(**{name: 1 for name in required})
    compiled = hot.__dict__["__init__"]
    assert compiled is not stub and compiled.__code__.co_filename == "<string>"
    assert hot.__init__.__qualname__ == stub.__qualname__
