"""The same help and usage errors under every click the install can get (gd-doctor's own
wording where click's changed between versions), and the command group that makes bare
``gd-doctor`` mean ``gd-doctor check``."""

from __future__ import annotations

import difflib
import os
from typing import Any, List, Optional

# typer decides at import time whether to use rich; the packages ship without it.
os.environ.setdefault("TYPER_USE_RICH", "0")

import click
from typer.core import TyperGroup

from gd_doctor.cli.inputs import suggest

# --- the same help and usage errors under every click the install can get ---------------------
#
# The packages vendor click 8.1.8 (the last for Python 3.9); pip on Python >= 3.10 gets click
# >= 8.2.1 (typer 0.23 requires it). Where click's own wording changed between those versions,
# gd-doctor words it itself (docs/packaging.md, "The same CLI whatever click pip installs";
# tests/core/test_cli_text.py holds the text every version must print):
# * the hint under a usage error names ``--help`` (click 8.1 took the first help option name,
#   8.2 the longest): ``--help`` is listed first;
# * the usage line says ``[COMMAND]`` (bare ``gd-doctor`` runs check; click 8.1 wrote COMMAND);
# * an unknown command or option gets one message and gd-doctor's own suggestion (click 8.1,
#   8.2 and 8.4 word both differently, and typer adds a second suggestion on top of click's);
# * an argument keeps its help text (click 8.5 resets the help typer 0.23 sets on arguments).

HELP_OPTIONS = ["--help", "-h"]


def _no_second_arguments_section(
    self: click.Command, ctx: click.Context, formatter: click.HelpFormatter
) -> None:
    """typer 0.23 writes the "Arguments" section itself (in ``format_options``)."""


def _keep_argument_help() -> None:
    """Since click 8.5, ``click.Argument.__init__`` takes a ``help`` of its own and sets it to
    None when typer 0.23 (which sets it before calling it) does not pass it: put it back, and
    keep click 8.5's new "Positional arguments" section from repeating typer's "Arguments"."""
    import functools
    import inspect

    from typer.core import TyperArgument, TyperCommand

    if "help" not in inspect.signature(click.Argument.__init__).parameters:
        return  # click < 8.5: the attribute typer sets survives
    if getattr(TyperArgument.__init__, "_gd_doctor_keeps_help", False):
        return
    original = TyperArgument.__init__

    @functools.wraps(original)
    def __init__(self: TyperArgument, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.help = kwargs.get("help")

    __init__._gd_doctor_keeps_help = True  # type: ignore[attr-defined]
    TyperArgument.__init__ = __init__  # type: ignore[method-assign]
    TyperCommand.format_arguments = _no_second_arguments_section  # type: ignore[method-assign]


_keep_argument_help()


def _option_names(command: click.Command) -> List[str]:
    names = list(HELP_OPTIONS)
    for param in command.params:
        if isinstance(param, click.Option):
            names.extend(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    return names


def no_such_option(exc: click.NoSuchOption) -> click.UsageError:
    """The unknown option, worded the same under every click version."""
    known = _option_names(exc.ctx.command) if exc.ctx is not None else []
    close = difflib.get_close_matches(exc.option_name, known, n=2, cutoff=0.6)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return click.UsageError(f"No such option {exc.option_name}{hint}.", exc.ctx)


class UniformGroup(TyperGroup):
    """A command group whose unknown-command message is gd-doctor's own (see above)."""

    def resolve_command(
        self, ctx: click.Context, args: List[str]
    ) -> "tuple[Optional[str], Optional[click.Command], List[str]]":
        name = args[0] if args else ""
        if args and not name.startswith("-") and self.get_command(ctx, name) is None:
            known = [c for c in self.list_commands(ctx) if c]
            raise click.UsageError(f"No such command {name!r}{suggest(name, known)}.", ctx)
        return super().resolve_command(ctx, args)


class DefaultToCheck(UniformGroup):
    """Bare ``gd-doctor`` means ``gd-doctor check``, options included (``gd-doctor -v``)."""

    _OWN = ("--help", "-h", "--version", "-V")

    def parse_args(self, ctx: click.Context, args: List[str]) -> List[str]:
        if not args or (args[0].startswith("-") and args[0] not in self._OWN):
            args = ["check", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        # every subcommand's options are parsed below this call, the nested groups' too
        try:
            return super().invoke(ctx)
        except click.NoSuchOption as exc:
            raise no_such_option(exc) from None
