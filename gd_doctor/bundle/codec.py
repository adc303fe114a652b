"""JSON forms of the live ports' answers, redacted on the way out.

Every string a port answered passes the report's redactor before it is stored; mappings that
come from the host (journal fields, environments, headers) go through ``redact_value``, so a
secret-named key is masked whole. Field names of gd-doctor's own dataclasses are never redacted
(``used_token`` is a flag, not a token).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Type, TypeVar

from gd_doctor.bundle.kinds import Tally
from gd_doctor.host.commands import CommandResult
from gd_doctor.host.imds import ImdsReply
from gd_doctor.host.journal import JournalEntry
from gd_doctor.host.net import DnsAnswer, HttpsProbe, TcpResult
from gd_doctor.host.procs import ProcessInfo
from gd_doctor.redact import redact, redact_value

T = TypeVar("T")
Scrub = Callable[[str], str]

ANSWER_TYPES: Dict[str, Type[Any]] = {
    "command": CommandResult,
    "imds": ImdsReply,
    "journal-entry": JournalEntry,
    "dns": DnsAnswer,
    "tcp": TcpResult,
    "https": HttpsProbe,
    "process": ProcessInfo,
}


def _scrub_map(value: Mapping[str, Any], scrub: Scrub) -> Dict[str, Any]:
    masked = redact_value(dict(value))
    return {str(k): scrub(v) if isinstance(v, str) else v for k, v in masked.items()}


def _encode_value(value: Any, scrub: Scrub, tally: Optional[Tally]) -> Any:
    if isinstance(value, str):
        return scrub(tally.redact(value) if tally is not None else redact(value))
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, Mapping):
        if tally is not None:
            return tally.redact_map(value, scrub)
        return _scrub_map(value, scrub)
    if isinstance(value, (tuple, list)):
        return [_encode_value(v, scrub, tally) for v in value]
    return value


def encode(obj: Any, scrub: Scrub = lambda s: s, tally: Optional[Tally] = None) -> Dict[str, Any]:
    """A dataclass answer as a JSON-safe dict, every host string redacted (then ``scrub``);
    ``tally`` counts the masks by kind."""
    return {
        f.name: _encode_value(getattr(obj, f.name), scrub, tally) for f in dataclasses.fields(obj)
    }


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__datetime__"}:
        return datetime.fromisoformat(str(value["__datetime__"]))
    if isinstance(value, list):
        return tuple(_decode_value(v) for v in value)
    return value


def decode(kind: str, data: Any) -> Optional[Any]:
    """The answer of ``kind`` from its JSON form; None when the form does not fit (a tampered
    or foreign bundle: the port then answers "not recorded")."""
    cls = ANSWER_TYPES.get(kind)
    if cls is None or not isinstance(data, dict):
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: _decode_value(v) for k, v in data.items() if k in names}
    for f in dataclasses.fields(cls):
        if f.name in ("fields", "environ", "cert", "headers") and isinstance(
            kwargs.get(f.name), dict
        ):
            kwargs[f.name] = {str(k): str(v) for k, v in kwargs[f.name].items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError):
        return None


def decode_list(kind: str, items: Any) -> List[Any]:
    if not isinstance(items, list):
        return []
    return [d for d in (decode(kind, i) for i in items) if d is not None]
