"""Put the Run Command document into the CloudFormation template's AWS::SSM::Document.

  python3 packaging/fleet/make_template.py          rewrite gd-doctor-fleet.yaml's Content
  python3 packaging/fleet/make_template.py --check  fail if it differs from gd-doctor-run.json

packaging/ssm/gd-doctor-run.json (itself generated from the step scripts) is the source. The
template keeps it as JSON, which is YAML too, between the BEGIN/END generated marker comments;
the rest of the template is written by hand.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "gd-doctor-fleet.yaml"
DOCUMENT = HERE.parent / "ssm" / "gd-doctor-run.json"
BLOCK = re.compile(
    r"(?P<indent>[ ]*)# BEGIN generated from packaging/ssm/gd-doctor-run.json\n"
    r".*?"
    r"(?P=indent)# END generated\n",
    re.DOTALL,
)


def render(template: str, document: dict[str, object]) -> str:
    m = BLOCK.search(template)
    if m is None:
        raise SystemExit(f"{TEMPLATE}: no BEGIN/END generated markers")
    indent = m.group("indent")
    body = json.dumps(document, indent=2, ensure_ascii=False).splitlines()
    lines = [
        f"{indent}# BEGIN generated from packaging/ssm/gd-doctor-run.json",
        f"{indent}Content:",
        *(f"{indent}  {line}" for line in body),
        f"{indent}# END generated",
    ]
    return template[: m.start()] + "\n".join(lines) + "\n" + template[m.end() :]


def main(argv: list[str]) -> int:
    current = TEMPLATE.read_text(encoding="utf-8")
    text = render(current, json.loads(DOCUMENT.read_text(encoding="utf-8")))
    if argv[:1] == ["--check"]:
        if current != text:
            print(f"{TEMPLATE} is out of date: run python3 {__file__}", file=sys.stderr)
            return 1
        return 0
    TEMPLATE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
