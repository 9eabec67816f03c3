"""`pyrt features`: runtime-spec features.md, listing only what pyrt really does here."""

from __future__ import annotations

import os

from pyrt import OCI_VERSION, __version__
from pyrt.linux.hooks import NAMES as HOOKS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def features() -> dict[str, Any]:
    from pyrt import cgroups
    from pyrt.config import NAMESPACE_TYPES
    from pyrt.linux import caps, mounts, seccomp

    mode = cgroups.host_mode()
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": sorted([*mounts.FLAG_OPTIONS, *mounts.PROPAGATION,
                                *mounts.IDMAP_OPTIONS, mounts.COPYUP]),
        "linux": {
            "namespaces": [ns for ns in NAMESPACE_TYPES if _kernel_has(ns)],
            "capabilities": list(caps.NAMES[: caps.last_cap() + 1]),
            "cgroup": {
                "v1": mode in (cgroups.LEGACY, cgroups.HYBRID),
                "v2": mode == cgroups.UNIFIED,
                "systemd": False,
                "systemdUser": False,
                "rdma": False,
            },
            "seccomp": seccomp.features(),
            # features.md: compiled-in support, whether or not this host has the LSM
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": _kernel_has_idmap()}},
            "netDevices": {"enabled": False},
        },
        "annotations": {"org.pyrt.version": __version__,
                        "io.github.seccomp.libseccomp.version": seccomp.version()},
    }


_PROC_NS = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
            "user": "user", "cgroup": "cgroup", "time": "time"}


def _kernel_has(ns_type: str) -> bool:
    return os.path.exists(f"/proc/self/ns/{_PROC_NS[ns_type]}")


def _kernel_has_idmap() -> bool:
    """mount_setattr(2) exists (Linux 5.12+): an empty call fails with EINVAL, not ENOSYS."""
    from pyrt.linux import syscalls as sc

    try:
        sc.mount_setattr(-1, "", 0)
    except OSError as e:
        return e.errno != 38  # ENOSYS
    return True
