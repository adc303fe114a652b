"""Building fake hosts for tests: files under a temp root, recorded commands, a fixed clock."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from gd_doctor.checks import ALL_CHECKS
from gd_doctor.checks.base import Check, Context, Options
from gd_doctor.diagnosis.engine import Diagnosis
from gd_doctor.facts import Facts, to_data
from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.commands import CommandResult
from gd_doctor.host.fs import RootFS
from gd_doctor.host.imds import UnavailableImds
from gd_doctor.host.journal import UnavailableJournal
from gd_doctor.host.net import UnavailableNetwork
from gd_doctor.host.packages import PackageQuery
from gd_doctor.host.procs import UnavailableProcesses
from gd_doctor.host.settings import HostSettings
from gd_doctor.host.units import UnitResolver
from gd_doctor.knowledge import HERE as KNOWLEDGE_DIR
from gd_doctor.model import CheckResult, Outcome, Report
from gd_doctor.pipeline import run_doctor
from gd_doctor.report.json import report_to_dict
from gd_doctor.runner import RunOutcome

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)
FIXTURES = Path(__file__).resolve().parent / "fixtures"

CommandSpec = Union[CommandResult, str, Tuple[int, str], Tuple[int, str, str]]


class UnexpectedCommand(AssertionError):
    """A check ran a command the test did not record: no silent passthrough to the machine."""


class FakeRunner:
    """Answers recorded argv tuples; anything else fails the test."""

    def __init__(self, table: Optional[Mapping[Tuple[str, ...], CommandSpec]] = None) -> None:
        self.table: Dict[Tuple[str, ...], CommandSpec] = dict(table or {})
        self.calls: list = []  # type: ignore[type-arg]

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        key = tuple(argv)
        self.calls.append((key, timeout))
        if key not in self.table:
            raise UnexpectedCommand(f"unexpected command: {key}")
        spec = self.table[key]
        if isinstance(spec, CommandResult):
            return replace(spec, argv=key)
        if isinstance(spec, str):
            return CommandResult(key, 0, spec, "")
        if len(spec) == 2:
            return CommandResult(key, spec[0], spec[1], "")
        return CommandResult(key, spec[0], spec[1], spec[2])

    def close(self) -> None:
        """Nothing runs for real."""


def write_tree(root: Path, files: Mapping[str, Union[str, bytes]]) -> Path:
    """Create ``files`` (absolute paths as keys) under ``root``."""
    for abs_path, content in files.items():
        target = root / abs_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return root


def make_host(
    root: Path,
    *,
    files: Optional[Mapping[str, Union[str, bytes]]] = None,
    commands: Optional[Mapping[Tuple[str, ...], CommandSpec]] = None,
    live: bool = True,
    euid: int = 0,
    env: Optional[Mapping[str, str]] = None,
    clock: Optional[FixedClock] = None,
    **ports: Any,
) -> Host:
    """A Host over ``root`` with recorded commands; other ports default to Unavailable."""
    if files:
        write_tree(root, files)
    settings = ports.pop("settings", HostSettings(env=dict(env or {})))
    fs = ports.pop("fs", None) or RootFS(root)
    run = ports.pop("run", FakeRunner(commands))
    return Host(
        fs=fs,
        run=run,
        journal=ports.pop("journal", UnavailableJournal("not given to this test")),
        imds=ports.pop("imds", UnavailableImds("not given to this test")),
        net=ports.pop("net", UnavailableNetwork("not given to this test")),
        procs=ports.pop("procs", UnavailableProcesses("not given to this test")),
        clock=clock or FixedClock(NOW),
        units=ports.pop("units", UnitResolver(fs)),
        packages=ports.pop("packages", PackageQuery(fs, run, live=live, tools=run)),
        live=live,
        euid=euid,
        env=dict(env or {}),
        settings=settings,
    )


def run_one(
    chk: Check,
    host: Host,
    results: Optional[Mapping[str, CheckResult]] = None,
    options: Optional[Options] = None,
) -> Outcome:
    """Call one check directly, with given earlier results."""
    ctx = Context(host, options or Options(), dict(results or {}), host.clock.monotonic() + 30)
    return chk.func(ctx)


def run_pipeline(
    host: Host,
    *,
    checks: Sequence[Check] = ALL_CHECKS,
    options: Optional[Options] = None,
    budget_s: float = 20.0,
) -> Tuple[RunOutcome, Diagnosis, Report]:
    """Run checks, rules and report building exactly as the CLI does."""
    done = run_doctor(
        host, checks=checks, options=options or Options(), budget_s=budget_s, started_at=NOW
    )
    return done.outcome, done.diagnosis, done.report


_SCHEMA: Optional[Dict[str, Any]] = None


def validate_report(doc: Union[Report, Mapping[str, Any], str]) -> Dict[str, Any]:
    """Validate a report (value, dict or JSON text) against the shipped JSON Schema."""
    import jsonschema

    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = json.loads((KNOWLEDGE_DIR / "report.schema.json").read_text())
    if isinstance(doc, Report):
        data = report_to_dict(doc)
    elif isinstance(doc, str):
        data = json.loads(doc)
    else:
        data = dict(doc)
    jsonschema.validate(data, _SCHEMA)
    return data


def result(
    check_id: str, status: str, summary: str = "", *, facts: Optional[Facts] = None
) -> CheckResult:
    """A hand-made CheckResult for rule tests; its data is the facts serialised, as the runner
    makes it."""
    from gd_doctor.model import Status

    return CheckResult(
        check_id=check_id,
        title=check_id,
        category=check_id.split(".")[0]
        if check_id.split(".")[0] in ("platform", "agent", "ssm", "imds", "network")
        else "platform",
        status=Status(status),
        summary=summary or status,
        data=to_data(facts),
        facts=facts,
    )


def since(hours: float = 24) -> timedelta:
    return timedelta(hours=hours)


def facts_with(facts_type: Any, **given: Any) -> Any:
    """A facts value with ``given`` fields, every other required field empty (None, or () for
    a tuple): for report tests that only need the fields the header shows."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(facts_type)
    values = dict(given)
    for f in dataclasses.fields(facts_type):
        if f.name in values or f.default is not dataclasses.MISSING:
            continue
        if f.default_factory is not dataclasses.MISSING:
            continue
        origin = typing.get_origin(hints[f.name])
        values[f.name] = (
            ()
            if origin is tuple
            else ({} if origin is not None and "Mapping" in str(origin) else None)
        )
    return facts_type(**values)


def cli_runner() -> Any:
    """A typer CliRunner that keeps stderr apart from stdout on every click: 8.2+ always does
    (and has no ``mix_stderr``); 8.1, the last for Python 3.9, mixes them unless told not to."""
    import inspect

    from typer.testing import CliRunner

    kwargs: Dict[str, Any] = {}
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        kwargs["mix_stderr"] = False
    return CliRunner(**kwargs)
