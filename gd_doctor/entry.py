"""The ``gd-doctor`` command's entry point: ``--version`` without loading the CLI framework.

``gd-doctor --version`` is what fleet scripts call to see whether (and which) gd-doctor is
installed, thousands of times across a fleet; it needs the version and the knowledge-base date
only, so it skips importing typer and click (most of the start-up time). Everything else goes
to :func:`gd_doctor.cli.main`.
"""

from __future__ import annotations

import sys
from typing import List, Optional

VERSION_FLAGS = (["--version"], ["-V"])


def main(argv: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in VERSION_FLAGS:
        from gd_doctor import __version__
        from gd_doctor.knowledge import knowledge_date

        sys.stdout.write(f"gd-doctor {__version__} (knowledge base {knowledge_date()})\n")
        sys.exit(0)
    from gd_doctor.cli import main as cli_main

    cli_main(argv)
