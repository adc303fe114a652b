"""Typed facts: what each check establishes, handed to later checks, rules and the report.

Every check declares the one :class:`Facts` type it produces (``@check(..., facts=UnitFacts)``);
later checks and rules declare the types they read (``reads=(UnitFacts, JournalFacts)``) and get
the instances, never a dict looked up by string. A renamed field is then a mypy error instead of
a rule that silently stops firing.

Facts are frozen dataclasses of JSON-safe values (str, int, float, bool, None, tuples and
frozen dataclasses of those, and ``Mapping[str, str]``); :func:`to_data` serialises one for the
JSON report's ``data``.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, Dict, Mapping, Optional, Type, TypeVar

from gd_doctor.limits import MAX_LIST, cut_text, first
from gd_doctor.model import Facts

__all__ = ["Facts", "facts_of", "producer_of", "producers", "register_producer", "to_data"]

F = TypeVar("F", bound=Facts)


# Which check produces each facts type: filled by ``@check(facts=...)``, one producer per type.
_PRODUCERS: Dict[Type[Facts], str] = {}


class FactsDeclarationError(TypeError):
    """A facts type declared by two checks, or something that is not a Facts dataclass."""


def register_producer(facts_type: Type[Facts], check_id: str) -> None:
    """Record that ``check_id`` produces ``facts_type`` (called by the check decorator)."""
    if not (isinstance(facts_type, type) and issubclass(facts_type, Facts)):
        raise FactsDeclarationError(f"{check_id}: {facts_type!r} is not a Facts type")
    if not dataclasses.is_dataclass(facts_type):
        raise FactsDeclarationError(f"{facts_type.__name__} is not a dataclass")
    prev = _PRODUCERS.get(facts_type)
    if prev is not None and prev != check_id:
        raise FactsDeclarationError(
            f"{facts_type.__name__} is produced by both {prev} and {check_id}"
        )
    _PRODUCERS[facts_type] = check_id


def producer_of(facts_type: Type[Facts]) -> str:
    """The id of the check that produces ``facts_type``."""
    try:
        return _PRODUCERS[facts_type]
    except KeyError:
        raise FactsDeclarationError(f"no check produces {facts_type.__name__}") from None


def producers() -> Mapping[Type[Facts], str]:
    """Every registered facts type and its producing check (for conformance tests)."""
    return dict(_PRODUCERS)


def _plain_items(name: str, value: Any, out: Dict[str, Any]) -> None:
    """``out[name]`` = the plain value; a list over MAX_LIST is cut and the number left out is
    put beside it as ``<name>_left_out``."""
    if isinstance(value, (tuple, list, frozenset, set)) and len(value) > MAX_LIST:
        kept, left = first(list(value))
        out[name] = [_plain(v) for v in kept]
        out[f"{name}_left_out"] = left
    else:
        out[name] = _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return cut_text(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(value):
            _plain_items(f.name, getattr(value, f.name), out)
        return out
    if isinstance(value, Mapping):
        mapped: Dict[str, Any] = {}
        for n, (k, v) in enumerate(value.items()):
            if n >= MAX_LIST:
                mapped["_left_out"] = len(value) - MAX_LIST
                break
            _plain_items(cut_text(str(k), 200), v, mapped)
        return mapped
    if isinstance(value, (tuple, list, frozenset, set)):
        return [_plain(v) for v in list(value)[:MAX_LIST]]
    return value


def to_data(facts: Optional[Facts]) -> Dict[str, Any]:
    """The facts as a JSON-ready dict (the report's ``data`` of the producing check)."""
    if facts is None:
        return {}
    plain = _plain(facts)
    return plain if isinstance(plain, dict) else {}


def facts_of(value: Any, facts_type: Type[F]) -> Optional[F]:
    """``value`` when it is an instance of ``facts_type``, else None (typed narrowing)."""
    return value if isinstance(value, facts_type) else None
