"""cgroup v1 driver (cgroupfs): one directory per mounted hierarchy.

linux.resources map onto the files runc writes; as in runc, 0 (or an empty string) means
"not set" for the limits whose zero would make no sense.
"""

from __future__ import annotations

import os
import time

from pyrt.cgroups.base import (
    Cgroup,
    OomWatch,
    SelfJoin,
    Setting,
    hugepage_settings,
    map_sections,
    need,
    pids_settings,
    rdma_settings,
    read,
    read_int,
    read_keyed,
    read_pids,
    rmdir,
    write,
    write_settings,
)
from pyrt.errors import ConfigError, PyrtError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

USER_HZ = 100  # the unit of cpuacct.stat


# ---------------------------------------------------------------- resources -> files

def _memory(mem: dict[str, Any], ptr: str) -> list[Setting]:
    out = []
    limit, swap = mem.get("limit"), mem.get("swap")
    if limit:
        out.append(Setting("memory", "memory.limit_in_bytes", limit, f"{ptr}/limit"))
    if swap:
        out.append(Setting("memory", "memory.memsw.limit_in_bytes", swap, f"{ptr}/swap"))
    elif limit == -1:  # as runc: unlimited memory means unlimited swap, where swap is counted
        out.append(Setting("memory", "memory.memsw.limit_in_bytes", -1, f"{ptr}/limit",
                           optional=True))
    if mem.get("reservation"):
        out.append(Setting("memory", "memory.soft_limit_in_bytes", mem["reservation"],
                           f"{ptr}/reservation"))
    warn_kernel_memory(mem, ptr)
    swappiness = mem.get("swappiness")
    if swappiness is not None and swappiness != -1:
        if not 0 <= swappiness <= 100:
            raise ConfigError(f"{ptr}/swappiness", "must be between 0 and 100")
        out.append(Setting("memory", "memory.swappiness", swappiness, f"{ptr}/swappiness"))
    if mem.get("disableOOMKiller"):
        out.append(Setting("memory", "memory.oom_control", 1, f"{ptr}/disableOOMKiller"))
    if mem.get("useHierarchy") is not None:
        out.append(Setting("memory", "memory.use_hierarchy", int(mem["useHierarchy"]),
                           f"{ptr}/useHierarchy"))
    return out


def warn_kernel_memory(mem: dict[str, Any], ptr: str) -> None:
    """Kernel memory limits are deprecated (runtime-spec) and gone from recent kernels:
    ignored with a warning, as runc does."""
    for key in ("kernel", "kernelTCP"):
        if mem.get(key):
            from pyrt import log

            log.warning(f"{ptr}/{key}: kernel memory limits are deprecated and ignored")


def _cpu(cpu: dict[str, Any], ptr: str) -> list[Setting]:
    out = []
    if cpu.get("shares"):
        out.append(Setting("cpu", "cpu.shares", cpu["shares"], f"{ptr}/shares", verify=True))
    files = (("period", "cpu", "cpu.cfs_period_us"), ("quota", "cpu", "cpu.cfs_quota_us"),
             ("realtimePeriod", "cpu", "cpu.rt_period_us"),
             ("realtimeRuntime", "cpu", "cpu.rt_runtime_us"),
             ("cpus", "cpuset", "cpuset.cpus"), ("mems", "cpuset", "cpuset.mems"))
    for key, controller, name in files:
        if cpu.get(key):
            out.append(Setting(controller, name, cpu[key], f"{ptr}/{key}"))
    if cpu.get("burst") is not None:
        out.append(Setting("cpu", "cpu.cfs_burst_us", cpu["burst"], f"{ptr}/burst"))
    if cpu.get("idle") is not None:
        out.append(Setting("cpu", "cpu.idle", cpu["idle"], f"{ptr}/idle"))
    return out


THROTTLE_FILES = {
    "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
    "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
    "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
    "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
}


def _block_io(blkio: dict[str, Any], ptr: str) -> list[Setting]:
    out = []
    if blkio.get("weight"):
        out.append(Setting("blkio", "blkio.weight", blkio["weight"], f"{ptr}/weight",
                           fallback=("blkio.bfq.weight", str(blkio["weight"]))))
    if blkio.get("leafWeight"):
        out.append(Setting("blkio", "blkio.leaf_weight", blkio["leafWeight"],
                           f"{ptr}/leafWeight"))
    for i, dev in enumerate(blkio.get("weightDevice") or ()):
        p = f"{ptr}/weightDevice/{i}"
        device = f"{need(dev, 'major', p)}:{need(dev, 'minor', p)}"
        if dev.get("weight"):
            value = f"{device} {dev['weight']}"
            out.append(Setting("blkio", "blkio.weight_device", value, p,
                               fallback=("blkio.bfq.weight_device", value)))
        if dev.get("leafWeight"):
            out.append(Setting("blkio", "blkio.leaf_weight_device",
                               f"{device} {dev['leafWeight']}", p))
    for key, name in THROTTLE_FILES.items():
        for i, dev in enumerate(blkio.get(key) or ()):
            p = f"{ptr}/{key}/{i}"
            value = f"{need(dev, 'major', p)}:{need(dev, 'minor', p)} {need(dev, 'rate', p)}"
            out.append(Setting("blkio", name, value, p))
    return out


