"""The ``gd-doctor`` command's entry point: ``--version`` without loading the CLI framework.

``gd-doctor --version`` is what fleet scripts call to see whether (and which) gd-doctor is
installed, thousands of times across a fleet; it needs the version and the knowledge-base date
only, so it imports neither typer and click (most of the start-up time) nor the knowledge
package (dataclasses, pathlib): it reads the dates of the knowledge files with :mod:`json`
alone (the same reading serves every report). Everything else goes to
:func:`gd_doctor.cli.main`.
"""

from __future__ import annotations

import gc
import sys
from typing import List, Optional

VERSION_FLAGS = (["--version"], ["-V"])
# The cyclic collector's generation 0 runs every 700 allocations by default; a run creates its
# modules, classes and knowledge once and keeps them, and frees what else it makes by reference
# counting, so most collections walk the same live objects for nothing (about 2 % of a run).
# Collections still run, every GC_THRESHOLD allocations, so cyclic garbage stays bounded.
GC_THRESHOLD = (100_000, 20, 20)


def main(argv: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in VERSION_FLAGS:
        from gd_doctor import __version__, knowledge_date

        sys.stdout.write(f"gd-doctor {__version__} (knowledge base {knowledge_date()})\n")
        sys.exit(0)
    gc.set_threshold(*GC_THRESHOLD)
    from gd_doctor.cli import main as cli_main

    cli_main(argv)
