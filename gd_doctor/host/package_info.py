"""What the package layer answers about one package."""

from __future__ import annotations

from typing import Optional, Tuple

from gd_doctor.frozen import dataclass


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
