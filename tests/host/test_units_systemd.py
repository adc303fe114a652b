"""The effective unit (gd_doctor/host/units.py) against a real systemd 252 in a container.

One container boots with units that exercise every rule the resolver follows: a vendor unit in
/usr/lib with an administrator's override in /etc, drop-ins in /etc, /run and /usr/lib (one
overridden by name, one masked by a /dev/null link, dash-prefix and type-level ones), a unit
masked by a /dev/null link and one by an empty file, an alias, EnvironmentFile= with a glob, a
``-`` and systemd's own quoting, DefaultEnvironment= in system.conf.d. For each unit the
resolver, reading the container's files from outside through RootFS, must say what
``systemctl show`` and ``systemctl cat`` say inside; the environment a started service really
gets (it dumps ``env``) must match ``process_environment()``.
"""

from __future__ import annotations

from typing import Dict, Iterator, List

import pytest

from gd_doctor.host.fs import RootFS
from gd_doctor.host.units import EffectiveUnit, UnitResolver
from gd_doctor.parsers.systemctl_show import parse_environment
from gd_doctor.parsers.unit_file import parse_size
from tests.harness.container import (
    Container,
    FileSpec,
    Symlink,
    booted_container,
    container_unavailable_reason,
)

_reason = container_unavailable_reason("bookworm")
pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(_reason is not None, reason=_reason or ""),
]

ETC, RUN, LIB = "/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system"
DUMP = "/bin/sh -c 'env > /run/%N.env'"

FILES: Dict[str, FileSpec] = {
    # gdt-agent: vendor unit, an override that replaces it, drop-ins everywhere
    f"{LIB}/gdt-agent.service": (
        "[Service]\nType=oneshot\nExecStart=/bin/false\nMemoryMax=64M\n"
        "Environment=https_proxy=http://vendor.example:3128\n"
    ),
    f"{ETC}/gdt-agent.service": (
        "[Unit]\nDescription=override\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        f"ExecStart={DUMP}\nMemoryMax=100M\nLimitMEMLOCK=32M:64M\n"
        'Environment="https_proxy=http://etc.example:3128" "NO_PROXY=169.254.169.254" \\\n'
        "  SPACED=a\\x20b UNIT=%N RUNDIR=%t PCT=100%%\n"
        "Environment=BAD-NAME=x GOOD=1\n"
        "EnvironmentFile=-/etc/gdt/*.env\n"
        "EnvironmentFile=/etc/gdt/required.conf\n"
        "EnvironmentFile=-/etc/gdt/missing.conf\n"
        "EnvironmentFile=relative.conf\n"
    ),
    f"{ETC}/gdt-agent.service.d/20-same-name.conf": (
        "[Service]\nMemoryMax=200M\nEnvironment=\nEnvironment=AFTER_RESET=1 'QUOTED=x y'\n"
    ),
    f"{LIB}/gdt-agent.service.d/20-same-name.conf": "[Service]\nMemoryMax=999M\n",
    f"{RUN}/gdt-agent.service.d/10-run.conf": "[Service]\nMemoryMax=150M\nEnvironment=RUN=1\n",
    f"{LIB}/gdt-agent.service.d/30-lib.conf": (
        "[Service]\nCPUQuota=20%\nEnvironment=LIB=1\n"
        # a percent-encoded password: %4 is no specifier, systemd drops that assignment
        'Environment="PCT_PROXY=http://u:p%40ss@proxy.example:3128" PCT_OK=50%%\n'
    ),
    f"{ETC}/gdt-agent.service.d/40-masked.conf": Symlink("/dev/null"),
    f"{LIB}/gdt-agent.service.d/40-masked.conf": "[Service]\nMemoryMax=1M\n",
    f"{LIB}/gdt-.service.d/05-prefix.conf": "[Service]\nEnvironment=PREFIX=lib\n",
    f"{RUN}/gdt-.service.d/05-prefix.conf": "[Service]\nEnvironment=PREFIX=run\n",
    f"{LIB}/service.d/99-gdt-type-level.conf": "[Service]\nEnvironment=GDT_TYPE_LEVEL=1\n",
    "/etc/gdt/a.env": (
        "# comment\n"
        'https_proxy="http://file.example:3128"\n'
        "no_proxy='169.254.169.254, .amazonaws.com'   ; after a quote\n"
        "export EXPORTED=1\n"
        'JOINED="x" y\n'
        "TRAILING=value   \n"
        "CONT=one\\\ntwo\n"
        'ESC="a\\"b\\$c\\qd"\n'
        "  INDENT = spaced key\n"
    ),
    "/etc/gdt/b.env": "B_FILE=b\nJOINED=later-file-wins\n",
    "/etc/gdt/required.conf": "REQUIRED=1\n",
    "/etc/systemd/system.conf.d/50-gdt.conf": (
        '[Manager]\nDefaultEnvironment="GDT_DEFAULT=manager" GDT_BOTH=manager\n'
        "DefaultLimitMEMLOCK=48M:64M\n"
    ),
    "/usr/lib/systemd/system.conf.d/50-gdt.conf": "[Manager]\nDefaultLimitMEMLOCK=1M\n",
    "/usr/lib/systemd/system.conf.d/60-gdt.conf": "[Manager]\nDefaultEnvironment=GDT_LIB=1\n",
    # masked by a link to /dev/null in /etc, with a drop-in of its own
    f"{LIB}/gdt-masked.service": f"[Service]\nExecStart={DUMP}\n",
    f"{ETC}/gdt-masked.service": Symlink("/dev/null"),
    f"{ETC}/gdt-masked.service.d/10-x.conf": "[Service]\nMemoryMax=10M\n",
    # masked by an empty file in /run
    f"{LIB}/gdt-empty.service": f"[Service]\nExecStart={DUMP}\n",
    f"{RUN}/gdt-empty.service": "",
    # vendor only, drop-ins in /etc and /run; an alias links to it
    f"{LIB}/gdt-vendor.service": (
        f"[Service]\nType=oneshot\nExecStart={DUMP}\nEnvironment=GDT_BOTH=unit\n"
    ),
    f"{ETC}/gdt-vendor.service.d/override.conf": "[Service]\nMemoryMax=300M\n",
    f"{RUN}/gdt-vendor.service.d/runtime.conf": "[Service]\nRestart=on-failure\n",
    f"{ETC}/gdt-alias.service": Symlink(f"{LIB}/gdt-vendor.service"),
    f"{ETC}/gdt-alias.service.d/alias.conf": "[Service]\nEnvironment=VIA_ALIAS=1\n",
    # linked from outside the search path (`systemctl link`), a `..` in EnvironmentFile=
    "/opt/gdt/gdt-linked.service": (
        "[Service]\nType=oneshot\nExecStart=/bin/true\n"
        "EnvironmentFile=-/etc/gdt/../gdt/b.env\nEnvironmentFile=-/etc/./gdt//required.conf\n"
    ),
    f"{ETC}/gdt-linked.service": Symlink("/opt/gdt/gdt-linked.service"),
}
UNITS = (
    "gdt-agent",
    "gdt-masked",
    "gdt-empty",
    "gdt-vendor",
    "gdt-alias",
    "gdt-linked",
    "gdt-none",
)
PROPS = (
    "Id",
    "LoadState",
    "FragmentPath",
    "DropInPaths",
    "Environment",
    "EnvironmentFiles",
    "MemoryMax",
    "LimitMEMLOCK",
    "LimitMEMLOCKSoft",
    "CPUQuotaPerSecUSec",
    "Restart",
)


