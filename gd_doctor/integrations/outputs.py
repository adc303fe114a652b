"""The fleet outputs a run was asked for: checked before any check runs, delivered after."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import List, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.model import Report


@dataclass(frozen=True)
class FleetOutputs:
    """``--inventory``, ``--inventory-dir``, ``--compliance``, ``--emf``, ``--emf-endpoint``,
    ``--emf-file``; all off by default."""

    inventory: bool = False
    inventory_dir: Optional[Path] = None
    compliance: Optional[Path] = None
    emf: bool = False
    emf_endpoint: Optional[str] = None
    emf_file: Optional[Path] = None

    @property
    def any(self) -> bool:
        return bool(
            self.inventory
            or self.inventory_dir
            or self.compliance
            or self.emf
            or self.emf_endpoint
            or self.emf_file
        )


def file_problem(path: Path) -> Optional[str]:
    """Why ``path`` cannot be written as a regular file, or None."""
    try:
        st: Optional[os.stat_result] = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        return f"cannot use {path}: {exc.strerror or exc}"
    if st is not None and not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file (a directory, FIFO, socket or device)"
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"directory {parent} does not exist"
    writable = os.access(parent, os.W_OK | os.X_OK)
    if not writable or (st is not None and not os.access(path, os.W_OK)):
        return f"cannot write {path}: permission denied"
    return None


def problems(outputs: FleetOutputs) -> Optional[Tuple[str, str]]:
    """(option, message) for the first output that cannot work, checked before the run."""
    if outputs.compliance is not None:
        problem = file_problem(outputs.compliance)
        if problem:
            return "--compliance", problem
    if outputs.emf_file is not None:
        problem = file_problem(outputs.emf_file)
        if problem:
            return "--emf-file", problem
    if outputs.emf_endpoint is not None:
        from gd_doctor.integrations import emf

        try:
            emf.parse_endpoint(outputs.emf_endpoint)
        except ValueError as exc:
            return "--emf-endpoint", str(exc)
    if outputs.inventory_dir is not None and not outputs.inventory_dir.is_dir():
        return "--inventory-dir", f"{outputs.inventory_dir} is not a directory"
    return None


def _write_private(path: Path, text: str) -> Optional[str]:
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
        with os.fdopen(os.open(path, flags, 0o600), "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def deliver(report: Report, outputs: FleetOutputs, *, timeout: float = 0.5) -> List[str]:
    """Write or send every requested output; returns one line per output for stderr."""
    # each output's module loads when it is asked for (a plain run asks for none)
    lines: List[str] = []
    if outputs.inventory or outputs.inventory_dir is not None:
        from gd_doctor.integrations import inventory

        done = inventory.write_inventory(report, outputs.inventory_dir)
        lines.append(
            f"inventory: wrote {done.path}"
            if done.path
            else f"inventory: not written: {done.problem}"
        )
    if outputs.compliance is not None:
        from gd_doctor.integrations import compliance

        problem = _write_private(outputs.compliance, compliance.render_items(report))
        lines.append(
            f"compliance: {problem}" if problem else f"compliance: wrote {outputs.compliance}"
        )
    if outputs.emf or outputs.emf_endpoint is not None or outputs.emf_file is not None:
        from gd_doctor.integrations import emf

        line = emf.render_event(report)
        if outputs.emf_file is not None:
            sent = emf.append(line, outputs.emf_file)
            lines.append(f"emf: {sent.problem or f'appended to {outputs.emf_file}'}")
        if outputs.emf or outputs.emf_endpoint is not None:
            where = emf.parse_endpoint(outputs.emf_endpoint) if outputs.emf_endpoint else None
            sent = emf.send(line, where or emf.DEFAULT_ENDPOINT, timeout=timeout)
            lines.append(f"emf: {sent.problem or f'sent over {sent.how}'}")
    return lines
