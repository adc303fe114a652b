"""Is this machine an EC2 instance? Judged from DMI and hypervisor files only, never guessed.

Inputs (``/sys/devices/virtual/dmi/id/*`` on a Nitro instance, values as EC2 publishes them in the
EC2 User Guide, "Identify EC2 Linux instances")::

    sys_vendor       Amazon EC2
    bios_vendor      Amazon EC2
    board_asset_tag  i-0123456789abcdef0
    product_name     m5.large

Older Xen instances show ``sys_vendor`` ``Xen`` and ``bios_version`` ``4.11.amazon``, and
``/sys/hypervisor/uuid`` starts with ``ec2``.
"""

from __future__ import annotations

from typing import List, Mapping, NamedTuple, Optional, Tuple

from gd_doctor.patterns import lazy

_INSTANCE_ID = lazy(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
EC2_VENDOR = "amazon ec2"
# Vendors that name another platform outright: evidence that this is not EC2.
_OTHER_VENDORS = (
    "qemu",
    "vmware",
    "microsoft corporation",
    "google",
    "innotek",
    "oracle corporation",
    "red hat",
    "openstack",
    "digitalocean",
    "hetzner",
    "alibaba",
    "tencent",
    "parallels",
    "dell",
    "hewlett",
    "hp",
    "lenovo",
    "supermicro",
    "asus",
    "gigabyte",
    "intel corporation",
    "firecracker",
)


class Ec2Evidence(NamedTuple):
    """``is_ec2``: True / False when evidence says so, None when it cannot be told."""

    is_ec2: Optional[bool]
    for_ec2: Tuple[str, ...] = ()
    against_ec2: Tuple[str, ...] = ()
    seen: Tuple[Tuple[str, str], ...] = ()


def judge_ec2(values: Mapping[str, Optional[str]]) -> Ec2Evidence:
    """Weigh DMI and hypervisor values (file name -> stripped content, None when unreadable).

    Keys: ``sys_vendor``, ``bios_vendor``, ``bios_version``, ``board_asset_tag``,
    ``product_name``, ``hypervisor_uuid``, ``product_uuid``.

    >>> judge_ec2({"sys_vendor": "Amazon EC2", "board_asset_tag": "i-0123456789abcdef0"}).is_ec2
    True
    >>> judge_ec2({"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}).is_ec2
    False
    >>> judge_ec2({"sys_vendor": "Xen", "bios_version": "4.11.amazon"}).is_ec2
    True
    >>> judge_ec2({"sys_vendor": "Xen"}).is_ec2 is None
    True
    >>> judge_ec2({}).is_ec2 is None
    True
    """
    seen = tuple((k, v) for k, v in values.items() if v)
    get = {k: (v or "").strip() for k, v in values.items()}
    pro: List[str] = []
    con: List[str] = []
    for key in ("sys_vendor", "bios_vendor"):
        val = get.get(key, "")
        if val.lower() == EC2_VENDOR:
            pro.append(f"{key} is {val!r}")
        elif val and any(val.lower().startswith(o) for o in _OTHER_VENDORS):
            con.append(f"{key} is {val!r}")
    tag = get.get("board_asset_tag", "")
    if _INSTANCE_ID.match(tag):
        pro.append(f"board_asset_tag is an instance id ({tag})")
    if "amazon" in get.get("bios_version", "").lower():
        pro.append(f"bios_version is {get['bios_version']!r}")
    if get.get("hypervisor_uuid", "").lower().startswith("ec2"):
        pro.append("/sys/hypervisor/uuid starts with 'ec2'")
    if get.get("product_uuid", "").lower().startswith("ec2"):
        pro.append("product_uuid starts with 'ec2'")
    if pro:
        return Ec2Evidence(True, tuple(pro), tuple(con), seen)
    if con:
        return Ec2Evidence(False, (), tuple(con), seen)
    return Ec2Evidence(None, (), (), seen)
