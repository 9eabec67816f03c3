"""cgroup v2 driver (unified hierarchy): one directory.

linux.resources map onto the files runc 1.1 writes. Resources v2 has no file for (realtime
cpu, network, swappiness, disableOOMKiller, kernel memory, leaf weights) are errors rather
than silently dropped; devices are enforced by an eBPF program (devices_bpf).
"""

from __future__ import annotations

import os
import select
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
from pyrt.cgroups.v1 import THROTTLE_FILES, warn_kernel_memory
from pyrt.errors import ConfigError, PyrtError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrt.cgroups.device_rules import DeviceRule

ROOT = "/sys/fs/cgroup"
MAX = "max"


def cpu_weight(shares: int) -> int:
    """cpu.shares (2..262144) as cpu.weight (1..10000), runc 1.1's linear mapping."""
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight(weight: int) -> int:
    """blkio weight (10..1000) as io.weight (1..10000)."""
    return 1 + ((weight - 10) * 9999) // 990


def _limit(value: int) -> str:
    return MAX if value == -1 else str(value)


def _unsupported(section: dict[str, Any], keys: tuple[str, ...], ptr: str) -> None:
    for key in keys:
        if section.get(key):
            raise ConfigError(f"{ptr}/{key}", "cgroup v2 has no such setting")


def swap_max(swap: int, limit: int | None, ptr: str) -> str | None:
    """memory.swap.max from the spec's memory+swap total (None: leave it)."""
    if limit == -1 and not swap:
        return MAX
    if not swap:
        return None
    if swap == -1 or limit == -1:
        return _limit(swap)
    if not limit:
        raise ConfigError(f"{ptr}/swap", "cannot be set without memory.limit on cgroup v2")
    if swap < limit:
        raise ConfigError(f"{ptr}/swap", "must be at least memory.limit (it counts both)")
    return str(swap - limit)


def _memory(mem: dict[str, Any], ptr: str) -> list[Setting]:
    _unsupported(mem, ("disableOOMKiller",), ptr)
    warn_kernel_memory(mem, ptr)
    if mem.get("swappiness") not in (None, -1):
        raise ConfigError(f"{ptr}/swappiness", "cgroup v2 has no such setting")
    if mem.get("useHierarchy") is False:
        raise ConfigError(f"{ptr}/useHierarchy", "cgroup v2 is always hierarchical")
    out = []
    limit = mem.get("limit")
    swap = swap_max(mem.get("swap") or 0, limit, ptr)
    if swap is not None:
        out.append(Setting("memory", "memory.swap.max", swap, f"{ptr}/swap",
                           optional=swap in (MAX, "0")))
    if limit:
        out.append(Setting("memory", "memory.max", _limit(limit), f"{ptr}/limit"))
    if mem.get("reservation"):
        out.append(Setting("memory", "memory.low", _limit(mem["reservation"]),
                           f"{ptr}/reservation"))
    return out


def _cpu(cpu: dict[str, Any], ptr: str) -> list[Setting]:
    _unsupported(cpu, ("realtimeRuntime", "realtimePeriod"), ptr)
    out = []
    if cpu.get("idle") is not None:
        out.append(Setting("cpu", "cpu.idle", cpu["idle"], f"{ptr}/idle"))
    if cpu.get("shares"):
        out.append(Setting("cpu", "cpu.weight", cpu_weight(cpu["shares"]), f"{ptr}/shares"))
    if cpu.get("quota") or cpu.get("period"):
        quota = cpu.get("quota") or 0
        value = f"{quota if quota > 0 else MAX} {cpu.get('period') or 100000}"
        out.append(Setting("cpu", "cpu.max", value, f"{ptr}/quota"))
    if cpu.get("burst") is not None:
        out.append(Setting("cpu", "cpu.max.burst", cpu["burst"], f"{ptr}/burst"))
    for key in ("cpus", "mems"):
        if cpu.get(key):
            out.append(Setting("cpuset", f"cpuset.{key}", cpu[key], f"{ptr}/{key}"))
    return out


IO_MAX_KEYS = {
    "throttleReadBpsDevice": "rbps", "throttleWriteBpsDevice": "wbps",
    "throttleReadIOPSDevice": "riops", "throttleWriteIOPSDevice": "wiops",
}
assert set(IO_MAX_KEYS) == set(THROTTLE_FILES)


