"""The ``gd-doctor`` command line (typer, without rich).

Exit codes (also in ``--help`` and the README):
  0  no problem found (verdict healthy)
  1  problems found, or the verdict is unknown (the report says which)
  2  usage error
  3  gd-doctor itself failed

stdout carries only the report; progress and warnings go to stderr. Heavy modules are imported
inside the commands so ``--version`` and ``--help`` stay fast.
"""

# No ``from __future__ import annotations`` here: typer reads the command callbacks' annotations
# on every invocation, and string annotations would be compiled and evaluated twice each time
# (about 6 M instructions of a check run); evaluated once, at definition, they cost nothing.
import dataclasses
import math
import os
import shutil
import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Optional, TextIO

# typer decides at import time whether to use rich; the packages ship without it.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from gd_doctor import __version__
from gd_doctor.cli.click_text import HELP_OPTIONS, DefaultToCheck, UniformGroup
from gd_doctor.cli.inputs import (
    check_region,
    check_url,
    output_problem,
    parse_since,
    selection,
    suggest,
)
from gd_doctor.cli.lazy import Commands, LazyGroup

if TYPE_CHECKING:
    from gd_doctor.integrations.outputs import FleetOutputs
    from gd_doctor.model import CheckResult

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_TOOL_FAILED = 3

EXIT_CODES_HELP = (
    "Exit codes: 0 no problem found; 1 problems found or verdict unknown; 2 usage error; "
    "3 gd-doctor itself failed."
)

# "\b" keeps click from re-flowing the lines of a paragraph.
EXAMPLES = (
    "\b\nExamples:\n"
    "  sudo gd-doctor                    check this instance (same as 'gd-doctor check')\n"
    "  sudo gd-doctor -v                 the same, listing every check with its details\n"
    "  sudo gd-doctor --format json -o /var/tmp/gd-doctor.json\n"
    "  gd-doctor check --root /mnt/img   analyse a mounted root offline\n"
    "  gd-doctor explain 'Agent disconnected'\n"
    "  gd-doctor explain 15              a coverage-issue row by number or id\n"
    "  gd-doctor explain --list          every row, one line each"
)

TOP_HELP = (
    "Diagnose why Amazon GuardDuty Runtime Monitoring coverage of this EC2 instance is "
    "Unhealthy, and name the row of AWS's coverage-issue table. Bare 'gd-doctor' runs "
    "'gd-doctor check', and the options of check work at the top level too. " + EXIT_CODES_HELP
)


# The commands: declared as on the app, made into click commands only when looked up (lazy.py).
commands = Commands(rich_markup_mode=None)


class GdDoctorGroup(LazyGroup, DefaultToCheck):
    """The top group: bare ``gd-doctor`` runs check; a command is made when it is looked up."""

    declared = commands


app = typer.Typer(
    name="gd-doctor",
    help=TOP_HELP,
    epilog=EXAMPLES,
    cls=GdDoctorGroup,
    subcommand_metavar="[COMMAND] [ARGS]...",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": HELP_OPTIONS},
)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    ssm = "ssm"


# Ten years: far beyond any journal, and small enough that datetime arithmetic cannot overflow.
def terminal_width() -> int:
    """The width to wrap the text report to: the terminal's, 80 when stdout is no terminal."""
    if not sys.stdout.isatty():
        return 80
    return shutil.get_terminal_size((80, 24)).columns


def _identity_region(report: Any) -> Optional[str]:
    """The Region in the instance identity document, if the run read one."""
    from gd_doctor.facts import to_data

    for c in report.checks:
        if c.check_id == "imds.identity":
            data = to_data(c.facts) if c.facts is not None else dict(c.data)
            region = data.get("region")
            return region if isinstance(region, str) and region else None
    return None


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _use_color(no_color: bool) -> bool:
    # no-color.org: NO_COLOR disables colour only when it is set *and not empty*.
    if no_color or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


