"""``@dataclass(frozen=True)`` for gd-doctor's value types, without the standard decorator's work.

The standard decorator writes the source of ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__`` and ``__delattr__`` for each class and compiles it with ``exec``; and its
``_process_class`` pass, even with every method turned off, reads each string annotation with
a regular expression and module look-ups twice (ClassVar, InitVar), updates the abstract
methods and builds an ``inspect.signature`` for a class without a docstring. ``import
gd_doctor.checks`` makes about 125 frozen dataclasses, so the decorator was the largest item of
the start-up's CPU time. Instructions for a class of eight fields (callgrind, Python 3.11): the
standard decorator 4.9 million; the standard decorator collecting the fields only, with the
methods below and an eager ``__init__`` signature (0.13 million of it), 0.72 million; this
module 0.24 million. That last step took the import of ``typer``, ``psutil``, the CLI, the
checks and the pipeline from 685 to 619 million instructions.

This module collects the fields itself, as the standard decorator does: the bases'
``__dataclass_fields__`` in reverse MRO order, then the class's own ``__annotations__`` in
order, with the defaults and ``dataclasses.field(...)`` objects of the class body, into real
``dataclasses.Field`` objects (a string annotation is a ``ClassVar`` as there: when its leading
name, or ``typing.ClassVar``, is that object in the class's module), with the standard errors
(a mutable default, a field without a default after one with, a ``field()`` without
annotation), and the class attributes that were ``Field`` objects replaced by their defaults.
It adds ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__`` and
``__delattr__`` as closures over the field list, with the standard semantics (positional and
keyword arguments, defaults and default factories, ``__post_init__``, ``__match_args__``,
equality of the same class only, hash of the compared fields, the same ``repr``,
``FrozenInstanceError`` on assignment). What costs and is seldom read is made when first read:
the ``inspect.Parameter`` objects of ``__init__.__signature__`` and the standard default
docstring (a run reads neither). ``dataclasses.fields``, ``replace``, ``asdict`` and
``is_dataclass`` see an ordinary frozen dataclass (``__dataclass_params__`` is the standard
frozen one), and a standard frozen dataclass may inherit from one of these and the other way
round. tests/core/test_frozen_equivalence.py makes every gd-doctor class again with the
standard decorator and compares them.

A plain ``@dataclass`` (no options) takes the same path, with the standard plain methods
(``__hash__`` None unless the body defines one, no ``__setattr__``), when it has no dataclass
base and no ``__setattr__`` of its own or inherited. Per instance, the closures cost a little
more than generated code (2.8 against 1.7 µs for four fields), so a class made once per log
line uses :func:`hot_dataclass`: its ``__init__`` is compiled from source on its first
instantiation, as the standard decorator writes it at class creation (12 such classes cost
12 ms of a run's start-up with the standard decorator). Other options, and the shapes the
closures do not handle (``InitVar``, ``KW_ONLY`` and keyword-only fields, ``__slots__``, a
field named ``self``, a class of a module not in ``sys.modules``, lazily made annotations of
Python 3.14), go to the standard decorator. Type checkers see :func:`dataclasses.dataclass`
itself.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import re
import sys
import types
import typing
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

__all__ = ["dataclass", "hot_dataclass"]

if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
    from dataclasses import dataclass as hot_dataclass
else:

    def dataclass(cls: Any = None, /, **options: Any) -> Any:
        """``dataclasses.dataclass``; ``frozen=True`` alone, or no option, takes the fast path."""

        def wrap(c: type) -> type:
            if options == {"frozen": True}:
                return _frozen(c)
            if not options:
                return _plain(c)
            return dataclasses.dataclass(c, **options)

        return wrap if cls is None else wrap(cls)

    def hot_dataclass(cls: Any = None, /, **options: Any) -> Any:
        """:func:`dataclass` for a class made once per input line: its ``__init__`` is compiled
        on the first instantiation, as the standard decorator writes it, so each instance costs
        what a standard one does; the class itself costs what a fast one does."""

        def wrap(c: type) -> type:
            made = dataclass(c, **options)
            if made.__dict__.get("__dataclass_params__") in (_PARAMS, _PLAIN_PARAMS):
                _compile_init_when_first_used(made)
            return made

        return wrap if cls is None else wrap(cls)


_MISSING = dataclasses.MISSING
_Field = dataclasses.Field
# The markers the standard decorator puts in Field._field_type (private, but dataclasses.fields()
# itself filters on them, so a Field made here must carry the same objects)
_FIELD: Any = dataclasses._FIELD  # type: ignore[attr-defined]
_CLASSVAR: Any = dataclasses._FIELD_CLASSVAR  # type: ignore[attr-defined]
_INITVAR: Any = dataclasses._FIELD_INITVAR  # type: ignore[attr-defined]
_KW_ONLY: Any = getattr(dataclasses, "KW_ONLY", _MISSING)  # Python 3.10+
_ClassVar: Any = typing.ClassVar
_GenericAlias: Any = typing._GenericAlias  # type: ignore[attr-defined]  # ClassVar[int] is one
_InitVar: Any = dataclasses.InitVar


def _field_rest() -> Optional[Tuple[Any, ...]]:
    """The arguments after ``default`` that ``dataclasses.field(default=...)`` passes to ``Field``,
    when its keyword parameters are ``Field``'s positional ones in the same order (as in 3.9 to
    3.13), so that a plain default costs one call; None for the ``field()`` call otherwise."""
    code = getattr(_Field.__init__, "__code__", None)
    defaults = dataclasses.field.__kwdefaults__ or {}
    if code is None or list(code.co_varnames[1 : code.co_argcount]) != list(defaults):
        return None
    return tuple(defaults[name] for name in list(defaults)[1:])


_FIELD_REST = _field_rest()
_UNSUPPORTED = object()  # an annotation kind left to the standard decorator (KW_ONLY, InitVar)
# The standard decorator's reading of a string annotation: "ClassVar[...]", "typing.ClassVar[...]"
_LEADING_NAME = re.compile(r"^(?:\s*(\w+)\s*\.)?\s*(\w+)").match
_leading: Dict[str, Tuple[Optional[str], Optional[str]]] = {}  # annotation text -> its names
_LEADING_CAP = 4096  # distinct annotation texts remembered (gd-doctor has a few hundred)
_MUTABLE_BY_HASH = sys.version_info >= (3, 11)  # older ones refuse list, dict and set only
_update_abstractmethods = getattr(abc, "update_abstractmethods", None)  # Python 3.10+, as there


class _Factory:
    """The default a signature shows for a field with a default factory, as the standard one."""

    def __repr__(self) -> str:
        return "<factory>"


# The standard decorator's own "<factory>" object where it has one, so that signatures compare
# equal to its signatures
_FACTORY: Any = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", None) or _Factory()
_FROZEN_MODEL: Any = dataclasses.dataclass(frozen=True)(
    type("_Frozen", (), {"__doc__": "The standard params of a frozen dataclass."})
)
# Every class made here shares the standard frozen params (the class is read, never written)
_PARAMS = _FROZEN_MODEL.__dataclass_params__
_PLAIN_MODEL: Any = dataclasses.dataclass(
    type("_Plain", (), {"__doc__": "The standard params of a plain dataclass."})
)
_PLAIN_PARAMS = _PLAIN_MODEL.__dataclass_params__


def _marker(obj: Any, classvar: bool, dataclass_markers: bool) -> Any:
    """The field kind an annotation object stands for, with the standard decorator's tests."""
    if classvar and (
        obj is _ClassVar or (type(obj) is _GenericAlias and obj.__origin__ is _ClassVar)
    ):
        return _CLASSVAR
    if dataclass_markers and (obj is _InitVar or type(obj) is _InitVar or obj is _KW_ONLY):
        return _UNSUPPORTED
    return _FIELD