def _block_io(blkio: dict[str, Any], ptr: str) -> list[Setting]:
    _unsupported(blkio, ("leafWeight",), ptr)
    out = []
    if blkio.get("weight"):
        out.append(Setting("io", "io.bfq.weight", blkio["weight"], f"{ptr}/weight",
                           fallback=("io.weight", str(io_weight(blkio["weight"])))))
    for i, dev in enumerate(blkio.get("weightDevice") or ()):
        p = f"{ptr}/weightDevice/{i}"
        _unsupported(dev, ("leafWeight",), p)
        if dev.get("weight"):
            device = f"{need(dev, 'major', p)}:{need(dev, 'minor', p)}"
            out.append(Setting("io", "io.bfq.weight", f"{device} {dev['weight']}", p,
                               fallback=("io.weight", f"{device} {io_weight(dev['weight'])}")))
    for key, name in IO_MAX_KEYS.items():
        for i, dev in enumerate(blkio.get(key) or ()):
            p = f"{ptr}/{key}/{i}"
            value = f"{need(dev, 'major', p)}:{need(dev, 'minor', p)} {name}={need(dev, 'rate', p)}"
            out.append(Setting("io", "io.max", value, p))
    return out


def _hugepages(limits: list[dict[str, Any]], ptr: str) -> list[Setting]:
    return hugepage_settings(limits, ptr, "max")


def _network(net: dict[str, Any], ptr: str) -> list[Setting]:
    if net.get("classID") is not None or net.get("priorities"):
        raise ConfigError(ptr, "needs the v1 net_cls/net_prio controllers; this host is cgroup v2")
    return []


def _unified(unified: dict[str, str], ptr: str) -> list[Setting]:
    out = []
    for name, value in unified.items():
        p = f"{ptr}/{name.replace('~', '~0').replace('/', '~1')}"
        controller, dot, _ = name.partition(".")
        if "/" in name or not dot or not controller:
            raise ConfigError(p, "must be a file name of the form CONTROLLER.PARAMETER")
        out.append(Setting(controller, name, value, p))
    return out


SECTIONS: dict[str, Callable[[Any, str], list[Setting]]] = {
    "memory": _memory, "cpu": _cpu, "pids": pids_settings, "blockIO": _block_io,
    "hugepageLimits": _hugepages, "network": _network, "rdma": rdma_settings,
    "unified": _unified,
}


def settings(resources: dict[str, Any]) -> list[Setting]:
    """linux.resources (except devices: an eBPF program) as cgroup v2 file writes."""
    return map_sections(resources, SECTIONS, elsewhere=("devices",))


def available_controllers(path: str) -> set[str]:
    return _words(f"{path}/cgroup.controllers")


def _enabled(path: str) -> set[str]:
    return _words(f"{path}/cgroup.subtree_control")


def _words(path: str) -> set[str]:
    try:
        return set(read(path).split())
    except FileNotFoundError:
        return set()


# ---------------------------------------------------------------- the driver

