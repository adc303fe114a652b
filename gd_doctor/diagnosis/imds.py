"""Diagnosis rules over the imds checks."""

from __future__ import annotations

from typing import Tuple

from gd_doctor.diagnosis.base import Rule

RULES: Tuple[Rule, ...] = ()
