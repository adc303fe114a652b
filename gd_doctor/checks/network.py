"""The network domain: the path from this instance to GuardDuty's data endpoint.

Its checks live in three modules along the path a request takes, in report order:

* :mod:`gd_doctor.checks.network_names`: the Region and the endpoint names (``network.region``);
* :mod:`gd_doctor.checks.network_dns`: the resolver, DNS and TCP 443 (``network.resolver``,
  ``network.guardduty_dns``, ``network.guardduty_tcp``, ``network.ssm_endpoints``);
* :mod:`gd_doctor.checks.network_tls`: TLS and an AWS answer (``network.guardduty_https``);
* :mod:`gd_doctor.checks.proxy`: the proxy as the agent sees it (``network.proxy``).

With ``--region`` (or ``--endpoint-url``) the DNS, TCP and HTTPS probes start with the run, in
parallel with IMDS, so a black-holed IMDS does not delay them (:mod:`gd_doctor.host.early`).
"""

from __future__ import annotations

from typing import Tuple

from gd_doctor.checks.base import Check
from gd_doctor.checks.network_dns import (
    classify_address,
    classify_nameserver,
    guardduty_dns,
    guardduty_tcp,
    resolver_in_use,
    ssm_endpoints,
)
from gd_doctor.checks.network_names import (
    parallel,
    partition_of,
    region_and_endpoint,
    valid_region,
)
from gd_doctor.checks.network_tls import guardduty_https
from gd_doctor.checks.proxy import proxy_as_agent_sees

__all__ = [
    "CHECKS",
    "classify_address",
    "classify_nameserver",
    "guardduty_dns",
    "guardduty_https",
    "guardduty_tcp",
    "parallel",
    "partition_of",
    "region_and_endpoint",
    "resolver_in_use",
    "ssm_endpoints",
    "valid_region",
]

CHECKS: Tuple[Check, ...] = (
    region_and_endpoint,
    resolver_in_use,
    proxy_as_agent_sees,  # defined in checks/proxy.py; listed here to keep the report's order
    guardduty_dns,
    guardduty_tcp,
    guardduty_https,
    ssm_endpoints,
)
