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
import stat
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from gd_doctor.fleet.model import (
    SUPPORTED_SCHEMA_VERSIONS,
    VERDICTS,
    BadInput,
    HostItem,
    HostRecord,
    Ignored,
    IgnoredFile,
    Kind,
    Reason,
)
from gd_doctor.fleet.texts import inventory_entry, ssm_text
from gd_doctor.fleet.values import (
    COMMAND_ID,
    INSTANCE_ID,
    MAX_FILE_BYTES,
    ProgressFn,
    clean,
    obj,
    parse_time,
    shown,
    unknown_lead,
)
from gd_doctor.patterns import lazy

_PARTITION = lazy(r"^(accountid|region|resourcetype)=(.*)$")

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
        return inventory_entry(text, info, src, mtime)
    stripped = text.lstrip("\ufeff \t\r\n")
    rc = layout == "run-command"
    if stripped.startswith("gd-doctor:"):
        kind = Kind.RUN_COMMAND_SSM if rc else Kind.SSM_TEXT
        return ssm_text(stripped, info, src, mtime, kind)
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
            row = clean(f.get("issue_id"), 80)
            if row and row not in out:
                out.append(row)
    return tuple(out[:20])


# The top-level "summary" object follows "findings" in every gd-doctor report (both schema
# versions write the keys in one order). Everything fleet needs comes before it, except the agent
# version inside "checks", which is most of the file. An unescaped `"summary": {` cannot occur
# inside a JSON string (quotes there are escaped) and no earlier key holds one.
_SUMMARY_KEY = lazy(r'"summary":\s*\{')
_DATA_VERSION = lazy(r'"data":\s*\{[^{}]*?"version":\s*("(?:[^"\\]|\\.)*")')
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
                # schema 2 names the fix step; schema 1 reports have only the steps
                steps = f.get("steps")
                first = steps[0] if isinstance(steps, list) and steps else None
                fix = clean(f.get("fix_step") or first, 1000)
                return clean(f.get("id"), 120), clean(f.get("issue_id"), 80), fix
    return None, None, None


def _agent_version(checks: Any) -> Optional[str]:
    if not isinstance(checks, list):
        return None
    for c in checks:
        if isinstance(c, dict) and c.get("id") == "agent.package":
            data = obj(c.get("data"))
            return clean(data.get("version") or data.get("agent_version"), 80)
    return None


def _json_report(doc: Any, info: Mapping[str, str], src: str, kind: str) -> HostItem:
    if not isinstance(doc, dict) or ("verdict" not in doc and "schema_version" not in doc):
        return BadInput(src, Reason.NOT_A_REPORT, "JSON without schema_version or verdict")
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        return BadInput(src, Reason.NOT_A_REPORT, "no integer schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        return BadInput(src, Reason.SCHEMA_VERSION, f"schema_version {version}")
    tool = obj(doc.get("tool"))
    if tool.get("name", "gd-doctor") != "gd-doctor":
        return BadInput(src, Reason.NOT_A_REPORT, f"tool {clean(tool.get('name'), 40)}")
    verdict = doc.get("verdict")
    if verdict not in VERDICTS:
        return BadInput(src, Reason.NOT_A_REPORT, f"verdict {clean(verdict, 40)}")
    host = obj(doc.get("host"))
    instance = clean(host.get("instance_id"), 40) or info.get("instance")
    if not instance:
        return BadInput(src, Reason.NO_INSTANCE, "host.instance_id is null and the path names none")
    finding, row, fix = _top_finding(doc.get("findings"))
    reason = clean(doc.get("verdict_reason"), 900)
    if fix is None and verdict == "unknown" and reason:
        fix = unknown_lead(reason)  # no problem listed: the reason is the lead
    return HostRecord(
        instance_id=instance,
        account_id=clean(host.get("account_id"), 12) or info.get("accountid"),
        region=clean(host.get("region"), 32) or info.get("region"),
        time=parse_time(doc.get("started_at")),
        verdict=str(verdict),
        finding=finding,
        row=row,
        fix=fix,
        os=clean(host.get("os"), 120),
        kernel=clean(host.get("kernel"), 120),
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