def _write_runtime(c: Container, path: str, spec: FileSpec) -> None:
    """/run is a tmpfs systemd mounts at boot: its files are written into the running
    container, then systemd is told to reload."""
    target = c.path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, Symlink):
        target.symlink_to(spec.target)
    else:
        assert isinstance(spec, str)
        target.write_text(spec, encoding="utf-8")


@pytest.fixture(scope="module")
def container() -> Iterator[Container]:
    boot = {p: s for p, s in FILES.items() if not p.startswith("/run/")}
    with booted_container(files=boot) as c:
        for path, spec in FILES.items():
            if path.startswith("/run/"):
                _write_runtime(c, path, spec)
        c.run(["systemctl", "daemon-reload"], timeout=60, check=True)
        # what an administrator's `systemctl set-property` leaves: a drop-in in
        # /etc/systemd/system.control, the highest-precedence directory
        c.run(["systemctl", "set-property", "gdt-vendor.service", "MemoryMax=77M"], check=True)
        yield c


@pytest.fixture(scope="module")
def resolver(container: Container) -> UnitResolver:
    return UnitResolver(RootFS(container.root))


def _cat_headers(c: Container, unit: str) -> List[str]:
    out = c.run(["systemctl", "cat", f"{unit}.service"]).stdout
    return [line[2:] for line in out.splitlines() if line.startswith("# /")]


def _env_dump(c: Container, unit: str) -> Dict[str, str]:
    c.run(["systemctl", "start", f"{unit}.service"], timeout=30)
    text = c.path(f"/run/{unit}.env").read_text(encoding="utf-8")
    return dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)


def _ours(resolver: UnitResolver, unit: str) -> EffectiveUnit:
    return resolver.resolve(unit)


@pytest.mark.parametrize("unit", UNITS)
def test_fragment_drop_ins_and_load_state_match_systemctl(
    container: Container, resolver: UnitResolver, unit: str
) -> None:
    show = container.systemctl_show(f"{unit}.service", PROPS)
    ours = _ours(resolver, unit)
    expected_state = {"loaded": "loaded", "masked": "masked", "not-found": "not-found"}
    assert expected_state[ours.load_state] == show["LoadState"], (ours, show)
    if ours.load_state == "loaded":
        assert ours.fragment_path == show["FragmentPath"]
        assert list(ours.drop_in_paths) == show["DropInPaths"].split()
        assert _cat_headers(container, unit) == [ours.fragment_path, *ours.drop_in_paths]
    elif ours.masked:
        assert show["FragmentPath"] in ("", ours.fragment_path)


