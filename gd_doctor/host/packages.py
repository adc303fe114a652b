"""One package query for dpkg, rpm and snap, the same live and under ``--root``.

* **dpkg**: ``/var/lib/dpkg/status`` plus the not yet merged journal files in
  ``/var/lib/dpkg/updates/`` (what ``dpkg-query`` reads too, so reading the files is the same
  answer without a process), read and parsed once per :class:`PackageQuery` and cached.
* **rpm, SQLite database** (rpm 4.16+: Fedora 33+, RHEL 9, Amazon Linux 2023): read directly
  with Python's ``sqlite3`` from ``file:...rpmdb.sqlite?mode=ro&immutable=1``. ``rpm -q`` is not
  used because it writes: rpm 4.18 opens ``rpmdb.sqlite-wal`` and ``rpmdb.sqlite-shm`` with
  ``O_RDWR|O_CREAT`` and creates them when they are missing (seen with strace on this project's
  build machine). ``immutable=1`` makes SQLite open only the database file, read-only, with no
  locks, no journal and no shared memory. The price: changes still in a non-empty
  ``rpmdb.sqlite-wal`` (an rpm transaction running or interrupted) are invisible, so then the
  answer is "unknown" with that reason rather than a possibly stale one. The header blobs are
  parsed by :func:`gd_doctor.parsers.rpm.parse_rpm_header`; on a real Azure Linux database all
  129 packages came out as ``rpm -qa`` prints them.
* **rpm, Berkeley DB or NDB database** (Amazon Linux 2, RHEL 7/8, SUSE): there is no pure reader
  here, so rpm itself is asked. With rpm 4.16+ on the machine: ``rpm --dbpath DIR --define
  '_db_backend bdb_ro' -q`` (the read-only Berkeley DB reader, which opens ``Packages`` with
  ``O_RDONLY`` and creates no ``__db.00N`` environment), for a root too (``DIR`` under it). Live
  with an older rpm (Amazon Linux 2 has 4.11): plain ``rpm -q``, which may open its ``__db.00N``
  environment files read-write: the one remaining write, documented rather than hidden. Under
  ``--root`` without a suitable rpm the answer is "unknown: install rpm (4.16 or later) to read
  it".
* **snap**: ``/var/lib/snapd/state.json`` (root-only), the version from
  ``/snap/NAME/current/meta/snap.yaml``; live, ``snap list NAME`` when state.json cannot be read.

"Could not read" (unreadable, over the size cap, a database rpm cannot open) is
``installed=None`` with the reason, never ``False``; ``False`` needs a database that was read.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote

try:
    import sqlite3
except ImportError:  # a Python built without SQLite: rpm itself is asked instead
    sqlite3 = None  # type: ignore[assignment]

from gd_doctor.host import timeouts
from gd_doctor.host.commands import CommandRunner
from gd_doctor.host.fs import RootFS
from gd_doctor.host.rootpath import ConfinedFS, real_path
from gd_doctor.parsers.dpkg_status import DpkgPackage, parse_dpkg_database
from gd_doctor.parsers.rpm import RPM_QUERY_FORMAT, parse_rpm_header, parse_rpm_query
from gd_doctor.parsers.ssm_state import parse_snap_list, parse_snap_yaml_version

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_UPDATES = "/var/lib/dpkg/updates"
RPM_DB_DIRS: Tuple[str, ...] = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")
SNAPD_STATE = "/var/lib/snapd/state.json"
MAX_DPKG_BYTES = 64 * 1024 * 1024
MAX_SNAPD_STATE_BYTES = 32 * 1024 * 1024
MAX_DPKG_UPDATES = 1000
MAX_RPM_HEADERS = 100_000
_RPM_VERSION = re.compile(r"RPM version (\d+)\.(\d+)")


@dataclass(frozen=True)
class PackageInfo:
    """One package as one package manager (or all of them, see :meth:`PackageQuery.query`)
    knows it. ``installed`` is None when the database could not be read (``problem`` says
    why); ``False`` only after a database was read and does not hold the package."""

    name: str
    manager: Optional[str]  # "dpkg", "rpm", "snap"; None when no manager answered
    installed: Optional[bool]
    version: Optional[str] = None
    release: Optional[str] = None
    arch: Optional[str] = None
    dpkg_state: Optional[str] = None  # the letters dpkg -l shows: "ii", "iF", "iHR"
    dpkg_status: Optional[str] = None  # "install ok half-configured"
    broken: bool = False  # dpkg: the install did not finish
    problem: Optional[str] = None
    source: Optional[str] = None  # the file or command that answered
    consulted: Tuple[str, ...] = ()  # the managers whose databases were asked

    @property
    def full_version(self) -> Optional[str]:
        if self.version is None:
            return None
        return f"{self.version}-{self.release}" if self.release else self.version


@dataclass(frozen=True)
class _RpmDb:
    directory: str  # path in the root
    backend: str  # "sqlite", "bdb", "ndb"


class PackageQuery:
    """Package lookups for one run. ``run`` runs commands on the live host (Unavailable with
    ``--root``); ``tools`` runs this machine's own rpm against a root's database (None: do not)."""

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
        self._dpkg: Optional[Tuple[Optional[Dict[str, DpkgPackage]], Optional[str]]] = None
        self._rpm_cache: Dict[str, PackageInfo] = {}
        self._rpm_version: Optional[Tuple[int, int]] = None
        self._rpm_version_known = False

    # --- the combined answer -----------------------------------------------------------------

    def query(self, name: str, managers: Sequence[str] = ("dpkg", "rpm")) -> PackageInfo:
        """Ask every manager in ``managers`` whose database exists here. Installed wins;
        otherwise an unreadable database makes the answer unknown; "not installed" needs
        every existing database read."""
        answers = [a for a in (self._ask(m, name) for m in managers) if a is not None]
        consulted = tuple(a.manager for a in answers if a.manager)
        for answer in answers:
            if answer.installed:
                return _with(answer, consulted=consulted)
        unknown = [a for a in answers if a.installed is None]
        if unknown:
            first = unknown[0]
            return _with(first, consulted=consulted)
        if not answers:
            return PackageInfo(
                name,
                None,
                None,
                problem=f"no {' or '.join(managers)} database found",
                consulted=(),
            )
        return PackageInfo(
            name,
            answers[0].manager,
            False,
            consulted=consulted,
            source=", ".join(a.source or "" for a in answers),
        )

    def _ask(self, manager: str, name: str) -> Optional[PackageInfo]:
        if manager == "dpkg":
            return self.dpkg(name) if self.has_dpkg() else None
        if manager == "rpm":
            return self.rpm(name) if self._rpm_db() is not None else None
        if manager == "snap":
            return self.snap(name) if self.has_snapd() else None
        raise ValueError(f"unknown package manager {manager!r}")

    # --- dpkg ----------------------------------------------------------------------------------

    def has_dpkg(self) -> bool:
        return self.fs.exists(DPKG_STATUS) or self.fs.is_dir(DPKG_UPDATES)

    def _dpkg_database(self) -> Tuple[Optional[Dict[str, DpkgPackage]], Optional[str]]:
        """(name -> package, problem), read once: the status file, then the journal files of
        ``updates/`` in numeric order, each stanza replacing the status file's."""
        with self._lock:
            if self._dpkg is None:
                self._dpkg = self._read_dpkg()
            return self._dpkg

    def _read_dpkg(self) -> Tuple[Optional[Dict[str, DpkgPackage]], Optional[str]]:
        read = self.fs.read(DPKG_STATUS, MAX_DPKG_BYTES)
        if read.truncated:
            return None, f"{DPKG_STATUS} is larger than {MAX_DPKG_BYTES // (1024 * 1024)} MiB"
        if not read.ok or read.text is None:
            return None, f"cannot read {DPKG_STATUS}: {read.problem}"
        db = parse_dpkg_database(read.text)
        journal = [n for n in self.fs.listdir(DPKG_UPDATES) or [] if n.isdigit()]
        for fname in sorted(journal, key=int)[:MAX_DPKG_UPDATES]:
            part = self.fs.read(f"{DPKG_UPDATES}/{fname}", MAX_DPKG_BYTES)
            if not part.ok or part.text is None or part.truncated:
                return None, f"cannot read {DPKG_UPDATES}/{fname}: {part.problem or 'too large'}"
            db.update(parse_dpkg_database(part.text))
        return db, None

    def dpkg(self, name: str) -> PackageInfo:
        db, problem = self._dpkg_database()
        if db is None:
            return PackageInfo(name, "dpkg", None, problem=problem, source=DPKG_STATUS)
        pkg = db.get(name)
        if pkg is None or not pkg.installed:
            return PackageInfo(
                name,
                "dpkg",
                False,
                dpkg_state=pkg.abbrev if pkg else None,
                dpkg_status=f"{pkg.want} {pkg.error} {pkg.state}" if pkg else None,
                version=pkg.version if pkg else None,
                source=DPKG_STATUS,
            )
        return PackageInfo(
            name,
            "dpkg",
            True,
            version=pkg.version,
            dpkg_state=pkg.abbrev,
            dpkg_status=f"{pkg.want} {pkg.error} {pkg.state}",
            broken=pkg.broken,
            source=DPKG_STATUS,
        )

    # --- rpm -----------------------------------------------------------------------------------

    def _rpm_db(self) -> Optional[_RpmDb]:
        for d in RPM_DB_DIRS:
            for fname, backend in (
                ("rpmdb.sqlite", "sqlite"),
                ("Packages", "bdb"),
                ("Packages.db", "ndb"),
            ):
                if self.fs.exists(f"{d}/{fname}"):
                    return _RpmDb(real_path(self.root_fs, d), backend)
        return None

    def rpm(self, name: str) -> PackageInfo:
        with self._lock:
            cached = self._rpm_cache.get(name)
        if cached is not None:
            return cached
        db = self._rpm_db()
        if db is None:
            info = PackageInfo(name, "rpm", None, problem="no rpm database found")
        elif db.backend == "sqlite":
            info = self._rpm_sqlite(name, db)
        else:
            info = self._rpm_command(name, db)
        with self._lock:
            return self._rpm_cache.setdefault(name, info)

    def _rpm_sqlite(self, name: str, db: _RpmDb) -> PackageInfo:
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
        if sqlite3 is None:
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

    def _rpm_command(self, name: str, db: _RpmDb) -> PackageInfo:
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

    # --- snap ----------------------------------------------------------------------------------

    def has_snapd(self) -> bool:
        return self.fs.exists(SNAPD_STATE) or self.fs.is_dir("/snap")

    def snap(self, name: str) -> PackageInfo:
        version = None
        yaml = self.fs.read(f"/snap/{name}/current/meta/snap.yaml", 64 * 1024)
        if yaml.ok and yaml.text:
            version = parse_snap_yaml_version(yaml.text)
        read = self.fs.read(SNAPD_STATE, MAX_SNAPD_STATE_BYTES)
        if read.ok and read.text is not None and not read.truncated:
            state = _snapd_snaps(read.text)
            if state is not None:
                installed = name in state
                return PackageInfo(
                    name,
                    "snap",
                    installed,
                    version=version if installed else None,
                    release=state.get(name),
                    source=SNAPD_STATE,
                )
        problem = (
            f"{SNAPD_STATE} is larger than {MAX_SNAPD_STATE_BYTES // (1024 * 1024)} MiB"
            if read.truncated
            else f"cannot read {SNAPD_STATE}: {read.problem or 'not JSON'}"
        )
        if self.live:
            res = self.run.run(["snap", "list", name], timeout=self.timeout)
            if res.problem is None:
                listed = parse_snap_list(res.stdout, name) if res.returncode == 0 else None
                if listed or "no matching snaps installed" in res.stderr:
                    return PackageInfo(
                        name, "snap", listed is not None, version=listed, source="snap list"
                    )
        if read.problem == "missing" and not self.fs.is_dir(f"/snap/{name}"):
            return PackageInfo(name, "snap", False, source=f"/snap/{name}")
        return PackageInfo(name, "snap", None, version=version, problem=problem)


