"""The CPU architecture an ELF executable was built for (its ``e_machine`` field).

With ``--root`` there is no ``uname``; the architecture of ``<root>/bin/sh`` is the honest next best
answer. Typical input: the first 20 bytes of Debian 12's ``/bin/sh`` (dash, x86_64)::

    7f 45 4c 46 02 01 01 00  00 00 00 00 00 00 00 00  03 00 3e 00
"""

from __future__ import annotations

import struct
from typing import Optional

# e_machine values (elf.h) -> the names ``uname -m`` prints.
_MACHINES = {
    0x03: "i686",
    0x08: "mips",
    0x14: "ppc",
    0x15: "ppc64",
    0x16: "s390x",
    0x28: "armv7l",
    0x32: "ia64",
    0x3E: "x86_64",
    0xB7: "aarch64",
    0xF3: "riscv64",
    0x102: "loongarch64",
}


def elf_machine(header: bytes) -> Optional[str]:
    """``uname -m``-style name for an ELF header, or None when it is not ELF.

    >>> elf_machine(bytes.fromhex("7f454c46020101000000000000000000" "03003e00"))
    'x86_64'
    >>> elf_machine(bytes.fromhex("7f454c46020101000000000000000000" "0300b700"))
    'aarch64'
    >>> elf_machine(b"#!/bin/sh\\n") is None
    True
    """
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    order = "<" if header[5] == 1 else ">"
    (machine,) = struct.unpack(order + "H", header[18:20])
    return _MACHINES.get(machine, f"elf-machine-{machine:#x}")
