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


def _switch(description: str) -> dict[str, Any]:
    """An on/off parameter, off by default."""
    return {
        "type": "String",
        "description": description,
        "default": "false",
        "allowedValues": ["false", "true"],
        "interpolationType": "ENV_VAR",
    }


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
        "description": "Optional. Install or upgrade gd-doctor first, with the .deb or .rpm "
        "and the architecture that fit each instance, from an s3:// prefix holding the "
        "packages as built (needs the AWS CLI on the instance and s3:ListBucket/s3:GetObject "
        "for its instance profile), from an https:// base URL holding them and their "
        "SHA256SUMS, or from an https:// URL of one package ending in .deb or .rpm (e.g. a "
        "pre-signed S3 URL). Empty: use the installed gd-doctor.",
        "default": "",
        "allowedPattern": "^((s3|https)://[^'\\s]{1,2000})?$",
        "interpolationType": "ENV_VAR",
    },
    "inventory": _switch(
        "Also write the verdict as the SSM custom inventory item Custom:GdDoctor "
        "(gd-doctor --inventory), which the AWS-GatherSoftwareInventory association collects "
        "and Resource Data Sync gathers into S3."
    ),
    "compliance": _switch(
        "Also report the verdict and every finding to SSM Compliance as Custom:GdDoctor "
        "(gd-doctor --compliance, then 'aws ssm put-compliance-items'; needs the AWS CLI on the "
        "instance and ssm:PutComplianceItems for its instance profile; without the AWS CLI the "
        "step says so and the items are not uploaded)."
    ),
    "emf": _switch(
        "Also send one CloudWatch Embedded Metric Format event (namespace GdDoctor, metric "
        "Unhealthy) to the CloudWatch agent on 127.0.0.1:25888 (gd-doctor --emf)."
    ),
    "failOnUnhealthy": _switch(
        "true: problems found (gd-doctor exit 1) fail the invocation. false (default): only "
        "gd-doctor's own failure does, so --max-errors is not reached by unhealthy instances."
    ),
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
        "this instance is Unhealthy. installGdDoctor optionally installs the .deb or .rpm that "
        "fits the instance. runGdDoctor prints the compact result (verdict first) and fails "
        "only when gd-doctor itself failed or is not installed (exit 3) or was misused (2); "
        "problems found (gd-doctor exit 1) fail it only with failOnUnhealthy=true. "
        "publishReport prints the full JSON report (account, Region, instance id), which Run "
        "Command's S3 output keeps in full under "
        "<prefix>/<command-id>/<instance-id>/awsrunShellScript/publishReport/stdout.",
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
