"""``fleet targets``: ready ``aws ssm send-command`` invocations for the unhealthy instances.

From the console's data (ListCoverage, events) and optionally the host reports, grouped per
account and Region, in batches of at most 50 instance ids (SendCommand's ``InstanceIds`` limit),
with rate control and S3 output. Instances that are not SSM managed cannot be reached by Run
Command, so they are listed apart instead of being put into commands: definitely when
``--managed`` gives ``aws ssm describe-instance-information`` output that lacks them, and
probably when the console says "Waiting for SSM notification".
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from gd_doctor.fleet.store import Store
from gd_doctor.patterns import lazy

MAX_INSTANCE_IDS = 50  # SendCommand InstanceIds (SSM service model)
# The SSM service model's patterns for the rate-control parameters.
MAX_CONCURRENCY = lazy(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
MAX_ERRORS = lazy(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")
S3_BUCKET = lazy(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
RUN_SHELL_SCRIPT = "AWS-RunShellScript"


@dataclass(frozen=True)
class TargetOptions:
    """What the user chose on the command line."""

    bucket: Optional[str] = None
    prefix: str = "gd-doctor"
    document: str = "gd-doctor-run"
    max_concurrency: str = "10%"
    max_errors: str = "100%"
    timeout_seconds: int = 600
    batch: int = MAX_INSTANCE_IDS
    rows: Tuple[str, ...] = ()  # only these console rows (ids); all when empty
    include_reported: bool = False  # also instances whose host report is newer than the console
    profile: Optional[str] = None  # e.g. "acct-{account}": --profile per account


def check_options(opts: TargetOptions) -> Optional[str]:
    """A usage error message, or None when the options are valid for SendCommand."""
    if not MAX_CONCURRENCY.match(opts.max_concurrency) or len(opts.max_concurrency) > 7:
        return (
            f"--max-concurrency {opts.max_concurrency!r}: use a number (10) or a percentage (10%)"
        )
    if not MAX_ERRORS.match(opts.max_errors) or len(opts.max_errors) > 7:
        return f"--max-errors {opts.max_errors!r}: use a number (0, 5) or a percentage (100%)"
    if opts.bucket is not None and not S3_BUCKET.match(opts.bucket):
        return f"--bucket {opts.bucket!r} is not an S3 bucket name (3-63 characters)"
    if len(opts.prefix) > 500:
        return "--prefix is longer than 500 characters (OutputS3KeyPrefix limit)"
    if not 1 <= opts.batch <= MAX_INSTANCE_IDS:
        return f"--batch must be between 1 and {MAX_INSTANCE_IDS} (SendCommand InstanceIds limit)"
    if not 30 <= opts.timeout_seconds <= 2592000:
        return "--timeout-seconds must be between 30 and 2592000"
    return None


@dataclass(frozen=True)
class Target:
    instance_id: str
    account_id: Optional[str]
    region: Optional[str]
    row: Optional[str]
    managed: Optional[bool]  # True/False from --managed, None when not known


def select_targets(
    store: Store, opts: TargetOptions, managed: Optional[Set[str]] = None
) -> Tuple[List[Target], List[Target]]:
    """(reachable, not SSM managed) console-unhealthy instances, sorted by account/Region/id."""
    sql = (
        "SELECT instance, account, region, crow, verdict, ts, updated FROM j "
        "WHERE status = 'UNHEALTHY'"
    )
    reach: List[Target] = []
    apart: List[Target] = []
    for inst, acct, region, crow, verdict, ts, updated in store.iter_rows(
        sql + " ORDER BY account, region, instance"
    ):
        if opts.rows and (crow or "unrecognised") not in opts.rows:
            continue
        fresh = verdict is not None and (updated is None or (ts is not None and ts >= updated))
        if fresh and not opts.include_reported:
            continue  # a report newer than the console already says what is wrong
        is_managed = None if managed is None else inst in managed
        t = Target(inst, acct, region, crow, is_managed)
        if is_managed is False or (is_managed is None and crow == "waiting-for-ssm"):
            apart.append(t)
        else:
            reach.append(t)
    return reach, apart


def batches(targets: Sequence[Target], size: int) -> Iterator[Tuple[str, str, List[str]]]:
    """(account, Region, ids) per account and Region, at most ``size`` ids each."""
    groups: Dict[Tuple[str, str], List[str]] = {}
    for t in targets:
        groups.setdefault((t.account_id or "unknown", t.region or "unknown"), []).append(
            t.instance_id
        )
    for (acct, region), ids in sorted(groups.items()):
        for i in range(0, len(ids), size):
            yield acct, region, ids[i : i + size]


def _parameters(opts: TargetOptions) -> str:
    if opts.document == RUN_SHELL_SCRIPT:
        return json.dumps({"commands": ["gd-doctor check --format json"]})
    return "format=ssm,timeout=120"


def command_args(acct: str, region: str, ids: Sequence[str], opts: TargetOptions) -> List[str]:
    """The argv of one ``aws ssm send-command`` invocation."""
    argv = ["aws", "ssm", "send-command"]
    if opts.profile:
        argv += ["--profile", opts.profile.format(account=acct, region=region)]
    if region != "unknown":
        argv += ["--region", region]
    argv += [
        "--document-name",
        opts.document,
        "--instance-ids",
        *ids,
        "--max-concurrency",
        opts.max_concurrency,
        "--max-errors",
        opts.max_errors,
        "--timeout-seconds",
        str(opts.timeout_seconds),
        "--parameters",
        _parameters(opts),
        "--output-s3-bucket-name",
        opts.bucket or "BUCKET",
        "--output-s3-key-prefix",
        opts.prefix,
        "--comment",
        f"gd-doctor fleet targets {acct} {region}",
        "--query",
        "Command.CommandId",
        "--output",
        "text",
    ]
    return argv


def render_commands(reach: Sequence[Target], apart: Sequence[Target], opts: TargetOptions) -> str:
    """A shell script: one commented send-command per batch, then the instances set apart."""
    out = [
        "#!/bin/sh",
        "# gd-doctor fleet targets: run gd-doctor on the console-unhealthy instances",
    ]
    if opts.bucket is None:
        out.append("# set the S3 bucket: --bucket NAME (BUCKET below is a placeholder)")
    out.append(
        f"# then: aws s3 sync s3://{opts.bucket or 'BUCKET'}/{opts.prefix}/ reports/ && "
        "gd-doctor fleet summary reports/ --coverage REGION=FILE ..."
    )
    last: Optional[Tuple[str, str]] = None
    n = 0
    for acct, region, ids in batches(reach, opts.batch):
        if last != (acct, region):
            out.append("")
            out.append(f"# account {acct}, Region {region}: run with credentials of account {acct}")
            last = (acct, region)
        n += 1
        out.append(f"# batch {n}: {len(ids)} instances")
        out.append(" ".join(shlex.quote(a) for a in command_args(acct, region, ids, opts)))
    if not n:
        out.append("# no reachable console-unhealthy instance needs a run")
    if apart:
        out.append("")
        out.append(
            f"# {len(apart)} instances are not (or probably not) SSM managed; Run Command "
            "cannot reach them. Make them managed, or run gd-doctor over SSH or user data:"
        )
        for t in apart:
            why = "not in --managed" if t.managed is False else f"console row {t.row}"
            out.append(
                f"#   {t.account_id or 'unknown'} {t.region or 'unknown'} {t.instance_id} ({why})"
            )
    return "\n".join(out) + "\n"


def render_ids(reach: Sequence[Target], apart: Sequence[Target]) -> str:
    """A targets file: ``account Region instance-id`` per line, the unreachable ones commented."""
    out = ["# account region instance_id row"]
    out += [
        f"{t.account_id or 'unknown'} {t.region or 'unknown'} {t.instance_id} {t.row or '-'}"
        for t in reach
    ]
    if apart:
        out.append("# not SSM managed (or probably not): not for Run Command")
        out += [
            f"# {t.account_id or 'unknown'} {t.region or 'unknown'} {t.instance_id} {t.row or '-'}"
            for t in apart
        ]
    return "\n".join(out) + "\n"


def render_json(reach: Sequence[Target], apart: Sequence[Target], opts: TargetOptions) -> str:
    """Batches as ``aws ssm send-command --cli-input-json`` documents, plus the set-apart list."""
    docs: List[Dict[str, Any]] = []
    for acct, region, ids in batches(reach, opts.batch):
        body: Dict[str, Any] = {
            "DocumentName": opts.document,
            "InstanceIds": ids,
            "MaxConcurrency": opts.max_concurrency,
            "MaxErrors": opts.max_errors,
            "TimeoutSeconds": opts.timeout_seconds,
            "Parameters": (
                {"commands": ["gd-doctor check --format json"]}
                if opts.document == RUN_SHELL_SCRIPT
                else {"format": ["ssm"], "timeout": ["120"]}
            ),
            "OutputS3BucketName": opts.bucket or "BUCKET",
            "OutputS3KeyPrefix": opts.prefix,
            "Comment": f"gd-doctor fleet targets {acct} {region}",
        }
        docs.append({"account_id": acct, "region": region, "cli_input": body})
    doc = {
        "batches": docs,
        "not_ssm_managed": [
            {
                "account_id": t.account_id,
                "region": t.region,
                "instance_id": t.instance_id,
                "console_row": t.row,
                "known": t.managed is not None,
            }
            for t in apart
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
