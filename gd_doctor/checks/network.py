"""Checks of the network domain: the path from this instance to GuardDuty's data endpoint.

What they read and probe:

* the Region (``--region``, else the identity document, else the agent's own facts) and the
  endpoint names built from ``knowledge/endpoints.json``: ``guardduty-data.<region>.<suffix>``,
  ``guardduty-data-v2.<region>.<suffix>`` (link-local path, agent >= 1.17.1); ``--endpoint-url``
  overrides;
* ``/etc/resolv.conf`` (and ``/run/systemd/resolve/resolv.conf`` behind the systemd-resolved
  stub): which resolver answers;
* DNS through the system resolver, each address classified against the VPC CIDR blocks;
* TCP 443, TLS (SNI, verification, issuer) and one unsigned HTTPS request per address: an AWS
  refusal (4xx with ``x-amzn-RequestId``) is the healthy answer, never a denial;
* proxy variables as the agent sees them: its unit's ``Environment=``, ``EnvironmentFile=`` and
  drop-ins, ``/proc/<MainPID>/environ`` when the agent checks found the PID, and
  ``/etc/environment`` (login sessions only: systemd services do not read it);
* DNS and TCP 443 for the ssm, ssmmessages and ec2messages endpoints.

Probes of several addresses run in parallel daemon threads, each under its own timeout.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar
from urllib.parse import urlsplit

from gd_doctor.checks import agent as agent_checks
from gd_doctor.checks.base import Check, Context, check, outcome
from gd_doctor.host import timeouts
from gd_doctor.host.net import DnsAnswer, HttpsProbe, TcpResult
from gd_doctor.knowledge import load
from gd_doctor.model import JSONValue, Outcome, SkipReason, Status
from gd_doctor.parsers.aws_error import parse_aws_reply
from gd_doctor.parsers.proxy_env import (
    ProxyUrlError,
    no_proxy_matches,
    parse_env_file,
    parse_environ,
    parse_proxy_url,
    parse_unit_environment,
    proxy_settings,
)
from gd_doctor.parsers.resolv_conf import parse_resolv_conf
from gd_doctor.redact import redact

UNIT = "amazon-guardduty-agent.service"
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system",
             "/usr/lib/systemd/system")
T = TypeVar("T")
R = TypeVar("R")

# Facts of the agent checks, read when those checks exist (another module owns them).
_AGENT_FACT_IDS = ("agent.unit", "agent.process", "agent.logs", "agent.config")
AGENT_FACTS: Tuple[str, ...] = tuple(
    c.id for c in agent_checks.CHECKS if c.id in _AGENT_FACT_IDS
)


def _endpoints() -> Mapping[str, object]:
    data: Mapping[str, object] = load("endpoints.json")
    return data


def parallel(fn: Callable[[T], R], items: Sequence[T], timeout: float) -> List[Optional[R]]:
    """``fn`` over ``items`` in daemon threads; an item not done by ``timeout`` gives None."""
    results: List[Optional[R]] = [None] * len(items)

    def work(i: int, item: T) -> None:
        results[i] = fn(item)

    threads = [threading.Thread(target=work, args=(i, it), daemon=True, name="gd-doctor-probe")
               for i, it in enumerate(items)]
    for t in threads:
        t.start()
    end = time.monotonic() + max(0.05, timeout)
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return results


# --- Region and endpoint names ---------------------------------------------------------------


def partition_of(region: str) -> Tuple[str, str]:
    """(partition id, DNS suffix) of a Region, from endpoints.json.

    >>> partition_of("cn-north-1")
    ('aws-cn', 'amazonaws.com.cn')
    >>> partition_of("us-gov-west-1")
    ('aws-us-gov', 'amazonaws.com')
    >>> partition_of("eu-central-1")
    ('aws', 'amazonaws.com')
    """
    parts = _endpoints()["partitions"]
    assert isinstance(parts, list)
    for part in reversed(parts):  # the specific partitions are listed after aws
        if re.match(part["region_regex"], region):
            return str(part["id"]), str(part["dns_suffix"])
    return "aws", "amazonaws.com"


def valid_region(region: str) -> bool:
    """True for a well-formed Region name.

    >>> valid_region("us-east-1"), valid_region("us-east-1; rm -rf /")
    (True, False)
    """
    return bool(re.match(str(_endpoints()["region_regex"]), region))


def _agent_region(ctx: Context) -> Optional[str]:
    for cid in AGENT_FACTS:
        value = ctx.fact(cid, "region")
        if isinstance(value, str) and valid_region(value):
            return value
    return None


@check("network.region", title="Region and GuardDuty data endpoint names",
       category="network", after=("imds.identity", *AGENT_FACTS))
def region_and_endpoint(ctx: Context) -> Outcome:
    """Picks the Region (--region, identity document, agent) and builds the endpoint names."""
    instance_region = ctx.fact("imds.identity", "region")
    agent_region = _agent_region(ctx)
    candidates = (("--region", ctx.options.region), ("instance identity document",
                  instance_region), ("agent", agent_region))
    source, region = next(((s, r) for s, r in candidates if isinstance(r, str) and r),
                          ("", None))
    data: Dict[str, JSONValue] = {
        "instance_region": instance_region if isinstance(instance_region, str) else None,
        "agent_region": agent_region,
    }
    url = ctx.options.endpoint_url or ctx.host.settings.endpoint_url
    if region is not None and not valid_region(str(region)):
        return outcome(Status.FAIL, f"{region!r} is not a Region name", data)
    gd = _endpoints()["guardduty_data"]
    assert isinstance(gd, dict)
    if region is not None:
        partition, suffix = partition_of(str(region))
        imds_suffix = ctx.fact("imds.identity", "services_domain")
        if isinstance(imds_suffix, str) and imds_suffix:
            suffix = imds_suffix  # IMDS knows the partition's domain best
        names = {k: str(gd[k]).format(region=region, dns_suffix=suffix)
                 for k in ("primary", "link_local_v2", "fips")}
        data.update(region=str(region), region_source=source, partition=partition,
                    dns_suffix=suffix, host=names["primary"], v2_host=names["link_local_v2"],
                    fips_host=names["fips"] if region in gd["fips_regions"] else None,
                    port=int(gd["port"]), endpoint_url=None)
    if url:
        parts = urlsplit(url if "://" in url else "https://" + url)
        try:
            port = parts.port or 443
        except ValueError:
            return outcome(Status.FAIL, "--endpoint-url has an invalid port", data)
        if not parts.hostname:
            return outcome(Status.FAIL, "--endpoint-url has no host name", data)
        data.update(host=parts.hostname, port=port, endpoint_url=url, v2_host=None,
                    fips_host=None)
        data.setdefault("region", region)
        return outcome(Status.OK, f"{parts.hostname}:{port} (--endpoint-url)", data)
    if region is None:
        return Outcome(Status.SKIP, "Region unknown: IMDS gave none; pass --region", data,
                       skip_reason=SkipReason.NOT_APPLICABLE)
    return outcome(Status.OK, f"{data['host']} (Region {region} from {source})", data)


# --- Resolver ---------------------------------------------------------------------------------


def _in_cidrs(address: str, cidrs: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    for cidr in cidrs:
        try:
            if ip in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def _vpc_plus_two(cidrs: Sequence[str]) -> List[str]:
    out = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if net.version == 4 and net.num_addresses > 2:
            out.append(str(net.network_address + 2))
    return out


def classify_nameserver(address: str, vpc_cidrs: Sequence[str]) -> str:
    """amazon | vpc+2 | systemd-resolved | loopback | custom | unknown (VPC CIDRs not known).

    >>> classify_nameserver("169.254.169.253", [])
    'amazon'
    >>> classify_nameserver("10.0.0.2", ["10.0.0.0/16"])
    'vpc+2'
    >>> classify_nameserver("127.0.0.53", []), classify_nameserver("10.9.9.9", ["10.0.0.0/16"])
    ('systemd-resolved', 'custom')
    >>> classify_nameserver("10.9.9.9", [])
    'unknown'
    """
    conf = _endpoints()["amazon_resolvers"]
    assert isinstance(conf, dict)
    if address in conf["addresses"]:
        return "amazon"
    if address in _vpc_plus_two(vpc_cidrs):
        return "vpc+2"
    if address in conf["systemd_resolved_stubs"]:
        return "systemd-resolved"
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return "custom"
    if ip.is_loopback:
        return "loopback"
    if ip.is_private and not vpc_cidrs:
        return "unknown"  # could be the VPC resolver (base + 2); the CIDR is needed to tell
    return "custom"


def _vpc_cidrs(ctx: Context) -> List[str]:
    value = ctx.fact("imds.network", "vpc_cidrs") or []
    return [str(c) for c in value] if isinstance(value, list) else []


@check("network.resolver", title="DNS resolver in use", category="network",
       after=("imds.network",))
def resolver_in_use(ctx: Context) -> Outcome:
    """Reads /etc/resolv.conf (and systemd-resolved's upstream list) and names the resolver."""
    read = ctx.host.fs.read("/etc/resolv.conf", max_bytes=64 * 1024)
    if not read.ok or read.text is None:
        return outcome(Status.WARN, f"/etc/resolv.conf: {read.problem}",
                        {"nameservers": [], "kind": "unknown", "problem": read.problem})
    conf = parse_resolv_conf(read.text)
    cidrs = _vpc_cidrs(ctx)
    servers = [{"address": a, "kind": classify_nameserver(a, cidrs)} for a in conf.nameservers]
    evidence = [f"/etc/resolv.conf: nameserver {a}" for a in conf.nameservers]
    if any(s["kind"] == "systemd-resolved" for s in servers):
        upstream_file = str(_endpoints()["amazon_resolvers"]["systemd_resolved_upstream_file"])  # type: ignore[index]
        up = ctx.host.fs.read_text(upstream_file, max_bytes=64 * 1024)
        if up is not None:
            for a in parse_resolv_conf(up).nameservers:
                servers.append({"address": a, "kind": classify_nameserver(a, cidrs),
                                "via": "systemd-resolved"})
                evidence.append(f"{upstream_file}: nameserver {a}")
    upstream = [s for s in servers if s["kind"] not in ("systemd-resolved",)]
    kinds = {s["kind"] for s in upstream}
    data: Dict[str, JSONValue] = {"nameservers": servers, "search": list(conf.search),  # type: ignore[dict-item]
                                  "vpc_cidrs": cidrs}
    if not conf.nameservers:
        data["kind"] = "none"
        return outcome(Status.WARN, "/etc/resolv.conf names no nameserver (glibc then asks "
                        "127.0.0.1)", data, evidence)
    if kinds and kinds <= {"amazon", "vpc+2"}:
        data["kind"] = "amazon"
        return outcome(Status.OK, "Amazon-provided DNS (Route 53 Resolver)", data, evidence)
    if not kinds:
        data["kind"] = "systemd-resolved"
        return outcome(Status.OK, "systemd-resolved stub (upstream servers not readable)",
                        data, evidence)
    if kinds == {"loopback"}:
        data["kind"] = "local"
        return outcome(Status.OK, "a local resolver on " + ", ".join(
            str(s["address"]) for s in upstream) + " (dnsmasq, unbound or similar): private DNS "
            "works only if it forwards to the VPC resolver", data, evidence)
    if "custom" not in kinds and "loopback" not in kinds:
        data["kind"] = "unknown"
        return outcome(Status.OK, "resolver " + ", ".join(str(s["address"]) for s in upstream)
                        + " (VPC CIDR unknown: cannot tell whether it is the VPC resolver)",
                        data, evidence)
    data["kind"] = "custom"
    custom = ", ".join(str(s["address"]) for s in upstream if s["kind"] not in ("amazon", "vpc+2"))
    return outcome(Status.WARN, f"custom resolver ({custom}): it must forward the endpoint's "
                    "name to the VPC resolver for private DNS to work", data, evidence)


# --- DNS --------------------------------------------------------------------------------------


def classify_address(address: str, vpc_cidrs: Sequence[str]) -> str:
    """vpc | private | link-local | loopback | public | invalid.

    >>> classify_address("10.0.3.7", ["10.0.0.0/16"]), classify_address("172.31.0.9", [])
    ('vpc', 'private')
    >>> classify_address("52.94.1.1", ["10.0.0.0/16"]), classify_address("fd00:ec2::254", [])
    ('public', 'private')
    """
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return "invalid"
    if _in_cidrs(address, vpc_cidrs):
        return "vpc"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    return "public"


def _answer_data(
    answer: Optional[DnsAnswer], name: str, cidrs: Sequence[str]
) -> Dict[str, JSONValue]:
    if answer is None:
        return {"name": name, "addresses": [], "classes": {}, "problem": "timeout"}
    classes = {a: classify_address(a, cidrs) for a in answer.addresses}
    return {"name": name, "addresses": list(answer.addresses), "classes": classes,  # type: ignore[dict-item]
            "problem": answer.problem}


def _overall_class(classes: Mapping[str, str]) -> str:
    kinds = set(classes.values())
    if not kinds:
        return "unresolved"
    if kinds <= {"vpc"}:
        return "vpc"
    if kinds <= {"vpc", "private", "loopback", "link-local"}:
        return "private"
    if kinds <= {"public"}:
        return "public"
    return "mixed"


@check("network.guardduty_dns", title="guardduty-data name resolves to the VPC endpoint",
       category="network", requires=("network.region",), after=("imds.network", "network.resolver"),
       needs=("live", "network"))
def guardduty_dns(ctx: Context) -> Outcome:
    """Resolves the endpoint (and the -v2 name) through the system resolver, in parallel."""
    host = str(ctx.fact("network.region", "host"))
    v2 = ctx.fact("network.region", "v2_host")
    names = [host] + ([str(v2)] if isinstance(v2, str) else [])
    limit = ctx.timeout(timeouts.DNS)
    answers = parallel(lambda n: ctx.host.net.resolve(n, timeout=limit), names, limit + 0.1)
    cidrs = _vpc_cidrs(ctx)
    per_name = {n: _answer_data(a, n, cidrs) for n, a in zip(names, answers)}
    main = per_name[host]
    classes = main["classes"]
    assert isinstance(classes, dict)
    overall = _overall_class(classes)
    if ctx.fact("network.region", "endpoint_url") and overall in ("mixed", "public"):
        overall = "override"  # --endpoint-url: the user chose the address; no VPC judgement
    data: Dict[str, JSONValue] = {"host": host, "addresses": main["addresses"],
                                  "classes": classes, "endpoint_class": overall,
                                  "problem": main["problem"], "names": per_name,  # type: ignore[dict-item]
                                  "vpc_cidrs": cidrs}
    evidence = [f"{n}: {', '.join(d['addresses']) or d['problem']}"  # type: ignore[arg-type]
                for n, d in per_name.items()]
    if overall == "unresolved":
        return outcome(Status.FAIL, f"{host} does not resolve ({main['problem']})", data,
                        evidence)
    listing = ", ".join(f"{a} ({c})" for a, c in classes.items())
    if overall == "public":
        return outcome(Status.WARN, f"{host} resolves to public addresses only: {listing}",
                        data, evidence)
    if overall == "vpc" or (overall == "private" and not cidrs):
        return outcome(Status.OK, f"{host} -> {listing}", data, evidence)
    return outcome(Status.WARN, f"{host} -> {listing}", data, evidence)


# --- TCP, TLS and HTTPS -----------------------------------------------------------------------


@check("network.guardduty_tcp", title="TCP 443 to guardduty-data", category="network",
       requires=("network.guardduty_dns",), needs=("live", "network"))
def guardduty_tcp(ctx: Context) -> Outcome:
    """One TCP connect per resolved address, in parallel."""
    addresses = [str(a) for a in ctx.fact("network.guardduty_dns", "addresses") or []]  # type: ignore[union-attr]
    port = int(ctx.fact("network.region", "port") or 443)  # type: ignore[arg-type]
    limit = ctx.timeout(timeouts.TCP_CONNECT)
    results = parallel(lambda a: ctx.host.net.tcp_connect(a, port, timeout=limit), addresses,
                       limit + 0.2)
    states = {a: (r.state if isinstance(r, TcpResult) else "timeout")
              for a, r in zip(addresses, results)}
    data: Dict[str, JSONValue] = {"port": port, "states": states,  # type: ignore[dict-item]
                                  "any_ok": "ok" in states.values()}
    evidence = [f"{a}:{port} {s}" for a, s in states.items()]
    if "ok" in states.values():
        status = Status.OK if set(states.values()) == {"ok"} else Status.WARN
        return outcome(status, f"TCP {port} open on {sum(s == 'ok' for s in states.values())}"
                        f" of {len(states)} addresses", data, evidence)
    kinds = sorted(set(states.values()))
    return outcome(Status.FAIL, f"TCP {port} fails on every address ({', '.join(kinds)})",
                    data, evidence)


def _amazon_issuer(cert: Mapping[str, str]) -> bool:
    orgs = _endpoints()["tls"]["amazon_issuer_organizations"]  # type: ignore[index]
    return cert.get("issuer_o", "") in orgs


def _probe_data(p: HttpsProbe) -> Dict[str, JSONValue]:
    reply = parse_aws_reply(p.http_status, p.headers, p.body) if p.http_status else None
    return {
        "address": p.address, "via_proxy": p.via_proxy, "tcp": p.tcp,
        "proxy_status": p.proxy_status, "tls": p.tls, "tls_detail": p.tls_detail,
        "tls_version": p.tls_version, "subject_cn": p.cert.get("subject_cn"),
        "issuer_o": p.cert.get("issuer_o"), "issuer_cn": p.cert.get("issuer_cn"),
        "not_after": p.cert.get("not_after"),
        "amazon_issuer": _amazon_issuer(p.cert) if p.tls == "ok" else None,
        "http_status": p.http_status, "aws_shaped": reply.aws_shaped if reply else False,
        "request_id_present": reply.request_id_present if reply else False,
        "error_type": reply.error_type if reply else None,
        "server": reply.server if reply else None, "problem": p.problem,
    }


def _probe_line(d: Mapping[str, JSONValue]) -> str:
    where = f" via {d['via_proxy']}" if d.get("via_proxy") else ""
    if d.get("tls") is None:
        return f"{d['address']}{where}: {d.get('problem') or d.get('tcp')}"
    if d["tls"] != "ok":
        return f"{d['address']}{where}: TLS {d['tls']} ({d['tls_detail']})"
    issuer = " / ".join(str(x) for x in (d.get("issuer_o"), d.get("issuer_cn")) if x) or "?"
    return (f"{d['address']}{where}: TLS ok, issuer {issuer}, "
            f"HTTP {d['http_status']} {d.get('error_type') or ''}".rstrip()
            + (" (AWS request id present)" if d.get("request_id_present") else ""))


@check("network.guardduty_https", title="TLS and an AWS answer from guardduty-data",
       category="network", requires=("network.guardduty_tcp",), after=("network.proxy",),
       needs=("live", "network"))
def guardduty_https(ctx: Context) -> Outcome:
    """TLS handshake with SNI, issuer check, and one unsigned GET per open address."""
    host = str(ctx.fact("network.region", "host"))
    port = int(ctx.fact("network.region", "port") or 443)  # type: ignore[arg-type]
    states = ctx.fact("network.guardduty_tcp", "states") or {}
    assert isinstance(states, dict)
    addresses = [a for a, s in states.items() if s == "ok"]
    limit = ctx.timeout(timeouts.TLS_HANDSHAKE + timeouts.HTTPS_REQUEST)
    probes = parallel(lambda a: ctx.host.net.https_probe(a, port, host, timeout=limit),
                      addresses, limit + 0.2)
    rows = [_probe_data(p) for p in probes if isinstance(p, HttpsProbe)]
    proxied: Optional[Dict[str, JSONValue]] = None
    proxy_raw = _agent_proxy_raw(ctx) if ctx.fact("network.proxy", "applies_to_endpoint") else None
    if proxy_raw and "[REDACTED]" in proxy_raw:
        # only a redacted copy was readable (not root): probing would send wrong credentials
        proxied = {"address": host, "via_proxy": redact(proxy_raw), "tcp": None, "tls": None,
                   "aws_shaped": False, "problem": "proxy credentials not readable; not probed"}
    elif proxy_raw:
        p = ctx.host.net.https_probe(host, port, host, timeout=ctx.timeout(limit),
                                     proxy_url=proxy_raw)
        proxied = _probe_data(p)
    good = [r for r in rows if r["tls"] == "ok" and r["aws_shaped"]]
    intercepted = [r for r in rows if r["tls"] == "ok" and r["amazon_issuer"] is False]
    untrusted = [r for r in rows if r["tls"] in ("untrusted", "name-mismatch", "expired")]
    not_service = [r for r in rows if r["tls"] == "ok" and not r["aws_shaped"]]
    data: Dict[str, JSONValue] = {
        "host": host, "probes": rows, "via_proxy": proxied,  # type: ignore[dict-item]
        "agent_path": "proxy" if proxy_raw else "direct",
        "service_answered": bool(good),
        "intercepted": bool(intercepted) or bool(untrusted and not good),
        "tls_failed": bool(rows) and all(r["tls"] != "ok" for r in rows),
        "not_the_service": bool(not_service) and not good,
    }
    evidence = [_probe_line(r) for r in rows] + ([_probe_line(proxied)] if proxied else [])
    if good and not intercepted:
        return outcome(Status.OK, f"{host} answered as an AWS service (TLS issued by "
                        f"{good[0]['issuer_o']})", data, evidence)
    if intercepted or untrusted:
        return outcome(Status.FAIL, f"TLS to {host} is not Amazon's: certificate issued by "
                        f"{(intercepted or untrusted)[0].get('issuer_o') or 'an untrusted CA'}"
                        , data, evidence)
    if not rows:
        return outcome(Status.FAIL, "no TLS answer from any address", data, evidence)
    if data["tls_failed"]:
        return outcome(Status.FAIL, f"TLS handshake with {host} failed", data, evidence)
    return outcome(Status.FAIL, f"something other than the AWS service answers on {host}",
                    data, evidence)


# --- Proxies ----------------------------------------------------------------------------------


def _unit_environment_files(ctx: Context) -> List[Tuple[str, str]]:
    """(path, text) of the unit file and its drop-ins, lowest precedence first."""
    out: List[Tuple[str, str]] = []
    for base in reversed(UNIT_DIRS):
        text = ctx.host.fs.read_text(f"{base}/{UNIT}", max_bytes=256 * 1024)
        if text is not None:
            out.append((f"{base}/{UNIT}", text))
            break
    for base in reversed(UNIT_DIRS):
        for path in ctx.host.fs.glob(f"{base}/{UNIT}.d", "*.conf"):
            text = ctx.host.fs.read_text(path, max_bytes=256 * 1024)
            if text is not None:
                out.append((path, text))
    return out


def _fact_env(ctx: Context, check_id: str, key: str) -> Dict[str, str]:
    """An environment another check reported (values already redacted), as str -> str."""
    value = ctx.fact(check_id, key) if check_id in AGENT_FACTS else None
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def gather_proxy_sources(ctx: Context) -> List[Tuple[str, Dict[str, str]]]:
    """(source, environment) pairs as the agent would see them; raw values (may hold secrets).

    Files are read here (unit file, drop-ins, EnvironmentFile=, /proc/PID/environ) so a proxy
    can be probed with its real credentials; the agent checks' redacted views fill in what this
    check cannot read itself (``systemctl show`` Environment, the environ of a process that
    needs root to read).
    """
    sources: List[Tuple[str, Dict[str, str]]] = []
    unit_env: Dict[str, str] = {}
    files: List[str] = []
    texts = _unit_environment_files(ctx)
    seen = {path for path, _ in texts}
    extra = ctx.fact("agent.unit", "drop_in_paths") if "agent.unit" in AGENT_FACTS else None
    for path in extra if isinstance(extra, list) else []:
        text = ctx.host.fs.read_text(str(path), max_bytes=256 * 1024)
        if text is not None and str(path) not in seen:
            texts.append((str(path), text))
    for _path, text in texts:
        parsed = parse_unit_environment(text)
        unit_env.update(parsed.environment)
        files.extend(parsed.environment_files)
    more = ctx.fact("agent.unit", "environment_files") if "agent.unit" in AGENT_FACTS else None
    if isinstance(more, list):
        files.extend(str(f) for f in more if str(f) not in files)
    for env_path in files:
        env_text = ctx.host.fs.read_text(env_path.lstrip("-"), max_bytes=256 * 1024)
        if env_text is not None:
            sources.append((f"EnvironmentFile {env_path.lstrip('-')}", parse_env_file(env_text)))
    if unit_env:
        sources.append(("unit Environment=", unit_env))
    elif _fact_env(ctx, "agent.unit", "environment"):
        sources.append(("unit Environment= (systemctl show)",
                        _fact_env(ctx, "agent.unit", "environment")))
    pid = next((ctx.fact(c, "main_pid") for c in AGENT_FACTS if ctx.fact(c, "main_pid")), None)
    environ_read = False
    if isinstance(pid, int) and pid > 0:
        raw, read = ctx.host.fs.read_bytes(f"/proc/{pid}/environ", max_bytes=256 * 1024)
        if read.problem is None:
            sources.append((f"/proc/{pid}/environ (running agent)", parse_environ(raw)))
            environ_read = True
    if not environ_read and _fact_env(ctx, "agent.process", "proxy_env"):
        sources.append(("/proc/PID/environ (running agent, via agent.process)",
                        _fact_env(ctx, "agent.process", "proxy_env")))
    etc = ctx.host.fs.read_text("/etc/environment", max_bytes=64 * 1024)
    if etc is not None:
        sources.append(("/etc/environment (login sessions only)", parse_env_file(etc)))
    return sources


def _agent_env(sources: Sequence[Tuple[str, Dict[str, str]]]) -> Tuple[str, Dict[str, str]]:
    """The environment the agent process has: its /proc environ, else unit settings merged."""
    for name, env in sources:
        if name.startswith("/proc/"):
            return name, env
    merged: Dict[str, str] = {}
    used = []
    for name, env in sources:
        if name.startswith(("EnvironmentFile", "unit ")):
            merged.update(env)
            used.append(name)
    return (" + ".join(used) or "none"), merged


def _agent_proxy_raw(ctx: Context) -> Optional[str]:
    _, env = _agent_env(gather_proxy_sources(ctx))
    return proxy_settings(env).https_proxy


@check("network.proxy", title="Proxy settings as the agent sees them", category="network",
       after=("network.region", *AGENT_FACTS))
def proxy_as_agent_sees(ctx: Context) -> Outcome:
    """Unit Environment/EnvironmentFile/drop-ins, /proc/PID/environ, /etc/environment."""
    host = ctx.fact("network.region", "host")
    imds_host = str(_endpoints()["imds"]["no_proxy_host"])  # type: ignore[index]
    sources = gather_proxy_sources(ctx)
    rows: List[Dict[str, JSONValue]] = []
    for name, env in sources:
        s = proxy_settings(env)
        if not s.https_proxy and not s.no_proxy:
            continue
        row: Dict[str, JSONValue] = {"source": name, "variable": s.https_variable,
                                     "no_proxy": list(s.no_proxy), "proxy": None,
                                     "malformed": None}
        if s.https_proxy:
            try:
                row["proxy"] = parse_proxy_url(s.https_proxy).display
            except ProxyUrlError as exc:
                row["malformed"] = str(exc)
        rows.append(row)
    agent_source, env = _agent_env(sources)
    s = proxy_settings(env)
    applies = bool(s.https_proxy)
    data: Dict[str, JSONValue] = {
        "sources": rows, "agent_source": agent_source,  # type: ignore[dict-item]
        "proxy": None, "malformed": None,
        "applies_to_imds": applies and not no_proxy_matches(s.no_proxy, imds_host),
        "applies_to_endpoint": applies and isinstance(host, str)
        and not no_proxy_matches(s.no_proxy, host),
        "no_proxy": list(s.no_proxy),
    }
    evidence = [f"{r['source']}: {r['variable']}={r['proxy'] or r['malformed']} "
                f"no_proxy={','.join(r['no_proxy']) or '(unset)'}" for r in rows]  # type: ignore[arg-type]
    if not applies:
        return outcome(Status.OK, "no proxy in the agent's environment", data, evidence)
    try:
        data["proxy"] = parse_proxy_url(str(s.https_proxy)).display
    except ProxyUrlError as exc:
        data["malformed"] = str(exc)
        data["applies_to_endpoint"] = False
        return outcome(Status.WARN, f"the agent's {s.https_variable} is malformed ({exc})",
                        data, evidence)
    if data["applies_to_imds"]:
        return outcome(Status.WARN, f"the agent uses proxy {data['proxy']} without no_proxy "
                        f"for {imds_host}: IMDS calls would go to the proxy", data, evidence)
    where = "the endpoint goes through it" if data["applies_to_endpoint"] else \
        "the endpoint is exempt"
    return outcome(Status.OK, f"proxy {data['proxy']} ({where}; IMDS exempt)", data, evidence)


# --- SSM endpoints ----------------------------------------------------------------------------


def _ssm_probe(ctx: Context, host: str, port: int, limit: float) -> Dict[str, JSONValue]:
    answer = ctx.host.net.resolve(host, timeout=limit)
    if not answer.addresses:
        return {"host": host, "addresses": [], "tcp": "dns-failed", "problem": answer.problem}
    result = ctx.host.net.tcp_connect(answer.addresses[0], port, timeout=limit)
    return {"host": host, "addresses": list(answer.addresses), "tcp": result.state,
            "problem": result.detail or None}


@check("network.ssm_endpoints", title="SSM endpoints (ssm, ssmmessages, ec2messages)",
       category="network", requires=("network.region",), needs=("live", "network"))
def ssm_endpoints(ctx: Context) -> Outcome:
    """DNS and TCP 443 for the three Systems Manager endpoints of the Region, in parallel."""
    region = ctx.fact("network.region", "region")
    suffix = ctx.fact("network.region", "dns_suffix")
    if not isinstance(region, str) or not isinstance(suffix, str):
        return Outcome(Status.SKIP, "Region unknown", {}, skip_reason=SkipReason.NOT_APPLICABLE)
    conf = _endpoints()["ssm"]
    assert isinstance(conf, dict)
    services = {k: str(v).format(region=region, dns_suffix=suffix)
                for k, v in conf["services"].items()}
    limit = ctx.timeout(timeouts.DNS)
    keys = list(services)
    probes = parallel(lambda k: _ssm_probe(ctx, services[k], int(conf["port"]), limit), keys,
                      2 * limit + 0.2)
    endpoints = {k: (p if p is not None else {"host": services[k], "addresses": [],
                                              "tcp": "timeout", "problem": "timeout"})
                 for k, p in zip(keys, probes)}
    data: Dict[str, JSONValue] = {"endpoints": endpoints, "region": region}  # type: ignore[dict-item]
    evidence = [f"{e['host']}: {', '.join(e['addresses']) or '-'} tcp {e['tcp']}"  # type: ignore[arg-type]
                for e in endpoints.values()]
    bad = [k for k, e in endpoints.items() if e["tcp"] != "ok"]
    if not bad:
        return outcome(Status.OK, "ssm, ssmmessages and ec2messages reachable on 443", data,
                        evidence)
    return outcome(Status.WARN, f"not reachable: {', '.join(bad)}", data, evidence)


CHECKS: Tuple[Check, ...] = (
    region_and_endpoint,
    resolver_in_use,
    proxy_as_agent_sees,
    guardduty_dns,
    guardduty_tcp,
    guardduty_https,
    ssm_endpoints,
)
