"""``fleet summary`` output: text for people, JSON (``summary.schema.json``), CSV per instance."""

from __future__ import annotations

import csv
import json
from typing import IO, Any, Dict, Iterable, List, Mapping, Optional, Sequence

from gd_doctor.fleet.store import Store
from gd_doctor.fleet.values import iso
from gd_doctor.redact import redact, redact_value

# One row per instance; the first eleven columns are the ones issue 16 lists, in its order.
CSV_COLUMNS = (
    "account_id",
    "region",
    "instance_id",
    "console_status",
    "console_issue",
    "host_verdict",
    "top_finding",
    "row",
    "first_fix",
    "report_time",
    "console_row",
    "agreement",
    "stale",
    "console_updated_at",
    "source",
)


def render_json(summary: Mapping[str, Any]) -> str:
    """The summary as indented JSON (secrets redacted, though none should be there)."""
    return json.dumps(redact_value(dict(summary)), indent=2, ensure_ascii=False) + "\n"


def write_csv(store: Store, out: IO[str]) -> int:
    """Stream one row per instance from the store; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    n = 0
    for row in store.iter_rows(
        "SELECT account, region, instance, status, issue, verdict, finding, hrow, fix, ts, "
        "crow, agreement, stale, updated, source FROM j ORDER BY account, region, instance"
    ):
        (
            acct,
            region,
            inst,
            status,
            issue,
            verdict,
            finding,
            hrow,
            fix,
            ts,
            crow,
            agreement,
            stale,
            updated,
            source,
        ) = row
        writer.writerow(
            [
                acct or "",
                region or "",
                inst,
                status or "",
                redact(issue or ""),
                verdict or "",
                finding or "",
                hrow or "",
                redact(fix or ""),
                iso(ts) or "",
                crow or "",
                agreement,
                "yes" if stale else "",
                iso(updated) or "",
                source or "",
            ]
        )
        n += 1
    return n


# ---------------------------------------------------------------------------------------------
# text


def _pct(r: Mapping[str, Any]) -> str:
    if not r["total"]:
        return "-"
    return f"{r['percent']:.1f}% ({r['healthy']}/{r['total']})"


def _row_label(e: Mapping[str, Any], key: str = "row") -> str:
    if e.get(key) and e.get("number"):
        msg = e.get("message") or "(empty message)"
        return f"row {e['number']} {e[key]}: {e['type']}: {msg}"
    if e.get(key):
        return str(e[key])
    issue = e.get("issue")
    return f"unrecognised issue: {issue!r}" if issue is not None else "no row"


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> List[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _section(title: str) -> List[str]:
    return ["", title]


def _coverage_lines(s: Mapping[str, Any]) -> List[str]:
    cov = s["coverage"]
    rows = [["account", "Region", "console", "host reports"]]
    for r in cov["by_account_region"]:
        rows.append(
            [
                r["account_id"] or "unknown",
                r["region"] or "unknown",
                _pct(r["console"]),
                _pct(r["host"]),
            ]
        )
    rows.append(["overall", "", _pct(cov["overall"]["console"]), _pct(cov["overall"]["host"])])
    return _section("Coverage, healthy / all x 100 (as the console computes it):") + _table(rows)


def _fix_line(fix: Optional[str]) -> List[str]:
    return [f"       fix: {redact(fix)[:300]}"] if fix else []


def _issues_lines(s: Mapping[str, Any]) -> List[str]:
    items = s["console_issues"]
    if not items:
        return []
    out = _section("Console issues (Unhealthy EC2 instances), worst first:")
    for e in items:
        out.append(
            f"  {e['count']:>6}  {_row_label(e)}  ({e['with_host_report']} with a host report)"
        )
        out += _fix_line(e["fix"])
    return out


def _causes_lines(s: Mapping[str, Any]) -> List[str]:
    items = s["host_causes"]
    if not items:
        return []
    out = _section("Host causes (latest report per instance, unhealthy or unknown), worst first:")
    for e in items:
        row = f"row {e['number']} {e['row']}" if e["row"] and e["number"] else "no row"
        finding = e["finding"] or "(no finding named)"
        unknown = f", {e['unknown_verdicts']} unknown" if e["unknown_verdicts"] else ""
        out.append(f"  {e['count']:>6}  {finding} [{row}]{unknown}")
        out += _fix_line(e["fix"])
    return out


def _instance_line(i: Mapping[str, Any]) -> str:
    console = i["console_status"] or "-"
    if i["console_row"]:
        console += f" {i['console_row']}"
    host = i["host_verdict"] or "-"
    if i["top_finding"]:
        host += f" {i['top_finding']}"
    if i["host_row"]:
        host += f" ({i['host_row']})"
    where = f"{i['account_id'] or '?'} {i['region'] or '?'}"
    return f"    {i['instance_id']}  {where}  console: {console}  host: {host}"


def _agreement_lines(s: Mapping[str, Any]) -> List[str]:
    groups = s["agreement"]["disagreements"]
    if not groups:
        return []
    total = sum(g["count"] for g in groups)
    out = _section(f"Where the console and the host reports disagree ({total} instances):")
    for g in groups:
        out.append(f"  {g['class']}: {g['count']}")
        out += [_instance_line(i) for i in g["instances"]]
        if g["not_shown"]:
            out.append(f"    ... {g['not_shown']} more (--format csv lists every instance)")
    return out


def _without_lines(s: Mapping[str, Any]) -> List[str]:
    groups = s["without_host_report"]
    if not groups:
        return []
    total = sum(g["count"] for g in groups)
    out = _section(f"Console-unhealthy instances without a host report ({total}), by issue:")
    for g in groups:
        out.append(f"  {g['count']:>6}  {_row_label(g)}")
        ids = " ".join(g["instances"][:10])
        more = g["count"] - min(10, len(g["instances"]))
        out.append(f"          {ids}" + (f" ... {more} more" if more > 0 else ""))
        if g["likely_not_ssm_managed"]:
            out.append(f"          {g['note']}")
        out += _fix_line(g["fix"])
    return out


def _stale_lines(s: Mapping[str, Any]) -> List[str]:
    out: List[str] = []
    st, dup = s["stale"], s["duplicates"]
    if st["count"]:
        out += _section(f"Stale host reports (older than the console's UpdatedAt): {st['count']}")
        out += [_instance_line(i) for i in st["instances"][:20]]
        if st["count"] > 20:
            out.append(f"    ... {st['count'] - 20} more")
    if dup["instances"]:
        out += _section(
            f"Instances with more than one report: {dup['instances']} "
            f"({dup['superseded_reports']} older reports not used; the latest wins)"
        )
        out += [
            f"    {d['instance_id']}: {d['reports']} reports, latest {d['latest_report_time']}"
            for d in dup["examples"][:10]
        ]
    cdup = s["console_duplicates"]
    if cdup["instances"]:
        out.append(
            f"  console: {cdup['instances']} instances listed more than once (events or "
            f"several coverage files; {cdup['superseded_records']} older records not used)"
        )
    return out


def _facts_lines(s: Mapping[str, Any], top: int = 8) -> List[str]:
    out: List[str] = []
    for key, title in (("os", "OS"), ("kernel", "kernel"), ("agent_version", "agent version")):
        items = s["host_facts"][key]
        if not items:
            continue
        out += _section(f"Host reports by {title} (healthy / unhealthy / unknown):")
        rows = [
            [
                str(e["value"] or "unknown"),
                str(e["healthy"]),
                str(e["unhealthy"]),
                str(e["unknown"]),
            ]
            for e in items[:top]
        ]
        out += _table(rows, "    ")
        if len(items) > top:
            out.append(f"    ... {len(items) - top} more")
    return out


def _counts(d: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in d.items()) or "none"


def _inputs_lines(s: Mapping[str, Any]) -> List[str]:
    i = s["inputs"]
    h, c, e = i["host_files"], i["coverage"], i["events"]
    out = _section("Inputs:")
    out.append(
        f"  host files: {h['total']} = {h['reports']} reports ({h['latest']} latest, "
        f"{h['superseded']} superseded) + {sum(h['ignored'].values())} ignored + "
        f"{sum(h['bad'].values())} bad"
    )
    if h["ignored"]:
        out.append(f"    ignored: {_counts(h['ignored'])}")
    if h["bad"]:
        out.append(f"    bad: {_counts(h['bad'])}")
    if i["directories"]["bad"]:
        out.append(f"  directories: {_counts(i['directories']['bad'])}")
    if c["files"]:
        other = sum(c["other"].values())
        out.append(
            f"  coverage: {c['files']} files, {c['resources']} resources = {c['ec2']} EC2 + "
            f"{other} other types + {sum(c['bad'].values())} bad"
        )
        if c["files_bad"]:
            out.append(f"    bad files: {_counts(c['files_bad'])}")
        if c["bad"]:
            out.append(f"    bad resources: {_counts(c['bad'])}")
    if e["files"]:
        out.append(
            f"  events: {e['files']} files, {e['lines']} events = {e['ec2']} EC2 + "
            f"{e['other']} other types + {sum(e['bad'].values())} bad"
        )
        if e["files_bad"]:
            out.append(f"    bad files: {_counts(e['files_bad'])}")
    if s["other_resources"]:
        out.append("  EKS/ECS resources (their own group; troubleshoot with their own tables):")
        out += [
            f"    {o['resource_type']} {o['status'] or '?'} {o['account_id'] or '?'}: {o['count']}"
            for o in s["other_resources"][:20]
        ]
    counts = s["agreement"]["counts"]
    if counts.get("not in console"):
        out.append(
            f"  {counts['not in console']} host reports are for instances the console data "
            "does not list (other account or Region, terminated, or coverage not exported)"
        )
    for ex in i["examples"][:10]:
        detail = f" ({ex['detail']})" if ex["detail"] else ""
        out.append(f"    e.g. {ex['reason']}: {ex['source']}{detail}")
    return out


def render_text(summary: Mapping[str, Any]) -> str:
    """A readable report: coverage, worst groups first with their fix, then the details."""
    s = summary
    overall = s["coverage"]["overall"]
    head = (
        f"gd-doctor fleet summary: console {_pct(overall['console'])} healthy, "
        f"host reports {_pct(overall['host'])} healthy"
    )
    lines: List[str] = [head]
    for w in s["warnings"]:
        lines.append(f"warning: {w}")
    for part in (
        _coverage_lines,
        _issues_lines,
        _causes_lines,
        _agreement_lines,
        _without_lines,
        _stale_lines,
        _facts_lines,
        _inputs_lines,
    ):
        lines += part(s)
    lines.append("")
    lines.append(
        f"gd-doctor {s['tool']['version']}, knowledge {s['tool']['knowledge_date']}; "
        "--format json or csv for every instance"
    )
    return redact("\n".join(lines)) + "\n"


def iter_csv(text: str) -> Iterable[Dict[str, str]]:
    """Read CSV written by :func:`write_csv` back (tests and scripts)."""
    return csv.DictReader(text.splitlines())