@pytest.mark.parametrize("unit", ("gdt-agent", "gdt-vendor", "gdt-alias", "gdt-linked"))
def test_settings_match_systemctl_show(
    container: Container, resolver: UnitResolver, unit: str
) -> None:
    show = container.systemctl_show(f"{unit}.service", PROPS)
    ours = _ours(resolver, unit)
    assert ours.environment == parse_environment(show["Environment"])
    # systemctl prints one EnvironmentFiles= line per entry: "PATH (ignore_errors=yes)"
    raw = container.run(["systemctl", "show", f"{unit}.service", "-p", "EnvironmentFiles"]).stdout
    listed = [line.partition("=")[2] for line in raw.splitlines() if line.strip()]
    assert [
        f"{f.path} (ignore_errors={'yes' if f.ignore_errors else 'no'})"
        for f in ours.environment_files
    ] == listed
    max_bytes = parse_size(ours.memory_max)
    assert show["MemoryMax"] == (str(max_bytes) if max_bytes is not None else "infinity")
    limit = ours.limit_memlock
    if limit is not None:
        assert (show["LimitMEMLOCKSoft"], show["LimitMEMLOCK"]) == (
            str(limit.soft),
            str(limit.hard),
        )
    quota = ours.cpu_quota
    if quota:
        usec = int(float(quota.rstrip("%")) * 10000)
        assert show["CPUQuotaPerSecUSec"] == f"{usec // 1000}ms"
    assert show["Restart"] == (ours.restart or "no")


@pytest.mark.parametrize("unit", ("gdt-agent", "gdt-vendor"))
def test_process_environment_is_what_the_service_gets(
    container: Container, resolver: UnitResolver, unit: str
) -> None:
    ours = _ours(resolver, unit).process_environment()
    real = _env_dump(container, unit)
    assert {k: real.get(k) for k in ours} == ours
    # nothing we dropped (invalid names, the masked or overridden files) reached the service
    for name in ("BAD-NAME", "EXPORTED", "export EXPORTED"):
        assert name not in real


def test_the_agent_scenario_is_the_one_the_issue_describes(resolver: UnitResolver) -> None:
    """Vendor in /usr/lib, override in /etc: the /etc file's settings and proxy, not the
    vendor's; same-named drop-ins by precedence, masked ones not applied."""
    u = _ours(resolver, "gdt-agent")
    assert u.fragment_path == f"{ETC}/gdt-agent.service"
    assert u.memory_max == "200M"  # 20-same-name.conf in /etc, applied after 10-run.conf
    assert f"{LIB}/gdt-agent.service.d/20-same-name.conf" in u.overridden_drop_ins
    assert u.masked_drop_ins == (f"{ETC}/gdt-agent.service.d/40-masked.conf",)
    assert u.process_environment()["https_proxy"] == "http://file.example:3128"
    assert u.environment_source("https_proxy") == "EnvironmentFile /etc/gdt/a.env"
    reads = {r.path: r for r in u.environment_file_reads}
    assert reads["/etc/gdt/missing.conf"].problem == "missing"
    assert u.unstartable_environment_files == ()
    assert any("relative.conf" in e for e in u.errors)
    # systemd dropped the percent-encoded proxy ("%4" is no specifier): so do we, and say so
    assert "PCT_PROXY" not in dict(u.environment) and dict(u.environment)["PCT_OK"] == "50%"
    assert any("unknown specifier %4" in e and "PCT_PROXY" in e for e in u.errors)


def test_masked_units(resolver: UnitResolver) -> None:
    linked, empty = _ours(resolver, "gdt-masked"), _ours(resolver, "gdt-empty")
    assert (linked.masked, linked.fragment_path) == (True, f"{ETC}/gdt-masked.service")
    assert (empty.masked, empty.fragment_path) == (True, f"{RUN}/gdt-empty.service")
    assert linked.directives == {} and linked.environment == ()


def test_manager_configuration_matches_systemctl_show(
    container: Container, resolver: UnitResolver
) -> None:
    """The manager's own properties: DefaultLimitMEMLOCK= and DefaultEnvironment= after
    system.conf and its drop-ins (the same-named one in /usr/lib is hidden by /etc's)."""
    props = "DefaultLimitMEMLOCK,DefaultLimitMEMLOCKSoft,Environment"
    out = container.run(["systemctl", "show", "-p", props], check=True).stdout
    show = dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)
    config = resolver.manager_config()
    limit = config.default_limit_memlock
    assert limit is not None
    assert (show["DefaultLimitMEMLOCKSoft"], show["DefaultLimitMEMLOCK"]) == (
        str(limit.soft),
        str(limit.hard),
    )
    # the manager's Environment= is DefaultEnvironment= sorted, plus LANG and PATH it adds
    manager = dict(parse_environment(show["Environment"]))
    ours = dict(config.default_environment)
    assert (
        {k: manager.get(k) for k in ours}
        == ours
        == {"GDT_DEFAULT": "manager", "GDT_BOTH": "manager", "GDT_LIB": "1"}
    )
