"""``/proc/1/cgroup`` or ``/proc/self/cgroup``: signs of a container runtime.

Typical input (cgroup v1 host, PID 1 is the host's init: every path is ``/``)::

    9:name=systemd:/
    4:memory:/
    0::/

Inside a Docker container on cgroup v1 the paths name the container
(``4:memory:/docker/3f2a...``); with cgroup v2 and a private cgroup namespace the container sees
``0::/``, so an empty answer here does not prove a host.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from gd_doctor.patterns import LazyPattern, lazy

# (pattern, runtime, a literal every match of the pattern holds): most paths are "/", which the
# literal test rules out without running (or compiling) the pattern.
_RUNTIMES: Tuple[Tuple[LazyPattern[str], str, str], ...] = (
    (lazy(r"/kubepods"), "kubernetes", "/kubepods"),
    (lazy(r"/docker[/-]"), "docker", "/docker"),
    (lazy(r"/libpod-|/machine\.slice/libpod"), "podman", "/libpod"),
    (lazy(r"/containerd[/-]|cri-containerd"), "containerd", "containerd"),
    (lazy(r"/lxc[/.]|lxc\.payload"), "lxc", "lxc"),
    (lazy(r"/ecs/"), "ecs", "/ecs/"),
    (lazy(r"/actions_job/"), "github-actions", "/actions_job/"),
)


def cgroup_paths(text: str) -> List[str]:
    """The path column of each ``id:controllers:path`` line.

    >>> cgroup_paths("9:name=systemd:/\\n0::/\\n")
    ['/', '/']
    """
    paths = []
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            paths.append(parts[2])
    return paths


def container_runtime(text: str) -> Optional[Tuple[str, str]]:
    """(runtime, the cgroup path that names it), or None when no path names a runtime.

    >>> container_runtime("4:memory:/docker/3f2a9c0e1d\\n0::/\\n")
    ('docker', '/docker/3f2a9c0e1d')
    >>> container_runtime("9:name=systemd:/\\n0::/\\n") is None
    True
    """
    for path in cgroup_paths(text):
        for pattern, runtime, literal in _RUNTIMES:
            if literal in path and pattern.search(path):
                return runtime, path
    return None
