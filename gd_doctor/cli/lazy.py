"""Commands that become click commands only when an invocation looks them up.

typer converts every command of an app into a click command each time the program starts
(``inspect.signature``, the type hints, one click parameter per option), although one
invocation runs one command: all of gd-doctor's commands and the fleet sub-app cost about
40 M instructions of a 950 M ``check`` run. Here every command is declared as with
``@app.command``, but on a typer app of its own, and ``typer.main.get_command`` (typer's
documented bridge to click, "Using Click" in typer's docs) converts that one-command app when
the group first looks the command up; the group is click's documented lazy-loading group
("Lazily Loading Subcommands" in click's docs: ``list_commands`` names the commands without
making them, ``get_command`` makes one).

What this relies on in typer 0.23 (pinned; tests/core/test_cli_lazy.py fails if it changes):
a one-command app converts to exactly the command a group of several would hold; the group's
class gets ``commands=`` from typer (empty here, as the app registers none itself) and keeps
it in click's ``Group.commands`` mapping, which click's ``get_command`` reads; and typer's
``list_commands`` reads ``commands.items()``, which would make every command, so the group
lists the names alone.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, ClassVar, Dict, Iterator, List, MutableMapping, TypeVar

# typer decides at import time whether to use rich; the packages ship without it.
os.environ.setdefault("TYPER_USE_RICH", "0")

import click
import typer
from typer.core import TyperGroup

F = TypeVar("F", bound=Callable[..., Any])
Maker = Callable[[], click.Command]


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name, in declaration order, each made on its first lookup."""

    def __init__(self, makers: Dict[str, Maker]) -> None:
        self._makers = dict(makers)
        self._made: Dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        made = self._made.get(name)
        if made is None:
            made = self._made[name] = self._makers[name]()
        return made

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._made[name] = command
        self._makers.setdefault(name, lambda: command)

    def __delitem__(self, name: str) -> None:
        del self._makers[name]
        self._made.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._makers  # Mapping's own would make the command

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)

    def made(self) -> List[str]:
        """The names of the commands made so far (what an invocation paid for)."""
        return list(self._made)


class Commands:
    """The commands of a typer group, declared like ``Typer.command``/``Typer.add_typer`` and
    converted to click one at a time. ``settings`` are the group app's own that typer hands to
    the commands it converts (``rich_markup_mode``, ``pretty_exceptions_short``)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        # name -> how to register it on a typer app, in declaration order
        self.declared: Dict[str, Callable[[typer.Typer], None]] = {}

    def command(self, name: str, **options: Any) -> Callable[[F], F]:
        """``@commands.command("check", ...)``: ``Typer.command`` with the same options."""

        def declare(callback: F) -> F:
            self.load_command(name, lambda: callback, **options)
            return callback

        return declare

    def load_command(
        self, name: str, load: Callable[[], Callable[..., Any]], **options: Any
    ) -> None:
        """``Typer.command`` for a callback that ``load`` imports when it is looked up."""

        def register(app: typer.Typer) -> None:
            app.command(name, **options)(load())

        self.declared[name] = register

    def add_typer(self, name: str, load: Callable[[], typer.Typer], **options: Any) -> None:
        """``Typer.add_typer`` for a sub-app that ``load`` imports when it is looked up."""

        def register(app: typer.Typer) -> None:
            app.add_typer(load(), name=name, **options)

        self.declared[name] = register

    def makers(self) -> Dict[str, Maker]:
        return {name: functools.partial(self.make, name) for name in self.declared}

    def make(self, name: str) -> click.Command:
        """The click command typer makes of ``name`` alone, on an app of its own."""
        app = typer.Typer(add_completion=False, **self.settings)
        self.declared[name](app)
        made = typer.main.get_command(app)
        if made.name == name:  # one command: typer makes it the app's command
            return made
        assert isinstance(made, click.Group)  # a sub-app: a nameless group holds it
        return made.commands[name]


class LazyGroup(TyperGroup):
    """A typer group whose commands come from ``declared``, made on first lookup."""

    declared: ClassVar[Commands]

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        lazy = LazyCommands(self.declared.makers())
        for name, command in self.commands.items():  # any the app registered itself
            lazy[name] = command
        self.commands = lazy

    def list_commands(self, ctx: click.Context) -> List[str]:
        # typer's reads commands.items(), which would make every command
        return list(self.commands)
