"""Diagnosis: rules over check results produce findings that name coverage-issue rows."""

from __future__ import annotations

from typing import Tuple

from gd_doctor.diagnosis import agent, imds, network, node, platform, ssm, tool
from gd_doctor.diagnosis.base import Rule

ALL_RULES: Tuple[Rule, ...] = (
    *platform.RULES,
    *imds.RULES,
    *agent.RULES,
    *ssm.RULES,
    *network.RULES,
    *node.RULES,
    *tool.RULES,
)