def _read_leading(annotation: str) -> Tuple[Optional[str], Optional[str]]:
    """The ``module`` and ``name`` the standard decorator's regex reads at the start of a string
    annotation; the text alone decides them, so each distinct text is read once."""
    match = _LEADING_NAME(annotation)
    names: Tuple[Optional[str], Optional[str]] = match.groups() if match else (None, None)  # type: ignore[assignment]
    if len(_leading) < _LEADING_CAP:
        _leading[annotation] = names
    return names


def _kind(annotation: Any, module_globals: Dict[str, Any]) -> Any:
    """The standard decorator's reading of one annotation, without eval: a string counts as a
    ClassVar (InitVar, KW_ONLY) when its leading name is that object in the class's module, or
    its ``module.name`` is ``typing.ClassVar`` (``dataclasses.InitVar``)."""
    if not isinstance(annotation, str):
        return _marker(annotation, True, True)
    module_name, name = _leading.get(annotation) or _read_leading(annotation)
    if name is None:
        return _FIELD
    if module_name is None:
        obj = module_globals.get(name)
        return _FIELD if obj is None else _marker(obj, True, True)
    module = module_globals.get(module_name)
    if module is typing:
        return _marker(vars(typing).get(name), True, False)
    if module is dataclasses:
        return _marker(vars(dataclasses).get(name), False, True)
    return _FIELD


