"""Diagnosis: rules over check results produce findings that name coverage-issue rows."""

from __future__ import annotations

from typing import Tuple

from gd_doctor.diagnosis import (
    agent,
    clock,
    imds,
    network,
    node,
    platform,
    security,
    ssm,
    ssm_install,
    tool,
)
from gd_doctor.diagnosis.base import Rule

ALL_RULES: Tuple[Rule, ...] = (
    *platform.RULES,
    *clock.RULES,
    *security.RULES,
    *imds.RULES,
    *agent.RULES,
    *ssm.RULES,
    *ssm_install.RULES,
    *network.RULES,
    *node.RULES,
    *tool.RULES,
)