class CgroupV2(Cgroup):
    def __init__(self, path: str) -> None:
        self.path = path

    def paths(self) -> dict[str, str]:
        return {"": self.path}

    def create(self) -> None:
        """Make the directory, enabling every available controller on the way down to it
        (as runc), so its interface files exist."""
        relative = os.path.relpath(self.path, ROOT)
        current = ROOT
        for part in relative.split("/"):
            wanted = available_controllers(current) - _enabled(current)
            if wanted:
                write(f"{current}/cgroup.subtree_control",
                      " ".join(f"+{name}" for name in sorted(wanted)))
            current = f"{current}/{part}"
            try:
                os.mkdir(current)
            except FileExistsError:
                pass
            except OSError as e:
                raise PyrtError(f"cgroup {current}", e.strerror or str(e)) from None

    def settings(self, resources: dict[str, Any]) -> list[Setting]:
        return settings(resources)

    def check(self, resources: dict[str, Any]) -> None:
        self._planned(resources)

    def check_unused(self) -> None:
        if read_pids(f"{self.path}/cgroup.procs"):
            raise PyrtError(f"cgroup {self.path}", "already holds processes")
        if os.path.exists(self.freezer_file()) and read(self.freezer_file()).strip() == "1":
            raise PyrtError(f"cgroup {self.path}", "is frozen")

    def _planned(self, resources: dict[str, Any]) -> tuple[list[Setting], list[DeviceRule] | None]:
        """The file writes and the device rules, refusing a controller the host lacks."""
        available = available_controllers(ROOT) | {"cgroup"}
        writes = settings(resources)
        for setting in writes:
            if setting.controller not in available:
                raise ConfigError(setting.pointer,
                                  f"the host has no {setting.controller} cgroup controller")
        rules = None
        if resources.get("devices") is not None:
            from pyrt.cgroups import device_rules  # here: delete, kill and the rest never need it

            rules = device_rules.parse(resources["devices"], "/linux/resources/devices")
        return writes, rules

    def apply(self, resources: dict[str, Any]) -> None:
        writes, rules = self._planned(resources)
        write_settings([(self.path, setting) for setting in writes])
        if rules is not None:
            from pyrt.cgroups import devices_bpf

            devices_bpf.install(self.path, rules)

    def memory_usage(self) -> int:
        return read_int(f"{self.path}/memory.current")

    def open_self_join(self) -> SelfJoin:
        """The cgroup, to be born in; it charges memory (SelfJoin.fork holds the child)."""
        return SelfJoin([], cgroup2_dir=self.path, cgroup2_memory=True)

    def add(self, pid: int, join: SelfJoin | None = None, born_in_cgroup2: bool = False
            ) -> None:
        if not born_in_cgroup2:
            write(f"{self.path}/cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        return read_pids(f"{self.path}/cgroup.procs")

    def freezer_file(self) -> str:
        return f"{self.path}/cgroup.freeze"

    def freeze(self, frozen: bool) -> None:
        write(f"{self.path}/cgroup.freeze", "1" if frozen else "0")
        want = f"frozen {int(frozen)}"
        for _ in range(1000):
            if want in read(f"{self.path}/cgroup.events").splitlines():
                return
            time.sleep(0.001)
        raise PyrtError(f"cgroup {self.path}", "did not finish freezing")

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def destroy(self) -> None:
        if os.path.exists(f"{self.path}/cgroup.kill"):
            try:
                write(f"{self.path}/cgroup.kill", "1")
            except PyrtError:
                pass
        rmdir(self.path)

    # ------------------------------------------------------------ statistics

    def stats(self) -> dict[str, Any]:
        path = self.path
        cpu = read_keyed(f"{path}/cpu.stat")
        raw = read_keyed(f"{path}/memory.stat")

        def entry(prefix: str) -> dict[str, int]:
            return {"limit": read_int(f"{path}/{prefix}.max"),
                    "usage": read_int(f"{path}/{prefix}.current"),
                    "max": read_int(f"{path}/{prefix}.peak"), "failcnt": 0}

        usage, swap = entry("memory"), entry("memory.swap")
        swap["usage"] += usage["usage"]  # as runc: v1's memsw counted memory too
        limit = read_int(f"{path}/pids.max")
        return {
            "cpu": {"usage": {"total": cpu.get("usage_usec", 0) * 1000,
                              "kernel": cpu.get("system_usec", 0) * 1000,
                              "user": cpu.get("user_usec", 0) * 1000},
                    "throttling": {"periods": cpu.get("nr_periods", 0),
                                   "throttledPeriods": cpu.get("nr_throttled", 0),
                                   "throttledTime": cpu.get("throttled_usec", 0) * 1000}},
            "memory": {"cache": raw.get("file", 0), "usage": usage, "swap": swap, "raw": raw},
            "pids": {"current": read_int(f"{path}/pids.current"),
                     "limit": 0 if limit == 2**64 - 1 else limit},
            "blkio": self._io_stats(),
            "hugetlb": self._hugetlb_stats(),
        }

    def _io_stats(self) -> dict[str, Any]:
        bytes_: list[dict[str, Any]] = []
        ios: list[dict[str, Any]] = []
        try:
            text = read(f"{self.path}/io.stat")
        except OSError:
            return {}
        for line in text.splitlines():
            device, *fields = line.split()
            major, minor = (int(x) for x in device.split(":"))
            values = dict(field.split("=", 1) for field in fields)
            for key, op, into in (("rbytes", "Read", bytes_), ("wbytes", "Write", bytes_),
                                  ("rios", "Read", ios), ("wios", "Write", ios)):
                if key in values:
                    into.append({"major": major, "minor": minor, "op": op,
                                 "value": int(values[key])})
        return {"ioServiceBytesRecursive": bytes_, "ioServicedRecursive": ios}

    def _hugetlb_stats(self) -> dict[str, Any]:
        try:
            names = os.listdir(self.path)
        except OSError:
            return {}
        sizes = sorted({n.split(".")[1] for n in names
                        if n.startswith("hugetlb.") and n.endswith(".max") and n.count(".") == 2})
        return {size: {"usage": read_int(f"{self.path}/hugetlb.{size}.current"),
                       "failcnt": read_keyed(f"{self.path}/hugetlb.{size}.events").get("max", 0)}
                for size in sizes}

    def oom_events(self) -> OomWatch:
        return _EventsFileWatch(f"{self.path}/memory.events")


class _EventsFileWatch(OomWatch):
    """v2: memory.events is a kernfs file, so poll() wakes (POLLPRI) when it changes; the
    oom_kill counter tells how many kills happened."""

    poll_events = select.POLLPRI | select.POLLERR

    def __init__(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise PyrtError(f"cgroup {path}", e.strerror or str(e)) from None
        super().__init__(fd)
        self.dir = os.path.dirname(path)
        self.seen = self._count()

    def _count(self) -> int:
        data = os.pread(self.fd, 4096, 0).decode()
        for line in data.splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
        return 0

    def consume(self) -> int:
        try:
            now = self._count()
        except OSError:
            return 0
        new, self.seen = now - self.seen, now
        return max(new, 0)

    def finished(self) -> bool:
        try:
            return "populated 0" in read(f"{self.dir}/cgroup.events").splitlines()
        except OSError:
            return True
