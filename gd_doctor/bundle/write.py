"""Writing a bundle: the recorded paths and answers, redacted, capped, in one .tar.gz.

Layout of the archive (every member a regular file, names relative):

* ``MANIFEST.json``: format, tool version, host, time, window, every item with its source,
  size, SHA-256, cut (``cap``/``window``) and redaction counts, links and directory listings;
* ``report.json``: the JSON report of the run that made the bundle;
* ``answers.json``: the live ports' answers (commands, journal, IMDS, DNS/TCP/TLS/HTTPS probes,
  processes), redacted; never an IMDS token (the client keeps it) nor credentials (masked);
* ``root/<path>``: each file a check read, at its path.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
from dataclasses import is_dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Collection, Dict, List, Optional, Tuple

from gd_doctor import __version__
from gd_doctor.bundle.codec import encode
from gd_doctor.bundle.collect import (
    TOTAL_CAP,
    Item,
    apply_total_cap,
    collect_items,
    materialise,
)
from gd_doctor.bundle.kinds import Tally, kinds
from gd_doctor.bundle.record import Recorder
from gd_doctor.bundle.scrub import Scrubber
from gd_doctor.host.fs import RootFS
from gd_doctor.redact import redact

FORMAT = 1


def encode_answers(rec: Recorder, scrub: Optional[Scrubber]) -> Tuple[Dict[str, Any], Tally]:
    """The recorded calls as JSON, every host string redacted; the masks by kind."""
    s: Callable[[str], str] = scrub if scrub is not None else (lambda t: t)
    tally = Tally()
    calls: List[Dict[str, Any]] = []
    for c in list(rec.calls):
        entry: Dict[str, Any] = {"port": c.port, "key": _scrub_key(c.key, s, tally), "kind": c.kind}
        if c.at is not None:
            entry["at"] = c.at.isoformat()  # the host's clock when the answer came
        if c.raised is not None:
            entry["raised"] = s(tally.redact(c.raised))
        elif isinstance(c.answer, list):
            entry["answer"] = [encode(a, s, tally) if is_dataclass(a) else a for a in c.answer]
        elif c.answer is not None and is_dataclass(c.answer):
            entry["answer"] = encode(c.answer, s, tally)
        else:
            entry["answer"] = c.answer
        calls.append(entry)
    env = tally.redact_map(dict(rec.env), s)
    doc = {
        "calls": calls,
        "attrs": {k: (s(tally.redact(v)) if v else v) for k, v in rec.attrs.items()},
        "env": {k: v for k, v in env.items() if isinstance(v, str)},
    }
    return doc, tally


def _scrub_key(key: Any, s: Callable[[str], str], tally: Tally) -> Any:
    if isinstance(key, str):
        return s(tally.redact(key))
    if isinstance(key, list):
        return [_scrub_key(k, s, tally) for k in key]
    if isinstance(key, dict):
        return {k: _scrub_key(v, s, tally) for k, v in key.items()}
    return key


def default_name(host: Dict[str, Any], at: datetime) -> str:
    def part(value: Any, fallback: str) -> str:
        text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(value or ""))[:64].strip("-.")
        return text or fallback

    stamp = at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return (
        f"gd-doctor-bundle-{part(host.get('hostname'), 'host')}-"
        f"{part(host.get('instance_id'), 'no-instance')}-{stamp}.tar.gz"
    )


def _member(tar: tarfile.TarFile, name: str, data: bytes, mtime: float, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = mode
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def write_bundle(
    output: Path,
    *,
    fs: RootFS,
    rec: Recorder,
    report_json: str,
    host_info: Dict[str, Any],
    live: bool,
    since: timedelta,
    redact_more: bool = False,
    total_cap: int = TOTAL_CAP,
    budget_s: float = 20.0,
    packages: Optional[Collection[str]] = None,
) -> Dict[str, Any]:
    """Write the bundle atomically (a private temporary file renamed over ``output``, mode
    0600); returns the manifest."""
    deadline = time.monotonic() + budget_s
    started = rec.started or datetime.now(timezone.utc)
    names = [str(host_info.get("hostname") or "")]
    scrub = Scrubber(names) if redact_more else None
    got = materialise(fs, rec)
    window_start = started - since
    items, standins, skipped = collect_items(
        fs, got, since=window_start, scrub=scrub, deadline=deadline, packages=packages
    )
    answers, answer_tally = encode_answers(rec, scrub)
    answers_bytes = json.dumps(answers, indent=1, ensure_ascii=False).encode()
    report_text = redact(report_json)  # the report is redacted already: this is a safety net
    report_kinds = kinds(report_json, report_text)
    if scrub is not None:
        report_text = scrub(report_text)
    fixed = len(answers_bytes) + len(report_text.encode())
    apply_total_cap(items, max(0, total_cap - fixed - 256 * 1024))
    header = dict(host_info)
    if scrub is not None:
        header = {k: scrub(v) if isinstance(v, str) else v for k, v in header.items()}
    members: List[Tuple[str, bytes, float, int]] = [
        ("report.json", report_text.encode(), started.timestamp(), 0o600),
        ("answers.json", answers_bytes, started.timestamp(), 0o600),
    ] + [(i.name, i.data, i.mtime, i.mode) for i in items]
    fixed_kinds = {"report.json": report_kinds, "answers.json": dict(answer_tally.counts)}
    totals: Dict[str, int] = {}
    for counts in [*fixed_kinds.values(), *(i.redactions for i in items)]:
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    if scrub is not None:
        totals.update(scrub.counts)
    manifest: Dict[str, Any] = {
        "format": FORMAT,
        "tool": "gd-doctor",
        "tool_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(),
        "recorded_at": started.isoformat(),
        "window_start": window_start.isoformat(),
        "live": live,
        "host": header,
        "redact_more": redact_more,
        "total_cap": total_cap,
        "items": [
            {
                "name": name,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                **_item_meta(items, name, fixed_kinds),
            }
            for name, data, _m, _mode in members
        ],
        "links": {("root" + k): v for k, v in sorted(got.links.items())},
        "dirs": {("root" + k): v for k, v in sorted(got.dirs.items())},
        "standins": ["root" + p for p in sorted(standins)],
        "skipped": skipped + got.problems,
        "redactions": {k: v for k, v in totals.items() if v},
        "calls_dropped": rec.dropped,
        # live answers recorded (a raised "cannot read" is no answer)
        "answered": sum(1 for c in rec.calls if c.raised is None and c.answer is not None),
    }
    if scrub is not None:
        manifest["links"] = {k: scrub(v) for k, v in manifest["links"].items()}
    _write_atomically(output, manifest, members)
    return manifest


def _item_meta(items: List[Item], name: str, fixed: Dict[str, Dict[str, int]]) -> Dict[str, Any]:
    for i in items:
        if i.name == name:
            meta: Dict[str, Any] = {
                "source": i.source,
                "original_size": i.original_size,
                "mode": i.mode,
                "mtime": i.mtime,
                "cut": i.cut,
                "redactions": {k: v for k, v in i.redactions.items() if v},
            }
            if i.note:
                meta["note"] = i.note
            return meta
    return {
        "source": "gd-doctor",
        "cut": None,
        "redactions": {k: v for k, v in fixed.get(name, {}).items() if v},
    }


def _write_atomically(
    output: Path, manifest: Dict[str, Any], members: List[Tuple[str, bytes, float, int]]
) -> None:
    directory = output.parent if str(output.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=".gd-doctor-bundle-", suffix=".part", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    body = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
                    _member(tar, "MANIFEST.json", body, time.time(), 0o600)
                    for name, data, mtime, mode in members:
                        _member(tar, name, data, mtime, mode)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, output)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
