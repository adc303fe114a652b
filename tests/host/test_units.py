"""The effective unit over fixture trees: precedence, masks, drop-ins, environment.

The container test (test_units_systemd.py) proves the same rules against a real systemd; these
run everywhere and cover what a container cannot show quickly (oversized and binary files,
split-/usr naming, a root without /dev/null).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Union

from gd_doctor.host.fs import RootFS
from gd_doctor.host.units import EffectiveUnit, UnitResolver, real_path
from tests.hostkit import make_host, write_tree

ETC, RUN, LIB = "/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system"
AGENT = "amazon-guardduty-agent.service"
VENDOR = (
    "[Unit]\nDescription=Amazon GuardDuty Agent\n[Service]\n"
    "ExecStart=/opt/aws/amazon-guardduty-agent/bin/amazon-guardduty-agent\n"
    "MemoryLimit=128M\nMemoryMax=128M\nCPUQuota=10%\nRestart=always\n"
    'Environment="https_proxy=http://vendor.proxy:3128"\n'
)


def _resolve(
    tmp_path: Path,
    files: Dict[str, Union[str, bytes]],
    name: str = AGENT,
    links: Optional[Dict[str, str]] = None,
) -> EffectiveUnit:
    root = write_tree(tmp_path / "root", files)
    for link, target in (links or {}).items():
        p = root / link.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)
    return UnitResolver(RootFS(root)).resolve(name)


def test_override_in_etc_wins_over_vendor_and_so_does_its_proxy(tmp_path: Path) -> None:
    """Issue 10's case: agent.unit_file read /etc, network.proxy read /usr/lib's proxy."""
    u = _resolve(
        tmp_path,
        {
            f"{LIB}/{AGENT}": VENDOR,
            f"{ETC}/{AGENT}": VENDOR.replace("vendor.proxy", "admin.proxy").replace("128M", "256M"),
        },
    )
    assert u.fragment_path == f"{ETC}/{AGENT}"
    assert u.memory_max == "256M" and u.memory_max_bytes() == 256 * 1024 * 1024
    assert u.process_environment()["https_proxy"] == "http://admin.proxy:3128"
    assert u.environment_source("https_proxy") == f"Environment= in {ETC}/{AGENT}"


def test_drop_ins_by_name_precedence_and_lexical_order(tmp_path: Path) -> None:
    u = _resolve(
        tmp_path,
        {
            f"{LIB}/{AGENT}": VENDOR,
            f"{LIB}/{AGENT}.d/50-mem.conf": "[Service]\nMemoryMax=1G\n",  # hidden by /etc's
            f"{ETC}/{AGENT}.d/50-mem.conf": "[Service]\nMemoryMax=512M\n",
            f"{RUN}/{AGENT}.d/10-first.conf": "[Service]\nMemoryMax=64M\nRestart=on-failure\n",
            f"{LIB}/{AGENT}.d/90-last.conf": "[Service]\nCPUQuota=\n",
            f"{LIB}/amazon-guardduty-.service.d/20-prefix.conf": "[Service]\nLimitMEMLOCK=32M\n",
            f"{LIB}/service.d/30-type.conf": "[Service]\nEnvironment=TYPE_LEVEL=1\n",
            f"{ETC}/{AGENT}.d/README": "not a .conf file\n",
        },
    )
    assert [p.rsplit("/", 1)[1] for p in u.drop_in_paths] == [
        "10-first.conf",
        "20-prefix.conf",
        "30-type.conf",
        "50-mem.conf",
        "90-last.conf",
    ]
    assert f"{ETC}/{AGENT}.d/50-mem.conf" in u.drop_in_paths
    assert u.overridden_drop_ins == (f"{LIB}/{AGENT}.d/50-mem.conf",)
    assert u.memory_max == "512M" and u.source_of("MemoryMax") == f"{ETC}/{AGENT}.d/50-mem.conf"
    assert u.restart == "on-failure"
    assert u.cpu_quota is None  # reset by the empty assignment
    assert u.limit_memlock is not None and u.limit_memlock.at_least(32 * 1024 * 1024)
    assert dict(u.environment)["TYPE_LEVEL"] == "1"


def test_masked_by_a_link_to_dev_null_even_where_the_root_has_no_dev(tmp_path: Path) -> None:
    u = _resolve(tmp_path, {f"{LIB}/{AGENT}": VENDOR}, links={f"{ETC}/{AGENT}": "/dev/null"})
    assert (u.load_state, u.masked, u.fragment_path) == ("masked", True, f"{ETC}/{AGENT}")
    assert u.directives == {} and u.process_environment() == {}


def test_masked_by_an_empty_file_and_a_masked_drop_in(tmp_path: Path) -> None:
    assert _resolve(tmp_path, {f"{LIB}/{AGENT}": VENDOR, f"{RUN}/{AGENT}": ""}).masked
    u = _resolve(
        tmp_path / "2",
        {f"{LIB}/{AGENT}": VENDOR, f"{LIB}/{AGENT}.d/10-x.conf": "[Service]\nMemoryMax=1M\n"},
        links={f"{ETC}/{AGENT}.d/10-x.conf": "/dev/null"},
    )
    assert not u.masked and u.memory_max == "128M"
    assert u.masked_drop_ins == (f"{ETC}/{AGENT}.d/10-x.conf",) == u.drop_in_paths


def test_merged_usr_counts_lib_once_and_split_usr_names_lib(tmp_path: Path) -> None:
    files = {f"{LIB}/{AGENT}": VENDOR, f"{LIB}/{AGENT}.d/x.conf": "[Service]\nRestart=no\n"}
    merged = _resolve(tmp_path / "fedora", files, links={"/lib": "usr/lib"})
    assert merged.fragment_path == f"{LIB}/{AGENT}"
    assert merged.drop_in_paths == (f"{LIB}/{AGENT}.d/x.conf",)
    debian = dict(files)
    debian["/etc/debian_version"] = "12.8\n"
    debian["/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so"] = b"\x7fELF"
    d12 = _resolve(tmp_path / "debian12", debian, links={"/lib": "usr/lib"})
    # systemd 252 on Debian searches /lib first and says so; drop-ins by their real path
    assert d12.fragment_path == f"/lib/systemd/system/{AGENT}"
    assert d12.drop_in_paths == (f"{LIB}/{AGENT}.d/x.conf",)


def test_environment_as_systemd_parses_it(tmp_path: Path) -> None:
    u = _resolve(
        tmp_path,
        {
            f"{LIB}/{AGENT}": VENDOR
            + (
                'Environment="NO_PROXY=169.254.169.254,.amazonaws.com" SPACE=a\\x20b UNIT=%N\n'
                'Environment=bad-name=1 "UNTERMINATED=x\n'
                "EnvironmentFile=-/etc/sysconfig/amazon-guardduty-agent\n"
                "EnvironmentFile=/etc/gd/required.env\n"
                "EnvironmentFile=relative.env\n"
                "EnvironmentFile=-/etc/gd/*.env\n"
            ),
            "/etc/gd/required.env": "https_proxy='http://file.proxy:3128'\n",
            "/etc/gd/b.env": "export X=1\nB=2 # not a comment\n",
        },
    )
    env = dict(u.environment)
    assert env["NO_PROXY"] == "169.254.169.254,.amazonaws.com"
    assert env["SPACE"] == "a b" and env["UNIT"] == "amazon-guardduty-agent"
    assert "bad-name" not in env and "UNTERMINATED" not in env
    assert any("unterminated quote" in e for e in u.errors)
    assert any("not absolute" in e and "relative.env" in e for e in u.errors)
    reads = {r.path: r for r in u.environment_file_reads}
    assert reads["/etc/sysconfig/amazon-guardduty-agent"].problem == "missing"
    assert reads["/etc/gd/b.env"].pattern == "/etc/gd/*.env"
    assert dict(reads["/etc/gd/b.env"].pairs) == {"B": "2 # not a comment"}
    assert u.unstartable_environment_files == ()  # required.env exists; the missing one has -
    process = u.process_environment()
    assert process["https_proxy"] == "http://file.proxy:3128"  # files override Environment=
    assert u.environment_source("https_proxy") == "EnvironmentFile /etc/gd/required.env"


def test_a_missing_required_environment_file_stops_the_unit(tmp_path: Path) -> None:
    u = _resolve(tmp_path, {f"{LIB}/{AGENT}": VENDOR + "EnvironmentFile=/etc/gd/none\n"})
    assert [r.path for r in u.unstartable_environment_files] == ["/etc/gd/none"]


def test_default_environment_of_the_manager_is_under_the_unit(tmp_path: Path) -> None:
    u = _resolve(
        tmp_path,
        {
            f"{LIB}/{AGENT}": VENDOR,
            "/etc/systemd/system.conf": "[Manager]\n#DefaultEnvironment=\n",
            "/etc/systemd/system.conf.d/proxy.conf": '[Manager]\nDefaultEnvironment="https_proxy=http://all.proxy:3128" A=1\n',
        },
    )
    assert u.manager_environment == (("https_proxy", "http://all.proxy:3128"), ("A", "1"))
    assert u.process_environment()["https_proxy"] == "http://vendor.proxy:3128"
    assert u.process_environment()["A"] == "1"


def test_alias_and_template_instance(tmp_path: Path) -> None:
    files = {
        f"{LIB}/real.service": "[Service]\nExecStart=/bin/real\n",
        f"{ETC}/nick.service.d/x.conf": "[Service]\nRestart=always\n",
        f"{LIB}/getty@.service": "[Service]\nExecStart=/sbin/agetty %i\n",
        f"{LIB}/getty@.service.d/t.conf": "[Service]\nRestart=always\n",
    }
    root = write_tree(tmp_path / "root", files)
    os.symlink(f"{LIB}/real.service", root / ETC.lstrip("/") / "nick.service")
    r = UnitResolver(RootFS(root))
    for name in ("nick.service", "real.service"):
        u = r.resolve(name)
        assert u.fragment_path == f"{LIB}/real.service" and u.restart == "always", name
    inst = r.resolve("getty@tty1.service")
    assert inst.fragment_path == f"{LIB}/getty@.service" and inst.restart == "always"


def test_not_found_oversized_and_hostile_files_never_raise(tmp_path: Path) -> None:
    assert _resolve(tmp_path, {}).load_state == "not-found"
    u = _resolve(
        tmp_path / "2",
        {
            f"{LIB}/{AGENT}": VENDOR + '\x00\xff garbage line\n[Service\nEnvironment="\\q\n',
            f"{ETC}/{AGENT}.d/big.conf": "#" * (300 * 1024),
        },
    )
    assert u.load_state == "loaded" and u.memory_max == "128M"
    assert u.unreadable == ((f"{ETC}/{AGENT}.d/big.conf", "larger than 256 KiB, not read"),)
    assert any("bad escape" in e for e in u.errors)


def test_results_are_cached_and_the_host_exposes_the_resolver(tmp_path: Path) -> None:
    host = make_host(tmp_path, files={f"{LIB}/{AGENT}": VENDOR})
    assert host.units.resolve("amazon-guardduty-agent") is host.units.resolve(AGENT)


def test_real_path_stays_in_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")
    os.symlink("/../../../../etc", root / "usr/lib/up")
    fs = RootFS(root)
    assert real_path(fs, "/lib/systemd/system") == "/usr/lib/systemd/system"
    assert real_path(fs, "/lib/up/shadow") == "/etc/shadow"  # the root's /etc, never the host's


def test_links_in_a_captured_root_never_lead_out_of_it(tmp_path: Path) -> None:
    """A drop-in and an environment file linked to absolute paths are read from the root's
    own /etc (as that system would), never from the machine gd-doctor runs on."""
    assert Path("/etc/shadow").exists() and Path("/etc/hostname").exists()
    u = _resolve(
        tmp_path,
        {
            f"{LIB}/{AGENT}": VENDOR + "EnvironmentFile=-/etc/gd/proxy.env\n",
            "/etc/hostname": "[Service]\nMemoryMax=42M\n",  # the root's own file
        },
        links={f"{ETC}/{AGENT}.d/evil.conf": "/etc/hostname", "/etc/gd/proxy.env": "/etc/shadow"},
    )
    assert u.drop_in_paths == (f"{ETC}/{AGENT}.d/evil.conf",) and u.memory_max == "42M"
    (read,) = u.environment_file_reads
    assert (read.path, read.problem, read.pairs) == ("/etc/gd/proxy.env", "missing", ())


def test_manager_configuration_for_memlock(tmp_path: Path) -> None:
    """system.conf, then its drop-ins by name across /etc, /run, /usr/lib (the first wins)."""
    root = write_tree(
        tmp_path / "root",
        {
            "/etc/systemd/system.conf": "[Manager]\n#DefaultLimitMEMLOCK=8M\nDefaultLimitMEMLOCK=8M\n",
            "/usr/lib/systemd/system.conf.d/60-limits.conf": "[Manager]\nDefaultLimitMEMLOCK=1M\n",
            "/etc/systemd/system.conf.d/60-limits.conf": "[Manager]\nDefaultLimitMEMLOCK=64M\n",
            "/run/systemd/system.conf.d/10-early.conf": "[Manager]\nDefaultLimitMEMLOCK=2M\n",
        },
    )
    config = UnitResolver(RootFS(root)).manager_config()
    assert config.files == (
        "/etc/systemd/system.conf",
        "/run/systemd/system.conf.d/10-early.conf",
        "/etc/systemd/system.conf.d/60-limits.conf",
    )
    assert config.value("DefaultLimitMEMLOCK") == "64M"
    assert config.source_of("DefaultLimitMEMLOCK") == "/etc/systemd/system.conf.d/60-limits.conf"
    limit = config.default_limit_memlock
    assert limit is not None and limit.at_least(32 * 1024 * 1024)
