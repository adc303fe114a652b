"""The EC2 instance identity document (``/latest/dynamic/instance-identity/document``).

Typical input (aws/amazon-ec2-metadata-mock default values)::

    {
      "accountId": "0123456789",
      "architecture": "x86_64",
      "availabilityZone": "us-east-1f",
      "instanceId": "i-1234567890abcdef0",
      "instanceType": "m4.xlarge",
      "region": "us-east-1",
      ...
    }
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from gd_doctor.frozen import dataclass
from gd_doctor.parsers.errors import ParseError, loads_json


class IdentityParseError(ParseError):
    """The body is not an identity document; the message says why, for the report."""


@dataclass(frozen=True)
class IdentityDocument:
    """The fields of the identity document gd-doctor uses."""

    instance_id: str
    region: str
    account_id: Optional[str] = None
    instance_type: Optional[str] = None
    architecture: Optional[str] = None
    availability_zone: Optional[str] = None
    private_ip: Optional[str] = None

    def as_data(self) -> Dict[str, Optional[str]]:
        return {
            "instance_id": self.instance_id,
            "region": self.region,
            "account_id": self.account_id,
            "instance_type": self.instance_type,
            "architecture": self.architecture,
            "availability_zone": self.availability_zone,
            "private_ip": self.private_ip,
        }


def _opt_str(doc: Dict[str, Any], key: str) -> Optional[str]:
    value = doc.get(key)
    return value if isinstance(value, str) and value else None


def parse_identity_document(text: str) -> IdentityDocument:
    """Parse the JSON document; raise :class:`IdentityParseError` on anything else.

    >>> doc = parse_identity_document('''{"accountId": "0123456789",
    ...   "imageId": "ami-0b69ea66ff7391e80", "availabilityZone": "us-east-1f",
    ...   "ramdiskId": null, "kernelId": null, "devpayProductCodes": null,
    ...   "marketplaceProductCodes": null, "version": "2017-09-30", "privateIp": "10.0.7.10",
    ...   "billingProducts": null, "instanceId": "i-1234567890abcdef0",
    ...   "pendingTime": "2019-10-31T07:02:24Z", "architecture": "x86_64",
    ...   "instanceType": "m4.xlarge", "region": "us-east-1"}''')
    >>> doc.instance_id, doc.region, doc.account_id, doc.architecture
    ('i-1234567890abcdef0', 'us-east-1', '0123456789', 'x86_64')
    >>> parse_identity_document("<html><body>503</body></html>")
    Traceback (most recent call last):
    ...
    gd_doctor.parsers.imds_identity.IdentityParseError: not JSON (starts with '<html><body>...')
    """
    try:
        doc = loads_json(text)
    except ParseError:
        raise IdentityParseError(f"not JSON (starts with {text[:12] + '...'!r})") from None
    if not isinstance(doc, dict):
        raise IdentityParseError(f"JSON {type(doc).__name__}, not an object")
    instance_id, region = _opt_str(doc, "instanceId"), _opt_str(doc, "region")
    if not instance_id or not region:
        missing = [k for k, v in (("instanceId", instance_id), ("region", region)) if not v]
        raise IdentityParseError(f"missing {', '.join(missing)}")
    return IdentityDocument(
        instance_id=instance_id,
        region=region,
        account_id=_opt_str(doc, "accountId"),
        instance_type=_opt_str(doc, "instanceType"),
        architecture=_opt_str(doc, "architecture"),
        availability_zone=_opt_str(doc, "availabilityZone"),
        private_ip=_opt_str(doc, "privateIp"),
    )
