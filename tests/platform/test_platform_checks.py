"""Each platform check on small fake roots: normal cases and bad input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Tuple

from gd_doctor.checks import kernel as k
from gd_doctor.checks import platform as p
from gd_doctor.facts import to_data
from gd_doctor.facts.platform import KernelFacts, OsFacts
from gd_doctor.host.fs import FileRead, RootFS
from gd_doctor.knowledge.support import judge_kernel, match_os
from gd_doctor.model import CheckResult, Outcome, Status
from gd_doctor.parsers.kernel_version import parse_kernel_release
from gd_doctor.parsers.os_release import parse_os_release
from tests.hostkit import make_host, result, run_one

AL2023 = 'NAME="Amazon Linux"\nID="amzn"\nVERSION_ID="2023"\nPRETTY_NAME="Amazon Linux 2023"\n'
SHOW_MEMLOCK = ("systemctl", "show", "-p", "DefaultLimitMEMLOCK", "-p", "DefaultLimitMEMLOCKSoft")


@dataclass(frozen=True)
class DenyingFS(RootFS):
    """A RootFS on which some paths are unreadable, as they are for a non-root user."""

    denied: Tuple[str, ...] = ()

    def read_bytes(self, abs_path: str, max_bytes: int = 4 << 20) -> Tuple[bytes, FileRead]:
        if abs_path in self.denied:
            return b"", FileRead(abs_path, problem="permission denied")
        return super().read_bytes(abs_path, max_bytes)


def data(out: Outcome) -> Dict[str, Any]:
    """What the report's ``data`` of this outcome is: its facts serialised."""
    return to_data(out.facts)


def kernel_result(release: str) -> Dict[str, CheckResult]:
    """platform.kernel's result for ``release`` as the check builds it (no distribution row)."""
    kernel = parse_kernel_release(release)
    assert kernel is not None
    facts = KernelFacts.from_judgement(
        kernel, judge_kernel(kernel, None), matrix_row=None, source="/proc/sys/kernel/osrelease"
    )
    return {"platform.kernel": result("platform.kernel", "ok", facts=facts)}


def os_result(os_release: str) -> Dict[str, CheckResult]:
    """platform.os's result for an os-release text, as the check builds it."""
    rel = parse_os_release(os_release)
    facts = OsFacts.from_release(
        rel, match_os(rel), source="/etc/os-release", hostname=None, matrix_date="2026-11-30"
    )
    return {"platform.os": result("platform.os", "ok", facts=facts)}


# --- platform.os: bad input ----------------------------------------------------------------


def test_no_os_release_at_all(tmp_path: Path) -> None:
    out = run_one(p.os_distribution, make_host(tmp_path, live=False))
    assert out.status == Status.WARN
    assert data(out)["supported"] is None and data(out)["match"] == "unknown"
    assert "/etc/os-release: missing" in out.summary


def test_binary_os_release_falls_back_to_system_release(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=False,
        files={
            "/etc/os-release": b"\x7fELF\x00\x00garbage",
            "/etc/system-release": "Amazon Linux release 2 (Karoo)\n",
        },
    )
    out = run_one(p.os_distribution, host)
    assert data(out)["source"] == "/etc/system-release"
    assert data(out)["matrix_row"] == "Amazon Linux 2"
    assert any("binary" in e for e in out.evidence)


def test_non_utf8_and_empty_files(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=False,
        files={
            "/etc/os-release": b'ID=ubuntu\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu \xff\xfe"\n',
            "/etc/hostname": b"",
        },
    )
    out = run_one(p.os_distribution, host)
    assert data(out)["supported"] is True
    assert data(out)["hostname"] is None
    assert "\ufffd" in str(data(out)["pretty_name"])


def test_os_release_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "etc" / "os-release").mkdir(parents=True)
    out = run_one(p.os_distribution, make_host(tmp_path, live=False))
    assert out.status == Status.WARN
    assert "not a regular file" in out.summary


