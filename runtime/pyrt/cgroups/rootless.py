"""Rootless cgroups, as runc's rootless cgroup managers treat them.

An unprivileged user can make a cgroup only where one was delegated to it. So each
hierarchy's directory is made where the user may; where it may not and no cgroupsPath
was given, the container simply stays in the caller's cgroup there. An explicit
cgroupsPath the user may not use is an error, and so is a limit for a hierarchy the
container could not join. Device rules are not the user's to set: their errors are
forgiven (the caller does that).
"""

from __future__ import annotations

import os

from pyrt.cgroups.base import Cgroup
from pyrt.errors import PyrtError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def create(cgroup: Cgroup, resources: dict[str, Any], path_given: bool) -> Cgroup:
    """Make what the user may of `cgroup`; returns the cgroup reduced to it."""
    from pyrt.cgroups.v1 import CgroupV1
    from pyrt.cgroups.v2 import CgroupV2

    joined: dict[str, str] = {}
    left_out: dict[str, str] = {}
    for hierarchy, path in cgroup.paths().items():
        if _usable(path):
            joined[hierarchy] = path
        elif path_given:
            raise PyrtError(f"cgroup {path}", "permission denied (a rootless container can "
                            "use only a cgroup delegated to its user)")
        else:
            left_out[hierarchy] = path
    for setting in cgroup.settings({k: v for k, v in resources.items() if k != "devices"}):
        for hierarchy, path in left_out.items():
            if not hierarchy or setting.controller in hierarchy.split(","):
                raise PyrtError(setting.pointer, f"cannot set a {setting.controller} limit: "
                                "the rootless container could not join or create its cgroup "
                                f"{path}")
    usable = CgroupV2(joined[""]) if isinstance(cgroup, CgroupV2) and joined \
        else CgroupV1(joined)
    usable.create()
    return usable


def _usable(path: str) -> bool:
    """Whether we may make the cgroup directory (or it is there) and move tasks into it."""
    if os.path.isdir(path):
        return os.access(f"{path}/cgroup.procs", os.W_OK, effective_ids=True)
    parent = os.path.dirname(path)
    while not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    return os.access(parent, os.W_OK | os.X_OK, effective_ids=True)
