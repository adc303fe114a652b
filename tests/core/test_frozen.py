"""gd_doctor.frozen.dataclass behaves as dataclasses.dataclass(frozen=True), class by class."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from typing import Any, Optional, Tuple

import pytest

from gd_doctor import frozen
from gd_doctor.model import Facts


def _pair(body: Any) -> Tuple[Any, Any]:
    """The same class body under the standard decorator and under ours."""
    return dataclasses.dataclass(frozen=True)(body()), frozen.dataclass(frozen=True)(body())


def _plain() -> type:
    class Probe:
        """A value with every kind of field."""

        address: str
        port: Optional[int]
        names: Tuple[str, ...] = ()
        extra: Tuple[str, ...] = dataclasses.field(default_factory=tuple)
        secret: str = dataclasses.field(default="", repr=False, compare=False)

    return Probe


STD, OURS = _pair(_plain)


@frozen.dataclass(frozen=True)
class Pickled:
    """Module level, so pickle finds it."""

    address: str
    names: Tuple[str, ...] = ()


def test_construction_repr_equality_and_hash_match_the_standard() -> None:
    for args, kwargs in (
        (("10.0.0.1", 443), {}),
        (("10.0.0.1",), {"port": None, "names": ("a",)}),
        ((), {"address": "x", "port": 1, "secret": "s"}),
    ):
        std, ours = STD(*args, **kwargs), OURS(*args, **kwargs)
        assert repr(std) == repr(ours)
        assert dataclasses.asdict(std) == dataclasses.asdict(ours)
        assert hash(std) == hash(ours)
        assert ours == OURS(*args, **kwargs) and ours != std  # another class is never equal
    assert OURS("a", 1, secret="x") == OURS("a", 1, secret="y")  # compare=False
    assert OURS("a", 1) != OURS("a", 2)
    assert str(inspect.signature(STD)) == str(inspect.signature(OURS))
    # Python 3.10+ adds __match_args__; 3.9 has neither
    assert getattr(STD, "__match_args__", None) == getattr(OURS, "__match_args__", None)


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((), {}),
        (("a", 1, (), (), "", "extra"), {}),
        (("a", 1), {"nope": 1}),
        (("a",), {"address": "b"}),
    ],
)
def test_wrong_arguments_are_refused_as_the_standard_refuses_them(
    args: Tuple[Any, ...], kwargs: Any
) -> None:
    with pytest.raises(TypeError):
        STD(*args, **kwargs)
    with pytest.raises(TypeError):
        OURS(*args, **kwargs)


def test_assignment_and_deletion_are_refused() -> None:
    value = OURS("a", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.port = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del value.port
    assert dataclasses.replace(value, port=2) == OURS("a", 2)


def test_copies_pickles_and_the_dataclass_api_work() -> None:
    assert pickle.loads(pickle.dumps(Pickled("a", ("n",)))) == Pickled("a", ("n",))
    value = OURS("a", 1, ("n",))
    assert copy.deepcopy(value) == value and copy.copy(value) == value
    assert dataclasses.is_dataclass(value)
    assert [f.name for f in dataclasses.fields(value)] == [
        "address",
        "port",
        "names",
        "extra",
        "secret",
    ]
    assert OURS.__dataclass_params__.frozen and OURS.__dataclass_params__.eq


def test_inheritance_mixes_with_the_standard_decorator_both_ways() -> None:
    @dataclasses.dataclass(frozen=True)
    class StdChild(OURS):  # type: ignore[misc, valid-type]
        more: int = 0

    @frozen.dataclass(frozen=True)
    class OurChild(STD):  # type: ignore[misc, valid-type]
        more: int = 0

    @frozen.dataclass(frozen=True)
    class OurGrandChild(OurChild):  # type: ignore[misc, valid-type]
        last: str = "z"

    for cls in (StdChild, OurChild, OurGrandChild):
        value = cls("a", 1, more=3)
        assert value.more == 3 and value.address == "a"
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.more = 4
    assert repr(OurGrandChild("a", 1)).endswith(
        ".OurGrandChild(address='a', port=1, names=(), extra=(), more=0, last='z')"
    )
    with pytest.raises(TypeError):  # a non-frozen dataclass may not extend a frozen one
        dataclasses.dataclass(type("Loose", (OURS,), {"__annotations__": {"x": int}, "x": 0}))


def test_the_class_own_methods_win_and_eq_alone_keeps_a_hash() -> None:
    @frozen.dataclass(frozen=True)
    class Own(Facts):
        a: int

        def __repr__(self) -> str:
            return "own"

        def __eq__(self, other: object) -> bool:
            return True

    assert repr(Own(1)) == "own" and Own(1) == Own(2)
    assert hash(Own(1)) == hash((1,))  # the standard decorator adds one too


def test_post_init_runs_and_other_options_go_to_the_standard_decorator() -> None:
    seen = []

    @frozen.dataclass(frozen=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            seen.append(self.a)

    Checked(5)
    assert seen == [5]

    @frozen.dataclass(frozen=True, order=True)
    class Ordered:
        a: int

    assert Ordered(1) < Ordered(2)

    @frozen.dataclass
    class Mutable:
        a: int = 0

    m = Mutable()
    m.a = 3
    assert m == Mutable(3)