def _hugepages(limits: list[dict[str, Any]], ptr: str) -> list[Setting]:
    return hugepage_settings(limits, ptr, "limit_in_bytes")


def _network(net: dict[str, Any], ptr: str) -> list[Setting]:
    out = []
    if net.get("classID") is not None:
        out.append(Setting("net_cls", "net_cls.classid", net["classID"], f"{ptr}/classID"))
    for i, prio in enumerate(net.get("priorities") or ()):
        p = f"{ptr}/priorities/{i}"
        out.append(Setting("net_prio", "net_prio.ifpriomap",
                           f"{need(prio, 'name', p)} {need(prio, 'priority', p)}", p))
    return out


def _devices(rules: list[dict[str, Any]], ptr: str) -> list[Setting]:
    from pyrt.cgroups import device_rules  # here: delete, kill and the rest never need it

    return [Setting("devices", "devices.allow" if rule.allow else "devices.deny",
                    rule.v1_text(), ptr)
            for rule in device_rules.parse(rules, ptr)]


def _unified(unified: dict[str, str], ptr: str) -> list[Setting]:
    if unified:
        raise ConfigError(ptr, "needs cgroup v2, and this host's controllers are on v1")
    return []


SECTIONS: dict[str, Callable[[Any, str], list[Setting]]] = {
    "memory": _memory, "cpu": _cpu, "pids": pids_settings, "blockIO": _block_io,
    "hugepageLimits": _hugepages, "network": _network, "rdma": rdma_settings,
    "devices": _devices,
    "unified": _unified,
}


def settings(resources: dict[str, Any]) -> list[Setting]:
    """linux.resources as v1 cgroup file writes, in order."""
    return map_sections(resources, SECTIONS)


