"""The platform parsers on real input, on edge cases, and on arbitrary text (hypothesis)."""

from __future__ import annotations

from pathlib import Path
from typing import List

from hypothesis import given
from hypothesis import strategies as st

from gd_doctor.parsers.cgroup import container_runtime
from gd_doctor.parsers.cpuinfo import parse_cpuinfo
from gd_doctor.parsers.dmi import judge_ec2
from gd_doctor.parsers.elf import elf_machine
from gd_doctor.parsers.kernel_config import parse_kernel_config
from gd_doctor.parsers.kernel_version import parse_kernel_release
from gd_doctor.parsers.os_release import parse_os_release, parse_system_release
from gd_doctor.parsers.proc_limits import MAX_LOCKED_MEMORY, parse_proc_limits
from gd_doctor.parsers.systemd_conf import parse_limit, parse_systemd_conf
from tests.hostkit import FIXTURES

ROOTS = FIXTURES / "roots"


@given(st.text())
def test_any_text_parses_as_os_release(text: str) -> None:
    rel = parse_os_release(text)
    assert isinstance(rel.id, str) and isinstance(rel.fields, dict)


@given(st.binary())
def test_any_bytes_decoded_as_the_host_does_parse(data: bytes) -> None:
    parse_os_release(data.decode("utf-8", errors="replace"))
    parse_system_release(data.decode("utf-8", errors="replace"))


@given(st.text())
def test_the_other_parsers_accept_any_text(text: str) -> None:
    parse_proc_limits(text)
    parse_kernel_config(text)
    parse_systemd_conf(text)
    parse_limit(text)
    parse_cpuinfo(text)
    container_runtime(text)
    parse_kernel_release(text)


def test_os_release_quoting_forms() -> None:
    rel = parse_os_release(
        "# comment\n"
        "ID='rhel'\n"
        'NAME="Red Hat \\"Enterprise\\" Linux"\n'
        "VERSION_ID=9.4 # trailing comment\n"
        "PRETTY_NAME=Red\\ Hat\n"
        "   \n"
        "not an assignment\n"
        'ID_LIKE="fedora'  # truncated: no closing quote
    )
    assert rel.id == "rhel"
    assert rel.name == 'Red Hat "Enterprise" Linux'
    assert rel.version_id == "9.4"
    assert rel.pretty_name == "Red Hat"
    assert rel.id_like == ("fedora",)


def test_os_release_later_assignment_wins_and_id_is_lowercased() -> None:
    assert parse_os_release("ID=Debian\nID=Ubuntu\n").id == "ubuntu"


def test_proc_limits_of_this_process_is_real_input() -> None:
    limits = parse_proc_limits(Path("/proc/self/limits").read_text())
    assert MAX_LOCKED_MEMORY in limits
    assert "Max open files" in limits
    assert limits["Max open files"].soft is not None


def test_proc_limits_unlimited_memlock() -> None:
    text = (
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max locked memory         unlimited            unlimited            bytes     \n"
    )
    lim = parse_proc_limits(text)[MAX_LOCKED_MEMORY]
    assert lim.soft is None and lim.hard is None and lim.at_least(1 << 40)


def test_real_kernel_configs_parse() -> None:
    cloud = (ROOTS / "non-ec2-qemu/root/boot/config-6.1.0-57-cloud-amd64").read_text()
    cfg = parse_kernel_config(cloud)
    assert cfg["CONFIG_DEBUG_INFO_BTF"] == "y"
    assert cfg["CONFIG_KPROBES"] == "y"
    assert len(cfg) > 3000


_CONFIG_LINES = st.sampled_from(
    [
        "CONFIG_BPF=y",
        "CONFIG_BPF=m",
        "  CONFIG_KPROBES=y \t",
        'CONFIG_LOCALVERSION=""',
        'CONFIG_CMDLINE=" quiet splash "',
        "CONFIG_X= =y",
        "CONFIG_=y",
        "CONFIG_BAD-NAME=y",
        "# CONFIG_BPF is not set",
        "  # CONFIG_BPF is not set \t ",
        "# CONFIG_BPF is not set x",
        "#CONFIG_BPF is not set",
        "# General setup",
        "#",
        "",
        " ",
        "\t",
        "config_bpf=y",
    ]
)


