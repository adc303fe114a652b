"""The support matrix: its data, and the OS and kernel judgements made from it."""

from __future__ import annotations

import pytest

from gd_doctor.knowledge import load
from gd_doctor.knowledge.support import judge_kernel, match_os, matrix, version_tuple
from gd_doctor.parsers.kernel_version import parse_kernel_release
from gd_doctor.parsers.os_release import parse_os_release


def _k(text: str):  # type: ignore[no-untyped-def]
    k = parse_kernel_release(text)
    assert k is not None
    return k


def test_matrix_is_dated_and_sourced() -> None:
    raw = load("support_matrix.json")
    assert raw["source"].startswith("https://docs.aws.amazon.com/guardduty/")
    assert raw["date"] == matrix().date
    for row in raw["distributions"]:
        assert row["kernels"], row["row"]
        for v in row["versions"]:
            assert "agent" in v


def test_every_table_row_of_the_reference_is_present() -> None:
    names = {r.name for r in matrix().rows}
    assert names == {
        "Amazon Linux 2",
        "Amazon Linux 2023",
        "Ubuntu",
        "Debian",
        "RedHat",
        "Fedora",
        "CentOS Stream",
        "Oracle Linux",
        "Rocky Linux",
        "Alma Linux",
        "SUSE Linux Enterprise Server",
        "Bottlerocket",
    }


def test_the_table_range_includes_kernels_missing_from_it() -> None:
    m = matrix()
    assert m.all_kernels[0] == (5, 4)
    assert m.all_kernels[-1] == (7, 2)  # 7.2 comes from the release history (agent 1.17.1)


@pytest.mark.parametrize(
    ("release", "row", "verdict", "scope"),
    [
        ("6.1.112-124.190.amzn2023.x86_64", "Amazon Linux 2023", "supported", "distro"),
        ("4.14.181-142.260.amzn2.x86_64", "Amazon Linux 2", "lower", "all"),
        ("5.10.0-9-amd64", "RedHat", "lower", "distro"),
        ("7.3.0", "Ubuntu", "higher", "all"),
        ("6.18.1", "Amazon Linux 2023", "higher", "distro"),
        ("6.2.0-39-generic", "Ubuntu", "unverified", "distro"),
        ("6.19.0", None, "supported", "all"),
        ("6.3.0", None, "unverified", "all"),
    ],
)
def test_kernel_verdicts(release: str, row: str, verdict: str, scope: str) -> None:
    j = judge_kernel(_k(release), row)
    assert (j.verdict, j.scope) == (verdict, scope)


def test_memlock_is_required_up_to_5_10_only() -> None:
    assert judge_kernel(_k("5.10.228"), "Amazon Linux 2").memlock_required
    assert judge_kernel(_k("5.4.0"), "Amazon Linux 2").memlock_required
    assert not judge_kernel(_k("5.15.0"), "Amazon Linux 2").memlock_required


def test_ubuntu_2404_kernel_6_14_needs_agent_1_9_1() -> None:
    j = judge_kernel(_k("6.14.0-1007-aws"), "Ubuntu", "ubuntu", "24.04")
    assert j.verdict == "supported" and j.requires_agent == "1.9.1"
    assert judge_kernel(_k("6.14.0-1007-aws"), "Ubuntu", "ubuntu", "22.04").requires_agent is None


def test_kernels_added_by_later_agents_name_them() -> None:
    assert judge_kernel(_k("7.2.0"), None).requires_agent == "1.17.1"
    assert judge_kernel(_k("6.16.3"), "Ubuntu").requires_agent == "1.9.2"


@pytest.mark.parametrize(
    ("text", "row", "match"),
    [
        ('ID=ubuntu\nVERSION_ID="24.10"', "Ubuntu", "version"),
        ('ID="rhel"\nVERSION_ID="10.2"', "RedHat", "exact"),
        ('ID="almalinux"\nVERSION_ID="9.5"', "Alma Linux", "exact"),
        ('ID="rocky"\nVERSION_ID="8.9"', "Rocky Linux", "version"),
        ('ID="centos"\nNAME="CentOS Linux"\nVERSION_ID="8"', None, "none"),
        ("ID=bottlerocket\nVERSION_ID=1.20.0", "Bottlerocket", "exact"),
        ("ID=amzn\nVERSION_ID=2018.03", None, "version"),
    ],
)
def test_os_matches(text: str, row: str, match: str) -> None:
    found = match_os(parse_os_release(text))
    assert found.match == match
    if row is not None:
        assert found.row == row


def test_version_tuple() -> None:
    assert version_tuple("1.9.1") < version_tuple("1.10.0")  # type: ignore[operator]
    assert version_tuple("") is None
