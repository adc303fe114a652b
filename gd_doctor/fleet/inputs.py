"""Readers for every input ``fleet`` takes; each yields small records or a named bad input.

Host reports (any mix, found by walking the PATHs):

* Run Command output synced from S3:
  ``<prefix>/<command-id>/<instance-id>/<plugin>/<step>/stdout`` (and ``stderr``), e.g.
  ``.../awsrunShellScript/0.awsrunShellScript/stdout`` for AWS-RunShellScript or
  ``.../awsrunShellScript/publishReport/stdout`` for the gd-doctor-run document; the file holds a
  JSON report or the ``--format ssm`` text;
* JSON reports (schema_version 1 or 2) anywhere below a directory;
* a Resource Data Sync export of the custom inventory:
  ``<prefix>/<TypeName>/accountid=<id>/region=<r>/resourcetype=ManagedInstanceInventory/<instance-id>.json``
  (JSON lines, as the JsonSerDe sync format writes them).

The console's view: ``aws guardduty list-coverage`` output (streamed, see :mod:`.jsonstream`) and
GuardDuty's coverage status-change events as JSON lines.

Nothing here raises on hostile input: every file, line or resource is either a record or a
:class:`~gd_doctor.fleet.model.BadInput` with its reason.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from gd_doctor.fleet.jsonstream import StreamError, iter_array_items
from gd_doctor.fleet.model import (
    SUPPORTED_SCHEMA_VERSIONS,
    VERDICTS,
    BadInput,
    CoverageItem,
    CoverageRecord,
    HostItem,
    HostRecord,
    Ignored,
    IgnoredFile,
    Kind,
    OtherResource,
    Reason,
)

MAX_FILE_BYTES = 16 * 1024 * 1024  # a report is ~30 kB; anything this big is not one
INSTANCE_ID = re.compile(r"^(?:i|mi)-[0-9a-f]{8,17}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
REGION_IN_NAME = re.compile(r"(?<![a-z])([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2})(?![0-9])")
COMMAND_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PARTITION = re.compile(r"^(accountid|region|resourcetype)=(.*)$")
_UNPRINTABLE = re.compile(r"[^\S ]|[\x00-\x1f\x7f-\x9f\u2028\u2029]")

ProgressFn = Callable[[int], None]


# ---------------------------------------------------------------------------------------------
# small helpers


def parse_time(value: Any) -> Optional[float]:
    """Seconds since the epoch from an ISO-8601 string (``Z`` or offset) or an epoch number.

    >>> parse_time("2026-11-30T10:00:00Z") == parse_time("2026-11-30T10:00:00+00:00")
    True
    >>> t0 = parse_time("2026-11-30T10:00:00Z")
    >>> round(parse_time("2026-11-30T10:00:00.123000+00:00") - t0, 3)
    0.123
    >>> round(parse_time("2026-11-30T10:00:00.5Z") - parse_time("2026-11-30T10:00:00Z"), 3)
    0.5
    >>> parse_time("yesterday") is None
    True
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        return v / 1000.0 if v > 1e11 else v  # milliseconds from some exporters
    if not isinstance(value, str) or not value.strip():
        return None
    return _parse_iso(value.strip())


@lru_cache(maxsize=256)  # console refreshes and report times repeat a lot
def _parse_iso(text: str) -> Optional[float]:
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
        if not (m and m.group(2)):
            return None
        # Python 3.9 accepts only 3 or 6 fraction digits
        try:
            at = datetime.fromisoformat(m.group(1) + (m.group(2) + "000000")[:7] + m.group(3))
        except ValueError:
            return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.timestamp()


