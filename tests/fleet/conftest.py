"""One fixture fleet per test session (built from real reports, see fleetkit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fleet.fleetkit import FleetLayout, build


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> FleetLayout:
    return build(tmp_path_factory.mktemp("fleet"))


@pytest.fixture()
def empty_dir(tmp_path: Path) -> Path:
    d = tmp_path / "nothing-synced-yet"
    d.mkdir()
    return d
