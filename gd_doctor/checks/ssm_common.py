"""What the two SSM check modules share: the SSM Agent's layout and a few small helpers.

Layout facts: aws/amazon-ssm-agent at commit 1c217c89 (guardduty.md section 10).
:mod:`gd_doctor.checks.ssm` holds the package, unit, registration and management-type checks,
:mod:`gd_doctor.checks.ssm_traces` the log and GuardDuty-trace checks; both import from here, so
neither imports the other's internals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional, Tuple

from gd_doctor.checks.base import Context
from gd_doctor.facts.agent import PackageFacts
from gd_doctor.redact import redact

PACKAGE = "amazon-ssm-agent"
UNIT = "amazon-ssm-agent.service"
SNAP_UNIT = "snap.amazon-ssm-agent.amazon-ssm-agent.service"
SSM_ROOT = "/var/lib/amazon/ssm"
GD_DOCUMENT = "AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin"
GD_PACKAGE = "AmazonGuardDuty-RuntimeMonitoringSsmPlugin"
GD_AGENT_PACKAGE = "amazon-guardduty-agent"
GD_AGENT_UNIT = "amazon-guardduty-agent.service"
GD_AGENT_DIR = "/opt/aws/amazon-guardduty-agent"
EXCERPT = 1000  # a whole log line is the evidence; SDK errors run to ~400 characters

# Appended to a failing SSM check once the GuardDuty agent is installed: then the SSM path only
# matters for GuardDuty's automated updates, and in manual mode not at all.
NOT_BLOCKING = "; the GuardDuty agent is already installed, so this does not block its coverage"


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """One line of host text, shortened and redacted."""
    text = " ".join(text.split())
    return redact(text if len(text) <= limit else text[: limit - 1] + "…")


def iso(dt: Optional[datetime]) -> Optional[str]:
    return dt.isoformat(timespec="seconds") if dt else None


def needs_root(ctx: Context, problem: Optional[str]) -> bool:
    return problem == "permission denied" and ctx.host.euid != 0


def unit_file(ctx: Context, unit: str) -> Optional[str]:
    """The unit file systemd would load for that name (host/units.py), None when none."""
    return ctx.host.units.resolve(unit).fragment_path


def _gd_agent_from_files(ctx: Context) -> Optional[bool]:
    """When agent.package did not run: the package layer (its databases are read once per run),
    the unit file or the install directory."""
    info = ctx.host.packages.query(GD_AGENT_PACKAGE, ("dpkg", "rpm"))
    if info.installed:
        return True
    if unit_file(ctx, GD_AGENT_UNIT) or ctx.host.fs.is_dir(GD_AGENT_DIR):
        return True
    # a database read that lists no such package is an answer; an unreadable one is not
    return info.installed


def guardduty_agent(ctx: Context) -> Tuple[Optional[bool], str]:
    """Whether the GuardDuty agent is installed, and where that came from.

    The caller must declare ``reads=(PackageFacts,)``.
    """
    pkg = ctx.facts(PackageFacts)
    if pkg is not None and pkg.installed is not None:
        return pkg.installed, "agent.package"
    return _gd_agent_from_files(ctx), "files"
