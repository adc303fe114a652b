"""The ``gd-doctor`` command's entry point: ``--version`` without loading the CLI framework.

``gd-doctor --version`` is what fleet scripts call to see whether (and which) gd-doctor is
installed, thousands of times across a fleet; it needs the version and the knowledge-base date
only, so it imports neither typer and click (most of the start-up time) nor the knowledge
package (dataclasses, pathlib): it reads the three dated files with :mod:`json` alone, as
:func:`gd_doctor.knowledge.knowledge_date` does. Everything else goes to
:func:`gd_doctor.cli.main`.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

VERSION_FLAGS = (["--version"], ["-V"])
# The dated files of the knowledge base (gd_doctor.knowledge.knowledge_date reads the same).
DATED_FILES = ("coverage_issues.json", "support_matrix.json", "log_signatures.json")


def knowledge_date() -> str:
    """The date of the newest knowledge file, without importing the knowledge package."""
    import json

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "knowledge")
    dates = []
    for name in DATED_FILES:
        path = os.path.join(here, name)
        if name != DATED_FILES[0] and not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as fh:
            dates.append(str(json.load(fh)["date"]))
    return max(dates)


def main(argv: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in VERSION_FLAGS:
        from gd_doctor import __version__

        sys.stdout.write(f"gd-doctor {__version__} (knowledge base {knowledge_date()})\n")
        sys.exit(0)
    from gd_doctor.cli import main as cli_main

    cli_main(argv)
