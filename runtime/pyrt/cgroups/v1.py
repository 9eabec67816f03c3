"""cgroup v1 driver (cgroupfs): one directory per mounted hierarchy."""

from __future__ import annotations

import os
import time

from pyrt.cgroups import device_rules
from pyrt.cgroups.base import Cgroup, read, read_pids, rmdir, write
from pyrt.errors import ConfigError, PyrtError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

class CgroupV1(Cgroup):
    def __init__(self, dirs: dict[str, str]) -> None:
        self.dirs = dirs

    def paths(self) -> dict[str, str]:
        return dict(self.dirs)

    def _dir(self, controller: str) -> str | None:
        for hierarchy, path in self.dirs.items():
            if controller in hierarchy.split(","):
                return path
        return None

    def create(self) -> None:
        for hierarchy, path in self.dirs.items():
            if "cpuset" in hierarchy.split(","):
                self._make_cpuset(path)
            else:
                os.makedirs(path, exist_ok=True)
            if read_pids(f"{path}/cgroup.procs"):
                raise PyrtError(f"cgroup {path}", "already holds processes")

    @staticmethod
    def _make_cpuset(path: str) -> None:
        """A new cpuset cgroup starts with no cpus or mems: copy the parent's down."""
        if os.path.isdir(path):
            return
        parent = os.path.dirname(path)
        CgroupV1._make_cpuset(parent)
        os.mkdir(path)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not read(f"{path}/{name}").strip():
                write(f"{path}/{name}", read(f"{parent}/{name}").strip())

    def add(self, pid: int) -> None:
        for path in self.dirs.values():
            write(f"{path}/cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        path = self._dir("pids") or self._dir("freezer") or next(iter(self.dirs.values()), "")
        return read_pids(f"{path}/cgroup.procs") if path else []

    def freezer_file(self) -> str:
        path = self._dir("freezer")
        return f"{path}/freezer.state" if path else ""

    def freeze(self, frozen: bool) -> None:
        path = self._dir("freezer")
        if path is None:
            raise PyrtError("pause", "the host has no freezer cgroup controller")
        want = "FROZEN" if frozen else "THAWED"
        for _ in range(1000):
            write(f"{path}/freezer.state", want)
            if read(f"{path}/freezer.state").strip() == want:
                return
            time.sleep(0.001)
        raise PyrtError(f"cgroup {path}", f"did not become {want}")

    def destroy(self) -> None:
        for path in self.dirs.values():
            rmdir(path)

    # ------------------------------------------------------------ resources

    _dry_run = False

    def check(self, resources: dict[str, Any]) -> None:
        """Everything apply() would refuse that can be known before the cgroup exists."""
        self._dry_run = True
        try:
            self.apply(resources)
        finally:
            self._dry_run = False

    def apply(self, resources: dict[str, Any]) -> None:
        for key, value in resources.items():
            handler = getattr(self, f"_apply_{key}", None)
            if key == "unified" and value:
                raise ConfigError("/linux/resources/unified", "needs a cgroup v2 host")
            if handler is None:
                raise ConfigError(f"/linux/resources/{key}", "not supported by pyrt yet")
            if value is not None:
                handler(value, f"/linux/resources/{key}")

    def _set(self, controller: str, name: str, value: Any, ptr: str) -> None:
        path = self._dir(controller)
        if path is None:
            raise ConfigError(ptr, f"the host has no {controller} cgroup controller")
        if self._dry_run:
            return
        if not os.path.exists(f"{path}/{name}"):
            raise ConfigError(ptr, f"the host's {controller} controller lacks {name}")
        write(f"{path}/{name}", str(value))

    def _apply_memory(self, mem: dict[str, Any], ptr: str) -> None:
        files = {"reservation": "memory.soft_limit_in_bytes", "limit": "memory.limit_in_bytes",
                 "swap": "memory.memsw.limit_in_bytes", "swappiness": "memory.swappiness"}
        for key, value in mem.items():
            if value is None:
                continue
            if key in files:
                self._set("memory", files[key], value, f"{ptr}/{key}")
            elif key == "disableOOMKiller":
                if value:
                    self._set("memory", "memory.oom_control", 1, f"{ptr}/{key}")
            elif key not in ("checkBeforeUpdate", "kernel", "kernelTCP", "useHierarchy"):
                raise ConfigError(f"{ptr}/{key}", "not supported by pyrt yet")

    def _apply_cpu(self, cpu: dict[str, Any], ptr: str) -> None:
        files = {"shares": ("cpu", "cpu.shares"), "period": ("cpu", "cpu.cfs_period_us"),
                 "quota": ("cpu", "cpu.cfs_quota_us"), "cpus": ("cpuset", "cpuset.cpus"),
                 "mems": ("cpuset", "cpuset.mems")}
        for key in ("shares", "period", "quota", "cpus", "mems"):
            if cpu.get(key) not in (None, ""):
                controller, name = files[key]
                self._set(controller, name, cpu[key], f"{ptr}/{key}")
        for key in cpu:
            if key not in files:
                raise ConfigError(f"{ptr}/{key}", "not supported by pyrt yet")

    def _apply_pids(self, pids: dict[str, Any], ptr: str) -> None:
        limit = pids.get("limit")
        if limit is not None:
            self._set("pids", "pids.max", "max" if limit <= 0 else limit, f"{ptr}/limit")

    def _apply_devices(self, rules: list[dict[str, Any]], ptr: str) -> None:
        path = self._dir("devices")
        if path is None:
            raise ConfigError(ptr, "the host has no devices cgroup controller")
        parsed = device_rules.parse(rules, ptr)
        if self._dry_run:
            return
        for rule in parsed:
            write(f"{path}/{'devices.allow' if rule.allow else 'devices.deny'}", rule.v1_text())
