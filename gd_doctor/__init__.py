"""gd-doctor: a host doctor for Amazon GuardDuty Runtime Monitoring on EC2 instances.

It runs on the instance, checks what the GuardDuty security agent needs, and names the row of
AWS's documented EC2 coverage-issue table that explains an *Unhealthy* status.
"""

import os as _os

__version__ = "0.1.0"


def knowledge_date() -> str:
    """The date of the newest knowledge file: the ``date`` of every JSON file of the knowledge
    base (its top directory and ``findings/``), read with :mod:`json` alone, so that
    ``--version`` needs no import of the knowledge package. Every report carries it too
    (:func:`gd_doctor.knowledge.knowledge_date`)."""
    import json

    here = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "knowledge")
    dates = []
    for folder in (here, _os.path.join(here, "findings")):
        for name in sorted(_os.listdir(folder)):
            if not name.endswith(".json"):
                continue
            with open(_os.path.join(folder, name), encoding="utf-8") as fh:
                data = json.load(fh)
            if isinstance(data, dict) and "date" in data:
                dates.append(str(data["date"]))
    return max(dates)