class _Signature(inspect.Signature):
    """The signature of an ``__init__`` made here, its parameters built when first read: an
    ``inspect.Parameter`` per field costs half as much as the rest of the class, and only
    ``inspect.signature`` (help, the class's default docstring) ever reads them."""

    __slots__ = ("_fields",)
    _fields: Tuple[dataclasses.Field[Any], ...]

    @classmethod
    def of(cls, fields: Tuple[dataclasses.Field[Any], ...]) -> _Signature:
        sig = cls.__new__(cls)
        sig._fields = fields
        sig._return_annotation = None  # type: ignore[attr-defined]
        return sig

    @property
    def parameters(self) -> types.MappingProxyType[str, inspect.Parameter]:
        try:  # set by the standard __init__ too, when replace() or pickle make one
            return self._parameters  # type: ignore[has-type, no-any-return]
        except AttributeError:
            pass
        params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for f in self._fields:
            default: Any = inspect.Parameter.empty
            if f.default is not _MISSING:
                default = f.default
            elif f.default_factory is not _MISSING:
                default = _FACTORY
            params.append(
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=default,
                    annotation=f.type,
                )
            )
        self._parameters = inspect.Signature(params).parameters  # checks them, as on the eager way
        return self._parameters

    def __reduce__(self) -> Any:
        self.parameters  # noqa: B018 (the standard reduction reads the built ones)
        return super().__reduce__()


