"""The ``gd-doctor fleet`` sub-commands (typer); the work is imported lazily by each command.

Exit codes: 0 done (for ``summary``: every console instance healthy and no bad input), 1 the
summary shows unhealthy instances or bad inputs, 2 usage error, 3 gd-doctor itself failed.
"""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

fleet_app = typer.Typer(
    name="fleet",
    help="Fleet roll-ups on an operator's workstation: from 'aws guardduty list-coverage' and "
    "the host reports gathered by Run Command (or Resource Data Sync) to causes and fixes. "
    "Reads files only; needs no AWS credentials.",
    rich_markup_mode=None,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class SummaryFormat(str, Enum):
    text = "text"
    json = "json"
    csv = "csv"


class TargetsFormat(str, Enum):
    commands = "commands"
    ids = "ids"
    json = "json"


class Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal (never in pipes or CI)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.enabled = enabled
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done < self.total):
            return
        self.last = now
        self.shown = True
        frac = min(done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r\x1b[2Kgd-doctor fleet: [{bar:<30}] {done}/{self.total} files")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


_PATHS_HELP = (
    "Host reports: a directory synced from Run Command's S3 output, JSON reports anywhere "
    "below a directory, or a Resource Data Sync export of the custom inventory."
)
_COVERAGE_HELP = (
    "Output of 'aws guardduty list-coverage' (any number of pages, one file or many). The "
    "response has no Region: give it as REGION=FILE; a bare FILE takes the Region in its name, "
    "or the reports' Region when they name only one. Repeatable."
)
_EVENTS_HELP = (
    "GuardDuty coverage status-change events from EventBridge ('GuardDuty Runtime Protection "
    "Unhealthy' / 'Healthy'), one JSON event per line. Repeatable."
)


def _inputs(
    paths: Optional[List[Path]], coverage: Optional[List[str]], events: Optional[List[Path]]
) -> "object":
    from gd_doctor.fleet.summary import CoverageArg, Inputs

    if not paths and not coverage and not events:
        raise typer.BadParameter("give host report PATHs, --coverage FILE or --events FILE")
    return Inputs(
        reports=list(paths or ()),
        coverage=[CoverageArg.parse(c) for c in coverage or ()],
        events=list(events or ()),
    )


def _collect(inputs: "object", show_progress: bool) -> "object":
    from gd_doctor.fleet.inputs import count_files
    from gd_doctor.fleet.summary import Inputs, collect

    assert isinstance(inputs, Inputs)
    progress = None
    if show_progress and sys.stderr.isatty():
        progress = Progress(count_files(inputs.reports), True)
    try:
        return collect(inputs, progress)
    finally:
        if progress is not None:
            progress.clear()


def _write(text: str) -> None:
    if not _encodable(text):
        text = text.encode("ascii", errors="replace").decode("ascii")
    sys.stdout.write(text)
    sys.stdout.flush()


def _encodable(text: str) -> bool:
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


@fleet_app.command("summary")
def summary_command(
    paths: Optional[List[Path]] = typer.Argument(None, help=_PATHS_HELP, show_default=False),
    coverage: Optional[List[str]] = typer.Option(
        None, "--coverage", "-c", metavar="[REGION=]FILE", help=_COVERAGE_HELP
    ),
    events: Optional[List[Path]] = typer.Option(None, "--events", "-e", help=_EVENTS_HELP),
    fmt: SummaryFormat = typer.Option(
        SummaryFormat.text,
        "--format",
        "-f",
        case_sensitive=False,
        help="text (people; worst groups first, each with its fix), json (the schema is "
        "gd_doctor/fleet/summary.schema.json) or csv (one row per instance).",
    ),
    limit: int = typer.Option(
        50, "--limit", help="Instances listed per group in text and JSON (CSV lists all)."
    ),
    no_progress: bool = typer.Option(
        False, "--no-progress", help="No progress bar (it is drawn only on a terminal anyway)."
    ),
) -> None:
    """Roll up coverage per account and Region, console issues, host causes, disagreements."""
    from gd_doctor.fleet.render import render_json, render_text, write_csv
    from gd_doctor.fleet.summary import Inputs, build_summary

    if limit < 1 or limit > 100000:
        raise typer.BadParameter("must be between 1 and 100000", param_hint="--limit")
    inputs = _inputs(paths, coverage, events)
    assert isinstance(inputs, Inputs)
    store = _collect(inputs, not no_progress)
    from gd_doctor.fleet.store import Store

    assert isinstance(store, Store)
    try:
        summary = build_summary(store, limit=limit, warnings=inputs.warnings)
        if fmt == SummaryFormat.csv:
            write_csv(store, sys.stdout)
            sys.stdout.flush()
        else:
            _write(render_json(summary) if fmt == SummaryFormat.json else render_text(summary))
    finally:
        store.close()
    for w in inputs.warnings[:20]:
        if fmt != SummaryFormat.text:
            sys.stderr.write(f"gd-doctor fleet: warning: {w}\n")
    overall = summary["coverage"]["overall"]
    problems = (
        overall["console"]["healthy"] < overall["console"]["total"]
        or overall["host"]["healthy"] < overall["host"]["total"]
    )
    raise typer.Exit(1 if problems else 0)


@fleet_app.command("targets")
def targets_command(
    paths: Optional[List[Path]] = typer.Argument(
        None,
        help="Optional host reports: instances whose report is newer than the console's "
        "UpdatedAt are left out (see --include-reported).",
        show_default=False,
    ),
    coverage: Optional[List[str]] = typer.Option(
        None, "--coverage", "-c", metavar="[REGION=]FILE", help=_COVERAGE_HELP
    ),
    events: Optional[List[Path]] = typer.Option(None, "--events", "-e", help=_EVENTS_HELP),
    managed: Optional[List[Path]] = typer.Option(
        None,
        "--managed",
        help="Output of 'aws ssm describe-instance-information' (per account and Region): "
        "instances missing from it are not SSM managed and are listed apart. Without it, "
        "'Waiting for SSM notification' instances are set apart as probably not managed.",
    ),
    bucket: Optional[str] = typer.Option(
        None, "--bucket", help="S3 bucket for the command output (--output-s3-bucket-name)."
    ),
    prefix: str = typer.Option(
        "gd-doctor", "--prefix", help="S3 key prefix for the output (--output-s3-key-prefix)."
    ),
    document: str = typer.Option(
        "gd-doctor-run",
        "--document-name",
        help="SSM document: gd-doctor-run (packaging/ssm) or AWS-RunShellScript.",
    ),
    max_concurrency: str = typer.Option(
        "10%", "--max-concurrency", help="Instances at a time: a number or a percentage."
    ),
    max_errors: str = typer.Option(
        "100%",
        "--max-errors",
        help="Failed invocations before SSM stops: a number or a percentage (keep 100%% for a "
        "survey: 'problems found' may count as failed).",
    ),
    timeout_seconds: int = typer.Option(600, "--timeout-seconds", help="SendCommand timeout."),
    batch: int = typer.Option(50, "--batch", help="Instance ids per command (at most 50)."),
    row: Optional[List[str]] = typer.Option(
        None, "--row", help="Only instances with this console row id (repeatable)."
    ),
    include_reported: bool = typer.Option(
        False, "--include-reported", help="Also instances that already have a fresh report."
    ),
    profile: Optional[str] = typer.Option(
        None,
        "--profile-template",
        help="Add --profile to each command, e.g. 'acct-{account}' ({account}, {region}).",
    ),
    fmt: TargetsFormat = typer.Option(
        TargetsFormat.commands,
        "--format",
        "-f",
        case_sensitive=False,
        help="commands (a shell script), ids (a targets file: account Region instance row) "
        "or json (--cli-input-json bodies).",
    ),
) -> None:
    """Print send-command invocations for the console-unhealthy instances, per account/Region."""
    from gd_doctor.fleet.console import read_managed_file
    from gd_doctor.fleet.store import Store
    from gd_doctor.fleet.summary import Inputs
    from gd_doctor.fleet.targets import (
        TargetOptions,
        check_options,
        render_commands,
        render_ids,
        render_json,
        select_targets,
    )

    opts = TargetOptions(
        bucket=bucket,
        prefix=prefix,
        document=document,
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        timeout_seconds=timeout_seconds,
        batch=batch,
        rows=tuple(row or ()),
        include_reported=include_reported,
        profile=profile,
    )
    problem = check_options(opts)
    if problem:
        raise typer.BadParameter(problem)
    if not coverage and not events:
        raise typer.BadParameter("give the console's data: --coverage FILE or --events FILE")
    inputs = _inputs(paths, coverage, events)
    assert isinstance(inputs, Inputs)
    managed_ids = None
    if managed:
        managed_ids = set()
        for path in managed:
            ids, bad = read_managed_file(path)
            if bad is not None:
                raise typer.BadParameter(f"{path}: {bad.detail}", param_hint="--managed")
            managed_ids.update(ids)
    store = _collect(inputs, True)
    assert isinstance(store, Store)
    try:
        reach, apart = select_targets(store, opts, managed_ids)
    finally:
        store.close()
    for w in inputs.warnings[:20]:
        sys.stderr.write(f"gd-doctor fleet: warning: {w}\n")
    if fmt == TargetsFormat.ids:
        _write(render_ids(reach, apart))
    elif fmt == TargetsFormat.json:
        _write(render_json(reach, apart, opts))
    else:
        _write(render_commands(reach, apart, opts))
