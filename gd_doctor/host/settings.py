"""What the user told gd-doctor about how to reach the host's services."""

from __future__ import annotations

from dataclasses import field
from typing import Mapping, Optional

from gd_doctor.frozen import dataclass


@dataclass(frozen=True)
class HostSettings:
    """What the user said about the host and how to reach its services: the one place for
    ``--imds-endpoint``, ``--region`` and ``--endpoint-url`` (the network checks read the last
    two as ``ctx.host.settings``).

    ``env`` is the environment gd-doctor itself was started with; it is where
    ``AWS_EC2_METADATA_SERVICE_ENDPOINT``, ``AWS_EC2_METADATA_DISABLED``, ``AWS_CA_BUNDLE`` and
    ``REQUESTS_CA_BUNDLE`` are read from. It is never printed: it may hold secrets.
    """

    imds_endpoint: Optional[str] = None
    region: Optional[str] = None
    endpoint_url: Optional[str] = None
    env: Mapping[str, str] = field(default_factory=dict)
