"""The ``gd-doctor`` command line (typer, without rich).

Exit codes (also in ``--help`` and the README):
  0  no problem found (verdict healthy)
  1  problems found, or the verdict is unknown (the report says which)
  2  usage error
  3  gd-doctor itself failed

stdout carries only the report; progress and warnings go to stderr. Heavy modules are imported
inside the commands so ``--version`` and ``--help`` stay fast.
"""

from __future__ import annotations

import math
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, TextIO

# typer decides at import time whether to use rich; the packages ship without it.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from gd_doctor import __version__

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

app = typer.Typer(
    name="gd-doctor",
    help="Diagnose why Amazon GuardDuty Runtime Monitoring coverage of this EC2 instance is "
    "Unhealthy, and name the row of AWS's coverage-issue table. " + EXIT_CODES_HELP,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    ssm = "ssm"


# Ten years: far beyond any journal, and small enough that datetime arithmetic cannot overflow.
MAX_SINCE = timedelta(days=3650)
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": 3600.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_since(text: str, now: Optional[datetime] = None) -> timedelta:
    """A log window from ``24h``, ``90m``, ``7d``, ``3600s`` or an ISO-8601 time.

    >>> parse_since("24h")
    datetime.timedelta(days=1)
    >>> parse_since("90m")
    datetime.timedelta(seconds=5400)
    >>> parse_since("2026-11-30T00:00:00+00:00", datetime(2026, 11, 30, 6, tzinfo=timezone.utc))
    datetime.timedelta(seconds=21600)
    """
    if len(text) > 64:
        raise typer.BadParameter("too long for a duration or a time", param_hint="--since")
    m = _SINCE.match(text)
    if m:
        seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
        if not 0 < seconds <= MAX_SINCE.total_seconds():
            raise typer.BadParameter(
                f"{text!r}: the window must be more than 0 and at most {MAX_SINCE.days} days",
                param_hint="--since",
            )
        return timedelta(seconds=seconds)
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: use a duration such as 24h, 90m, 7d, or an ISO-8601 time"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    delta = (now or datetime.now(timezone.utc)) - at
    if delta.total_seconds() <= 0:
        raise typer.BadParameter(f"{text!r} is in the future", param_hint="--since")
    if delta > MAX_SINCE:
        raise typer.BadParameter(
            f"{text!r} is more than {MAX_SINCE.days} days ago", param_hint="--since"
        )
    return delta


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _use_color(no_color: bool) -> bool:
    if no_color or "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


class _Progress:
    """A one-line progress indicator on stderr, shown only on a TTY after a short moment."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = datetime.now()
        self.shown = False

    def __call__(self, res: CheckResult, done: int, total: int) -> None:
        if not self.enabled or (datetime.now() - self.started).total_seconds() < 0.4:
            return
        self.shown = True
        sys.stderr.write(f"\r\x1b[2Kgd-doctor: {done}/{total} checks ({res.check_id})")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def output_problem(path: Path) -> Optional[str]:
    """Why ``--output`` cannot be written, checked before any check runs; None when it can.

    Only a regular file (new or existing) in an existing, writable directory is accepted: a
    FIFO would block the run, a device or a directory is never what the user meant.
    """
    from gd_doctor.integrations.outputs import file_problem

    return file_problem(path)


def _write_report_file(path: Path, text: str) -> Optional[str]:
    """Write the JSON report where the user asked, mode 0600 (it describes the host);
    returns an error message or None."""
    problem = output_problem(path)
    if problem:
        return problem
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK,
                     0o600)  # fmt: skip
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def run_check(
    *,
    fmt: OutputFormat = OutputFormat.text,
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
    fleet: Optional[FleetOutputs] = None,
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
    from gd_doctor.report.ssm import render_ssm
    from gd_doctor.report.style import Style
    from gd_doctor.report.text import render_text

    if not math.isfinite(timeout) or timeout <= 0:
        raise typer.BadParameter("must be a finite number greater than 0", param_hint="--timeout")
    window = parse_since(since)
    if output is not None:
        problem = output_problem(output)
        if problem:
            raise typer.BadParameter(problem, param_hint="--output")
    fleet = fleet or FleetOutputs()
    refused = fleet_problems(fleet)
    if refused:
        raise typer.BadParameter(refused[1], param_hint=refused[0])
    try:
        checks, deselected = select_checks(only or (), skip or (), ALL_CHECKS)
    except UnknownSelection as exc:
        raise typer.BadParameter(
            f"{exc.args[0]!r} is neither a check id nor a category ('gd-doctor checks' lists them)"
        ) from None
    settings = HostSettings(
        imds_endpoint=imds_endpoint,
        region=region,
        endpoint_url=endpoint_url,
        env=dict(os.environ),
    )
    if root is not None:
        if not root.is_dir():
            raise typer.BadParameter(f"{root} is not a directory", param_hint="--root")
        if not (root / "etc").is_dir():
            sys.stderr.write(
                f"gd-doctor: warning: {root} has no etc/ directory; is it the root "
                "of a filesystem?\n"
            )
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
    )
    progress.clear()
    run, report = done.outcome, done.report
    status = EXIT_OK if report.verdict == Verdict.HEALTHY else EXIT_PROBLEMS
    if output is not None:
        problem = _write_report_file(output, render_json(report))
        if problem:
            sys.stderr.write(f"gd-doctor: {problem}\n")
            status = EXIT_TOOL_FAILED
    if fmt == OutputFormat.json:
        text = render_json(report)
    elif fmt == OutputFormat.ssm:
        text = render_ssm(report)
    else:
        style = Style(unicode=_can_encode(sys.stdout, "✓–✗—…"), color=_use_color(no_color))
        text = render_text(report, style, verbose=verbose)
    if not _can_encode(sys.stdout, text):
        text = text.encode("ascii", errors="replace").decode("ascii")
    sys.stdout.write(text)
    sys.stdout.flush()
    for line in deliver(report, fleet) if fleet.any else ():
        sys.stderr.write(f"gd-doctor: {line}\n")
    if run.budget_exhausted:
        sys.stderr.write(
            f"gd-doctor: time budget of {timeout:g} s ran out; "
            "unfinished checks are marked timed out\n"
        )
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


@app.command("check", epilog=EXIT_CODES_HELP)
def check_command(
    fmt: OutputFormat = typer.Option(
        OutputFormat.text,
        "--format",
        "-f",
        case_sensitive=False,
        help="text (people), json (machines) or ssm (Run Command: verdict first, <= 2,500 chars).",
    ),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="Also write the full JSON report to FILE, whatever stdout shows.",
    ),
    root: Optional[Path] = typer.Option(
        None,
        "--root",
        help="Analyse a mounted or captured root instead of the live host; "
        "checks that need the live host are skipped and say so.",
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
        )
    )


def _fleet_outputs(
    inventory: bool,
    inventory_dir: Optional[Path],
    compliance: Optional[Path],
    emf: bool,
    emf_endpoint: Optional[str],
    emf_file: Optional[Path],
) -> FleetOutputs:
    from gd_doctor.integrations.outputs import FleetOutputs

    return FleetOutputs(inventory, inventory_dir, compliance, emf, emf_endpoint, emf_file)


@app.command("checks")
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


@app.command("explain")
def explain_command(
    text: List[str] = typer.Argument(
        ...,
        help="An issue id, an issue type, or a message as the console or "
        "'aws guardduty list-coverage' shows it (quotes optional).",
    ),
) -> None:
    """Explain a coverage issue: its row, troubleshooting steps and the local checks on it."""
    from gd_doctor.checks import ALL_CHECKS
    from gd_doctor.diagnosis.explain import explain
    from gd_doctor.report.explain import render_explanation

    result = explain(" ".join(text))
    out = render_explanation(result, {c.id: c.title for c in ALL_CHECKS})
    if not _can_encode(sys.stdout, out):
        out = out.encode("ascii", errors="replace").decode("ascii")
    sys.stdout.write(out)
    raise typer.Exit(EXIT_OK if result.recognised else EXIT_PROBLEMS)


def _add_fleet() -> None:
    # `gd-doctor fleet ...` (operator's workstation); its modules load only when it runs.
    from gd_doctor.fleet.command import fleet_app

    app.add_typer(fleet_app, name="fleet")


_add_fleet()


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
