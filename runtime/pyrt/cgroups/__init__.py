"""Cgroups: host mode detection and one driver interface with a v1 and a v2 driver.

`open_cgroup(cgroups_path, container_id)` resolves cgroupsPath as runc reads it
(absolute, relative to the caller's own cgroup, or empty: `<id>` relative) and returns
a driver; drivers map linux.resources onto files and never ignore a resource silently.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrt.cgroups.base import Cgroup

ROOT = "/sys/fs/cgroup"
UNIFIED, HYBRID, LEGACY = "unified", "hybrid", "legacy"


def host_mode() -> str:
    if os.path.exists(f"{ROOT}/cgroup.controllers"):
        return UNIFIED
    if os.path.exists(f"{ROOT}/unified/cgroup.controllers"):
        return HYBRID
    return LEGACY


def own_cgroups() -> dict[str, str]:
    """Hierarchy -> this process's cgroup path, from /proc/self/cgroup ("" is cgroup2)."""
    result: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="utf-8") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            result[controllers] = path
    return result


def resolve(cgroups_path: str, container_id: str, own: str) -> str:
    """The absolute cgroup path for one hierarchy, given the caller's cgroup `own`."""
    path = cgroups_path or container_id
    if not path.startswith("/"):
        path = os.path.join(own, path)
    return os.path.normpath(path)


def open_cgroup(cgroups_path: str, container_id: str) -> Cgroup:
    mode = host_mode()
    own = own_cgroups()
    if mode == UNIFIED:
        from pyrt.cgroups.v2 import CgroupV2

        return CgroupV2(f"{ROOT}{resolve(cgroups_path, container_id, own.get('', '/'))}")
    from pyrt.cgroups.v1 import CgroupV1

    dirs: dict[str, str] = {}
    for controllers, path in own.items():
        if not controllers:
            continue
        mount = f"{ROOT}/{controllers.removeprefix('name=')}"
        if os.path.isdir(mount):
            dirs[controllers] = mount + resolve(cgroups_path, container_id, path)
    if mode == HYBRID:
        dirs[""] = f"{ROOT}/unified" + resolve(cgroups_path, container_id, own.get("", "/"))
    return CgroupV1(dirs)


def from_paths(paths: dict[str, str]) -> Cgroup:
    """Re-open the cgroup a container saved in its state."""
    if list(paths) == [""] and host_mode() == UNIFIED:
        from pyrt.cgroups.v2 import CgroupV2

        return CgroupV2(paths[""])
    from pyrt.cgroups.v1 import CgroupV1

    return CgroupV1(paths)