@given(st.lists(_CONFIG_LINES, max_size=40), st.booleans())
def test_the_one_pass_parse_equals_the_line_by_line_one(lines: List[str], final: bool) -> None:
    from gd_doctor.parsers import kernel_config

    text = "\n".join(lines) + ("\n" if final else "")
    assert kernel_config._parse_whole(text) == kernel_config._parse_lines(text)
    assert parse_kernel_config(text) == kernel_config._parse_lines(text)


def test_real_kernel_configs_parse_alike_both_ways() -> None:
    from gd_doctor.parsers import kernel_config

    configs = sorted(ROOTS.glob("*/root/boot/config-*"))
    assert configs
    for path in configs:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert kernel_config._parse_whole(text) == kernel_config._parse_lines(text), path


def test_systemd_conf_continuation_comments_and_sections() -> None:
    conf = parse_systemd_conf(
        "; comment\n[Manager]\nDefaultLimitMEMLOCK=8M\nDefaultLimitMEMLOCK=\\\n  32M:64M\n"
        "[Other]\nKey=1\nstray line\n"
    )
    assert conf["Manager"]["DefaultLimitMEMLOCK"] == "32M:64M"
    assert conf["Other"] == {"Key": "1"}


def test_systemd_limits() -> None:
    lim = parse_limit("32M:64M")
    assert lim is not None and (lim.soft, lim.hard) == (32 << 20, 64 << 20)
    inf = parse_limit("infinity")
    assert inf is not None and inf.at_least(1 << 50)
    low = parse_limit("31M:infinity")
    assert low is not None and not low.at_least(32 << 20)
    assert parse_limit("1G") == parse_limit("1024M")
    assert parse_limit("32X") is None


def test_kernel_release_forms() -> None:
    k = parse_kernel_release("5.10.228-219.884.amzn2.x86_64")
    assert k is not None and k.key == (5, 10) and k.patch == 228
    k2 = parse_kernel_release("7.0")
    assert k2 is not None and k2.patch is None
    assert parse_kernel_release("") is None
    assert parse_kernel_release("v6.1") is None


def test_elf_machine_of_a_real_binary() -> None:
    import platform

    header = Path("/bin/sh").read_bytes()[:64]
    assert elf_machine(header) == platform.machine()


def test_elf_machine_of_garbage() -> None:
    assert elf_machine(b"") is None
    assert elf_machine(b"\x7fELF") is None
    assert elf_machine(bytes.fromhex("7f454c460201010000000000000000000200ff00")) == (
        "elf-machine-0xff"
    )


def test_cpuinfo_first_generation_graviton() -> None:
    info = parse_cpuinfo("CPU implementer\t: 0x41\nCPU part\t: 0xd08\n")
    assert info.is_first_generation_graviton
    assert info.graviton == "Graviton (first generation, A1)"
    assert not parse_cpuinfo("CPU implementer\t: 0x42\nCPU part\t: 0xd08\n").graviton


def test_dmi_judgement_weighs_evidence() -> None:
    assert judge_ec2({"board_asset_tag": "i-0123456789abcdef0", "sys_vendor": "QEMU"}).is_ec2
    assert judge_ec2({"hypervisor_uuid": "ec2e1916-9099-7caf"}).is_ec2
    assert judge_ec2({"board_asset_tag": "not-an-id", "product_name": "m5.large"}).is_ec2 is None
    assert judge_ec2({"sys_vendor": "VMware, Inc."}).is_ec2 is False


def test_cgroup_runtimes() -> None:
    assert container_runtime("0::/kubepods/burstable/pod1/abc\n") == (
        "kubernetes",
        "/kubepods/burstable/pod1/abc",
    )
    assert container_runtime("0::/system.slice/docker-3f2a.scope\n") == (
        "docker",
        "/system.slice/docker-3f2a.scope",
    )
    assert container_runtime("0::/init.scope\n") is None
