"""gd-doctor: a host doctor for Amazon GuardDuty Runtime Monitoring on EC2 instances.

It runs on the instance, checks what the GuardDuty security agent needs, and names the row of
AWS's documented EC2 coverage-issue table that explains an *Unhealthy* status.
"""

import os as _os
from typing import Any, Callable, Optional

__version__ = "0.1.0"


def knowledge_date(read: Optional[Callable[[str], Any]] = None) -> str:
    """The date of the newest knowledge file: the ``date`` of every JSON file of the knowledge
    base (its top directory and ``findings/``). ``read`` parses one file by its name relative
    to the knowledge directory: :mod:`json` by default, so that ``--version`` needs no import
    of the knowledge package; reports pass the knowledge package's cached reader
    (:func:`gd_doctor.knowledge.knowledge_date`)."""
    import json

    here = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "knowledge")

    def read_json(name: str) -> Any:
        with open(_os.path.join(here, name), encoding="utf-8") as fh:
            return json.load(fh)

    names = [
        f"{folder}{name}"
        for folder in ("", "findings/")
        for name in sorted(_os.listdir(_os.path.join(here, folder)))
        if name.endswith(".json")
    ]
    dated = [(read or read_json)(name) for name in names]
    return max(str(d["date"]) for d in dated if isinstance(d, dict) and "date" in d)