def iso(ts: Optional[float]) -> Optional[str]:
    """The ISO-8601 UTC form used in every output."""
    if ts is None:
        return None
    return (
        datetime.fromtimestamp(ts, timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def _s(value: Any, limit: int = 512) -> Optional[str]:
    """A short clean string or None: hostile files must not blow up rows or outputs."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value[:limit]
    if not value.isprintable():  # rare: the C check keeps the common case fast
        value = _UNPRINTABLE.sub(" ", value)
    return value.strip() or None


def shown(path: Union[str, Path]) -> str:
    """A path as outputs show it: control characters in hostile file names become '?'.

    >>> shown("reports/\x1b[2Jx.json")
    'reports/?[2Jx.json'
    """
    text = str(path)
    return text if text.isprintable() else _UNPRINTABLE.sub("?", text)


def _get(d: Mapping[str, Any], *names: str) -> Any:
    """A field by its CLI name (PascalCase) or its wire name (camelCase)."""
    for name in names:
        if name in d:
            return d[name]
        camel = name[:1].lower() + name[1:]
        if camel in d:
            return d[camel]
    return None


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


@lru_cache(maxsize=512)
def _row_of_normalised(norm: str) -> Optional[str]:
    from gd_doctor.diagnosis.explain import explain

    # explain() folds its input the same way again (the fold is idempotent), so the cache can be
    # keyed on the folded text: issues that differ only in VPC or request ids share one entry.
    found = explain(norm)
    if found.how in ("id", "message", "type", "seed") and found.matches:
        return found.matches[0].id
    return None


def row_of_issue(issue: str) -> Optional[str]:
    """The coverage-issue row id a console ``Issue`` string maps to (None if unrecognised).

    The patterns are gd_doctor.knowledge.coverage_issues(); an empty issue is row 2 (the current
    "No Agent Reporting" row), and a message shared by two rows (10 and 11) maps to the first.

    >>> row_of_issue("Agent disconnected")
    'agent-disconnected'
    >>> row_of_issue("Enabling private DNS requires both enableDnsSupport and enableDnsHostnames "
    ...              "VPC attributes set to true for vpc-0a1b2c3d4e5f60718")
    'private-dns-attributes'
    >>> row_of_issue("") , row_of_issue("quantum flux") is None
    ('no-agent-reporting', True)
    """
    from gd_doctor.diagnosis.explain import normalise

    norm = normalise(issue)
    if not norm:
        return "no-agent-reporting"
    return _row_of_normalised(norm[:2000])


# ---------------------------------------------------------------------------------------------
# walking the host-report PATHs


def walk_files(
    paths: Sequence[Path],
) -> Iterator[Tuple[Optional[str], Optional[BadInput]]]:
    """Every regular file below ``paths``; bad directories and missing paths as BadInput.

    Directories are read lazily, depth first, one open ``scandir`` per level: a Run Command
    prefix holds one directory per instance under each command id, so listing a directory
    into memory would cost memory in proportion to the fleet.
    """
    for top in paths:
        try:
            st = top.stat()
        except OSError as exc:
            reason = Reason.MISSING_PATH if not os.path.lexists(top) else Reason.UNREADABLE
            yield None, BadInput(shown(top), reason, exc.strerror or "", "file")
            continue
        if stat.S_ISREG(st.st_mode):
            yield str(top), None
            continue
        if not stat.S_ISDIR(st.st_mode):
            yield None, BadInput(shown(top), Reason.NOT_A_REPORT, "not a regular file", "file")
            continue
        yield from _walk_dir(str(top))


def _walk_dir(top: str) -> Iterator[Tuple[Optional[str], Optional[BadInput]]]:
    stack: List[Tuple[str, Iterator["os.DirEntry[str]"], List[bool]]] = []

    def enter(d: str) -> Optional[BadInput]:
        try:
            it = os.scandir(d)
        except OSError as exc:
            return BadInput(shown(d), Reason.UNREADABLE_DIR, exc.strerror or "", "directory")
        stack.append((d, it, [False]))
        return None

    bad = enter(top)
    if bad is not None:
        yield None, bad
    while stack:
        d, it, seen = stack[-1]
        try:
            entry = next(it, None)
        except OSError as exc:
            entry = None
            yield None, BadInput(shown(d), Reason.UNREADABLE_DIR, exc.strerror or "", "directory")
        if entry is None:
            stack.pop()
            close = getattr(it, "close", None)
            if close is not None:
                close()
            if not seen[0]:
                yield None, BadInput(shown(d), "empty directory", "", "directory")
            continue
        seen[0] = True
        try:
            if entry.is_dir(follow_symlinks=False):
                bad = enter(entry.path)
                if bad is not None:
                    yield None, bad
            elif entry.is_file(follow_symlinks=False):
                yield entry.path, None  # str, not Path: 100,000 Paths cost seconds
            # Symlinks and sockets below a synced tree are skipped on purpose: `aws s3 sync`
            # never creates them, and following them could leave the tree.
        except OSError as exc:
            yield None, BadInput(shown(entry.path), Reason.UNREADABLE, exc.strerror or "", "file")


def count_files(paths: Sequence[Path]) -> int:
    """How many files :func:`walk_files` will yield (for the progress bar only)."""
    return sum(1 for f, _ in walk_files(paths) if f is not None)


def read_host_inputs(
    paths: Sequence[Path], progress: Optional[ProgressFn] = None
) -> Iterator[HostItem]:
    """Every host report below ``paths`` as a record, a bad input or an ignored file."""
    n = 0
    for path, bad in walk_files(paths):
        if bad is not None:
            yield bad
            continue
        assert path is not None
        n += 1
        if progress is not None:
            progress(n)
        yield read_host_file(path)


def _layout(src: str) -> Tuple[str, Dict[str, str]]:
    """Which layout the path is in, and what the path itself says (instance, account, ...)."""
    parts = src.split(os.sep)
    name = parts[-1]
    if name in ("stdout", "stderr") and len(parts) >= 5:
        cmd, inst = parts[-5], parts[-4]
        if INSTANCE_ID.match(inst):
            info = {"instance": inst, "stream": name, "step": parts[-2]}
            if COMMAND_ID.match(cmd):
                info["command"] = cmd
            return "run-command", info
    if len(parts) >= 4 and name.endswith(".json"):
        parts_info: Dict[str, str] = {}
        for p in parts[-4:-1]:
            m = _PARTITION.match(p)
            if m:
                parts_info[m.group(1)] = m.group(2)
        if parts_info.get("resourcetype") == "ManagedInstanceInventory":
            parts_info["instance"] = name[: -len(".json")]
            return "inventory", parts_info
    return "plain", {}


def read_host_file(path: Union[str, Path]) -> HostItem:
    """One file to a :class:`HostRecord`, :class:`BadInput` or :class:`IgnoredFile`."""
    src = shown(path)
    layout, info = _layout(src)
    if layout == "run-command" and info.get("stream") == "stderr":
        return IgnoredFile(src, Ignored.STDERR)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
            mtime = os.fstat(fh.fileno()).st_mtime
    except OSError as exc:
        return BadInput(src, Reason.UNREADABLE, exc.strerror or str(exc))
    if len(data) > MAX_FILE_BYTES:
        return BadInput(src, Reason.TOO_LARGE, f"over {MAX_FILE_BYTES} bytes")
    if not data.strip():
        return BadInput(src, Reason.EMPTY_FILE)
    if b"\x00" in data[:8192]:
        return BadInput(src, Reason.BINARY)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return BadInput(src, Reason.BINARY, "not UTF-8")
    if layout == "inventory":
        return _inventory(text, info, src, mtime)
    stripped = text.lstrip("\ufeff \t\r\n")
    rc = layout == "run-command"
    if stripped.startswith("gd-doctor:"):
        kind = Kind.RUN_COMMAND_SSM if rc else Kind.SSM_TEXT
        return _ssm_text(stripped, info, src, mtime, kind)
    if stripped[:1] in "{[":
        doc = _fast_report(stripped)
        if doc is not None:
            return _json_report(doc, info, src, Kind.RUN_COMMAND_JSON if rc else Kind.JSON)
        try:
            doc = json.loads(stripped)
        except ValueError as exc:
            pos = getattr(exc, "pos", 0)
            if pos >= len(stripped.rstrip()) - 1 or "Unterminated" in str(exc):
                return BadInput(src, Reason.TRUNCATED, str(exc)[:120])
            return BadInput(src, Reason.NOT_JSON, str(exc)[:120])
        return _json_report(doc, info, src, Kind.RUN_COMMAND_JSON if rc else Kind.JSON)
    return BadInput(src, Reason.NOT_JSON, "text that is not gd-doctor output")


def _rows(findings: Any) -> Tuple[str, ...]:
    out: List[str] = []
    for f in findings if isinstance(findings, list) else ():
        if isinstance(f, dict) and f.get("severity") in ("fail", "warn"):
            row = _s(f.get("issue_id"), 80)
            if row and row not in out:
                out.append(row)
    return tuple(out[:20])


# The top-level "summary" object follows "findings" in every gd-doctor report (both schema
# versions write the keys in one order). Everything fleet needs comes before it, except the agent
# version inside "checks", which is most of the file. An unescaped `"summary": {` cannot occur
# inside a JSON string (quotes there are escaped) and no earlier key holds one.
_SUMMARY_KEY = re.compile(r'"summary":\s*\{')
_DATA_VERSION = re.compile(r'"data":\s*\{[^{}]*?"version":\s*("(?:[^"\\]|\\.)*")')
_HEAD_KEYS = ("schema_version", "verdict", "host", "findings")


def _fast_report(text: str) -> Optional[Dict[str, Any]]:
    """Decode a report up to its summary (4-5x less JSON to decode), or None to decode it all.

    Only used when the text also ends as a complete object does; a truncated file, another key
    order or anything unexpected falls back to the full decode and its precise error.
    """
    m = _SUMMARY_KEY.search(text)
    if m is None or not text.rstrip().endswith("}"):
        return None
    try:
        head = json.loads(text[: m.start()].rstrip().rstrip(",") + "}")
    except ValueError:
        return None
    if not isinstance(head, dict) or not all(k in head for k in _HEAD_KEYS):
        return None
    version = None
    at = text.find('"agent.package"', m.end())
    if at >= 0:
        vm = _DATA_VERSION.search(text, at, at + 4000)
        if vm:
            try:
                version = json.loads(vm.group(1))
            except ValueError:
                version = None
    head["checks"] = [{"id": "agent.package", "data": {"version": version}}]
    return head


def _top_finding(findings: Any) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """The first FAIL finding, else the first WARN: (id, row, first fix step)."""
    if not isinstance(findings, list):
        return None, None, None
    for severity in ("fail", "warn"):
        for f in findings:
            if isinstance(f, dict) and f.get("severity") == severity:
                steps = f.get("steps")
                fix = _s(steps[0], 1000) if isinstance(steps, list) and steps else None
                return _s(f.get("id"), 120), _s(f.get("issue_id"), 80), fix
    return None, None, None


def _agent_version(checks: Any) -> Optional[str]:
    if not isinstance(checks, list):
        return None
    for c in checks:
        if isinstance(c, dict) and c.get("id") == "agent.package":
            data = _obj(c.get("data"))
            return _s(data.get("version") or data.get("agent_version"), 80)
    return None


def _json_report(doc: Any, info: Mapping[str, str], src: str, kind: str) -> HostItem:
    if not isinstance(doc, dict) or ("verdict" not in doc and "schema_version" not in doc):
        return BadInput(src, Reason.NOT_A_REPORT, "JSON without schema_version or verdict")
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        return BadInput(src, Reason.NOT_A_REPORT, "no integer schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        return BadInput(src, Reason.SCHEMA_VERSION, f"schema_version {version}")
    tool = _obj(doc.get("tool"))
    if tool.get("name", "gd-doctor") != "gd-doctor":
        return BadInput(src, Reason.NOT_A_REPORT, f"tool {_s(tool.get('name'), 40)}")
    verdict = doc.get("verdict")
    if verdict not in VERDICTS:
        return BadInput(src, Reason.NOT_A_REPORT, f"verdict {_s(verdict, 40)}")
    host = _obj(doc.get("host"))
    instance = _s(host.get("instance_id"), 40) or info.get("instance")
    if not instance:
        return BadInput(src, Reason.NO_INSTANCE, "host.instance_id is null and the path names none")
    finding, row, fix = _top_finding(doc.get("findings"))
    return HostRecord(
        instance_id=instance,
        account_id=_s(host.get("account_id"), 12) or info.get("accountid"),
        region=_s(host.get("region"), 32) or info.get("region"),
        time=parse_time(doc.get("started_at")),
        verdict=str(verdict),
        finding=finding,
        row=row,
        fix=fix,
        os=_s(host.get("os"), 120),
        kernel=_s(host.get("kernel"), 120),
        agent_version=_agent_version(doc.get("checks")),
        kind=kind,
        source=src,
        invocation=info.get("command"),
        schema_version=version,
        rows=_rows(doc.get("findings")),
    )


# --format ssm, line one, today:  gd-doctor: UNHEALTHY (2 problems) i-0abc... us-east-1
# and as issue 12 makes it:
#   gd-doctor: UNHEALTHY row=15 private-dns-attributes i-... 111122223333 us-east-1
_SSM_HEAD = re.compile(r"^gd-doctor: (HEALTHY|UNHEALTHY|UNKNOWN)\b(.*)$")
_SSM_FINDING = re.compile(r"^\d+\. (FAIL|WARN) (.*?)(?: \[(.*)\])?$")
_ROW_LABEL = re.compile(r"^row (\d+) ([a-z0-9-]+)$")


@lru_cache(maxsize=1)
def _title_patterns() -> Tuple[Tuple["re.Pattern[str]", str], ...]:
    from gd_doctor.knowledge import finding_specs

    out = []
    for spec in finding_specs().values():
        parts = re.split(r"\{[a-z_]+\}", spec.title)
        out.append((re.compile("^" + ".+?".join(re.escape(p) for p in parts) + "$"), spec.id))
    # Longest titles first: a specific title must win over a generic one with placeholders.
    out.sort(key=lambda p: -len(p[0].pattern))
    return tuple(out)


def finding_from_title(title: str) -> Optional[str]:
    """The finding id whose knowledge-base title (placeholders filled) is ``title``."""
    for pattern, fid in _title_patterns():
        if pattern.match(title):
            return fid
    return None


def _row_from_label(label: str) -> Optional[str]:
    m = _ROW_LABEL.match(label.strip())
    if m:
        return m.group(2)
    kind, sep, message = label.strip().rpartition(": ")
    if sep and message == "(empty)":
        # "[No Agent Reporting: (empty)]": the row of that type whose message is empty
        from gd_doctor.knowledge import coverage_issues

        for row in coverage_issues().values():
            if row.type.lower() == kind.lower() and not row.message:
                return row.id
    return row_of_issue(label) if label.strip() else None


def _ssm_text(text: str, info: Mapping[str, str], src: str, mtime: float, kind: str) -> HostItem:
    lines = text.splitlines()
    m = _SSM_HEAD.match(lines[0].strip())
    if not m:
        return BadInput(src, Reason.NOT_A_REPORT, "first line is not a gd-doctor verdict")
    verdict = m.group(1).lower()
    tokens = re.sub(r"\(\d+ problems?\)", " ", m.group(2)).split()
    instance = account = region = row = None
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.startswith("row=") and i + 1 < len(tokens):
            row = tokens[i + 1] if not INSTANCE_ID.match(tokens[i + 1]) else None
            i += 2 if row else 1
            continue
        if INSTANCE_ID.match(t):
            instance = t
        elif ACCOUNT_ID.match(t):
            account = t
        elif REGION.match(t):
            region = t
        i += 1
    instance = instance or info.get("instance")
    if not instance:
        return BadInput(src, Reason.NO_INSTANCE, "the verdict line and the path name none")
    finding = fix = None
    rows: List[str] = [row] if row else []
    first = True
    for n, line in enumerate(lines[1:60], 1):
        fm = _SSM_FINDING.match(line.strip())
        if not fm:
            continue
        label_row = _row_from_label(fm.group(3)) if fm.group(3) else None
        if label_row and label_row not in rows:
            rows.append(label_row)
        if not first:
            continue
        first = False
        finding = finding_from_title(fm.group(2))
        row = row or label_row
        for follow in lines[n + 1 : n + 4]:
            if follow.strip().startswith("fix: "):
                fix = _s(follow.strip()[5:], 1000)
                break
    return HostRecord(
        instance_id=instance,
        account_id=account,
        region=region,
        # The text carries no time; `aws s3 sync` sets each file's mtime to the object's
        # LastModified, which is when the step wrote its output.
        time=mtime,
        verdict=verdict,
        finding=finding,
        row=row,
        fix=fix,
        os=None,
        kernel=None,
        agent_version=None,
        kind=kind,
        source=src,
        invocation=info.get("command"),
        rows=tuple(rows[:20]),
    )


def _lower_keys(d: Mapping[str, Any]) -> Dict[str, Any]:
    return {str(k).lower(): v for k, v in d.items()}


def _inventory(text: str, info: Mapping[str, str], src: str, mtime: float) -> HostItem:
    """A Resource Data Sync file: JSON lines, one per inventory entry (JsonSerDe format)."""
    entry: Optional[Dict[str, Any]] = None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            reason = Reason.TRUNCATED if "Unterminated" in str(exc) else Reason.NOT_JSON
            return BadInput(src, reason, str(exc)[:120])
        if isinstance(obj, dict):
            entry = _lower_keys(obj)
            break
    if entry is None:
        return BadInput(src, Reason.NOT_A_REPORT, "no inventory entry")
    verdict = _s(entry.get("verdict"), 20)
    if verdict is None or verdict.lower() not in VERDICTS:
        return BadInput(src, Reason.NOT_A_REPORT, "inventory entry without a verdict")
    instance = _s(entry.get("resourceid") or entry.get("instance_id"), 40) or info["instance"]
    row = _s(entry.get("row_id") or entry.get("issue_id"), 80)
    finding = _s(entry.get("top_finding") or entry.get("finding"), 120)
    fix = _s(entry.get("fix") or entry.get("first_fix"), 1000)
    if fix is None and finding:
        from gd_doctor.knowledge import finding_specs

        spec = finding_specs().get(finding)
        fix = spec.steps[0] if spec and spec.steps else None
    return HostRecord(
        instance_id=instance,
        account_id=_s(entry.get("account_id"), 12) or info.get("accountid"),
        region=_s(entry.get("region"), 32) or info.get("region"),
        time=parse_time(entry.get("checked_at") or entry.get("capturetime")) or mtime,
        verdict=verdict.lower(),
        finding=finding,
        row=row,
        fix=fix,
        os=_s(entry.get("os"), 120),
        kernel=_s(entry.get("kernel"), 120),
        agent_version=_s(entry.get("agent_version"), 80),
        kind=Kind.INVENTORY,
        source=src,
        rows=(row,) if row else (),
    )


# ---------------------------------------------------------------------------------------------
# the console's view


def region_of_coverage_file(path: Path) -> Optional[str]:
    """The Region named in a coverage file's name (``coverage-us-east-1.json``), if any."""
    m = REGION_IN_NAME.search(path.name)
    return m.group(1) if m else None


def _resource(res: Any, region: Optional[str], src: str, kind: str) -> CoverageItem:
    if not isinstance(res, dict):
        return BadInput(src, Reason.RESOURCE_BAD, "a resource that is not an object", "resource")
    details = _obj(_get(res, "ResourceDetails"))
    rtype = _s(_get(details, "ResourceType"), 20) or ""
    status = (_s(_get(res, "CoverageStatus"), 20) or "").upper()
    issue = _s(_get(res, "Issue"), 2000) or ""
    account = _s(_get(res, "AccountId"), 12)
    if rtype in ("EKS", "ECS"):
        rid = _s(_get(res, "ResourceId"), 200) or "?"
        return OtherResource(rtype, account, region, rid, status, issue, kind)
    if rtype != "EC2":
        return BadInput(src, Reason.RESOURCE_TYPE, rtype or "no ResourceType", "resource")
    ec2 = _obj(_get(details, "Ec2InstanceDetails"))
    instance = _s(_get(ec2, "InstanceId"), 40) or _s(_get(res, "ResourceId"), 40)
    if not instance:
        return BadInput(src, Reason.RESOURCE_NO_ID, "", "resource")
    if status not in ("HEALTHY", "UNHEALTHY"):
        return BadInput(
            src, Reason.RESOURCE_BAD, f"CoverageStatus {status or 'missing'}", "resource"
        )
    return CoverageRecord(
        instance_id=instance,
        account_id=account,
        region=region,
        status=status,
        issue=issue,
        row=row_of_issue(issue) if status == "UNHEALTHY" else None,
        updated=parse_time(_get(res, "UpdatedAt")),
        management_type=_s(_get(ec2, "ManagementType"), 20),
        agent_version=_s(_get(_obj(_get(ec2, "AgentDetails")), "Version"), 40),
        instance_type=_s(_get(ec2, "InstanceType"), 40),
        kind=kind,
        source=src,
    )


def read_coverage_file(path: Path, region: Optional[str]) -> Iterator[CoverageItem]:
    """Every resource of one ``list-coverage`` output file (one or more pages, streamed)."""
    src = shown(path)
    try:
        fh = open(path, encoding="utf-8", errors="strict")
    except OSError as exc:
        yield BadInput(src, Reason.UNREADABLE, exc.strerror or str(exc), "coverage-file")
        return
    seen = 0
    try:
        with fh:
            for _key, res in iter_array_items(fh, ("Resources", "resources")):
                seen += 1
                yield _resource(res, region, src, Kind.LIST_COVERAGE)
    except StreamError as exc:
        if str(exc) == "empty":
            yield BadInput(src, Reason.EMPTY_FILE, "", "coverage-file")
        elif exc.truncated:
            yield BadInput(
                src, Reason.COVERAGE_TRUNCATED, f"after {seen} resources: {exc}", "coverage-file"
            )
        else:
            yield BadInput(src, Reason.COVERAGE_NOT_JSON, str(exc)[:120], "coverage-file")
        return
    except UnicodeDecodeError:
        yield BadInput(src, Reason.BINARY, "not UTF-8", "coverage-file")
        return
    except OSError as exc:
        yield BadInput(src, Reason.UNREADABLE, exc.strerror or str(exc), "coverage-file")
        return
    if seen == 0:
        yield BadInput(
            src, Reason.NOT_COVERAGE, "no Resources array (or an empty one)", "coverage-file"
        )


EVENT_TYPES = ("GuardDuty Runtime Protection Unhealthy", "GuardDuty Runtime Protection Healthy")


def read_events_file(path: Path) -> Iterator[CoverageItem]:
    """GuardDuty coverage status-change events from EventBridge, one JSON event per line."""
    src = shown(path)
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        yield BadInput(src, Reason.UNREADABLE, exc.strerror or str(exc), "event-file")
        return
    with fh:
        try:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{src}:{n}"
                try:
                    ev = json.loads(line)
                except ValueError:
                    yield BadInput(where, Reason.EVENT_NOT_JSON, "", "event")
                    continue
                yield _event(ev, where)
        except OSError as exc:
            yield BadInput(src, Reason.UNREADABLE, exc.strerror or str(exc), "event-file")


def _event(ev: Any, where: str) -> CoverageItem:
    if (
        not isinstance(ev, dict)
        or ev.get("source") != "aws.guardduty"
        or ev.get("detail-type") not in EVENT_TYPES
    ):
        return BadInput(where, Reason.NOT_AN_EVENT, "", "event")
    detail = _obj(ev.get("detail"))
    res = {
        "AccountId": detail.get("resourceAccountId") or ev.get("account"),
        "CoverageStatus": detail.get("currentStatus")
        or ("UNHEALTHY" if ev["detail-type"].endswith("Unhealthy") else "HEALTHY"),
        "Issue": detail.get("issue"),
        "UpdatedAt": detail.get("lastUpdatedAt") or ev.get("time"),
        "ResourceDetails": detail.get("resourceDetails"),
    }
    ec2 = _obj(_obj(detail.get("resourceDetails")).get("ec2InstanceDetails"))
    res["ResourceId"] = ec2.get("instanceId")
    region = _s(ev.get("region"), 32)
    item = _resource(res, region, where, Kind.EVENT)
    if isinstance(item, BadInput):
        return BadInput(item.source, item.reason, item.detail, "event")
    return item


def read_managed_file(path: Path) -> Tuple[List[str], Optional[BadInput]]:
    """Instance ids of ``aws ssm describe-instance-information`` output (the SSM-managed ones)."""
    ids: List[str] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for _k, item in iter_array_items(fh, ("InstanceInformationList",)):
                iid = _s(_get(_obj(item), "InstanceId"), 40)
                if iid:
                    ids.append(iid)
    except (OSError, UnicodeDecodeError, StreamError) as exc:
        return ids, BadInput(str(path), Reason.NOT_JSON, str(exc)[:120])
    return ids, None
