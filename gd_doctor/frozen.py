"""``@dataclass(frozen=True)`` for gd-doctor's value types, without compiling code per class.

The standard decorator writes the source of ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__`` and ``__delattr__`` for each class and compiles it with ``exec``: about 2 ms a
class here, and gd-doctor defines over a hundred frozen dataclasses, so the decorator alone was
the largest item of the start-up's CPU time. This one lets the standard decorator collect the
fields only (``init=False, repr=False, eq=False``, no ``exec`` at all), then adds ``__init__``,
``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__`` and ``__delattr__`` as closures over
the field list, with the standard semantics (positional and keyword arguments, defaults
and default factories, ``__post_init__``, ``__match_args__``, equality of the same class only,
hash of the compared fields, the same ``repr``, ``FrozenInstanceError`` on assignment).
``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` see an ordinary frozen
dataclass, and a standard frozen dataclass may inherit from one of these and the other way round:
the class's ``__dataclass_params__`` says frozen, except to the standard decorator while it
collects the fields of a class of this module (it refuses a non-frozen pass over frozen bases).

Per instance, the closures cost a little more than generated code, so parsers that build one
value per log line keep the standard decorator. Other options go to the standard decorator.
Type checkers see :func:`dataclasses.dataclass` itself.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple

if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
else:

    def dataclass(cls: Any = None, /, **options: Any) -> Any:
        """``dataclasses.dataclass``; ``frozen=True`` alone takes the fast path."""

        def wrap(c: type) -> type:
            if options == {"frozen": True}:
                return _frozen(c)
            return dataclasses.dataclass(c, **options)

        return wrap if cls is None else wrap(cls)


_MISSING = dataclasses.MISSING


class _Factory:
    """The default a signature shows for a field with a default factory, as the standard one."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()
_FROZEN_MODEL: Any = dataclasses.dataclass(frozen=True)(type("_Frozen", (), {}))
_STANDARD_PARAMS = _FROZEN_MODEL.__dataclass_params__
_collecting = threading.local()  # set while the standard decorator collects fields for us


class _Params:
    """``__dataclass_params__`` of a class made here: the standard frozen ones, but seen as not
    frozen by the field-collecting pass of a subclass made here."""

    @property
    def frozen(self) -> bool:
        return not getattr(_collecting, "active", False)

    def __getattr__(self, name: str) -> Any:
        return getattr(_STANDARD_PARAMS, name)

    def __repr__(self) -> str:
        return repr(_STANDARD_PARAMS)


_PARAMS = _Params()


def _signature(cls: type, init_fields: List[dataclasses.Field[Any]]) -> inspect.Signature:
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for f in init_fields:
        default: Any = inspect.Parameter.empty
        if f.default is not _MISSING:
            default = f.default
        elif f.default_factory is not _MISSING:
            default = _FACTORY
        params.append(
            inspect.Parameter(
                f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=f.type
            )
        )
    return inspect.Signature(params, return_annotation=None)


def _make_init(cls: type, fields: Tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    init = [f for f in fields if f.init]
    names = tuple(f.name for f in init)
    specs = tuple((f.name, f.default, f.default_factory) for f in init)
    rest = tuple((f.name, f.default, f.default_factory) for f in fields if not f.init)
    post_init = getattr(cls, "__post_init__", None)
    set_attr = object.__setattr__
    qualname = f"{cls.__qualname__}.__init__"

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(
                f"{qualname}() takes {len(names) + 1} positional arguments "
                f"but {len(args) + 1} were given"
            )
        if kwargs:
            for name in names[: len(args)]:
                if name in kwargs:
                    raise TypeError(f"{qualname}() got multiple values for argument {name!r}")
            unknown = [k for k in kwargs if k not in names]
            if unknown:
                raise TypeError(f"{qualname}() got an unexpected keyword argument {unknown[0]!r}")
        for i, (name, default, factory) in enumerate(specs):
            if i < len(args):
                value = args[i]
            elif name in kwargs:
                value = kwargs[name]
            elif default is not _MISSING:
                value = default
            elif factory is not _MISSING:
                value = factory()
            else:
                raise TypeError(f"{qualname}() missing 1 required argument: {name!r}")
            set_attr(self, name, value)
        for name, default, factory in rest:
            if default is not _MISSING:
                set_attr(self, name, default)
            elif factory is not _MISSING:
                set_attr(self, name, factory())
        if post_init is not None:
            post_init(self)

    __init__.__qualname__ = qualname
    __init__.__signature__ = _signature(cls, init)  # type: ignore[attr-defined]
    return __init__


def _collect(cls: type) -> Tuple[type, bool]:
    """The standard decorator's field collection; True when it made the class frozen itself
    (a base is a standard frozen dataclass, which a non-frozen pass may not extend)."""
    own = dict(cls.__dict__)
    for name in ("__setattr__", "__delattr__"):
        if name in own:  # as the standard decorator refuses it for a frozen class
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    _collecting.active = True
    try:
        return dataclasses.dataclass(cls, init=False, repr=False, eq=False), False
    except TypeError:
        pass
    finally:
        _collecting.active = False
    return dataclasses.dataclass(cls, init=False, repr=False, eq=False, frozen=True), True


def _freeze(cls: type, names: Tuple[str, ...]) -> Dict[str, Any]:
    """``__setattr__`` and ``__delattr__`` as the standard frozen dataclass has them."""
    frozen_error = dataclasses.FrozenInstanceError
    owner: Any = cls  # super() of the class, as the standard methods do

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise frozen_error(f"cannot assign to field {name!r}")
        super(owner, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise frozen_error(f"cannot delete field {name!r}")
        super(owner, self).__delattr__(name)

    return {"__setattr__": __setattr__, "__delattr__": __delattr__}


def _frozen(cls: type) -> type:
    cls, made_frozen = _collect(cls)
    fields = dataclasses.fields(cls)
    shown = tuple(f.name for f in fields if f.repr)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    own = dict(cls.__dict__)  # what the class body defined itself is kept, as the standard does
    class_hash = own.get("__hash__", _MISSING)
    # Python sets __hash__ = None for a class body that defines __eq__ only: not an explicit one
    explicit_hash = not (class_hash is _MISSING or (class_hash is None and "__eq__" in own))

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, n) for n in compared) == tuple(
            getattr(other, n) for n in compared
        )

    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, n) for n in hashed))

    methods: Dict[str, Any] = {
        "__init__": _make_init(cls, fields),
        "__repr__": __repr__,
        "__eq__": __eq__,
        "__hash__": __hash__,
    }
    if not made_frozen:
        methods.update(_freeze(cls, tuple(f.name for f in fields)))
        type.__setattr__(cls, "__dataclass_params__", _PARAMS)
    for name, fn in methods.items():
        if (name == "__hash__" and explicit_hash) or (name != "__hash__" and name in own):
            continue
        fn.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, fn)
    if "__match_args__" not in own and sys.version_info >= (3, 10):  # as the standard one
        type.__setattr__(cls, "__match_args__", tuple(f.name for f in fields if f.init))
    return cls
