"""Every default timeout of gd-doctor, in seconds, in one place.

Each I/O call in ``gd_doctor.host`` takes an explicit timeout; these are the defaults the checks
use, always clamped to what is left of the run's global budget (``Context.timeout``).
"""

from __future__ import annotations

COMMAND = 5.0  # systemctl, dpkg-query, rpm -q, journalctl
COMMAND_SLOW = 10.0  # rpm -V reads every file of a package
DNS = 1.2  # one getaddrinfo call; see below
TCP_CONNECT = 2.0
TLS_HANDSHAKE = 3.0
HTTPS_REQUEST = 3.0
IMDS_CALL = 1.0  # IMDS answers in milliseconds; the SDKs use 1 s
IMDS_RETRIES = 1
RUN_BUDGET = 20.0  # the whole run (--timeout)
JOURNAL = 8.0  # reading one unit's journal window (journal.Reader or journalctl -o json)
LOG_FILE = 4.0  # reading one agent log file from its end

# Why DNS is 1.2 s: the VPC resolver answers in milliseconds, and glibc resends a lost query
# only after its own timeout (5 s unless resolv.conf says ``options timeout:N``), so a longer
# wait finds nothing a 1.2 s one misses, except a first nameserver that is down with
# ``timeout:1`` (its next server answers by about 1 s). The black-holed case then costs one
# IMDS timeout (1 s) and this one side by side, instead of their sum.
