"""The SSM Agent's state on disk and its package records: pure parsers, no I/O.

Read by ``gd_doctor.checks.ssm`` from (aws/amazon-ssm-agent, commit 1c217c89):

* ``/var/lib/amazon/ssm/packages/<name>/installstate``: Distributor's record of a package,
  ``{"name","version","state","time","lastinstalledversion","retrycount"}`` where ``state`` is an
  int enum (``localpackages.InstallState``);
* ``/var/lib/amazon/ssm/<instance-id>/document/state/{pending,current,corrupt}/<id>``: a document
  run (``contracts.DocumentState``: ``DocumentInformation`` and ``InstancePluginsInformation``);
* ``/var/lib/amazon/ssm/registration``: a hybrid activation's ``{"ManagedInstanceID","Region"}``;
* ``/var/lib/dpkg/status`` stanzas, ``snap list`` output, a snap's ``meta/snap.yaml``, and
  ``systemctl show`` ``Key=Value`` output.

Every parser raises :class:`StateParseError` (a ValueError) on input it cannot read, so a check
can tell "corrupt" from "absent".
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.parsers.errors import ParseError, loads_json

# localpackages.InstallState, in declaration order (iota): the value stored in installstate.
INSTALL_STATES: Tuple[str, ...] = (
    "None",
    "Unknown",
    "Failed",
    "Uninstalling",
    "Uninstalled",
    "New",
    "Upgrading",
    "Installing",
    "Installed",
    "RollbackUninstall",
    "RollbackInstall",
    "Updating",
)
INSTALL_IN_PROGRESS = frozenset(
    {
        "Uninstalling",
        "New",
        "Upgrading",
        "Installing",
        "RollbackUninstall",
        "RollbackInstall",
        "Updating",
    }
)
# contracts.ResultStatus values that end a run badly.
FAILED_STATUSES = frozenset({"Failed", "TimedOut", "Cancelled", "Cancelling"})
OUTPUT_EXCERPT = 600


class StateParseError(ParseError):
    """The text is not what the SSM Agent writes there (corrupt, truncated, foreign)."""


def _load_object(text: str) -> Dict[str, Any]:
    try:
        data = loads_json(text)
    except ParseError as exc:
        raise StateParseError(str(exc)) from None
    if not isinstance(data, dict):
        raise StateParseError(f"JSON {type(data).__name__}, not an object")
    return data


def _str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class InstallState:
    """A Distributor package as the SSM Agent recorded it."""

    name: Optional[str]
    version: Optional[str]
    state: str  # a name from INSTALL_STATES, or "state <n>" for a value this table lacks
    state_code: Optional[int]
    time: Optional[str]
    last_installed_version: Optional[str]
    retry_count: Optional[int]

    @property
    def failed(self) -> bool:
        return self.state == "Failed"

    @property
    def installed(self) -> bool:
        return self.state == "Installed"


def parse_installstate(text: str) -> InstallState:
    """Parse an ``installstate`` file.

    Typical input (synthetic, in the shape ``localpackages.PackageInstallState`` marshals)::

        {"name":"AmazonGuardDuty-RuntimeMonitoringSsmPlugin","version":"1.7.2","state":8,
         "time":"2026-11-29T10:01:02.123Z","lastinstalledversion":"","retrycount":0}

    >>> s = parse_installstate('{"name":"AmazonGuardDuty-RuntimeMonitoringSsmPlugin",'
    ...     '"version":"1.7.2","state":8,"time":"2026-11-29T10:01:02Z",'
    ...     '"lastinstalledversion":"","retrycount":0}')
    >>> (s.version, s.state, s.installed)
    ('1.7.2', 'Installed', True)
    >>> parse_installstate('{"state":2,"retrycount":3}').state
    'Failed'
    >>> parse_installstate('{"state":42}').state
    'state 42'
    >>> try:
    ...     parse_installstate('{"name": "trunc')
    ... except StateParseError as exc:
    ...     print(str(exc)[:9])
    not JSON:
    """
    data = _load_object(text)
    raw_state = data.get("state")
    code: Optional[int] = None
    if isinstance(raw_state, bool) or raw_state is None:
        state = "Unknown"
    elif isinstance(raw_state, int):
        code = raw_state
        state = INSTALL_STATES[code] if 0 <= code < len(INSTALL_STATES) else f"state {code}"
    elif isinstance(raw_state, str) and raw_state in INSTALL_STATES:
        state = raw_state
    else:
        state = f"state {raw_state!s:.20}"
    retry = data.get("retrycount")
    return InstallState(
        name=_str(data.get("name")),
        version=_str(data.get("version")),
        state=state,
        state_code=code,
        time=_str(data.get("time")),
        last_installed_version=_str(data.get("lastinstalledversion")),
        retry_count=retry if isinstance(retry, int) and not isinstance(retry, bool) else None,
    )


@dataclass(frozen=True)
class PluginRun:
    """One plugin step of a document run."""

    name: str
    status: Optional[str]
    code: Optional[int]
    output: str  # output, stdout and stderr as recorded, cut to OUTPUT_EXCERPT


@dataclass(frozen=True)
class DocumentRun:
    """A document run as the SSM Agent recorded it in its document state directory."""

    document_name: Optional[str]
    command_id: Optional[str]
    association_id: Optional[str]
    status: Optional[str]
    created: Optional[str]
    plugins: Tuple[PluginRun, ...]

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES or any(
            p.status in FAILED_STATUSES for p in self.plugins
        )

    @property
    def output(self) -> str:
        return " | ".join(p.output for p in self.plugins if p.output)


def _plugin(raw: Any) -> Optional[PluginRun]:
    if not isinstance(raw, dict):
        return None
    raw_result = raw.get("Result")
    result: Dict[str, Any] = raw_result if isinstance(raw_result, dict) else {}
    parts: List[str] = []
    for key in ("Output", "StandardOutput", "StandardError", "Error"):
        value = result.get(key)
        text = value.strip() if isinstance(value, str) else ""
        if text and not any(text in p for p in parts):  # stderr is often inside Output too
            parts.append(text)
    code = result.get("Code")
    return PluginRun(
        name=_str(raw.get("Name")) or _str(result.get("PluginName")) or "?",
        status=_str(result.get("Status")),
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        output=" | ".join(parts)[:OUTPUT_EXCERPT],
    )


def parse_document_state(text: str) -> DocumentRun:
    """Parse a document state file (``contracts.DocumentState`` as JSON).

    Typical input (synthetic, modelled on ``contracts.DocumentState``; no real state file of the
    GuardDuty document has been published)::

        {"DocumentInformation":{"DocumentName":"AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin",
          "AssociationID":"a1b2...","DocumentStatus":"Failed","CreatedDate":"2026-11-29T10:00:00Z"},
         "InstancePluginsInformation":[{"Name":"aws:configurePackage","Result":{"Status":"Failed",
          "Code":1,"Output":"failed to find platform: no manifest found for platform: ..."}}]}

    >>> run = parse_document_state('{"DocumentInformation":{"DocumentName":'
    ...     '"AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin","DocumentStatus":"Failed"},'
    ...     '"InstancePluginsInformation":[{"Name":"aws:configurePackage","Result":'
    ...     '{"Status":"Failed","Code":1,"Output":"no manifest found for platform"}}]}')
    >>> (run.document_name, run.status, run.failed)
    ('AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin', 'Failed', True)
    >>> run.plugins[0].output
    'no manifest found for platform'
    """
    data = _load_object(text)
    info = data.get("DocumentInformation")
    if not isinstance(info, dict):
        raise StateParseError("no DocumentInformation object")
    plugins_raw = data.get("InstancePluginsInformation")
    plugins = tuple(
        p
        for p in (_plugin(x) for x in (plugins_raw if isinstance(plugins_raw, list) else ()))
        if p is not None
    )
    return DocumentRun(
        document_name=_str(info.get("DocumentName")),
        command_id=_str(info.get("CommandID")),
        association_id=_str(info.get("AssociationID")),
        status=_str(info.get("DocumentStatus")),
        created=_str(info.get("CreatedDate")),
        plugins=plugins,
    )


@dataclass(frozen=True)
class HybridRegistration:
    """A hybrid (on-premises) activation's record: ``mi-...`` and its Region."""

    managed_instance_id: Optional[str]
    region: Optional[str]


