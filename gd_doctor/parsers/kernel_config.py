"""Kernel build configuration (``/boot/config-<release>``, ``/proc/config.gz`` once unpacked).

Typical input (Debian 12, ``/boot/config-6.1.0-26-amd64``)::

    CONFIG_BPF=y
    CONFIG_BPF_SYSCALL=y
    CONFIG_DEBUG_INFO_BTF=y
    CONFIG_KPROBES=y
    # CONFIG_BPF_PRELOAD is not set

``# CONFIG_X is not set`` is recorded as ``"n"``; options never mentioned are absent.
"""

from __future__ import annotations

from typing import Dict

from gd_doctor.patterns import lazy

_SET = lazy(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = lazy(r"^# (CONFIG_[A-Za-z0-9_]+) is not set\s*$")


def parse_kernel_config(text: str) -> Dict[str, str]:
    """Options by name: ``"y"``, ``"m"``, ``"n"`` or the raw value (quotes kept off).

    >>> cfg = parse_kernel_config('''CONFIG_BPF=y
    ... CONFIG_BPF_SYSCALL=y
    ... CONFIG_DEBUG_INFO_BTF=y
    ... CONFIG_KPROBES=y
    ... # CONFIG_BPF_PRELOAD is not set
    ... CONFIG_LOCALVERSION=""
    ... ''')
    >>> cfg["CONFIG_DEBUG_INFO_BTF"], cfg["CONFIG_BPF_PRELOAD"], cfg["CONFIG_LOCALVERSION"]
    ('y', 'n', '')
    >>> parse_kernel_config("\\x00\\x01garbage")
    {}
    """
    options: Dict[str, str] = {}
    # the compiled methods, looked up once for the ~10,000 lines of a distribution's config
    set_line, unset_line = _SET.compiled().match, _UNSET.compiled().match
    for line in text.splitlines():
        line = line.strip()
        # Each pattern needs its literal start: comments, blank lines and a set option's line
        # skip the other pattern (a third of the lines are "# CONFIG_X is not set").
        if line[:7] == "CONFIG_":
            m = set_line(line)
            if m:
                options[m.group(1)] = m.group(2).strip().strip('"')
        elif line[:9] == "# CONFIG_":
            m = unset_line(line)
            if m:
                options[m.group(1)] = "n"
    return options
