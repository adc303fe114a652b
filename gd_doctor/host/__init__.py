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
from typing import Mapping

from gd_doctor.host import imds as imds_mod
from gd_doctor.host import journal as journal_mod
from gd_doctor.host import net as net_mod
from gd_doctor.host import procs as procs_mod
from gd_doctor.host.clock import Clock, SystemClock
from gd_doctor.host.commands import CommandRunner, SubprocessRunner, UnavailableRunner
from gd_doctor.host.fs import RootFS
from gd_doctor.host.settings import HostSettings

ROOT_REASON = "analysing a root directory (--root), not the live host"


@dataclass(frozen=True)
class Host:
    """Everything a check may touch."""

    fs: RootFS
    run: CommandRunner
    journal: journal_mod.JournalSource
    imds: imds_mod.ImdsClient
    net: net_mod.Network
    procs: procs_mod.ProcessTable
    clock: Clock
    live: bool = True
    euid: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    settings: HostSettings = field(default_factory=HostSettings)

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
        return cls(
            fs=RootFS(Path("/")),
            run=runner,
            journal=journal_mod.live_journal(runner),
            imds=imds_mod.live_imds(settings),
            net=net_mod.live_network(settings),
            procs=procs_mod.live_processes(),
            clock=SystemClock(),
            live=True,
            euid=os.geteuid(),
            env=dict(settings.env),
            settings=settings,
        )

    @classmethod
    def from_root(cls, root: Path, settings: HostSettings) -> Host:
        """A mounted or captured root filesystem: files and journal files only."""
        fs = RootFS(root)
        return cls(
            fs=fs,
            run=UnavailableRunner(ROOT_REASON),
            # journalctl --file only reads the (confined) journal files it is given
            journal=journal_mod.root_journal(fs, SubprocessRunner()),
            imds=imds_mod.UnavailableImds(ROOT_REASON),
            net=net_mod.UnavailableNetwork(ROOT_REASON),
            procs=procs_mod.UnavailableProcesses(ROOT_REASON),
            clock=SystemClock(),
            live=False,
            euid=os.geteuid(),
            env={},
            settings=settings,
        )
