"""pytest configuration for the real-systemd harness tests.

The markers are also registered in pyproject.toml; registering them here as well keeps
``pytest tests/harness`` warning-free on its own.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "container: needs root and a real systemd container (cached debootstrap root)"
    )