def _with(info: PackageInfo, *, consulted: Tuple[str, ...]) -> PackageInfo:
    return replace(info, consulted=consulted)


def _uri_path(path: str) -> str:
    """A filesystem path quoted for an SQLite ``file:`` URI (``?`` and ``#`` end the path)."""
    return quote(path, safe="/")


def _rpm_headers(conn: "sqlite3.Connection", name: str) -> List[bytes]:
    """The header blobs that may belong to ``name``: through rpm's ``Name`` index when the
    database has one, else every header (capped)."""
    try:
        rows = conn.execute(
            "SELECT p.blob FROM Packages p JOIN Name n ON n.hnum = p.hnum WHERE n.key = ?",
            (name,),
        ).fetchall()
    except sqlite3.OperationalError:  # no Name index: read them all
        rows = conn.execute("SELECT blob FROM Packages LIMIT ?", (MAX_RPM_HEADERS,)).fetchall()
    return [bytes(r[0]) for r in rows if isinstance(r[0], (bytes, memoryview))]


def _snapd_snaps(text: str) -> Optional[Dict[str, Optional[str]]]:
    """Installed snaps in snapd's state.json: name -> current revision; None if not state."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    snaps = data.get("data", {}).get("snaps") if isinstance(data, dict) else None
    if not isinstance(snaps, dict):
        return {} if isinstance(data, dict) and "data" in data else None
    out: Dict[str, Optional[str]] = {}
    for snap_name, info in snaps.items():
        current = info.get("current") if isinstance(info, dict) else None
        out[str(snap_name)] = str(current) if current is not None else None
    return out