class _Progress:
    """A one-line progress indicator on stderr, shown only on a TTY after a short moment."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = datetime.now()
        self.shown = False

    def __call__(self, res: "CheckResult", done: int, total: int) -> None:
        if not self.enabled or (datetime.now() - self.started).total_seconds() < 0.4:
            return
        self.shown = True
        sys.stderr.write(f"\r\x1b[2Kgd-doctor: {done}/{total} checks ({res.check_id})")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def _write_report_file(path: Path, text: str) -> Optional[str]:
    """Write the JSON report where the user asked, mode 0600 (it describes the host);
    returns an error message or None."""
    problem = output_problem(path)
    if problem:
        return problem
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600
        )
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def run_check(
    *,
    fmt: Optional[OutputFormat] = None,
    output: Optional[Path] = None,
    root: Optional[Path] = None,
    only: Optional[List[str]] = None,
    skip: Optional[List[str]] = None,
    timeout: float = 20.0,
    since: str = "24h",
    verbose: bool = False,
    no_color: bool = False,
    debug: bool = False,
    imds_endpoint: Optional[str] = None,
    region: Optional[str] = None,
    endpoint_url: Optional[str] = None,
    fleet: Optional["FleetOutputs"] = None,
    bundle: Optional[Path] = None,
    force: bool = False,
) -> int:
    """Run every selected check, diagnose, render; returns the exit code."""
    from gd_doctor.checks import ALL_CHECKS, UnknownSelection, select_checks
    from gd_doctor.checks.base import Options
    from gd_doctor.host import Host
    from gd_doctor.host.settings import HostSettings
    from gd_doctor.integrations.outputs import FleetOutputs, deliver
    from gd_doctor.integrations.outputs import problems as fleet_problems
    from gd_doctor.model import Verdict
    from gd_doctor.pipeline import run_doctor
    from gd_doctor.report.json import render_json

    if not math.isfinite(timeout) or timeout <= 0:
        raise typer.BadParameter("must be a finite number greater than 0", param_hint="--timeout")
    window = parse_since(since)
    to_stdout = output is not None and str(output) == "-"
    if to_stdout:
        # "-o -" is the JSON report on stdout, so any other --format would be a second stdout.
        if fmt not in (None, OutputFormat.json):
            raise typer.BadParameter(
                f"'-' writes the JSON report to stdout; it cannot be combined with --format "
                f"{fmt.value}",
                param_hint="--output",
            )
        fmt, output = OutputFormat.json, None
    fmt = fmt or OutputFormat.text
    if output is not None:
        word = str(output).lower()
        if word in {f.value for f in OutputFormat}:
            raise typer.BadParameter(
                f"{str(output)!r} is a file name here (did you mean --format {word}?)",
                param_hint="--output",
            )
        problem = output_problem(output)
        if problem:
            raise typer.BadParameter(problem, param_hint="--output")
    if region is not None:
        check_region(region)
    if imds_endpoint is not None:
        check_url(imds_endpoint, "--imds-endpoint", scheme_required=True)
    if endpoint_url is not None:
        check_url(endpoint_url, "--endpoint-url", scheme_required=False)
    fleet = fleet or FleetOutputs()
    refused = fleet_problems(fleet)
    if refused:
        raise typer.BadParameter(refused[1], param_hint=refused[0])
    only_names, skip_names = selection(only), selection(skip)
    try:
        checks, deselected = select_checks(only_names, skip_names, ALL_CHECKS)
    except UnknownSelection as exc:
        name = str(exc.args[0])
        known = sorted({c.id for c in ALL_CHECKS} | {c.category for c in ALL_CHECKS})
        option = "--only" if any(name in n.split(",") for n in only_names) else "--skip"
        raise typer.BadParameter(
            f"{name!r} is neither a check id nor a category{suggest(name, known)}; "
            "'gd-doctor checks' lists them",
            param_hint=option,
        ) from None
    if not {c.id for c in checks} - set(deselected):
        raise typer.BadParameter(
            "these leave no check to run ('gd-doctor checks' lists them)",
            param_hint="--only/--skip",
        )
    settings = HostSettings(
        imds_endpoint=imds_endpoint,
        region=region,
        endpoint_url=endpoint_url,
        env=dict(os.environ),
    )
    opened = None
    if bundle is not None:
        from gd_doctor.bundle import replay_host, since_of
        from gd_doctor.cli.bundle_commands import open_or_exit

        if root is not None:
            raise typer.BadParameter(
                "--bundle and --root exclude each other", param_hint="--bundle"
            )
        opened = open_or_exit(bundle)
        host = replay_host(opened)
        window = since_of(opened.manifest) or window if since == "24h" else window
    elif root is not None:
        if not root.is_dir():
            raise typer.BadParameter(f"{root} is not a directory", param_hint="--root")
        if not (root / "etc").is_dir():
            if not force:
                raise typer.BadParameter(
                    f"{root} has no etc/ directory, so it is not the root of a filesystem "
                    "(--force analyses it anyway)",
                    param_hint="--root",
                )
            sys.stderr.write(f"gd-doctor: warning: {root} has no etc/ directory\n")
        host = Host.from_root(root, settings)
    else:
        host = Host.live_host(settings)
    options = Options(since=window)
    progress = _Progress(sys.stderr.isatty() and fmt == OutputFormat.text)
    done = run_doctor(
        host,
        checks=checks,
        options=options,
        budget_s=timeout,
        deselected=deselected,
        debug=debug,
        report_path=str(output) if output else None,
        progress=progress,
        started_at=opened.recorded_at if opened is not None else None,
    )
    progress.clear()
    if opened is not None:
        from gd_doctor.cli.bundle_commands import mark_replay

        done = mark_replay(done, opened)  # type: ignore[assignment]
        opened.close()
    run, report = done.outcome, done.report
    status = EXIT_OK if report.verdict == Verdict.HEALTHY else EXIT_PROBLEMS
    if output is not None:
        problem = _write_report_file(output, render_json(report))
        if problem:
            sys.stderr.write(f"gd-doctor: {problem}\n")
            status = EXIT_TOOL_FAILED
            # The outputs below must not point to a report file that was not written.
            report = dataclasses.replace(report, report_path=None)
    if fmt == OutputFormat.json:
        text = render_json(report)
    elif fmt == OutputFormat.ssm:
        from gd_doctor.report.ssm import render_ssm  # each renderer loads only when it renders

        text = render_ssm(report)
    else:
        from gd_doctor.report.style import Style
        from gd_doctor.report.text import render_text

        style = Style(unicode=_can_encode(sys.stdout, "✓–✗—…•"), color=_use_color(no_color))
        text = render_text(report, style, verbose=verbose, width=terminal_width())
    if not _can_encode(sys.stdout, text):
        text = text.encode("ascii", errors="replace").decode("ascii")
    sys.stdout.write(text)
    sys.stdout.flush()
    for line in deliver(report, fleet) if fleet.any else ():
        sys.stderr.write(f"gd-doctor: {line}\n")
    seen_region = _identity_region(report)
    if region is not None and seen_region is not None and seen_region != region:
        sys.stderr.write(
            f"gd-doctor: warning: --region {region} contradicts the instance identity "
            f"document, which says {seen_region}; the network checks used {region}\n"
        )
    if run.budget_exhausted:
        sys.stderr.write(
            f"gd-doctor: time budget of {timeout:g} s ran out; "
            "unfinished checks are marked timed out\n"
        )
    sys.stderr.flush()  # a block-buffered stderr (click 8.1's test runner) would lose the lines
    return status


def _version_callback(value: bool) -> None:
    if value:
        from gd_doctor.knowledge import knowledge_date

        typer.echo(f"gd-doctor {__version__} (knowledge base {knowledge_date()})")
        raise typer.Exit(EXIT_OK)


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        is_eager=True,
        callback=_version_callback,
        help="Print the tool version and the knowledge-base date, then exit.",
    ),
) -> None:
    """Diagnose GuardDuty Runtime Monitoring coverage of this EC2 instance."""
    if ctx.invoked_subcommand is None:
        raise typer.Exit(run_check())


@commands.command(
    "check",
    short_help="Check this host and diagnose its Runtime Monitoring coverage.",
    epilog=EXIT_CODES_HELP + "\n\n" + EXAMPLES,
)
def check_command(
    fmt: Optional[OutputFormat] = typer.Option(
        None,
        "--format",
        "-f",
        case_sensitive=False,
        show_default=False,
        help="text (people; the default), json (machines) or ssm (Run Command: verdict "
        "first, <= 2,500 chars).",
    ),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="Also write the full JSON report to FILE (mode 0600), whatever stdout shows; "
        "'-' writes it to stdout instead of the text report.",
    ),
    root: Optional[Path] = typer.Option(
        None,
        "--root",
        help="Analyse a mounted or captured root instead of the live host; "
        "checks that need the live host are skipped and say so.",
    ),
    bundle: Optional[Path] = typer.Option(
        None,
        "--bundle",
        help="Diagnose a support bundle (from 'gd-doctor bundle') offline, as a replay.",
    ),
    force: bool = typer.Option(
        False, "--force", help="Analyse a --root even when it has no etc/ directory."
    ),
    only: Optional[List[str]] = typer.Option(
        None, "--only", help="Run only these check ids or categories (repeat or comma-separate)."
    ),
    skip: Optional[List[str]] = typer.Option(
        None, "--skip", help="Skip these check ids or categories (repeat or comma-separate)."
    ),
    timeout: float = typer.Option(
        20.0, "--timeout", help="Time budget for the whole run, in seconds."
    ),
    since: str = typer.Option(
        "24h", "--since", help="Log window: 24h, 90m, 7d, or an ISO-8601 time."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every check's details."),
    no_color: bool = typer.Option(
        False, "--no-color", help="No colours (also NO_COLOR=1; colours only on a terminal)."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Re-raise a crashing check or rule instead of reporting it."
    ),
    imds_endpoint: Optional[str] = typer.Option(
        None,
        "--imds-endpoint",
        help="IMDS base URL (default: AWS_EC2_METADATA_SERVICE_ENDPOINT "
        "or http://169.254.169.254).",
    ),
    region: Optional[str] = typer.Option(
        None, "--region", help="AWS Region of the endpoints (default: from IMDS)."
    ),
    endpoint_url: Optional[str] = typer.Option(
        None, "--endpoint-url", help="Override the guardduty-data endpoint URL to probe."
    ),
    inventory: bool = typer.Option(
        False,
        "--inventory",
        help="Also write the verdict as the SSM custom inventory item Custom:GdDoctor "
        "(/var/lib/amazon/ssm/<instance-id>/inventory/custom/GdDoctor.json).",
    ),
    inventory_dir: Optional[Path] = typer.Option(
        None, "--inventory-dir", help="Write the inventory item into DIR instead."
    ),
    compliance: Optional[Path] = typer.Option(
        None,
        "--compliance",
        help="Also write the items for 'aws ssm put-compliance-items --items file://FILE'.",
    ),
    emf: bool = typer.Option(
        False,
        "--emf",
        help="Also send one CloudWatch EMF event to the CloudWatch agent (127.0.0.1:25888).",
    ),
    emf_endpoint: Optional[str] = typer.Option(
        None, "--emf-endpoint", help="Send the EMF event to HOST:PORT instead."
    ),
    emf_file: Optional[Path] = typer.Option(
        None, "--emf-file", help="Append the EMF event to FILE (for an agent that ships it)."
    ),
) -> None:
    """Check this host and diagnose its GuardDuty Runtime Monitoring coverage."""
    raise typer.Exit(
        run_check(
            fmt=fmt,
            output=output,
            root=root,
            only=only,
            skip=skip,
            timeout=timeout,
            since=since,
            verbose=verbose,
            no_color=no_color,
            debug=debug,
            imds_endpoint=imds_endpoint,
            region=region,
            endpoint_url=endpoint_url,
            fleet=_fleet_outputs(inventory, inventory_dir, compliance, emf, emf_endpoint, emf_file),
            bundle=bundle,
            force=force,
        )
    )


def _fleet_outputs(
    inventory: bool,
    inventory_dir: Optional[Path],
    compliance: Optional[Path],
    emf: bool,
    emf_endpoint: Optional[str],
    emf_file: Optional[Path],
) -> "FleetOutputs":
    from gd_doctor.integrations.outputs import FleetOutputs

    return FleetOutputs(inventory, inventory_dir, compliance, emf, emf_endpoint, emf_file)


@commands.command("checks")
def checks_command(
    fmt: OutputFormat = typer.Option(
        OutputFormat.text, "--format", "-f", case_sensitive=False, help="text or json."
    ),
) -> None:
    """List every check with its id, category and title."""
    import json

    from gd_doctor.checks import ALL_CHECKS

    if fmt == OutputFormat.json:
        rows = [
            {
                "id": c.id,
                "category": c.category,
                "title": c.title,
                "requires": list(c.requires),
                "needs": list(c.needs),
            }
            for c in ALL_CHECKS
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max((len(c.id) for c in ALL_CHECKS), default=10)
    for c in ALL_CHECKS:
        typer.echo(f"{c.id.ljust(width)}  {c.category.ljust(8)}  {c.title}")


@commands.command(
    "explain",
    short_help="Explain a coverage issue: its row, steps and the local checks on it.",
    epilog="\b\nExamples:\n"
    "  gd-doctor explain 'Agent disconnected'\n"
    "  gd-doctor explain 5            (or 'row 5', or kernel-lower)\n"
    "  gd-doctor explain '연결이 끊긴 에이전트'\n"
    "  gd-doctor explain --list\n"
    "  gd-doctor explain --format json 'No Agent Reporting'",
)
def explain_command(
    text: Optional[List[str]] = typer.Argument(
        None,
        help="A row number or id as reports print them (5, 'row 5', kernel-lower), an issue "
        "type, or a message as the console or 'aws guardduty list-coverage' shows it, in "
        "English or Korean (quotes optional).",
        show_default=False,
    ),
    list_rows: bool = typer.Option(False, "--list", help="List every row, one line each."),
    fmt: OutputFormat = typer.Option(
        OutputFormat.text, "--format", "-f", case_sensitive=False, help="text or json."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also show the Korean wordings and where rows come from."
    ),
) -> None:
    """Explain a coverage issue: its row, troubleshooting steps and the local checks on it."""
    from gd_doctor.checks import ALL_CHECKS
    from gd_doctor.diagnosis.explain import explain
    from gd_doctor.report.explain import (
        render_explanation,
        render_explanation_json,
        render_list,
        render_list_json,
    )

    if fmt == OutputFormat.ssm:
        raise typer.BadParameter("explain prints text or json", param_hint="--format")
    query = " ".join(text or ())
    if list_rows:
        if query:
            raise typer.BadParameter("--list takes no query", param_hint="--list")
        out = (
            render_list_json()
            if fmt == OutputFormat.json
            else render_list(terminal_width() if sys.stdout.isatty() else None)
        )
        _write(out)
        raise typer.Exit(EXIT_OK)
    if not text:
        raise typer.BadParameter(
            "name a row, an issue type or a message ('gd-doctor explain --list' lists the rows)",
            param_hint="TEXT",
        )
    result = explain(query)
    if fmt == OutputFormat.json:
        out = render_explanation_json(result)
    else:
        out = render_explanation(result, {c.id: c.title for c in ALL_CHECKS}, verbose=verbose)
    _write(out)
    raise typer.Exit(EXIT_OK if result.recognised else EXIT_PROBLEMS)


def _write(out: str) -> None:
    if not _can_encode(sys.stdout, out):
        out = out.encode("ascii", errors="replace").decode("ascii")
    sys.stdout.write(out)
    sys.stdout.flush()


def _bundle_command() -> Callable[..., None]:
    # ``bundle`` and ``timeline`` live in bundle_commands.py, imported when they are looked up.
    from gd_doctor.cli.bundle_commands import bundle_command

    return bundle_command


def _timeline_command() -> Callable[..., None]:
    from gd_doctor.cli.bundle_commands import timeline_command

    return timeline_command


def _fleet_app() -> typer.Typer:
    # `gd-doctor fleet ...` (operator's workstation): its module loads when fleet is looked up.
    from gd_doctor.fleet.command import fleet_app

    return fleet_app


# After the commands, as typer lists sub-apps; a short help that fits the command list whole
# (click cuts longer ones with "...").
commands.load_command(
    "bundle",
    _bundle_command,
    epilog=EXIT_CODES_HELP,
    short_help="Write a redacted support bundle of the evidence.",
)
commands.load_command(
    "timeline",
    _timeline_command,
    epilog=EXIT_CODES_HELP,
    short_help="What happened to the agent, in time order.",
)
commands.add_typer(
    "fleet",
    _fleet_app,
    cls=UniformGroup,
    context_settings={"help_option_names": HELP_OPTIONS},
    short_help="Fleet roll-ups on an operator's workstation.",
)


def main(argv: Optional[List[str]] = None) -> None:
    """Console entry point: never a traceback for the tool's own failures, exit code 3."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        app(args=argv, prog_name="gd-doctor")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.stderr.write("gd-doctor: interrupted\n")
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        from gd_doctor.redact import neutralise_controls, redact

        sys.stderr.write(
            f"gd-doctor: internal error: {type(exc).__name__}: "
            f"{neutralise_controls(redact(str(exc)))}\n"
            "Re-run with --debug for the traceback.\n"
        )
        sys.exit(EXIT_TOOL_FAILED)
