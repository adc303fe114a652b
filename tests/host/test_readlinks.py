"""RootFS.readlinks (one directory, opened once) answers as RootFS.readlink does per entry, and
the unit layer's alias map built from it is built once even when units resolve in parallel."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from gd_doctor.host.fs import RootFS
from gd_doctor.host.units import UnitResolver

UNITS = "/etc/systemd/system"


def _root(tmp_path: Path) -> Path:
    d = tmp_path / UNITS.lstrip("/")
    d.mkdir(parents=True)
    (d / "real.service").write_text("[Service]\nExecStart=/bin/true\n")
    os.symlink("real.service", d / "alias.service")
    os.symlink("/dev/null", d / "masked.service")
    os.symlink("../../../outside", d / "escape.service")  # the target is text, never followed
    (d / "sub.d").mkdir()
    return tmp_path


def test_readlinks_matches_readlink_entry_by_entry(tmp_path: Path) -> None:
    fs = RootFS(_root(tmp_path))
    names = [
        "real.service",
        "alias.service",
        "masked.service",
        "escape.service",
        "sub.d",
        "missing.service",
        "..",
        "a/b",
    ]
    expected = {n: fs.readlink(f"{UNITS}/{n}") for n in names if "/" not in n and n != ".."}
    assert fs.readlinks(UNITS, names) == {n: t for n, t in expected.items() if t is not None}
    assert fs.readlinks(UNITS, names)["alias.service"] == "real.service"
    assert fs.readlinks("/no/such/dir", names) == {}


def test_the_alias_map_is_built_once_for_parallel_resolutions(tmp_path: Path) -> None:
    resolver = UnitResolver(RootFS(_root(tmp_path)))
    builds = []
    build = resolver._build_alias_map

    def counted() -> dict:  # type: ignore[type-arg]
        builds.append(1)
        return build()

    resolver._build_alias_map = counted  # type: ignore[method-assign]
    threads = [threading.Thread(target=resolver.resolve, args=(n,)) for n in ("real", "alias")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(builds) == 1
    assert "alias.service" in resolver.resolve("real").aliases
