"""The host-access layer: the only code in gd-doctor that touches the machine.

Each port is a small interface handed to the checks inside one :class:`Host` value; there are no
module-level clients, so tests build a Host from fakes. With ``--root`` nothing live is mixed in:
commands, IMDS, the network and processes are ``Unavailable`` ports, and the checks that need them
are skipped with the reason ``UNAVAILABLE_WITH_ROOT``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from gd_doctor.host import imds as imds_mod
from gd_doctor.host import journal as journal_mod
from gd_doctor.host import net as net_mod
from gd_doctor.host import procs as procs_mod
from gd_doctor.host.clock import Clock, SystemClock
from gd_doctor.host.commands import CommandRunner, SubprocessRunner, UnavailableRunner
from gd_doctor.host.fs import RootFS
from gd_doctor.host.packages import PackageQuery
from gd_doctor.host.platform import Uname
from gd_doctor.host.settings import HostSettings
from gd_doctor.host.units import UnitResolver

ROOT_REASON = "analysing a root directory (--root), not the live host"


@dataclass(frozen=True)
class Host:
    """Everything a check may touch.

    ``units`` answers "what is the effective unit" (host/units.py) and ``packages`` "is this
    package installed" (host/packages.py); both read through ``fs`` and cache per run.
    """

    fs: RootFS
    run: CommandRunner
    journal: journal_mod.JournalSource
    imds: imds_mod.ImdsClient
    net: net_mod.Network
    procs: procs_mod.ProcessTable
    clock: Clock
    units: UnitResolver
    packages: PackageQuery
    live: bool = True
    euid: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    settings: HostSettings = field(default_factory=HostSettings)
    # What the kernel's uname said, when not this machine's (a bundle's replay); None: ask the
    # live kernel when live (host/platform.py)
    uname: Optional[Uname] = None

    def close(self) -> None:
        """The end of the run: kill every command still running (and its children), refuse
        new ones. Test fakes without ``close`` are left alone."""
        for port in (self.run, self.journal):
            close = getattr(port, "close", None)
            if callable(close):
                close()

    @classmethod
    def live_host(cls, settings: HostSettings) -> Host:
        """The machine gd-doctor runs on."""
        runner = SubprocessRunner()
        fs = RootFS(Path("/"))
        return cls(
            fs=fs,
            run=runner,
            journal=journal_mod.live_journal(runner),
            imds=imds_mod.live_imds(settings),
            net=net_mod.live_network(settings),
            procs=procs_mod.live_processes(),
            clock=SystemClock(),
            units=UnitResolver(fs),
            packages=PackageQuery(fs, runner, live=True),
            live=True,
            euid=os.geteuid(),
            env=dict(settings.env),
            settings=settings,
        )

    @classmethod
    def from_root(cls, root: Path, settings: HostSettings) -> Host:
        """A mounted or captured root filesystem: files and journal files only."""
        fs = RootFS(root)
        runner = UnavailableRunner(ROOT_REASON)
        # This machine's own tools, for the root's files only: journalctl --file reads the
        # (confined) journal files it is given; rpm may read the root's Berkeley DB database
        # (--dbpath, bdb_ro). One runner, so Host.close() ends whatever either started.
        tools = SubprocessRunner()
        return cls(
            fs=fs,
            run=runner,
            journal=journal_mod.root_journal(fs, tools),
            imds=imds_mod.UnavailableImds(ROOT_REASON),
            net=net_mod.UnavailableNetwork(ROOT_REASON),
            procs=procs_mod.UnavailableProcesses(ROOT_REASON),
            clock=SystemClock(),
            units=UnitResolver(fs),
            packages=PackageQuery(fs, runner, live=False, tools=tools),
            live=False,
            euid=os.geteuid(),
            env={},
            settings=settings,
        )
