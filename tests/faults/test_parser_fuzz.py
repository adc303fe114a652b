"""Every parser returns a typed value or a parse-error value, whatever it is given.

Each parser is fed inputs seeded from the real fixtures (mutated by hypothesis: spliced text,
cut lines, repeated lines) plus the hostile shapes the review found: deep JSON nesting (the
RecursionError of ``json``), 5,000-digit numbers (Python's int-string limit, OverflowError in
timedelta/datetime), impossible dates, non-ASCII digits, NUL bytes and control characters. No
exception may escape.

CI runs ``GD_DOCTOR_FUZZ_EXAMPLES`` examples per parser (300 by default, a few seconds each);
``benchmarks/faults.py`` runs 10,000 per parser.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gd_doctor.host.journal import JournalEntry
from gd_doctor.parsers import (
    agent_log,
    aws_error,
    cgroup,
    cpuinfo,
    dmesg,
    dpkg_status,
    elf,
    imds_identity,
    journal_events,
    kernel_config,
    kernel_version,
    log_signatures,
    lsm,
    os_release,
    proc_limits,
    proxy_env,
    resolv_conf,
    rpm,
    ssm_log,
    ssm_state,
    systemctl_show,
    systemd_conf,
    systemd_env,
    time_sync,
    unit_file,
)
from gd_doctor.parsers.errors import ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXAMPLES = int(os.environ.get("GD_DOCTOR_FUZZ_EXAMPLES", "300"))
MAX_SEED = 64 * 1024


def _seeds(*patterns: str) -> List[str]:
    out: List[str] = []
    for pattern in patterns:
        for path in sorted(FIXTURES.glob(pattern)):
            if path.is_file() and not path.is_symlink():
                out.append(path.read_bytes()[:MAX_SEED].decode("utf-8", errors="replace"))
    return out or [""]


HOSTILE = [
    "[" * 100_000,
    '{"a":' * 50_000,
    "9" * 5000,
    "MemoryMax=" + "9" * 5000,
    "ExecMainStartTimestamp=Mon 2026-13-45 25:61:61 UTC\nNRestarts=" + "9" * 4400,
    "NRestarts=١٢٣\nMemoryMax=٣٣٣",
    "2026-02-30T25:99:99Z ERROR x",
    "\x00\x1b[2J\x1b]0;owned\x07\r\n" * 100,
    "=\n" * 1000,
    "Package: amazon-ssm-agent\nStatus: install ok installed\nVersion: " + "1." * 5000,
    '"' * 20_000,
    "\\" * 20_000,
]


def _bad_journal_entries(text: str) -> List[JournalEntry]:
    """Journal entries whose message and fields hold the fuzzed text."""
    unit = "amazon-guardduty-agent.service"
    fields = {"_SYSTEMD_UNIT": unit, "UNIT": unit, "JOB_RESULT": text[:10],
              "EXIT_STATUS": text[:8], "_COMM": "amazon-guardduty", "PRIORITY": text[:2],
              "CODE_FUNC": text[:20], "MESSAGE_ID": text[:32]}  # fmt: skip
    return [
        JournalEntry(datetime(2026, 11, 30, 10, tzinfo=timezone.utc), line, fields)
        for line in (text.splitlines() or [text])[:200]
    ]


def _on_env(fn: Callable[[Dict[str, str]], Any]) -> Callable[[str], Any]:
    def call(text: str) -> Any:
        env = dict(line.partition("=")[::2] for line in text.splitlines()[:200])
        return fn(env)

    return call


# (name, the call under test, its seeds)
PARSERS: List[Tuple[str, Callable[[str], Any], List[str]]] = [
    ("agent_log.parse_agent_log_line", agent_log.parse_agent_log_line,
     _seeds("agent-logs/*/*")),
    ("agent_log.parse_time", agent_log.parse_time, _seeds("agent-logs/*/*")),
    ("agent_log.line_timestamp", agent_log.line_timestamp, _seeds("agent-logs/*/*")),
    ("agent_log.endpoint_host_in", agent_log.endpoint_host_in, _seeds("agent-logs/*/*")),
    ("log_signatures.first_match", log_signatures.first_match, _seeds("agent-logs/*/*")),
    ("log_signatures.fold", lambda t: log_signatures.fold(t.encode("utf-8", "surrogateescape")),
     _seeds("agent-logs/*/*")),
    ("log_signatures.candidate_indexes", lambda t: log_signatures.candidate_indexes(
        [x.encode("utf-8", "surrogateescape") for x in t.split("\n")]), _seeds("agent-logs/*/*")),
    ("log_signatures.required_literals", log_signatures.required_literals,
     ["dns error|failed to (set|bump) the rlimit|IMDS", "a|[0-9]+"]),
    ("aws_error.parse_aws_reply", lambda t: aws_error.parse_aws_reply(403, {"x-amzn-ErrorType": t[:80]}, t),
     _seeds("ssm/logs/*")),
    ("cgroup.cgroup_paths", cgroup.cgroup_paths, _seeds("roots/*/root/proc/1/cgroup")),
    ("cgroup.container_runtime", cgroup.container_runtime, _seeds("roots/*/root/proc/1/cgroup")),
    ("cpuinfo.parse_cpuinfo", cpuinfo.parse_cpuinfo, _seeds("roots/*/root/proc/cpuinfo")),
    ("dmesg.parse_dmesg_iso", dmesg.parse_dmesg_iso, _seeds("agent/dmesg-*")),
    ("dmi.judge_ec2", lambda t: __import__("gd_doctor.parsers.dmi", fromlist=["judge_ec2"])
     .judge_ec2({"sys_vendor": t[:100], "product_name": t[100:200], "bios_vendor": None}),
     _seeds("roots/*/root/sys/class/dmi/id/*")),
    ("dpkg_status.parse_dpkg_query", dpkg_status.parse_dpkg_query, ["install ok installed|1.9.2"]),
    ("dpkg_status.parse_dpkg_status_file",
     lambda t: dpkg_status.parse_dpkg_status_file(t, "amazon-ssm-agent"),
     _seeds("roots/*/root/var/lib/dpkg/status")),
    ("elf.elf_machine", lambda t: elf.elf_machine(t.encode("utf-8", "surrogateescape")[:64]),
     ["\x7fELF\x02\x01\x01" + "\x00" * 9 + "\x02\x00\x3e\x00"]),
    ("imds_identity.parse_identity_document", imds_identity.parse_identity_document,
     _seeds("imds/*.json")),
    ("journal_events.summarise_unit",
     lambda t: journal_events.summarise_unit(_bad_journal_entries(t), "amazon-guardduty-agent.service"),
     _seeds("journal/*.json")),
    ("journal_events.kernel_oom_kill", lambda t: journal_events.kernel_oom_kill(t, "amazon-guardd"),
     _seeds("agent/dmesg-*")),
    ("kernel_config.parse_kernel_config", kernel_config.parse_kernel_config,
     _seeds("roots/*/root/boot/config-*")),
    ("kernel_version.parse_kernel_release", kernel_version.parse_kernel_release,
     _seeds("roots/*/root/proc/sys/kernel/osrelease")),
    ("kernel_version.parse_major_minor", kernel_version.parse_major_minor, ["6.1", "5.10"]),
    ("os_release.parse_os_release", os_release.parse_os_release, _seeds("os-release/*")),
    ("os_release.parse_system_release", os_release.parse_system_release, _seeds("os-release/*")),
    ("proc_limits.parse_proc_limits", proc_limits.parse_proc_limits,
     _seeds("roots/*/root/proc/*/limits")),
    ("proxy_env.parse_env_file", proxy_env.parse_env_file, _seeds("roots/*/root/etc/environment")),
    ("proxy_env.parse_environ", lambda t: proxy_env.parse_environ(t.encode("utf-8", "replace")),
     ["HTTPS_PROXY=http://proxy:3128\x00NO_PROXY=169.254.169.254\x00"]),
    ("proxy_env.parse_proxy_url", proxy_env.parse_proxy_url, ["http://u:p@proxy.corp:3128"]),
    ("proxy_env.split_no_proxy", proxy_env.split_no_proxy, ["169.254.169.254,.internal"]),
    ("proxy_env.no_proxy_matches",
     lambda t: proxy_env.no_proxy_matches(proxy_env.split_no_proxy(t), "guardduty-data.us-east-1.amazonaws.com"),
     [".amazonaws.com,10.0.0.0/8"]),
    ("proxy_env.proxy_settings", _on_env(proxy_env.proxy_settings),
     ["HTTPS_PROXY=http://proxy:3128\nNO_PROXY=169.254.169.254"]),
    ("resolv_conf.parse_resolv_conf", resolv_conf.parse_resolv_conf,
     _seeds("roots/*/root/etc/resolv.conf")),
    ("rpm.parse_rpm_query", rpm.parse_rpm_query, ["amazon-ssm-agent|3.3.1|1.amzn2023|x86_64"]),
    ("rpm.parse_rpm_verify", rpm.parse_rpm_verify, ["S.5....T.  c /etc/amazon/ssm/seelog.xml"]),
    ("ssm_log.parse_ssm_log_line", ssm_log.parse_ssm_log_line, _seeds("ssm/logs/*")),
    ("ssm_log.parse_ssm_log", lambda t: ssm_log.parse_ssm_log(t.splitlines()), _seeds("ssm/logs/*")),
    ("ssm_state.parse_installstate", ssm_state.parse_installstate, _seeds("ssm/state/installstate-*")),
    ("ssm_state.parse_document_state", ssm_state.parse_document_state, _seeds("ssm/state/docstate-*")),
    ("ssm_state.parse_registration", ssm_state.parse_registration, _seeds("ssm/state/registration-*")),
    ("ssm_state.parse_snap_list", lambda t: ssm_state.parse_snap_list(t, "amazon-ssm-agent"),
     ["Name Version Rev\namazon-ssm-agent 3.3.1 9565 latest/stable canonical** classic"]),
    ("ssm_state.parse_snap_yaml_version", ssm_state.parse_snap_yaml_version, ["version: 3.3.1\n"]),
    ("ssm_state.instance_dirs", lambda t: ssm_state.instance_dirs(t.splitlines()), ["i-0123456789abcdef0"]),
    ("systemctl_show.parse_systemctl_show", systemctl_show.parse_systemctl_show,
     _seeds("systemctl/*/*.props.txt")),
    ("systemctl_show.parse_properties", systemctl_show.parse_properties,
     _seeds("systemctl/*/*.props.txt")),
    ("systemctl_show.parse_bytes", systemctl_show.parse_bytes, ["536870912", "infinity"]),
    ("systemctl_show.parse_usec", systemctl_show.parse_usec, ["1s 500ms", "infinity"]),
    ("systemctl_show.parse_timestamp", systemctl_show.parse_timestamp, ["Mon 2026-11-30 10:00:00 UTC"]),
    ("systemctl_show.parse_environment", systemctl_show.parse_environment,
     ['HTTPS_PROXY=http://p:3128 "A=b c"']),
    ("systemctl_show.parse_environment_files", systemctl_show.parse_environment_files,
     ["/etc/sysconfig/x (ignore_errors=yes)"]),
    ("systemd_conf.parse_systemd_conf", systemd_conf.parse_systemd_conf,
     _seeds("roots/*/root/etc/systemd/system.conf")),
    ("systemd_conf.parse_limit", systemd_conf.parse_limit, ["64M:infinity", "infinity"]),
    ("unit_file.parse_unit_file", unit_file.parse_unit_file,
     _seeds("roots/*/root/**/amazon-guardduty-agent.service")),
    ("unit_file.parse_size", lambda t: unit_file.parse_size(t, 4 << 30), ["128M", "50%", "infinity"]),
    # the unit and package layers (host/units.py, host/packages.py)
    ("unit_file.collect_settings", lambda t: unit_file.collect_settings(
        [unit_file.parse_unit_file(t, "a"), unit_file.parse_unit_file(t[::-1], "b")]),
     ["[Service]\nExecStart=\nExecStart=/bin/b\nMemoryMax=\n"]),
    ("unit_file.settings_sources", lambda t: unit_file.settings_sources(
        [unit_file.parse_unit_file(t, "a")]), ["[Service]\nMemoryMax=1G\n"]),
    ("unit_file.split_unit_name", unit_file.split_unit_name, ["amazon-guardduty-agent.service"]),
    ("unit_file.template_of", unit_file.template_of, ["getty@tty1.service"]),
    ("unit_file.dash_prefixes", unit_file.dash_prefixes, ["a-b-c@i.service", "--.service"]),
    ("systemd_env.extract_words", systemd_env.extract_words,
     ['"https_proxy=http://p:3128" A=\\x20 B=a"b c"d \\u00e9 \\777']),
    ("systemd_env.env_assignment_valid", systemd_env.env_assignment_valid, ["A=b", "1=x"]),
    ("systemd_env.resolve_specifiers", lambda t: systemd_env.resolve_specifiers(t, t[:40]),
     ["%t/%N.env", "%%", "%"]),
    ("systemd_env.parse_environment_file", systemd_env.parse_environment_file,
     ['A="x\\"y" \'q\'\nB=1\\\n2\n# c\\\nexport C=1\n']),
    ("systemd_env.environment_from_settings",
     lambda t: systemd_env.environment_from_settings(t.splitlines(), "a@b.service"),
     ['"A=1 2" B=%i\nC=%4\n']),
    ("systemd_env.environment_files_from_settings",
     lambda t: systemd_env.environment_files_from_settings(t.splitlines(), "a.service"),
     ["-/etc/%N\nrel\n/etc/../x\n"]),
    ("dpkg_status.stanzas", lambda t: list(dpkg_status.stanzas(t)),
     ["Package: a\nStatus: x\n\n \nPackage: b\n"]),
    ("dpkg_status.parse_dpkg_database", dpkg_status.parse_dpkg_database,
     ["Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: a\nStatus: x\n"]),
    ("dpkg_status.DpkgDatabase.get", lambda t: dpkg_status.DpkgDatabase(t).get("a"),
     ["Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: a\nStatus: x\n"]),
    ("rpm.parse_rpm_header", lambda t: rpm.parse_rpm_header(t.encode("utf-8", "replace")),
     ["\x00\x00\x00\x01\x00\x00\x00\x04\x00\x00\x03\xe8\x00\x00\x00\x06"
      "\x00\x00\x00\x00\x00\x00\x00\x01abc\x00"]),
    ("lsm.lockdown_mode", lsm.lockdown_mode, ["none integrity [confidentiality]\n"]),
    ("lsm.lockdown_refusals", lsm.lockdown_refusals, _seeds("lsm/dmesg.txt")),
    ("lsm.bpf_avc_denials", lsm.bpf_avc_denials, _seeds("lsm/audit*.log")),
    ("time_sync.parse_timedatectl_show", time_sync.parse_timedatectl_show,
     ["Timezone=UTC\nNTP=yes\nNTPSynchronized=no\nTimeUSec=Tue 2026-12-01 14:20:07 UTC\n"]),
    ("time_sync.yes_no", time_sync.yes_no, ["yes", "no", "maybe"]),
    ("time_sync.parse_chrony_tracking", time_sync.parse_chrony_tracking,
     ["A9FEA97B,169.254.169.123,4,1764598800.123456789,-0.000012345,0.000004567,0.000023456,"
      "-12.345,-0.001,0.035,0.000345678,0.000123456,64.5,Normal\n"]),
    ("time_sync.parse_http_date", time_sync.parse_http_date, ["Tue, 01 Dec 2026 14:20:07 GMT"]),
    ("time_sync.names_time_sync_service", time_sync.names_time_sync_service,
     ["server 169.254.169.123 prefer iburst\n[Time]\nNTP=fd00:ec2::123\n"]),
]  # fmt: skip


def _mutated(seeds: List[str]) -> Any:
    """A seed with a random slice replaced by random text, a line repeated, or cut short."""

    @st.composite
    def build(draw: Any) -> str:
        seed = draw(st.sampled_from(seeds))
        a = draw(st.integers(0, len(seed)))
        b = draw(st.integers(a, min(len(seed), a + 200)))
        filler = draw(
            st.one_of(
                st.text(max_size=80),
                st.sampled_from(["9" * 4400, "١٢٣٤", "\x00", "[[[[", "=", "\n" * 3, "-1", "nan"]),
            )
        )
        return seed[:a] + filler + seed[b:]

    return build()


def _inputs(seeds: List[str]) -> Any:
    return st.one_of(
        _mutated(seeds), st.text(max_size=2000), st.sampled_from(HOSTILE), st.sampled_from(seeds)
    )


@pytest.mark.parametrize("name, parse, seeds", PARSERS, ids=[p[0] for p in PARSERS])
def test_parser_never_raises(name: str, parse: Callable[[str], Any], seeds: List[str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_inputs(seeds))
    def run(text: str) -> None:
        try:
            parse(text)
        except ParseError:
            pass  # the documented "could not parse" value of the raising parsers; callers catch it
        # any other exception fails the test, and hypothesis shows the input

    run()


def test_every_public_parser_is_fuzzed() -> None:
    """A new parser function must be added to PARSERS."""
    import importlib
    import inspect
    import pkgutil

    import gd_doctor.parsers as pkg

    public = set()
    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"gd_doctor.parsers.{info.name}")
        for fname, fn in vars(mod).items():
            if (
                inspect.isfunction(fn)
                and fn.__module__ == mod.__name__
                and not fname.startswith("_")
            ):
                public.add(f"{info.name}.{fname}")
    fuzzed = {p[0] for p in PARSERS}
    # compiled patterns, and the JSON helpers every JSON parser above goes through
    exempt = {
        "ssm_log.compile_signatures",
        "ssm_log.match_signatures",
        "log_signatures.signatures",
        "log_signatures.prefilter_literals",
        "errors.json_depth",
        "errors.loads_json",
        "numbers.scaled",
    }
    assert sorted(public - fuzzed - exempt) == []
