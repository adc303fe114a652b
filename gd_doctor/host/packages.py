"""One package query for dpkg, rpm and snap, the same live and under ``--root``.

* **dpkg**: ``/var/lib/dpkg/status`` plus the not yet merged journal files in
  ``/var/lib/dpkg/updates/`` (what ``dpkg-query`` reads too, so reading the files is the same
  answer without a process), read and parsed once per :class:`PackageQuery` and cached.
* **rpm**: see :mod:`gd_doctor.host.rpmdb`: the SQLite database (rpm 4.16+) is read directly
  with ``sqlite3`` in ``immutable`` read-only mode, because ``rpm -q`` creates and opens
  ``rpmdb.sqlite-wal``/``-shm`` for writing; a Berkeley DB database is read by rpm's own
  read-only ``bdb_ro`` backend (rpm 4.16+ on the machine), else "unknown: install rpm".
* **snap**: ``/var/lib/snapd/state.json`` (root-only), the version from
  ``/snap/NAME/current/meta/snap.yaml``; live, ``snap list NAME`` when state.json cannot be read.

"Could not read" (unreadable, over the size cap, a database rpm cannot open) is
``installed=None`` with the reason, never ``False``; ``False`` needs a database that was read.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Set, Tuple

from gd_doctor.host import timeouts
from gd_doctor.host.commands import CommandRunner
from gd_doctor.host.fs import RootFS
from gd_doctor.host.package_info import PackageInfo
from gd_doctor.host.rootpath import ConfinedFS
from gd_doctor.parsers.dpkg_status import DpkgDatabase, DpkgPackage
from gd_doctor.parsers.ssm_state import parse_snap_list, parse_snap_yaml_version

if TYPE_CHECKING:
    from gd_doctor.host.rpmdb import RpmReader

__all__ = ["PackageInfo", "PackageQuery"]

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_UPDATES = "/var/lib/dpkg/updates"
SNAPD_STATE = "/var/lib/snapd/state.json"
MAX_DPKG_BYTES = 64 * 1024 * 1024
MAX_SNAPD_STATE_BYTES = 32 * 1024 * 1024
MAX_DPKG_UPDATES = 1000


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
        self._dpkg: Optional[Tuple[Optional[List[DpkgDatabase]], Optional[str]]] = None
        self._rpm_reader: Optional[RpmReader] = None
        #: every package name asked about in this run (a bundle keeps only their entries)
        self.asked: Set[str] = set()

    def _rpm(self) -> RpmReader:
        """The rpm database's reader, loaded when first asked (with sqlite3 and the rpm
        header parser): most runs look at a dpkg host or at the package names once."""
        if self._rpm_reader is None:
            from gd_doctor.host.rpmdb import RpmReader

            self._rpm_reader = RpmReader(
                self.root_fs, self.run, live=self.live, tools=self.tools, timeout=self.timeout
            )
        return self._rpm_reader

    # --- the combined answer -----------------------------------------------------------------

    def query(self, name: str, managers: Sequence[str] = ("dpkg", "rpm")) -> PackageInfo:
        """Ask every manager in ``managers`` whose database exists here. Installed wins;
        otherwise an unreadable database makes the answer unknown; "not installed" needs
        every existing database read."""
        with self._lock:
            self.asked.add(name)
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
        if len(answers) == 1:  # keep what the one database said (dpkg "rc": config-files)
            return _with(answers[0], consulted=consulted)
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
            return self.rpm(name) if self.has_rpm() else None
        if manager == "snap":
            return self.snap(name) if self.has_snapd() else None
        raise ValueError(f"unknown package manager {manager!r}")

    # --- dpkg ----------------------------------------------------------------------------------

    def has_dpkg(self) -> bool:
        return self.fs.exists(DPKG_STATUS) or self.fs.is_dir(DPKG_UPDATES)

    def _dpkg_database(self) -> Tuple[Optional[List[DpkgDatabase]], Optional[str]]:
        """(the status file, then the journal files of ``updates/`` in numeric order; problem),
        read once. A package's stanza in a later file replaces the earlier ones'."""
        with self._lock:
            if self._dpkg is None:
                self._dpkg = self._read_dpkg()
            return self._dpkg

    def _read_dpkg(self) -> Tuple[Optional[List[DpkgDatabase]], Optional[str]]:
        read = self.fs.read(DPKG_STATUS, MAX_DPKG_BYTES)
        if read.truncated:
            return None, f"{DPKG_STATUS} is larger than {MAX_DPKG_BYTES // (1024 * 1024)} MiB"
        if not read.ok or read.text is None:
            return None, f"cannot read {DPKG_STATUS}: {read.problem}"
        files = [DpkgDatabase(read.text)]
        journal = [n for n in self.fs.listdir(DPKG_UPDATES) or [] if n.isdigit()]
        for fname in sorted(journal, key=int)[:MAX_DPKG_UPDATES]:
            part = self.fs.read(f"{DPKG_UPDATES}/{fname}", MAX_DPKG_BYTES)
            if not part.ok or part.text is None or part.truncated:
                return None, f"cannot read {DPKG_UPDATES}/{fname}: {part.problem or 'too large'}"
            files.append(DpkgDatabase(part.text))
        return files, None

    @staticmethod
    def _dpkg_package(files: Sequence[DpkgDatabase], name: str) -> Optional[DpkgPackage]:
        for db in reversed(files):  # the newest journal file that names the package wins
            pkg = db.get(name)
            if pkg is not None:
                return pkg
        return None

    def dpkg(self, name: str) -> PackageInfo:
        files, problem = self._dpkg_database()
        if files is None:
            return PackageInfo(name, "dpkg", None, problem=problem, source=DPKG_STATUS)
        pkg = self._dpkg_package(files, name)
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

    def has_rpm(self) -> bool:
        return self._rpm().database() is not None

    def rpm(self, name: str) -> PackageInfo:
        return self._rpm().query(name)

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
        if version is not None:
            # /snap/NAME/current is the mounted revision snapd made current: installed, even
            # where state.json is root-only or absent from a copied root
            return PackageInfo(
                name, "snap", True, version=version, source=f"/snap/{name}/current/meta/snap.yaml"
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
