"""Checks of the network domain, part 1: the Region and the GuardDuty data endpoint's names.

The Region comes from ``--region``, else the identity document, else the agent's own log
lines; the endpoint names are built from ``knowledge/endpoints.json``:
``guardduty-data.<region>.<suffix>`` (``guardduty-data-fips`` in GovCloud, whose endpoint
service is the FIPS one), ``guardduty-data-v2.<region>.<suffix>`` (link-local path,
agent >= 1.17.1); ``--endpoint-url`` overrides. :func:`known_endpoint` builds the same names
from the command line alone, so the probes can start before IMDS has answered (see
:mod:`gd_doctor.host.early`).

Also the helpers the other network modules share (:func:`parallel`, ``endpoints.json``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar
from urllib.parse import urlsplit

from gd_doctor.checks.base import Context, check, judged, not_applicable
from gd_doctor.facts.agent_logs import LogFacts
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.network import RegionFacts
from gd_doctor.host.parallel import map_with_deadline
from gd_doctor.host.settings import HostSettings
from gd_doctor.knowledge import load
from gd_doctor.model import Outcome, Status

T = TypeVar("T")
R = TypeVar("R")


def conf(section: str) -> Dict[str, Any]:
    """One section of endpoints.json."""
    value = load("endpoints.json")[section]
    assert isinstance(value, dict), section
    return value


def parallel(fn: Callable[[T], R], items: Sequence[T], timeout: float) -> List[Optional[R]]:
    """``fn`` over ``items`` at once; an item not done by ``timeout`` (or that raised) is None."""
    done = map_with_deadline(fn, items, max(0.05, timeout), name="probe")
    return [t.value if t.done and t.error is None else None for t in done]


def endpoint_of(ctx: Context) -> Optional[RegionFacts]:
    """network.region's facts when they name an endpoint host (the checks below require it)."""
    region = ctx.facts(RegionFacts)
    return region if region is not None and region.host else None


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
    parts = load("endpoints.json")["partitions"]
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
    return bool(re.match(str(load("endpoints.json")["region_regex"]), region))


def _agent_region(ctx: Context) -> Optional[str]:
    """The Region of the guardduty-data names the agent wrote in its logs."""
    logs = ctx.facts(LogFacts)
    value = logs.region if logs is not None else None
    return value if value and valid_region(value) else None


def _with_names(facts: RegionFacts, identity: Optional[ImdsIdentityFacts]) -> RegionFacts:
    """The endpoint names of ``facts.region`` (a valid Region)."""
    region = str(facts.region)
    gd = conf("guardduty_data")
    partition, suffix = partition_of(region)
    if identity is not None and identity.services_domain:
        suffix = identity.services_domain  # IMDS knows the partition's domain best
    templates = {k: str(gd[k]) for k in ("primary", "link_local_v2", "fips")}
    # GovCloud's endpoint service is guardduty-data-fips (govcloud-guardduty.html, 2026-12-01)
    templates["primary"] = str(gd.get("primary_by_partition", {}).get(partition, gd["primary"]))
    names = {k: t.format(region=region, dns_suffix=suffix) for k, t in templates.items()}
    return RegionFacts(
        region=region,
        region_source=facts.region_source,
        instance_region=facts.instance_region,
        agent_region=facts.agent_region,
        partition=partition,
        dns_suffix=suffix,
        host=names["primary"],
        v2_host=names["link_local_v2"],
        fips_host=names["fips"] if region in gd["fips_regions"] else None,
        port=int(gd["port"]),
    )


def _with_url(facts: RegionFacts, url: str) -> RegionFacts:
    """``--endpoint-url`` replaces the endpoint names (``problem`` set when it is unusable)."""
    parts = urlsplit(url if "://" in url else "https://" + url)
    unnamed = replace(facts, host=None, v2_host=None, fips_host=None, endpoint_url=url)
    try:
        port = parts.port or 443
    except ValueError:
        return replace(unnamed, problem="--endpoint-url has an invalid port")
    if not parts.hostname:
        return replace(unnamed, problem="--endpoint-url has no host name")
    return replace(unnamed, host=parts.hostname, port=port)


@check(
    "network.region",
    title="Region and GuardDuty data endpoint names",
    category="network",
    facts=RegionFacts,
    reads=(ImdsIdentityFacts, LogFacts),
)
def region_and_endpoint(ctx: Context) -> Outcome:
    """Picks the Region (--region, identity document, agent) and builds the endpoint names."""
    identity = ctx.facts(ImdsIdentityFacts)
    instance_region = identity.region if identity is not None else None
    agent_region = _agent_region(ctx)
    candidates = (
        ("--region", ctx.host.settings.region),
        ("instance identity document", instance_region),
        ("agent", agent_region),
    )
    source, region = next(((s, r) for s, r in candidates if r), (None, None))
    facts = RegionFacts(region, source, instance_region, agent_region)
    if region is not None and not valid_region(region):
        problem = f"{region[:64]!r} is not a Region name"  # hostile IMDS: keep it short
        bad = RegionFacts(None, source, instance_region, agent_region, problem=problem)
        return judged(Status.FAIL, f"{problem} (from {source})", bad)
    if region is not None:
        facts = _with_names(facts, identity)
    url = ctx.host.settings.endpoint_url
    if url:
        facts = _with_url(facts, url)
        if facts.problem:
            return judged(Status.FAIL, facts.problem, facts)
        return judged(Status.OK, f"{facts.host}:{facts.port} (--endpoint-url)", facts)
    if region is None:
        return not_applicable("Region unknown: IMDS gave none; pass --region")
    return judged(Status.OK, f"{facts.host} (Region {region} from {source})", facts)


def known_endpoint(settings: HostSettings) -> Optional[RegionFacts]:
    """The endpoint names the command line alone gives (``--region``, ``--endpoint-url``),
    before IMDS has said anything; None when they need IMDS or are unusable."""
    region = settings.region
    facts = RegionFacts(region, "--region" if region else None, None, None)
    if region and valid_region(region):
        facts = _with_names(facts, None)
    if settings.endpoint_url:
        facts = _with_url(facts, settings.endpoint_url)
    return facts if facts.host and not facts.problem else None
