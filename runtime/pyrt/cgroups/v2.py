"""cgroup v2 driver (unified hierarchy): one directory."""

from __future__ import annotations

import os
import time

from pyrt.cgroups.base import Cgroup, read, read_pids, rmdir, write
from pyrt.errors import ConfigError, PyrtError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class CgroupV2(Cgroup):
    def __init__(self, path: str) -> None:
        self.path = path

    def paths(self) -> dict[str, str]:
        return {"": self.path}

    def create(self) -> None:
        os.makedirs(self.path, exist_ok=True)
        if read_pids(f"{self.path}/cgroup.procs"):
            raise PyrtError(f"cgroup {self.path}", "already holds processes")

    def add(self, pid: int) -> None:
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

    def destroy(self) -> None:
        if os.path.exists(f"{self.path}/cgroup.kill"):
            try:
                write(f"{self.path}/cgroup.kill", "1")
            except PyrtError:
                pass
        rmdir(self.path)

    def check(self, resources: dict[str, Any]) -> None:
        for key, value in resources.items():
            if value and not (key == "pids" or (key == "memory" and set(value) <= {"limit"})):
                raise ConfigError(f"/linux/resources/{key}", "not supported by pyrt yet on v2")

    def apply(self, resources: dict[str, Any]) -> None:
        for key, value in resources.items():
            if key == "pids" and value and value.get("limit") is not None:
                limit = value["limit"]
                write(f"{self.path}/pids.max", "max" if limit <= 0 else str(limit))
            elif key == "memory" and value and set(value) <= {"limit"}:
                write(f"{self.path}/memory.max", str(value["limit"]))
            elif value:
                raise ConfigError(f"/linux/resources/{key}", "not supported by pyrt yet on v2")