def test_unreadable_os_release(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text(AL2023)
    host = make_host(tmp_path, live=False)
    host = type(host)(**{**host.__dict__, "fs": DenyingFS(tmp_path, ("/etc/os-release",))})
    out = run_one(p.os_distribution, host)
    assert out.status == Status.WARN
    assert "permission denied" in out.summary


def test_truncated_os_release_still_names_the_distribution(tmp_path: Path) -> None:
    host = make_host(tmp_path, live=False, files={"/etc/os-release": 'ID="amzn"\nVERSION_ID="20'})
    out = run_one(p.os_distribution, host)
    assert data(out)["id"] == "amzn" and data(out)["supported"] is False


# --- platform.kernel -------------------------------------------------------------------------


def test_kernel_from_lib_modules_in_a_root(tmp_path: Path) -> None:
    host = make_host(tmp_path, live=False, files={"/lib/modules/5.15.0-1051-aws/modules.dep": ""})
    out = run_one(k.kernel_version, host)
    assert data(out)["release"] == "5.15.0-1051-aws"
    assert "only kernel" in str(data(out)["source"])


def test_kernel_unknown_and_garbage(tmp_path: Path) -> None:
    out = run_one(k.kernel_version, make_host(tmp_path, live=False))
    assert out.status == Status.WARN and data(out)["verdict"] == "unknown"
    host = make_host(tmp_path / "g", live=False, files={"/proc/sys/kernel/osrelease": "\x00\x01"})
    out = run_one(k.kernel_version, host)
    assert data(out)["verdict"] == "unknown"


def test_kernel_lower_fails(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=False,
        files={"/proc/sys/kernel/osrelease": "4.14.355-275.572.amzn2.x86_64\n"},
    )
    os_res = os_result('NAME="Amazon Linux"\nVERSION="2"\nID="amzn"\nVERSION_ID="2"\n')
    out = run_one(k.kernel_version, host, os_res)
    assert data(out)["matrix_row"] == "Amazon Linux 2"
    assert out.status == Status.FAIL
    assert data(out)["verdict"] == "lower" and data(out)["memlock_required"] is True


# --- platform.arch ---------------------------------------------------------------------------


def test_arch_first_generation_graviton(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=False,
        files={
            "/proc/sys/kernel/arch": "aarch64\n",
            "/proc/cpuinfo": "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n",
        },
    )
    out = run_one(p.cpu_architecture, host)
    assert out.status == Status.FAIL and data(out)["first_generation_graviton"] is True


def test_arch_unsupported_and_unknown(tmp_path: Path) -> None:
    host = make_host(tmp_path, live=False, files={"/proc/sys/kernel/arch": "s390x\n"})
    assert run_one(p.cpu_architecture, host).status == Status.FAIL
    out = run_one(p.cpu_architecture, make_host(tmp_path / "empty", live=False))
    assert out.status == Status.WARN and data(out)["machine"] is None


def test_arch_from_elf_header_of_the_root(tmp_path: Path) -> None:
    header = bytes.fromhex("7f454c460201010000000000000000000300b700") + b"\x00" * 44
    out = run_one(p.cpu_architecture, make_host(tmp_path, live=False, files={"/bin/sh": header}))
    assert data(out)["machine"] == "aarch64" and "ELF header of /bin/sh" in str(data(out)["source"])


def test_arch_never_comes_from_this_machine_for_a_fake_root(tmp_path: Path) -> None:
    out = run_one(p.cpu_architecture, make_host(tmp_path, live=True))
    assert data(out)["machine"] is None


# --- platform.btf and kernel_features --------------------------------------------------------


def test_btf_from_config_with_and_without(tmp_path: Path) -> None:
    rel = "6.1.0-57-cloud-amd64"
    host = make_host(
        tmp_path, live=False, files={f"/boot/config-{rel}": "CONFIG_DEBUG_INFO_BTF=y\n"}
    )
    out = run_one(k.kernel_btf, host, kernel_result(rel))
    assert out.status == Status.OK and data(out)["btf"] is True
    host = make_host(
        tmp_path / "n",
        live=False,
        files={f"/boot/config-{rel}": "# CONFIG_DEBUG_INFO_BTF is not set\n"},
    )
    out = run_one(k.kernel_btf, host, kernel_result(rel))
    assert out.status == Status.FAIL and data(out)["btf"] is False


def test_btf_sysfs_without_vmlinux_means_none(tmp_path: Path) -> None:
    (tmp_path / "sys" / "kernel").mkdir(parents=True)
    out = run_one(k.kernel_btf, make_host(tmp_path, live=False))
    assert out.status == Status.FAIL


def test_btf_unknown_without_sysfs_or_config(tmp_path: Path) -> None:
    out = run_one(k.kernel_btf, make_host(tmp_path, live=False))
    assert out.status == Status.WARN and data(out)["btf"] is None


def test_corrupt_proc_config_gz(tmp_path: Path) -> None:
    host = make_host(tmp_path, live=False, files={"/proc/config.gz": b"\x1f\x8bnot really gzip"})
    out = run_one(k.kernel_features, host)
    assert out.status == Status.WARN
    assert any("not gzip" in e for e in out.evidence)


# --- platform.memlock ------------------------------------------------------------------------


def test_memlock_not_needed_on_new_kernels(tmp_path: Path) -> None:
    out = run_one(k.memlock_limit, make_host(tmp_path, live=False), kernel_result("6.1.1"))
    assert out.status == Status.OK and data(out)["required"] is False


def test_memlock_unset_on_5_10_fails(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=False,
        files={"/etc/systemd/system.conf": "[Manager]\n#DefaultLimitMEMLOCK=\n"},
    )
    out = run_one(k.memlock_limit, host, kernel_result("5.10.228"))
    assert out.status == Status.FAIL and data(out)["effective"] is None


def test_memlock_dropin_order_and_precedence(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=False,
        files={
            "/etc/systemd/system.conf": "[Manager]\nDefaultLimitMEMLOCK=32M:32M\n",
            "/usr/lib/systemd/system.conf.d/10-vendor.conf": "[Manager]\nDefaultLimitMEMLOCK=64K\n",
            "/usr/lib/systemd/system.conf.d/90-hidden.conf": "[Manager]\nDefaultLimitMEMLOCK=1M\n",
            "/etc/systemd/system.conf.d/90-hidden.conf": "[Manager]\n# masks the vendor file\n",
        },
    )
    out = run_one(k.memlock_limit, host, kernel_result("5.10.228"))
    assert out.status == Status.FAIL
    assert (
        data(out)["default_limit_memlock_file"] == "/usr/lib/systemd/system.conf.d/10-vendor.conf"
    )
    assert data(out)["effective"] == "64K:64K"


def test_memlock_unit_setting_overrides_the_default(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=False,
        files={
            "/etc/systemd/system.conf": "[Manager]\nDefaultLimitMEMLOCK=8M\n",
            "/lib/systemd/system/amazon-guardduty-agent.service": "[Service]\nExecStart=/x\n",
            "/etc/systemd/system/amazon-guardduty-agent.service.d/memlock.conf": "[Service]\nLimitMEMLOCK=infinity\n",
        },
    )
    out = run_one(k.memlock_limit, host, kernel_result("5.10.228"))
    assert out.status == Status.OK and data(out)["effective"] == "infinity:infinity"


def test_memlock_live_value_from_systemctl(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=True,
        files={"/etc/systemd/system.conf": "[Manager]\nDefaultLimitMEMLOCK=8M\n"},
        commands={SHOW_MEMLOCK: "DefaultLimitMEMLOCK=33554432\nDefaultLimitMEMLOCKSoft=33554432\n"},
    )
    out = run_one(k.memlock_limit, host, kernel_result("5.10.228"))
    assert out.status == Status.OK and data(out)["effective"] == "32M:32M"
    assert "systemctl show" in str(data(out)["effective_source"])


def test_memlock_live_without_systemctl_uses_files(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=True,
        files={"/etc/systemd/system.conf": "[Manager]\nDefaultLimitMEMLOCK=32M\n"},
        commands={SHOW_MEMLOCK: (127, "", "systemctl: command not found")},
    )
    out = run_one(k.memlock_limit, host, kernel_result("5.4.0"))
    assert out.status == Status.OK and data(out)["effective"] == "32M:32M"


def test_memlock_kernel_unknown_warns(tmp_path: Path) -> None:
    out = run_one(k.memlock_limit, make_host(tmp_path, live=False))
    assert out.status == Status.WARN


# --- platform.init, platform.container, platform.ec2 ----------------------------------------


def test_init_not_systemd(tmp_path: Path) -> None:
    out = run_one(p.init_system, make_host(tmp_path, live=False, files={"/proc/1/comm": "tini\n"}))
    assert out.status == Status.FAIL and data(out)["pid1"] == "tini"


def test_init_in_a_root_with_systemd_installed(tmp_path: Path) -> None:
    host = make_host(tmp_path, live=False, files={"/usr/lib/systemd/systemd": b"\x7fELF"})
    assert run_one(p.init_system, host).status == Status.OK


def test_container_markers(tmp_path: Path) -> None:
    host = make_host(tmp_path, live=False, files={"/run/systemd/container": "lxc\n"})
    out = run_one(p.container, host)
    assert out.status == Status.WARN and data(out)["in_container"] is True
    host = make_host(
        tmp_path / "k", live=False, files={"/proc/1/cgroup": "0::/kubepods/besteffort/pod1/abc\n"}
    )
    assert data(run_one(p.container, host))["in_container"] is True
    clean = make_host(tmp_path / "c", live=False, files={"/proc/1/cgroup": "0::/init.scope\n"})
    assert run_one(p.container, clean).status == Status.OK


def test_ec2_hybrid_registration_says_not_ec2(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=False,
        files={
            "/var/lib/amazon/ssm/registration": '{"ManagedInstanceID":"mi-0123456789abcdef0","Region":"us-east-1"}',
        },
    )
    out = run_one(p.ec2_instance, host)
    assert out.status == Status.FAIL and data(out)["hybrid_id"] == "mi-0123456789abcdef0"


def test_ec2_garbage_registration_and_no_dmi(tmp_path: Path) -> None:
    host = make_host(
        tmp_path, live=False, files={"/var/lib/amazon/ssm/registration": b"\x00{not json"}
    )
    out = run_one(p.ec2_instance, host)
    assert out.status == Status.WARN and data(out)["is_ec2"] is None


def test_ec2_unreadable_product_uuid_is_fine(tmp_path: Path) -> None:
    dmi = "/sys/devices/virtual/dmi/id"
    (tmp_path / "sys/devices/virtual/dmi/id").mkdir(parents=True)
    (tmp_path / "sys/devices/virtual/dmi/id/sys_vendor").write_text("Amazon EC2\n")
    host = make_host(tmp_path, live=False)
    host = type(host)(**{**host.__dict__, "fs": DenyingFS(tmp_path, (f"{dmi}/product_uuid",))})
    out = run_one(p.ec2_instance, host)
    assert out.status == Status.OK and data(out)["is_ec2"] is True