class _Doc:
    """``__doc__`` of a class whose body has none: the standard text (name and signature),
    made when first read rather than at class creation, since it needs the signature."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __get__(self, obj: Any, owner: Any = None) -> str:
        cls = self.cls
        try:
            text = cls.__name__ + str(inspect.signature(cls)).replace(" -> None", "")
        except (TypeError, ValueError):  # as the standard decorator
            text = cls.__name__
        type.__setattr__(cls, "__doc__", text)
        return text


_Fields = Dict[str, "dataclasses.Field[Any]"]


def _base_fields(cls: type) -> Optional[_Fields]:
    """The inherited fields, as the standard decorator walks them (reverse MRO, a subclass's field
    replacing its base's in place); None when a base has what the fast ``__init__`` does not do
    (InitVar, keyword-only fields) or no dataclass base is frozen (the standard one refuses it)."""
    fields: _Fields = {}
    dataclass_bases = frozen_base = False
    for base in cls.__mro__[-2:0:-1]:  # (object has no fields)
        base_fields = getattr(base, "__dataclass_fields__", None)
        if base_fields is None:
            continue
        dataclass_bases = True
        for f in base_fields.values():
            if f._field_type is _INITVAR or getattr(f, "kw_only", False) is True:  # type: ignore[attr-defined]
                return None
            fields[f.name] = f
        if base.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            frozen_base = True
    return None if dataclass_bases and not frozen_base else fields


def _own_field(
    name: str, annotation: Any, kind: Any, default: Any
) -> Optional[dataclasses.Field[Any]]:
    """One annotation of the class body as a Field, as the standard ``_get_field`` makes it from
    the class attribute of that name; None for what the standard decorator refuses or the fast
    path leaves to it."""
    if isinstance(default, _Field):
        f = default
        kw_only = getattr(f, "kw_only", _MISSING)
        if kw_only is not _MISSING and (kind is _CLASSVAR or kw_only):
            return None
        if kind is _CLASSVAR and f.default_factory is not _MISSING:
            return None
    elif isinstance(default, types.MemberDescriptorType):  # a __slots__ entry
        return None
    elif _FIELD_REST is not None:
        f = _Field(default, *_FIELD_REST)
    else:
        f = dataclasses.field(default=default)
    f.name = name
    f.type = annotation
    f._field_type = kind  # type: ignore[attr-defined]
    if kind is _FIELD:
        if getattr(f, "kw_only", None) is _MISSING:
            f.kw_only = False  # type: ignore[attr-defined]
        value = f.default
        if (
            value.__class__.__hash__ is None
            if _MUTABLE_BY_HASH
            else isinstance(value, (list, dict, set))
        ):
            raise ValueError(
                f"mutable default {type(value)} for field {name} is not allowed: "
                "use default_factory"
            )
    return f


def _collect(cls: type, frozen: bool = True) -> Optional[Tuple[_Fields, List[str]]]:
    """The fields as the standard decorator collects them, and the names whose class attribute
    is a ``Field``; None for a class shape left to the standard decorator. A plain (not
    frozen) class takes the fast path only without dataclass bases, and without a
    ``__setattr__`` of its own or inherited, which its standard ``__init__`` would call."""
    own = cls.__dict__
    module = sys.modules.get(cls.__module__)
    annotations = own.get("__annotations__")
    # (Python 3.14 makes annotations lazily; the standard decorator knows how to read them)
    lazy_annotations = annotations is None and sys.version_info >= (3, 14)
    if module is None or "__slots__" in own or lazy_annotations:
        return None
    if frozen:
        fields = _base_fields(cls)
    else:
        plain_bases = all(
            "__dataclass_fields__" not in vars(base) and "__setattr__" not in vars(base)
            for base in cls.__mro__[:-1]
        )
        fields = {} if plain_bases else None
    if fields is None:
        return None
    module_globals = vars(module)
    field_defaults = []
    for name, annotation in (annotations or {}).items():
        kind = _kind(annotation, module_globals)
        default = getattr(cls, name, _MISSING)  # inherited class attributes count, as there
        f = None if kind is _UNSUPPORTED else _own_field(name, annotation, kind, default)
        if f is None:
            return None
        if f is default:
            field_defaults.append(name)
        fields[name] = f
    if _holds_fields(own):  # the standard loop, when some value may be a Field
        for name, value in own.items():
            if isinstance(value, _Field) and name not in (annotations or {}):
                raise TypeError(f"{name!r} is a field but has no type annotation")
    if "self" in fields:  # the standard __init__ renames its own first argument for it
        return None
    _check_default_order(fields)
    return fields, field_defaults


def _holds_fields(namespace: Any) -> bool:
    """Whether a value of a class body is a ``Field`` (the types of its values, seen in C)."""
    return any(issubclass(kind, _Field) for kind in set(map(type, namespace.values())))


def _check_default_order(fields: _Fields) -> None:
    """The standard ``__init__``'s refusal of a parameter without a default after one with."""
    last_default = None
    for f in fields.values():
        if f._field_type is _FIELD and f.init:  # type: ignore[attr-defined]
            if f.default is not _MISSING or f.default_factory is not _MISSING:
                last_default = f
            elif last_default is not None:
                named = f" {last_default.name!r}" if sys.version_info >= (3, 13) else ""
                raise TypeError(f"non-default argument {f.name!r} follows default argument{named}")


def _make_init(cls: type, fields: Tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    init = tuple([f for f in fields if f.init])
    names = tuple([f.name for f in init])
    specs = tuple([(f.name, f.default, f.default_factory) for f in init])
    rest = tuple([(f.name, f.default, f.default_factory) for f in fields if not f.init])
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
    __init__.__signature__ = _Signature.of(init)  # type: ignore[attr-defined]
    return __init__


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
    own = cls.__dict__
    collected = _collect(cls)
    if collected is None:
        return dataclasses.dataclass(cls, frozen=True)
    for name in ("__setattr__", "__delattr__"):
        if name in own:  # as the standard decorator refuses it for a frozen class
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    return _make(cls, collected, frozen=True)


def _plain(cls: type) -> type:
    """``@dataclass`` without options: ``__init__``, ``__repr__``, ``__eq__``, and ``__hash__``
    None unless the class body defines one, as the standard decorator makes them."""
    collected = _collect(cls, frozen=False)
    if collected is None:
        return dataclasses.dataclass(cls)
    return _make(cls, collected, frozen=False)


def _make(cls: type, collected: Tuple[_Fields, List[str]], *, frozen: bool) -> type:
    own = cls.__dict__
    all_fields, field_defaults = collected
    for name in field_defaults:  # the class attribute becomes the plain default, as there
        default = all_fields[name].default
        if default is _MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, default)
    cls.__dataclass_params__ = _PARAMS if frozen else _PLAIN_PARAMS  # type: ignore[attr-defined]
    cls.__dataclass_fields__ = all_fields  # type: ignore[attr-defined]
    fields = tuple([f for f in all_fields.values() if f._field_type is _FIELD])  # type: ignore[attr-defined]
    _add_methods(cls, fields, frozen=frozen)
    if "__match_args__" not in own and sys.version_info >= (3, 10):  # as the standard one
        type.__setattr__(cls, "__match_args__", tuple([f.name for f in fields if f.init]))
    if not cls.__doc__:
        type.__setattr__(cls, "__doc__", _Doc(cls))
    # as the standard decorator (3.10+), for an ABC: the type keeps the name in its own dict
    if _update_abstractmethods is not None and "__abstractmethods__" in own:
        _update_abstractmethods(cls)
    return cls


def _add_methods(
    cls: type, fields: Tuple[dataclasses.Field[Any], ...], *, frozen: bool = True
) -> None:
    """``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``
    (the last two for a frozen class; a plain one's ``__hash__`` is None), except those the
    class body defines itself, as the standard decorator."""
    shown = tuple([f.name for f in fields if f.repr])
    compared = tuple([f.name for f in fields if f.compare])
    hashed = tuple([f.name for f in fields if (f.compare if f.hash is None else f.hash)])
    own = cls.__dict__
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
        "__hash__": __hash__ if frozen else None,
        **(_freeze(cls, tuple([f.name for f in fields])) if frozen else {}),
    }
    for name, fn in methods.items():
        if (name == "__hash__" and explicit_hash) or (name != "__hash__" and name in own):
            continue
        if fn is not None:
            fn.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, fn)


