"""Every knowledge file, and every entry of the lists that grow with AWS's pages, keeps a source
and a date (docs/knowledge.md says how to refresh them)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest

from gd_doctor.knowledge import HERE, knowledge_date

FILES = sorted(p for p in HERE.rglob("*.json") if p.name != "report.schema.json")
# (file, list key, the entry's date key): lists whose every entry names its own source.
ENTRY_LISTS: List[Tuple[str, str, str]] = [
    ("bottlerocket.json", "issues", "date"),
    ("ssm_signatures.json", "signatures", "date"),
    ("timing.json", "notes", "date"),
    ("support_matrix.json", "agent_releases", "checked"),
    ("findings/node.json", "findings", "date"),
    ("findings/ssm_path.json", "findings", "date"),
]
# Sections (dicts) that carry a source and a date of their own.
SECTIONS: List[Tuple[str, str]] = [
    ("bottlerocket.json", "variants"),
    ("bottlerocket.json", "host_container"),
    ("bottlerocket.json", "ecr_registry_accounts"),
    ("bottlerocket.json", "endpoints"),
    ("endpoints.json", "govcloud"),
    ("endpoints.json", "s3_distributor"),
    ("support_matrix.json", "govcloud_min_agent"),
    ("timing.json", "tag_keys"),
    ("findings/node.json", "scopes"),
]
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SOURCE = re.compile(r"https://|github\.com/|docs\.amazonaws|field|public|gd-doctor's own", re.I)


def _load(rel: str) -> Any:
    return json.loads((HERE / rel).read_text(encoding="utf-8"))


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not ISO.match(value):
        return False
    date.fromisoformat(value)
    return True


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(HERE)) for p in FILES])
def test_every_knowledge_file_names_its_source_and_date(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data.get("source"), str) and SOURCE.search(data["source"]), path.name
    assert _is_date(data.get("date")), path.name


def _entries() -> Iterator[Tuple[str, Any, str]]:
    for rel, key, date_key in ENTRY_LISTS:
        for entry in _load(rel)[key]:
            yield rel, entry, date_key


@pytest.mark.parametrize("rel, key, date_key", ENTRY_LISTS)
def test_every_entry_keeps_a_source_and_a_date(rel: str, key: str, date_key: str) -> None:
    entries = _load(rel)[key]
    assert entries, f"{rel}: {key} is empty"
    for entry in entries:
        name = entry.get("id") or entry.get("version")
        assert isinstance(entry.get("source"), str) and SOURCE.search(entry["source"]), name
        assert _is_date(entry.get(date_key)), f"{rel} {name}: {date_key}={entry.get(date_key)!r}"


@pytest.mark.parametrize("rel, section", SECTIONS)
def test_every_section_keeps_a_source_and_a_date(rel: str, section: str) -> None:
    value = _load(rel)[section]
    assert SOURCE.search(value["source"]) and _is_date(value["date"]), f"{rel} {section}"


def test_analogues_are_labelled_and_phrased_as_may() -> None:
    for rel, entry, _ in _entries():
        if entry.get("analogue"):
            text = " ".join(str(entry.get(k, "")) for k in ("meaning", "title", "steps"))
            assert "may" in text and "analogue" in text.lower(), (rel, entry.get("id"))


def test_no_entry_is_dated_after_the_knowledge_date() -> None:
    newest = knowledge_date()
    for rel, entry, date_key in _entries():
        assert entry[date_key] <= newest, (rel, entry.get("id"))


def test_knowledge_md_names_every_file() -> None:
    doc = (HERE.parents[1] / "docs" / "knowledge.md").read_text(encoding="utf-8")
    for path in FILES:
        assert str(path.relative_to(HERE)) in doc, path.name
