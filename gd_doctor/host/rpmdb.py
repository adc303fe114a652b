"""The rpm database, read without writing to it (the rpm half of host/packages.py).

* **SQLite database** (rpm 4.16+: Fedora 33+, RHEL 9, Amazon Linux 2023): read directly
  with Python's ``sqlite3`` from ``file:...rpmdb.sqlite?mode=ro&immutable=1``. ``rpm -q`` is not
  used because it writes: rpm 4.18 opens ``rpmdb.sqlite-wal`` and ``rpmdb.sqlite-shm`` with
  ``O_RDWR|O_CREAT`` and creates them when they are missing (seen with strace on this project's
  build machine). ``immutable=1`` makes SQLite open only the database file, read-only, with no
  locks, no journal and no shared memory. The price: changes still in a non-empty
  ``rpmdb.sqlite-wal`` (an rpm transaction running or interrupted) are invisible, so then the
  answer is "unknown" with that reason rather than a possibly stale one. The header blobs are
  parsed by :func:`gd_doctor.parsers.rpm.parse_rpm_header`; on a real Azure Linux database all
  129 packages came out as ``rpm -qa`` prints them.
* **Berkeley DB or NDB database** (Amazon Linux 2, RHEL 7/8, SUSE): there is no pure reader
  here, so rpm itself is asked. With rpm 4.16+ on the machine: ``rpm --dbpath DIR --define
  '_db_backend bdb_ro' -q`` (the read-only Berkeley DB reader, which opens ``Packages`` with
  ``O_RDONLY`` and creates no ``__db.00N`` environment), for a root too (``DIR`` under it). Live
  with an older rpm (Amazon Linux 2 has 4.11): plain ``rpm -q``, which may open its ``__db.00N``
  environment files read-write: the one remaining write, documented rather than hidden. Under
  ``--root`` without a suitable rpm the answer is "unknown: install rpm (4.16 or later) to read
  it".
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple
from urllib.parse import quote

from gd_doctor.frozen import dataclass
from gd_doctor.host import timeouts
from gd_doctor.host.commands import CommandRunner
from gd_doctor.host.fs import RootFS
from gd_doctor.host.package_info import PackageInfo
from gd_doctor.host.rootpath import ConfinedFS, real_path
from gd_doctor.parsers.rpm import RPM_QUERY_FORMAT, parse_rpm_header, parse_rpm_query
from gd_doctor.patterns import lazy

if TYPE_CHECKING:
    import sqlite3

RPM_DB_DIRS: Tuple[str, ...] = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")
MAX_RPM_HEADERS = 100_000
_RPM_VERSION = lazy(r"RPM version (\d+)\.(\d+)")


@dataclass(frozen=True)
class RpmDb:
    """Where the database is (a path in the root) and its format."""

    directory: str  # path in the root
    backend: str  # "sqlite", "bdb", "ndb"


class RpmReader:
    """Answers for one run, cached per package name. ``run`` runs live commands; ``tools``
    runs this machine's rpm against a root's database (None: never)."""

    def __init__(
        self,
        fs: RootFS,
        run: CommandRunner,
        *,
        live: bool,
        tools: Optional[CommandRunner] = None,
        timeout: float = timeouts.COMMAND,
    ) -> None:
        self.root_fs = fs
        self.fs = ConfinedFS(fs)
        self.run = run
        self.live = live
        self.tools = tools
        self.timeout = timeout
        self._lock = threading.Lock()
        self._rpm_cache: Dict[str, PackageInfo] = {}
        self._rpm_version: Optional[Tuple[int, int]] = None
        self._rpm_version_known = False

    def database(self) -> Optional[RpmDb]:
        for d in RPM_DB_DIRS:
            for fname, backend in (
                ("rpmdb.sqlite", "sqlite"),
                ("Packages", "bdb"),
                ("Packages.db", "ndb"),
            ):
                if self.fs.exists(f"{d}/{fname}"):
                    return RpmDb(real_path(self.root_fs, d), backend)
        return None

    def query(self, name: str) -> PackageInfo:
        with self._lock:
            cached = self._rpm_cache.get(name)
        if cached is not None:
            return cached
        db = self.database()
        if db is None:
            info = PackageInfo(name, "rpm", None, problem="no rpm database found")
        elif db.backend == "sqlite":
            info = self._rpm_sqlite(name, db)
        else:
            info = self._rpm_command(name, db)
        with self._lock:
            return self._rpm_cache.setdefault(name, info)

    def _rpm_sqlite(self, name: str, db: RpmDb) -> PackageInfo:
        path = f"{db.directory}/rpmdb.sqlite"
        source = f"{path} (read-only)"
        wal = self.fs.stat(f"{path}-wal")
        if wal is not None and wal.st_size > 0:
            return PackageInfo(
                name,
                "rpm",
                None,
                source=source,
                problem=(
                    f"{path}-wal holds {wal.st_size} bytes not yet written back (an rpm "
                    "transaction is running or was interrupted); gd-doctor reads the database "
                    "read-only and cannot see them"
                ),
            )
        if self.fs.readlink(path) is not None:
            return PackageInfo(
                name, "rpm", None, source=source, problem=f"{path} is a symbolic link: not opened"
            )
        try:
            import sqlite3  # here: a dpkg host never loads it
        except ImportError:  # a Python built without SQLite: rpm itself is asked instead
            return self._rpm_command(name, db)
        uri = "file:" + _uri_path(self.fs.host_path(path)) + "?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.timeout)
            try:
                headers = _rpm_headers(conn, name)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return PackageInfo(
                name, "rpm", None, source=source, problem=f"cannot read {path}: {exc}"
            )
        for blob in headers:
            hdr = parse_rpm_header(blob)
            if hdr is not None and hdr.name == name:
                return PackageInfo(
                    name,
                    "rpm",
                    True,
                    version=hdr.version,
                    release=hdr.release,
                    arch=hdr.arch,
                    source=source,
                )
        return PackageInfo(name, "rpm", False, source=source)

    def _rpm_tool_version(self, runner: CommandRunner) -> Optional[Tuple[int, int]]:
        with self._lock:
            if self._rpm_version_known:
                return self._rpm_version
        res = runner.run(["rpm", "--version"], timeout=self.timeout)
        m = _RPM_VERSION.search(res.stdout) if res.ok else None
        version = (int(m.group(1)), int(m.group(2))) if m else None
        with self._lock:
            self._rpm_version, self._rpm_version_known = version, True
        return version

    def _rpm_command(self, name: str, db: RpmDb) -> PackageInfo:
        runner = self.run if self.live else self.tools
        where = "this machine" if self.live else "the machine gd-doctor runs on"
        if runner is None:
            return PackageInfo(
                name,
                "rpm",
                None,
                problem=(
                    f"unknown: the {db.backend} rpm database in {db.directory} needs rpm to read it"
                ),
            )
        version = self._rpm_tool_version(runner)
        if version is None:
            return PackageInfo(
                name,
                "rpm",
                None,
                problem=(
                    f"unknown: install rpm on {where} to read the rpm database in {db.directory}"
                ),
            )
        argv: List[str] = ["rpm"]
        if version >= (4, 16) and db.backend == "bdb":
            argv += ["--define", "_db_backend bdb_ro"]
        if not self.live:
            if version < (4, 16):
                return PackageInfo(
                    name,
                    "rpm",
                    None,
                    problem=(
                        f"unknown: rpm {version[0]}.{version[1]} here cannot open a root's rpm "
                        "database read-only; install rpm 4.16 or later to read it"
                    ),
                )
            argv += ["--dbpath", self.fs.host_path(db.directory)]
        argv += ["-q", "--qf", RPM_QUERY_FORMAT, name]
        res = runner.run(argv, timeout=self.timeout)
        source = " ".join([*argv[:-4], "-q", name])
        if res.problem is not None:
            return PackageInfo(
                name, "rpm", None, source=source, problem=f"rpm could not run: {res.problem}"
            )
        # rpm says "package X is not installed" even when it could not open the database
        # (seen with rpm 4.18 on a damaged Packages file): its errors decide first.
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        if errors:
            return PackageInfo(
                name,
                "rpm",
                None,
                source=source,
                problem=f"rpm could not read the database: {errors[-1][:200]}",
            )
        pkg = parse_rpm_query(res.stdout)
        if pkg is not None:
            return PackageInfo(
                name,
                "rpm",
                True,
                version=pkg.version,
                release=pkg.release,
                arch=pkg.arch,
                source=source,
            )
        if f"package {name} is not installed" in res.stdout:
            return PackageInfo(name, "rpm", False, source=source)
        detail = (res.stderr or res.stdout).strip().splitlines()[:1]
        return PackageInfo(
            name,
            "rpm",
            None,
            source=source,
            problem=(
                f"rpm could not read the database: {detail[0][:200] if detail else res.returncode}"
            ),
        )


def _uri_path(path: str) -> str:
    """A filesystem path quoted for an SQLite ``file:`` URI (``?`` and ``#`` end the path)."""
    return quote(path, safe="/")


def _rpm_headers(conn: "sqlite3.Connection", name: str) -> List[bytes]:
    """The header blobs that may belong to ``name``: through rpm's ``Name`` index when the
    database has one, else every header (capped)."""
    import sqlite3  # loaded by the caller already

    try:
        rows = conn.execute(
            "SELECT p.blob FROM Packages p JOIN Name n ON n.hnum = p.hnum WHERE n.key = ?",
            (name,),
        ).fetchall()
    except sqlite3.OperationalError:  # no Name index: read them all
        rows = conn.execute("SELECT blob FROM Packages LIMIT ?", (MAX_RPM_HEADERS,)).fetchall()
    return [bytes(r[0]) for r in rows if isinstance(r[0], (bytes, memoryview))]