def _compile_init_when_first_used(cls: type) -> None:
    """Replace the fast ``__init__`` by compiled code on the class's first instantiation."""
    fast_init: Any = cls.__dict__["__init__"]
    if not hasattr(fast_init, "__signature__"):  # the class body's own __init__ stays
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        compiled = _compiled_init(cls)
        if cls.__dict__.get("__init__") is __init__:
            type.__setattr__(cls, "__init__", compiled)
        compiled(self, *args, **kwargs)

    __init__.__qualname__ = fast_init.__qualname__
    __init__.__signature__ = fast_init.__signature__  # type: ignore[attr-defined]
    type.__setattr__(cls, "__init__", __init__)


def _compiled_init(cls: type) -> Callable[..., None]:
    """The ``__init__`` the standard decorator would write for ``cls``: one assignment per
    field (``object.__setattr__`` in a frozen class), defaults as default arguments, factories
    called when the argument is left out, then ``__post_init__``. The names the code needs
    besides the fields' are dunder names no field of the fast path can have."""
    fields = [f for f in cls.__dataclass_fields__.values() if f._field_type is _FIELD]  # type: ignore[attr-defined]
    frozen = cls.__dict__["__dataclass_params__"].frozen
    scope: Dict[str, Any] = {"__dataclass_set__": object.__setattr__, "__dataclass_f__": _FACTORY}
    params, body = ["self"], []

    def assign(name: str, value: str) -> str:
        if frozen:
            return f"__dataclass_set__(self, {name!r}, {value})"
        return f"self.{name} = {value}"

    for i, f in enumerate(fields):
        default, factory = f"__dataclass_default_{i}__", f"__dataclass_factory_{i}__"
        if f.init:
            if f.default is not _MISSING:
                scope[default] = f.default
                params.append(f"{f.name}={default}")
            elif f.default_factory is not _MISSING:
                scope[factory] = f.default_factory
                params.append(f"{f.name}=__dataclass_f__")
                body.append(f"if {f.name} is __dataclass_f__: {f.name} = {factory}()")
            else:
                params.append(f.name)
            body.append(assign(f.name, f.name))
        elif f.default is not _MISSING:
            scope[default] = f.default
            body.append(assign(f.name, default))
        elif f.default_factory is not _MISSING:
            scope[factory] = f.default_factory
            body.append(assign(f.name, f"{factory}()"))
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    lines = "\n".join(f"    {line}" for line in body or ["pass"])
    exec(f"def __init__({', '.join(params)}):\n{lines}\n", scope)
    init: Any = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__signature__ = cls.__dict__["__init__"].__signature__
    return init  # type: ignore[no-any-return]