# ---------------------------------------------------------------- the driver

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

    def settings(self, resources: dict[str, Any]) -> list[Setting]:
        return settings(resources)

    def _placed(self, resources: dict[str, Any]) -> list[tuple[str, Setting]]:
        placed = []
        for setting in settings(resources):
            path = self._dir(setting.controller)
            if path is None:
                raise ConfigError(setting.pointer,
                                  f"the host has no {setting.controller} cgroup controller")
            placed.append((path, setting))
        return placed

    def check(self, resources: dict[str, Any]) -> None:
        self._placed(resources)

    def check_unused(self) -> None:
        for path in self.dirs.values():
            if read_pids(f"{path}/cgroup.procs"):
                raise PyrtError(f"cgroup {path}", "already holds processes")
        freezer = self.freezer_file()
        if freezer and os.path.exists(freezer) and read(freezer).strip() in ("FREEZING", "FROZEN"):
            raise PyrtError(f"cgroup {os.path.dirname(freezer)}", "is frozen")

    def apply(self, resources: dict[str, Any]) -> None:
        write_settings(self._placed(resources))

    def memory_usage(self) -> int:
        path = self._dir("memory")
        return read_int(f"{path}/memory.usage_in_bytes") if path else 0

    def open_self_join(self) -> SelfJoin:
        """Every hierarchy's `tasks` file, and a hybrid host's cgroup2 cgroup to be born
        in (it has no `tasks`)."""
        return SelfJoin([(f"{path}/tasks", "memory" in hierarchy.split(","))
                         for hierarchy, path in self.dirs.items() if hierarchy],
                        cgroup2_dir=self.dirs.get("", ""))

    def add(self, pid: int, join: SelfJoin | None = None, born_in_cgroup2: bool = False
            ) -> None:
        for hierarchy, path in sorted(self.dirs.items(),
                                      key=lambda item: "memory" in item[0].split(",")):
            # with `join`, the process moved itself into each v1 hierarchy; the cgroup2
            # one ("") is ours to write unless it was born there
            if (join is not None and hierarchy) or (not hierarchy and born_in_cgroup2):
                continue
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
            raise PyrtError("pause", "the container has no freezer cgroup (no such controller "
                            "on the host, or rootless without a delegated cgroup)")
        want = "FROZEN" if frozen else "THAWED"
        for _ in range(1000):
            write(f"{path}/freezer.state", want)
            if read(f"{path}/freezer.state").strip() == want:
                return
            time.sleep(0.001)
        raise PyrtError(f"cgroup {path}", f"did not become {want}")

    def exists(self) -> bool:
        return any(os.path.isdir(path) for path in self.dirs.values())

    def destroy(self) -> None:
        for path in self.dirs.values():
            rmdir(path)

    # ------------------------------------------------------------ statistics

    def stats(self) -> dict[str, Any]:
        return {"cpu": self._cpu_stats(), "memory": self._memory_stats(),
                "pids": self._pids_stats(), "blkio": self._blkio_stats(),
                "hugetlb": self._hugetlb_stats()}

    def _cpu_stats(self) -> dict[str, Any]:
        usage: dict[str, Any] = {}
        acct = self._dir("cpuacct")
        if acct:
            usage["total"] = read_int(f"{acct}/cpuacct.usage")
            for key, name in (("percpu", "usage_percpu"), ("percpu_kernel", "usage_percpu_sys"),
                              ("percpu_user", "usage_percpu_user")):
                try:
                    usage[key] = [int(x) for x in read(f"{acct}/cpuacct.{name}").split()]
                except OSError:
                    pass
            ticks = read_keyed(f"{acct}/cpuacct.stat")
            usage["kernel"] = ticks.get("system", 0) * (1_000_000_000 // USER_HZ)
            usage["user"] = ticks.get("user", 0) * (1_000_000_000 // USER_HZ)
        cpu_dir = self._dir("cpu")
        stat = read_keyed(f"{cpu_dir}/cpu.stat") if cpu_dir else {}
        throttling = {"periods": stat.get("nr_periods", 0),
                      "throttledPeriods": stat.get("nr_throttled", 0),
                      "throttledTime": stat.get("throttled_time", 0)}
        return {"usage": usage, "throttling": throttling}

    def _memory_stats(self) -> dict[str, Any]:
        path = self._dir("memory")
        if path is None:
            return {}

        def entry(prefix: str) -> dict[str, int]:
            return {"limit": read_int(f"{path}/{prefix}.limit_in_bytes"),
                    "usage": read_int(f"{path}/{prefix}.usage_in_bytes"),
                    "max": read_int(f"{path}/{prefix}.max_usage_in_bytes"),
                    "failcnt": read_int(f"{path}/{prefix}.failcnt")}

        raw = read_keyed(f"{path}/memory.stat")
        return {"cache": raw.get("cache", 0), "usage": entry("memory"),
                "swap": entry("memory.memsw"), "kernel": entry("memory.kmem"),
                "kernelTCP": entry("memory.kmem.tcp"), "raw": raw}

    def _pids_stats(self) -> dict[str, int]:
        path = self._dir("pids")
        if path is None:
            return {}
        limit = read_int(f"{path}/pids.max")
        return {"current": read_int(f"{path}/pids.current"),
                "limit": 0 if limit == 2**64 - 1 else limit}

    def _blkio_stats(self) -> dict[str, Any]:
        path = self._dir("blkio")
        if path is None:
            return {}
        stats = {}
        for key, name in (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                          ("ioServicedRecursive", "io_serviced_recursive")):
            entries = []
            try:
                text = read(f"{path}/blkio.throttle.{name}")
            except OSError:
                continue
            for line in text.splitlines():
                fields = line.split()
                if len(fields) == 3 and ":" in fields[0]:
                    major, minor = fields[0].split(":")
                    entries.append({"major": int(major), "minor": int(minor),
                                    "op": fields[1], "value": int(fields[2])})
            stats[key] = entries
        return stats

    def _hugetlb_stats(self) -> dict[str, Any]:
        path = self._dir("hugetlb")
        if path is None:
            return {}
        sizes = {name.split(".")[1] for name in os.listdir(path)
                 if name.startswith("hugetlb.") and name.endswith(".limit_in_bytes")}
        return {size: {"usage": read_int(f"{path}/hugetlb.{size}.usage_in_bytes"),
                       "max": read_int(f"{path}/hugetlb.{size}.max_usage_in_bytes"),
                       "failcnt": read_int(f"{path}/hugetlb.{size}.failcnt")}
                for size in sorted(sizes)}

    def oom_events(self) -> OomWatch:
        """An eventfd registered on memory.oom_control through cgroup.event_control."""
        path = self._dir("memory")
        if path is None:
            raise PyrtError("events", "the host has no memory cgroup controller")
        control = os.open(f"{path}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            write(f"{path}/cgroup.event_control", f"{efd} {control}")
        except PyrtError:
            os.close(efd)
            raise
        finally:
            os.close(control)
        return _EventfdWatch(efd, f"{path}/memory.oom_control")


class _EventfdWatch(OomWatch):
    """v1: the kernel signals the eventfd on each OOM, and once more when the cgroup goes."""

    def __init__(self, fd: int, control: str) -> None:
        super().__init__(fd)
        self.control = control

    def consume(self) -> int:
        count = os.eventfd_read(self.fd)
        return 0 if self.finished() else count

    def finished(self) -> bool:
        return not os.path.exists(self.control)
