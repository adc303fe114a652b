"""Running the shipped Athena (Trino) SQL in DuckDB, over the same JSON files, changed minimally.

Athena cannot run here, so the tests execute the very files under ``gd_doctor/fleet/athena/``.
What differs, and how each difference is bridged (nothing else in the SQL is touched):

1. ``CREATE EXTERNAL TABLE ... ROW FORMAT SERDE ... LOCATION`` has no DuckDB form: each table
   becomes a view over ``read_json`` whose ``columns`` are the DDL's columns with the Hive types
   translated (``string`` -> VARCHAR, ``struct<a:t>`` -> STRUCT(a t), ``array<t>`` -> t[]), over
   the files the LOCATION would hold; ``PARTITIONED BY`` columns come from the ``key=value``
   directories (``hive_partitioning``).
2. Athena's ``"$path"`` pseudo-column is DuckDB's ``filename`` column (``filename=true``).
3. The JSON SerDe matches keys case-insensitively (its default); DuckDB does not, so the
   coverage lines are written with lower-case keys (the same values).
4. The SerDe's ``ignore.malformed.json`` skips the non-JSON files under the Run Command prefix
   (stderr, ``--format ssm`` text); DuckDB is given only the files that hold JSON.
5. Trino functions DuckDB lacks or spells differently are defined as DuckDB macros with Trino's
   meaning: ``element_at(array, i)``, ``regexp_like``, ``from_iso8601_timestamp``, and
   ``regexp_replace`` (Trino replaces every match, DuckDB only the first unless 'g'); Trino's
   ``x -> expr`` lambdas are switched on with ``SET lambda_syntax``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Tuple

ATHENA = Path(__file__).resolve().parents[2] / "gd_doctor" / "fleet" / "athena"

_DDL = re.compile(
    r"CREATE EXTERNAL TABLE IF NOT EXISTS (\w+) \((.*?)\)\s*(?:PARTITIONED BY \((.*?)\))?\s*ROW FORMAT",
    re.S,
)


def split_top(text: str, sep: str = ",") -> List[str]:
    """Split at ``sep`` outside ``<...>`` and ``(...)``."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse_ddl(sql: str) -> Tuple[str, List[Tuple[str, str]], List[Tuple[str, str]]]:
    """(table, columns, partition columns) of a CREATE EXTERNAL TABLE, comments removed."""
    body = "\n".join(line.split("--")[0] for line in sql.splitlines())
    m = _DDL.search(body)
    assert m, "not a CREATE EXTERNAL TABLE"

    def cols(text: str) -> List[Tuple[str, str]]:
        return [tuple(c.split(None, 1)) for c in split_top(text)]  # type: ignore[misc]

    return m.group(1), cols(m.group(2)), cols(m.group(3)) if m.group(3) else []


def hive_to_duckdb(t: str) -> str:
    t = t.strip()
    low = t.lower()
    if low.startswith("struct<"):
        fields = split_top(t[7:-1])
        return (
            "STRUCT("
            + ", ".join(
                f"{f.split(':', 1)[0]} {hive_to_duckdb(f.split(':', 1)[1])}" for f in fields
            )
            + ")"
        )
    if low.startswith("array<"):
        return hive_to_duckdb(t[6:-1]) + "[]"
    return {
        "string": "VARCHAR",
        "int": "INTEGER",
        "bigint": "BIGINT",
        "double": "DOUBLE",
        "boolean": "BOOLEAN",
    }[low]


def hive_fields(t: str) -> Dict[str, str]:
    """The fields of a ``struct<...>`` (or of the struct inside ``array<struct<...>>``)."""
    t = t.strip()
    if t.lower().startswith("array<"):
        return hive_fields(t[6:-1])
    if not t.lower().startswith("struct<"):
        return {}
    return {f.split(":", 1)[0]: f.split(":", 1)[1] for f in split_top(t[7:-1])}


def connect() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    con.execute("CREATE MACRO element_at(l, i) AS list_extract(l, i)")
    con.execute("CREATE MACRO regexp_like(s, p) AS regexp_matches(s, p)")
    con.execute("CREATE MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)")
    # Trino's regexp_replace replaces every match; DuckDB's only the first without 'g'.
    con.execute("CREATE MACRO regexp_replace(s, p, r) AS system.main.regexp_replace(s, p, r, 'g')")
    return con


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def create_table(con: Any, ddl_file: str, files: Sequence[Path]) -> List[Tuple[str, str]]:
    """Adaptation 1: the table as a view over ``read_json`` of ``files``."""
    name, columns, partitions = parse_ddl((ATHENA / "tables" / ddl_file).read_text())
    cols = (
        "{" + ", ".join(f"{_literal(c)}: {_literal(hive_to_duckdb(t))}" for c, t in columns) + "}"
    )
    paths = "[" + ", ".join(_literal(str(p)) for p in files) + "]"
    hive = ""
    if partitions:
        types = ", ".join(f"{_literal(c)}: {_literal(hive_to_duckdb(t))}" for c, t in partitions)
        hive = f", hive_partitioning = true, hive_types = {{{types}}}"
    con.execute(
        f"CREATE VIEW {name} AS SELECT * FROM read_json({paths}, columns = {cols}, "
        f"filename = true, format = 'auto'{hive})"
    )
    return columns


def run_sql_file(con: Any, relpath: str) -> List[Dict[str, Any]]:
    """Adaptation 2 applied, then the file executed as it is; rows of its last statement."""
    sql = (ATHENA / relpath).read_text().replace('"$path"', "filename")
    cur = con.execute(sql)
    if cur.description is None:
        return []
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def json_files(paths: Iterable[Path]) -> List[Path]:
    """Adaptation 4: the files under the prefix that hold JSON."""
    out = []
    for top in paths:
        for p in sorted(top.rglob("*")):
            if p.is_file() and p.read_bytes()[:1] == b"{":
                out.append(p)
    return out


def lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


def coverage_lines(files: Sequence[Tuple[str, Path]], dest: Path) -> List[Path]:
    """``jq -c '.Resources[]'`` per Region into ``region=R/`` (adaptation 3: lower-case keys)."""
    out = []
    for n, (region, path) in enumerate(files):
        target = dest / f"region={region}" / f"coverage-{n}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        doc = json.loads(path.read_text())
        target.write_text(
            "".join(json.dumps(lower_keys(r)) + "\n" for r in doc["Resources"]), encoding="utf-8"
        )
        out.append(target)
    return out
