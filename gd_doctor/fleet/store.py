"""Per-instance records in a private temporary SQLite database, so memory stays flat.

``sqlite3.connect("")`` opens a temporary on-disk database that SQLite deletes when it is
closed; with a small page cache, 100,000 instances cost the same memory as 10. Every roll-up of
:mod:`.summary` is a query over three tables built by :meth:`Store.finish`:

* ``host``: the latest report per instance (``n`` = how many reports it had);
* ``cov``: the latest console record per EC2 instance (ListCoverage or a status event);
* ``j``: both joined instance by instance (a full outer join), with the agreement class.

Bad and ignored inputs and EKS/ECS resources are only counted (bounded counters with a few
examples each), never stored.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from gd_doctor.fleet.model import (
    BadInput,
    CoverageRecord,
    HostRecord,
    Ignored,
    IgnoredFile,
    Kind,
    OtherResource,
)

EXAMPLES = 5  # example paths kept per bad-input reason
_BATCH = 2000
_PREF = {Kind.RUN_COMMAND_JSON: 0, Kind.JSON: 0, Kind.INVENTORY: 1}  # text reports come last

_SCHEMA = """
CREATE TABLE reports (rid INTEGER PRIMARY KEY, instance TEXT, account TEXT, region TEXT,
  ts REAL, verdict TEXT, finding TEXT, row TEXT, rows TEXT, fix TEXT, os TEXT, kernel TEXT,
  agent TEXT, kind TEXT, source TEXT, invocation TEXT, pref INTEGER);
CREATE TABLE coverage (cid INTEGER PRIMARY KEY, instance TEXT, account TEXT, region TEXT,
  status TEXT, issue TEXT, row TEXT, updated REAL, mgmt TEXT, agent TEXT, itype TEXT,
  kind TEXT, source TEXT);
"""

# The agreement class of one instance; the text report and the CSV use these words.
AGREEMENT_SQL = """
CASE
  WHEN status IS NULL THEN 'not in console'
  WHEN verdict IS NULL THEN 'no host report'
  WHEN status = 'HEALTHY' AND verdict = 'healthy' THEN 'agree'
  WHEN status = 'HEALTHY' AND verdict = 'unhealthy' THEN 'console healthy, host unhealthy'
  WHEN status = 'HEALTHY' THEN 'console healthy, host unknown'
  WHEN verdict = 'healthy' THEN 'console unhealthy, host healthy'
  WHEN verdict = 'unknown' THEN 'console unhealthy, host unknown'
  WHEN crow IS NOT NULL AND instr(hrows, ',' || crow || ',') > 0 THEN 'agree'
  ELSE 'rows differ'
END
"""

_FINISH = f"""
CREATE INDEX reports_inv ON reports(instance, invocation);
DELETE FROM reports WHERE invocation IS NOT NULL AND EXISTS (
  SELECT 1 FROM reports q WHERE q.instance = reports.instance
    AND q.invocation = reports.invocation
    AND (q.pref < reports.pref OR (q.pref = reports.pref AND q.rid < reports.rid)));
CREATE INDEX reports_ts ON reports(instance, ts);
CREATE TABLE host AS
  SELECT r.*, (SELECT COUNT(*) FROM reports q WHERE q.instance = r.instance) AS n
  FROM reports r
  WHERE r.rid = (SELECT q.rid FROM reports q WHERE q.instance = r.instance
                 ORDER BY q.ts IS NULL, q.ts DESC, q.pref, q.source DESC LIMIT 1);
CREATE UNIQUE INDEX host_i ON host(instance);
CREATE INDEX coverage_i ON coverage(instance, updated);
CREATE TABLE cov AS
  SELECT c.*, (SELECT COUNT(*) FROM coverage q WHERE q.instance = c.instance) AS n
  FROM coverage c
  WHERE c.cid = (SELECT q.cid FROM coverage q WHERE q.instance = c.instance
                 ORDER BY q.updated IS NULL, q.updated DESC, q.kind = 'event', q.cid DESC LIMIT 1);
CREATE UNIQUE INDEX cov_i ON cov(instance);
CREATE TABLE j0 AS
  SELECT c.instance AS instance, COALESCE(c.account, h.account) AS account,
         COALESCE(c.region, h.region) AS region, c.status AS status, c.issue AS issue,
         c.row AS crow, c.updated AS updated, c.mgmt AS mgmt, c.kind AS ckind, c.n AS cn,
         h.verdict AS verdict, h.finding AS finding, h.row AS hrow, h.rows AS hrows,
         h.fix AS fix, h.ts AS ts, h.os AS os, h.kernel AS kernel,
         COALESCE(h.agent, c.agent) AS agent, h.kind AS hkind, h.source AS source, h.n AS hn
  FROM cov c LEFT JOIN host h ON h.instance = c.instance
  UNION ALL
  SELECT h.instance, h.account, h.region, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         h.verdict, h.finding, h.row, h.rows, h.fix, h.ts, h.os, h.kernel, h.agent, h.kind,
         h.source, h.n
  FROM host h WHERE NOT EXISTS (SELECT 1 FROM cov c WHERE c.instance = h.instance);
