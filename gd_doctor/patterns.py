"""Regular expressions compiled on first use, not at import.

gd-doctor holds about 130 patterns of its own and a live run uses about 20 of them; compiling
all of them at import cost about 75 M instructions (the import of the CLI and the checks went
from 685 M to 610 M). A module writes its patterns as before, with ``lazy`` in place of
``re.compile``::

    _SET = lazy(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
    m = _SET.match(line)

The first method call compiles the pattern; the compiled pattern's bound methods then replace
the object's own, so a later call costs one instance-attribute look-up more than a compiled
pattern's (about 170 instructions on CPython 3.11, against ~2,000 for the shortest match). A
loop over thousands of lines takes ``.compiled().match`` once instead. Worker threads may race
on the first call: each compiles (``re``'s cache makes the second one a look-up) and stores the
same methods, so the race is harmless.
"""

from __future__ import annotations

import re
import sys
from typing import (
    Any,
    AnyStr,
    Callable,
    Generic,
    Iterator,
    List,
    Match,
    Optional,
    Pattern,
    Tuple,
    Union,
)

# The methods a compiled pattern lends its lazy twin once compiled (the class defines each one).
_DELEGATED = ("match", "search", "fullmatch", "finditer", "findall", "sub", "subn", "split")


class LazyPattern(Generic[AnyStr]):
    """A pattern with the interface of ``re.Pattern`` that is compiled on its first use."""

    def __init__(self, pattern: AnyStr, flags: int = 0) -> None:
        self.pattern: AnyStr = pattern
        self._flags = flags
        self._compiled: Optional[Pattern[AnyStr]] = None

    def compiled(self) -> Pattern[AnyStr]:
        """The compiled pattern; the first call compiles it and installs its methods."""
        compiled = self._compiled
        if compiled is None:
            compiled = re.compile(self.pattern, self._flags)
            for name in _DELEGATED:
                # an instance attribute is found before the class's method of the same name
                setattr(self, name, getattr(compiled, name))
            self._compiled = compiled
        return compiled

    @property
    def flags(self) -> int:
        return self.compiled().flags

    @property
    def groups(self) -> int:
        return self.compiled().groups

    def __repr__(self) -> str:
        return f"lazy({self.pattern!r}, {self._flags!r})"

    # Equal when the source and flags are, as compiled patterns are (value types hold these).
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LazyPattern):
            return NotImplemented
        return (self.pattern, self._flags) == (other.pattern, other._flags)

    def __hash__(self) -> int:
        return hash((self.pattern, self._flags))

    # Each method below runs once at most: compiled() replaces it on this instance.

    def match(
        self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize
    ) -> Optional[Match[AnyStr]]:
        return self.compiled().match(string, pos, endpos)

    def search(
        self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize
    ) -> Optional[Match[AnyStr]]:
        return self.compiled().search(string, pos, endpos)

    def fullmatch(
        self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize
    ) -> Optional[Match[AnyStr]]:
        return self.compiled().fullmatch(string, pos, endpos)

    def finditer(
        self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize
    ) -> Iterator[Match[AnyStr]]:
        return self.compiled().finditer(string, pos, endpos)

    def findall(self, string: AnyStr, pos: int = 0, endpos: int = sys.maxsize) -> List[Any]:
        return self.compiled().findall(string, pos, endpos)

    def sub(
        self, repl: Union[AnyStr, Callable[[Match[AnyStr]], AnyStr]], string: AnyStr, count: int = 0
    ) -> AnyStr:
        return self.compiled().sub(repl, string, count)

    def subn(
        self, repl: Union[AnyStr, Callable[[Match[AnyStr]], AnyStr]], string: AnyStr, count: int = 0
    ) -> Tuple[AnyStr, int]:
        return self.compiled().subn(repl, string, count)

    def split(self, string: AnyStr, maxsplit: int = 0) -> List[Any]:
        return self.compiled().split(string, maxsplit)


def lazy(pattern: AnyStr, flags: int = 0) -> LazyPattern[AnyStr]:
    """``re.compile(pattern, flags)``, done when the pattern is first used."""
    return LazyPattern(pattern, flags)
