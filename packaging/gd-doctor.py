"""Entry point installed as /usr/lib/gd-doctor/gd-doctor.py; /usr/bin/gd-doctor runs it."""

import os
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[0:0] = [_here, os.path.join(_here, "vendor")]

from gd_doctor.entry import main  # noqa: E402

sys.exit(main())
