"""Helpers for the SSM tests: fixture texts and small host trees of the SSM Agent's layout."""

from __future__ import annotations

from typing import Dict, Union

from tests.hostkit import FIXTURES

SSM = FIXTURES / "ssm"
INSTANCE = "i-0abcd1234ef567890"
SSM_ROOT = "/var/lib/amazon/ssm"
PKG_DIR = f"{SSM_ROOT}/packages/AmazonGuardDuty-RuntimeMonitoringSsmPlugin"
AGENT_LOG = "/var/log/amazon/ssm/amazon-ssm-agent.log"
ERRORS_LOG = "/var/log/amazon/ssm/errors.log"

DPKG_SSM = """Package: amazon-ssm-agent
Status: install ok installed
Priority: optional
Section: admin
Installed-Size: 118030
Maintainer: Amazon.com, Inc. <ec2-ssm-feedback@amazon.com>
Architecture: amd64
Version: 3.3.1142.0-1
Description: Amazon SSM Agent
 Agent to enable remote management of your Amazon instances.

"""
DPKG_GD = """Package: amazon-guardduty-agent
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 1.7.1
Description: Amazon GuardDuty security agent

"""


def text(rel: str) -> str:
    return (SSM / rel).read_text(encoding="utf-8")


def ec2_tree(**extra: Union[str, bytes]) -> Dict[str, Union[str, bytes]]:
    """A deb-installed, EC2-registered SSM Agent; add files with ``extra``."""
    files: Dict[str, Union[str, bytes]] = {
        "/var/lib/dpkg/status": DPKG_SSM,
        "/usr/bin/amazon-ssm-agent": "",
        "/lib/systemd/system/amazon-ssm-agent.service": "[Service]\n",
        f"{SSM_ROOT}/{INSTANCE}/document/state/current/.keep": "",
        f"{SSM_ROOT}/{INSTANCE}/document/orchestration/.keep": "",
        f"{SSM_ROOT}/Vault/Store/.keep": "",
    }
    files.update(extra)
    return files
