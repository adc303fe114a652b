"""Checks of the network domain."""

from __future__ import annotations

from typing import Tuple

from gd_doctor.checks.base import Check

CHECKS: Tuple[Check, ...] = ()