CREATE TABLE j AS
  SELECT j0.*, {AGREEMENT_SQL} AS agreement,
         (ts IS NOT NULL AND updated IS NOT NULL AND ts < updated) AS stale
  FROM j0;
DROP TABLE j0;
"""


class Store:
    """Collects records as the readers stream them; :meth:`finish` builds the joined view."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("")
        for pragma in (
            "PRAGMA cache_size=-2048",  # 2 MiB of pages, then SQLite spills to its temp file
            "PRAGMA journal_mode=OFF",
            "PRAGMA synchronous=OFF",
            "PRAGMA temp_store=FILE",
        ):
            self.db.execute(pragma)
        self.db.executescript(_SCHEMA)
        self._reports: List[Tuple[Any, ...]] = []
        self._coverage: List[Tuple[Any, ...]] = []
        self.bad: Counter[Tuple[str, str]] = Counter()  # (what, reason)
        self.examples: Dict[Tuple[str, str], List[Tuple[str, str]]] = {}
        self.ignored: Counter[str] = Counter()
        self.other: Counter[Tuple[str, str, str]] = Counter()  # (type, status, account)
        self.other_examples: Dict[str, List[str]] = {}
        self.counts: Counter[str] = Counter()
        self.finished = False

    # -- adding -------------------------------------------------------------------------------

    def add_host(self, item: Any) -> None:
        if isinstance(item, HostRecord):
            self.counts["host_files"] += 1
            self.counts["host_records"] += 1
            self._reports.append(
                (
                    item.instance_id,
                    item.account_id,
                    item.region,
                    item.time,
                    item.verdict,
                    item.finding,
                    item.row,
                    "," + ",".join(item.rows) + "," if item.rows else ",",
                    item.fix,
                    item.os,
                    item.kernel,
                    item.agent_version,
                    item.kind,
                    item.source,
                    item.invocation,
                    _PREF.get(item.kind, 2),
                )
            )
            if len(self._reports) >= _BATCH:
                self._flush()
        elif isinstance(item, IgnoredFile):
            self.counts["host_files"] += 1
            self.ignored[item.reason] += 1
        elif isinstance(item, BadInput):
            if item.what == "file":
                self.counts["host_files"] += 1
            else:
                self.counts["host_dirs_bad"] += 1
            self._bad(item)

    def add_coverage(self, item: Any) -> None:
        if isinstance(item, CoverageRecord):
            self.counts[f"{item.kind}_ec2"] += 1
            self._coverage.append(
                (
                    item.instance_id,
                    item.account_id,
                    item.region,
                    item.status,
                    item.issue,
                    item.row,
                    item.updated,
                    item.management_type,
                    item.agent_version,
                    item.instance_type,
                    item.kind,
                    item.source,
                )
            )
            if len(self._coverage) >= _BATCH:
                self._flush()
        elif isinstance(item, OtherResource):
            self.counts[f"{item.kind}_other"] += 1
            self.other[(item.resource_type, item.status, item.account_id or "")] += 1
            ex = self.other_examples.setdefault(item.resource_type, [])
            if len(ex) < EXAMPLES:
                ex.append(item.resource_id)
        elif isinstance(item, BadInput):
            self._bad(item)

    def _bad(self, item: BadInput) -> None:
        key = (item.what, item.reason)
        self.bad[key] += 1
        ex = self.examples.setdefault(key, [])
        if len(ex) < EXAMPLES:
            ex.append((item.source, item.detail))

    def _flush(self) -> None:
        if self._reports:
            self.db.executemany(
                "INSERT INTO reports (instance, account, region, ts, verdict, finding, row, "
                "rows, fix, os, kernel, agent, kind, source, invocation, pref) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                self._reports,
            )
            self._reports.clear()
        if self._coverage:
            self.db.executemany(
                "INSERT INTO coverage (instance, account, region, status, issue, row, updated, "
                "mgmt, agent, itype, kind, source) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                self._coverage,
            )
            self._coverage.clear()

    def fill_region(self, region: str) -> None:
        """Give console records without a Region the only Region the host reports name."""
        self._flush()
        self.db.execute("UPDATE coverage SET region = ? WHERE region IS NULL", (region,))

    def report_regions(self) -> List[str]:
        self._flush()
        return [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT region FROM reports WHERE region IS NOT NULL ORDER BY 1"
            )
        ]

    def finish(self) -> None:
        """Pick the latest record per instance and join both views."""
        self._flush()
        before = self.scalar("SELECT COUNT(*) FROM reports")
        self.db.executescript(_FINISH)
        after = self.scalar("SELECT COUNT(*) FROM reports")
        if before - after:
            self.ignored[Ignored.OTHER_STEP] += before - after
        self.counts["host_records"] = after
        self.finished = True

    # -- reading ------------------------------------------------------------------------------

    def rows(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        return list(self.db.execute(sql, params))

    def iter_rows(self, sql: str, params: Sequence[Any] = ()) -> Iterable[Tuple[Any, ...]]:
        return self.db.execute(sql, params)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.db.execute(sql, params).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.db.close()


def one(values: Iterable[Optional[str]]) -> Optional[str]:
    """The single non-empty value of ``values``, or None when there are none or several."""
    found = {v for v in values if v}
    return found.pop() if len(found) == 1 else None
