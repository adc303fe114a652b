"""Helpers for packaging/build.sh: the version, the changelog, template rendering.

Usage (python3 packaging/pkgtool.py ...):
  version TOPDIR                 print __version__ from TOPDIR/gd_doctor/__init__.py
  changelog-version FILE         print the version of the newest Debian changelog entry
  changelog-epoch FILE           print the newest entry's date as seconds since the epoch
  rpm-changelog FILE             print the Debian changelog as an RPM %changelog body
  render TEMPLATE KEY=VALUE...   print TEMPLATE with each @KEY@ replaced by VALUE

Only the standard library; runs on Python >= 3.9 without importing gd_doctor.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

VERSION_RE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']\s*$""", re.MULTILINE)
HEADER_RE = re.compile(r"^(\S+) \(([^)]+)\) [^;]+; .*$")
TRAILER_RE = re.compile(r"^ -- (.+ <[^>]+>)  (.+)$")


class PkgToolError(Exception):
    """A problem with the inputs, reported as one line."""


@dataclass
class Entry:
    version: str
    author: str = ""
    date: str = ""
    items: list[str] = field(default_factory=list)


def read_version(top: Path) -> str:
    init = top / "gd_doctor" / "__init__.py"
    try:
        text = init.read_text(encoding="utf-8")
    except OSError as e:
        raise PkgToolError(f"cannot read {init}: {e.strerror}") from e
    m = VERSION_RE.search(text)
    if not m:
        raise PkgToolError(f'no __version__ = "X.Y.Z" line in {init}')
    version = m.group(1)
    if not re.fullmatch(r"[0-9][0-9A-Za-z.+~]*", version):
        raise PkgToolError(f"version {version!r} in {init} is not usable in a package version")
    return version


def parse_changelog(path: Path) -> list[Entry]:
    entries: list[Entry] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        header = HEADER_RE.match(line)
        if header:
            entries.append(Entry(version=header.group(2)))
            continue
        if not entries:
            continue
        trailer = TRAILER_RE.match(line)
        if trailer:
            entries[-1].author, entries[-1].date = trailer.group(1), trailer.group(2)
        elif line.startswith("  * "):
            entries[-1].items.append(line[4:].strip())
        elif line.startswith("    ") and entries[-1].items:
            entries[-1].items[-1] += " " + line.strip()
    if not entries or not entries[0].date:
        raise PkgToolError(f"{path}: no complete Debian changelog entry")
    return entries


def rpm_changelog(entries: list[Entry]) -> str:
    out: list[str] = []
    for e in entries:
        when = parsedate_to_datetime(e.date).strftime("%a %b %d %Y")
        out.append(f"* {when} {e.author} - {e.version}-1")
        out.extend(f"- {item}" for item in e.items)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def render(template: Path, pairs: list[str]) -> str:
    text = template.read_text(encoding="utf-8")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise PkgToolError(f"render: expected KEY=VALUE, got {pair!r}")
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise PkgToolError(f"render: {template} still has {', '.join(sorted(set(left)))}")
    return text


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, arg = argv[0], Path(argv[1])
    try:
        if cmd == "version":
            print(read_version(arg))
        elif cmd == "changelog-version":
            print(parse_changelog(arg)[0].version)
        elif cmd == "changelog-epoch":
            print(int(parsedate_to_datetime(parse_changelog(arg)[0].date).timestamp()))
        elif cmd == "rpm-changelog":
            sys.stdout.write(rpm_changelog(parse_changelog(arg)))
        elif cmd == "render":
            sys.stdout.write(render(arg, argv[2:]))
        else:
            print(f"pkgtool: unknown command {cmd!r}", file=sys.stderr)
            return 2
    except PkgToolError as e:
        print(f"pkgtool: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
