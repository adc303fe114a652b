"""The secret part of the fault summary: every format in every source, the leaks (must be 0).

    python -m tests.faults.secrets_summary          # prints "secrets planted N, leaked 0 ..."

:func:`secrets_summary` is what the overall fault summary calls. It runs the whole matrix (every
format of ``secret_formats.ROWS`` alone in every source, through ``run_doctor`` and the four
renderers), the command line on one root holding all of them (stdout, stderr and ``--output``
for each format), and, as the control, the same matrix with redaction switched off: the
secrets that then reach an output are the ones the redactor is actually keeping back.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from gd_doctor.cli import main
from tests.faults import planting
from tests.faults.secret_formats import ROWS

CLI_VARIANTS = (
    ("text",), ("text", "--verbose"), ("json",), ("ssm",), ("ssm", "--verbose"),
)  # fmt: skip


def _matrix(base: Path, *, redaction: bool) -> Dict[str, Any]:
    planted = shown = 0
    leaks: List[Dict[str, str]] = []
    by_source: Dict[str, Dict[str, int]] = {}
    for source in planting.SOURCES:
        counts = by_source.setdefault(source, {"planted": 0, "shown": 0, "leaked": 0})
        rows = [r for r in ROWS if planting.applicable(r, source)]
        for n, row in enumerate(rows):
            canary, marked = planting.with_canary(row, n, source)
            root = base / f"{source}-{n}-{int(redaction)}"
            host = planting.planted_host(root, marked, source)
            with contextlib.ExitStack() as stack:
                if not redaction:
                    stack.enter_context(planting.redaction_disabled())
                outputs = planting.render_all(host)
            found = planting.leaks(row, outputs)
            planted += 1
            counts["planted"] += 1
            if any(canary in text for text in outputs.values()):
                shown += 1
                counts["shown"] += 1
            if found:
                counts["leaked"] += 1
                leaks += [{"format": row.id, "source": source, "output": o} for o, _ in found]
    return {"planted": planted, "shown": shown, "leaked": len({(x["format"], x["source"])
            for x in leaks}), "leaks": leaks, "by_source": by_source}  # fmt: skip


def _cli(base: Path) -> Dict[str, Any]:
    root = planting.capture_root(base / "capture")
    leaks: List[Dict[str, str]] = []
    for n, variant in enumerate(CLI_VARIANTS):
        report = base / f"report-{n}.json"
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(["check", "--root", str(root), "--output", str(report), "--no-color",
                      "--format", *variant])  # fmt: skip
            except SystemExit:
                pass
        outputs = {
            "stdout": out.getvalue(),
            "stderr": err.getvalue(),
            "--output": report.read_text(encoding="utf-8") if report.exists() else "",
        }
        leaks += [{"format": r.id, "variant": " ".join(variant), "output": o}
                  for r in ROWS for o, _ in planting.leaks(r, outputs)]  # fmt: skip
    return {"runs": len(CLI_VARIANTS), "outputs": 3 * len(CLI_VARIANTS), "leaks": leaks}


def secrets_summary(*, control: bool = True) -> Dict[str, Any]:
    """Figures of the secret fault suite; ``leaked`` and ``cli_leaked`` must be 0.

    ``planted``: (format, source) cases run; ``shown``: cases whose planted line reached an
    output (its canary is there); ``control_reached``: cases whose secret reaches an output
    when redaction is switched off (``None`` without the control run).
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gd-doctor-secrets-") as tmp:
        base = Path(tmp)
        matrix = _matrix(base, redaction=True)
        cli = _cli(base)
        reached = _matrix(base, redaction=False)["leaked"] if control else None
    return {
        "formats": len(ROWS),
        "sources": len(planting.SOURCES),
        "planted": matrix["planted"],
        "shown": matrix["shown"],
        "leaked": matrix["leaked"],
        "leaks": matrix["leaks"],
        "by_source": matrix["by_source"],
        "cli_runs": cli["runs"],
        "cli_outputs": cli["outputs"],
        "cli_leaked": len(cli["leaks"]),
        "cli_leaks": cli["leaks"],
        "control_reached": reached,
        "seconds": round(time.monotonic() - started, 1),
    }


def format_summary(s: Dict[str, Any]) -> str:
    control = (
        f"; without redaction {s['control_reached']} would leak"
        if s["control_reached"] is not None
        else ""
    )
    return (
        f"secrets planted {s['planted']} ({s['formats']} formats x {s['sources']} sources), "
        f"leaked {s['leaked']}; shown in an output {s['shown']}{control}; command line "
        f"{s['cli_runs']} runs, {s['cli_outputs']} outputs, leaked {s['cli_leaked']}"
    )


if __name__ == "__main__":
    import sys

    summary = secrets_summary(control="--no-control" not in sys.argv)
    print(format_summary(summary))
    if "--json" in sys.argv:
        print(json.dumps(summary, indent=2))
    sys.exit(1 if summary["leaked"] or summary["cli_leaked"] else 0)
