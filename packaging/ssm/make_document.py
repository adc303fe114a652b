"""Generate gd-doctor-run.json, the Run Command document, from the step scripts beside it.

  python3 packaging/ssm/make_document.py          write gd-doctor-run.json
  python3 packaging/ssm/make_document.py --check  fail if gd-doctor-run.json is out of date

The scripts (install.sh, run.sh, report.sh) are the source: they are shellchecked as files,
and each becomes the "runCommand" line list of one aws:runShellScript step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCUMENT = HERE / "gd-doctor-run.json"

# Characters that are safe inside the single quotes the scripts use on agents too old to pass
# parameters as SSM_<name> environment variables (interpolationType ENV_VAR).
PARAMETERS: dict[str, dict[str, Any]] = {
    "format": {
        "type": "String",
        "description": "Output format printed by the run step: ssm (compact, verdict first, "
        "at most 2,500 characters), text or json. The full JSON report is always published "
        "by the publishReport step.",
        "default": "ssm",
        "allowedValues": ["ssm", "text", "json"],
        "interpolationType": "ENV_VAR",
    },
    "timeout": {
        "type": "String",
        "description": "Time budget for gd-doctor in seconds (1-600).",
        "default": "120",
        "allowedPattern": "^([1-9][0-9]?|[1-5][0-9][0-9]|600)$",
        "interpolationType": "ENV_VAR",
    },
    "extraArguments": {
        "type": "String",
        "description": "More arguments for 'gd-doctor check', e.g. '--since 6h --verbose' or "
        "'--skip network'. Letters, digits, spaces and _ . , : = / + - only.",
        "default": "",
        "allowedPattern": "^[A-Za-z0-9_.,:=/+ -]{0,400}$",
        "interpolationType": "ENV_VAR",
    },
    "installFrom": {
        "type": "String",
        "description": "Optional. Install or upgrade gd-doctor first from an s3:// prefix "
        "holding the .deb/.rpm packages as built (needs the AWS CLI on the instance and "
        "s3:GetObject/s3:ListBucket for its instance profile) or from an https:// URL of one "
        "package (e.g. a pre-signed S3 URL). Empty: use the installed gd-doctor.",
        "default": "",
        "allowedPattern": "^((s3|https)://[^'\\s]{1,2000})?$",
        "interpolationType": "ENV_VAR",
    },
    "bundle": {
        "type": "String",
        "description": "Optional step makeBundle: write a redacted support bundle "
        "('gd-doctor bundle'): never, unhealthy (only when the verdict is not healthy) or always.",
        "default": "never",
        "allowedValues": ["never", "unhealthy", "always"],
        "interpolationType": "ENV_VAR",
    },
    "bundleUpload": {
        "type": "String",
        "description": "Optional. An s3:// prefix the bundle is uploaded to with the AWS CLI "
        "(needs s3:PutObject for the instance profile). Empty: the bundle stays in "
        "/var/lib/gd-doctor on the instance.",
        "default": "",
        "allowedPattern": "^(s3://[A-Za-z0-9._/-]{1,1000})?$",
        "interpolationType": "ENV_VAR",
    },
}

STEPS = [
    ("installGdDoctor", "install.sh", 300, {}),
    ("runGdDoctor", "run.sh", 900, {}),
    ("makeBundle", "bundle.sh", 900, {}),
    ("publishReport", "report.sh", 60, {"finallyStep": True}),
]


def script_lines(name: str) -> list[str]:
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return lines[1:] if lines and lines[0].startswith("#!") else lines


def build() -> dict[str, Any]:
    steps = []
    for step_name, script, timeout, extra in STEPS:
        step: dict[str, Any] = {
            "action": "aws:runShellScript",
            "name": step_name,
            "precondition": {"StringEquals": ["platformType", "Linux"]},
            "inputs": {"timeoutSeconds": str(timeout), "runCommand": script_lines(script)},
        }
        step["inputs"].update(extra)
        steps.append(step)
    return {
        "schemaVersion": "2.2",
        "description": "Run gd-doctor to explain why GuardDuty Runtime Monitoring coverage of "
        "this instance is Unhealthy. runGdDoctor prints the compact result (verdict first) and "
        "returns gd-doctor's exit code: 0 no problem found, 1 problems found, 2 usage error, "
        "3 gd-doctor failed or is not installed. publishReport prints the full JSON report, "
        "which Run Command's S3 output keeps in full.",
        "parameters": PARAMETERS,
        "mainSteps": steps,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv[:1] == ["--check"]:
        current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
        if current != text:
            print(f"{DOCUMENT} is out of date: run python3 {__file__}", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