def parse_registration(text: str) -> HybridRegistration:
    """Parse ``/var/lib/amazon/ssm/registration``.

    >>> parse_registration('{"ManagedInstanceID":"mi-0123456789abcdef0","Region":"us-east-2"}')
    HybridRegistration(managed_instance_id='mi-0123456789abcdef0', region='us-east-2')
    """
    data = _load_object(text)
    return HybridRegistration(_str(data.get("ManagedInstanceID")), _str(data.get("Region")))


def parse_snap_list(text: str, name: str) -> Optional[str]:
    """The version of snap ``name`` in ``snap list <name>`` output, or None.

    Typical input (snapd, Ubuntu)::

        Name              Version         Rev    Tracking       Publisher  Notes
        amazon-ssm-agent  3.3.1142.0      9881   latest/stable  aws✓       classic

    >>> parse_snap_list("Name Version Rev Tracking Publisher Notes\\n"
    ...     "amazon-ssm-agent  3.3.1142.0  9881  latest/stable  aws✓  classic\\n",
    ...     "amazon-ssm-agent")
    '3.3.1142.0'
    """
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 2 and cols[0] == name:
            return cols[1]
    return None


def parse_snap_yaml_version(text: str) -> Optional[str]:
    """The top-level ``version:`` of a snap's ``meta/snap.yaml``.

    >>> parse_snap_yaml_version("name: amazon-ssm-agent\\nversion: '3.3.1142.0'\\nsummary: x\\n")
    '3.3.1142.0'
    """
    m = re.search(r"^version:\s*['\"]?([^'\"\s]+)", text, re.MULTILINE)
    return m.group(1) if m else None


def instance_dirs(names: List[str]) -> List[str]:
    """The entries of ``/var/lib/amazon/ssm`` named after a managed instance (EC2 or hybrid).

    >>> instance_dirs(["Vault", "i-0abc1234def567890", "ipc", "mi-0123456789abcdef0", "packages"])
    ['i-0abc1234def567890', 'mi-0123456789abcdef0']
    """
    return [n for n in names if re.fullmatch(r"(?:i|mi)-[0-9a-f]{8,17}", n)]
