"""The command-line side of bundles: ``gd-doctor bundle``, ``check --bundle`` and
``timeline``. The CLI imports this module only when one of them runs (or ``--help`` lists
them), and it imports the bundle machinery only inside the commands: a plain ``check`` needs
neither."""

from __future__ import annotations

import atexit
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer

from gd_doctor.cli.inputs import parse_since

if TYPE_CHECKING:  # the bundle machinery loads when a bundle command runs, not with the CLI
    from gd_doctor.bundle.replay import OpenedBundle

EXIT_OK = 0
EXIT_TOOL_FAILED = 3


def open_or_exit(path: Path) -> OpenedBundle:
    """The verified, unpacked bundle, or a clear message and exit code 3."""
    from gd_doctor.bundle.replay import BundleRefused, open_bundle

    try:
        opened = open_bundle(path)
    except BundleRefused as exc:
        typer.echo(f"gd-doctor: bundle refused: {exc}", err=True)
        raise typer.Exit(EXIT_TOOL_FAILED) from None
    atexit.register(opened.close)  # the private directory goes however the command ends
    return opened


def mark_replay(done: "object", opened: OpenedBundle) -> "object":
    """The run's report saying it is a replay, of which host, from when."""
    from gd_doctor.pipeline import Run

    assert isinstance(done, Run)
    # The text report names the host only, for a live host's bundle: say it is a replay
    typer.echo(f"gd-doctor: {opened.describe()}", err=True)
    report = replace(done.report, host=replace(done.report.host, root=opened.describe()))
    return Run(done.outcome, done.diagnosis, report)


def bundle_command(
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="Write the bundle here (default: gd-doctor-bundle-HOST-INSTANCE-TIME.tar.gz in "
        "the current directory).",
    ),
    root: Optional[Path] = typer.Option(
        None, "--root", help="Bundle a mounted or captured root instead of the live host."
    ),
    since: str = typer.Option("24h", "--since", help="Log window: 24h, 90m, 7d, or a time."),
    timeout: float = typer.Option(
        30.0, "--timeout", help="Time budget in seconds for the run and the writing together."
    ),
    redact_more: bool = typer.Option(
        False,
        "--redact-more",
        help="Also replace account ids, IP addresses and host names (consistently). "
        "Secrets are always redacted; no option turns that off.",
    ),
    max_size: float = typer.Option(
        20.0, "--max-size", help="Total size cap in MiB; the largest logs are cut first."
    ),
    imds_endpoint: Optional[str] = typer.Option(None, "--imds-endpoint", hidden=True),
    region: Optional[str] = typer.Option(None, "--region", help="The AWS Region to check."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", hidden=True),
) -> None:
    """Write a redacted support bundle: the evidence every check read, the live answers, the
    report and a manifest; 'gd-doctor check --bundle FILE' diagnoses it again offline."""
    from gd_doctor.bundle import make_bundle
    from gd_doctor.checks.base import Options
    from gd_doctor.host import Host
    from gd_doctor.host.settings import HostSettings

    if not math.isfinite(timeout) or timeout <= 0:
        raise typer.BadParameter("must be a finite number greater than 0", param_hint="--timeout")
    if not math.isfinite(max_size) or not 0.25 <= max_size <= 1024:
        raise typer.BadParameter("must be between 0.25 and 1024 (MiB)", param_hint="--max-size")
    window = parse_since(since)
    if output is not None and (output.is_dir() or not output.parent.is_dir()):
        raise typer.BadParameter(
            f"{output} is a directory or in a missing one", param_hint="--output"
        )
    settings = HostSettings(
        imds_endpoint=imds_endpoint, region=region, endpoint_url=endpoint_url, env=dict(os.environ)
    )
    if root is not None and not root.is_dir():
        raise typer.BadParameter(f"{root} is not a directory", param_hint="--root")
    host = Host.from_root(root, settings) if root is not None else Host.live_host(settings)
    try:
        made = make_bundle(
            host,
            output,
            options=Options(since=window),
            budget_s=timeout,
            redact_more=redact_more,
            total_cap=int(max_size * (1 << 20)),
        )
    except OSError as exc:
        typer.echo(f"gd-doctor: cannot write the bundle: {exc.strerror or exc}", err=True)
        raise typer.Exit(EXIT_TOOL_FAILED) from None
    m = made.manifest
    files = sum(1 for i in m["items"] if i["name"].startswith("root/"))
    size = made.path.stat().st_size
    if files == 0 and not m.get("answered"):
        os.unlink(made.path)
        typer.echo(
            "gd-doctor: nothing could be read on this host (run as root?); no bundle written",
            err=True,
        )
        raise typer.Exit(EXIT_TOOL_FAILED)
    cuts = sum(1 for i in m["items"] if i.get("cut"))
    masked = sum(m["redactions"].values())
    sys.stdout.write(
        f"gd-doctor: bundle written to {made.path} ({files} files, {size} bytes, "
        f"{cuts} cut, {masked} redactions); verdict {made.run.report.verdict.value}\n"
    )
    raise typer.Exit(EXIT_OK)


def timeline_command(
    root: Optional[Path] = typer.Option(None, "--root", help="A mounted or captured root."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="A support bundle."),
    since: str = typer.Option("24h", "--since", help="Window: 24h, 90m, 7d, or a time."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """One chronological view of what happened to the agent and around it; the text marks
    the first failure and what came right before it."""
    from gd_doctor.bundle import replay_host, since_of
    from gd_doctor.bundle import timeline as tl
    from gd_doctor.host import Host
    from gd_doctor.host.settings import HostSettings

    if fmt not in ("text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--format")
    if root is not None and bundle is not None:
        raise typer.BadParameter("--bundle and --root exclude each other", param_hint="--bundle")
    window = parse_since(since)
    extra: List[Any] = []
    opened: Optional[OpenedBundle] = None
    if bundle is not None:
        opened = open_or_exit(bundle)
        host = replay_host(opened)
        window = (since_of(opened.manifest) or window) if since == "24h" else window
        extra = tl.bundle_run(opened.report) + tl.clock_skew(opened.answers)
    elif root is not None:
        if not root.is_dir():
            raise typer.BadParameter(f"{root} is not a directory", param_hint="--root")
        host = Host.from_root(root, HostSettings())
        extra = tl.clock_state(host)
    else:
        host = Host.live_host(HostSettings(env=dict(os.environ)))
        extra = tl.clock_state(host)
    try:
        start = host.clock.now() - window
        events, notes = tl.build(host, start, extra)
    finally:
        host.close()
        if opened is not None:
            opened.close()
    render = tl.render_json if fmt == "json" else tl.render_text
    sys.stdout.write(render(events, notes, start))
    # nothing happened, and a source could not be read: nothing usable remains
    raise typer.Exit(EXIT_TOOL_FAILED if not events and notes else EXIT_OK)
