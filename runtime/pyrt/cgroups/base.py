"""The driver interface shared by the v1 and v2 cgroup drivers."""

from __future__ import annotations

import os
import time

from pyrt.errors import PyrtError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def write(path: str, value: str) -> None:
    """Write one value to a cgroup file, raising a PyrtError that names the file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise PyrtError(f"cgroup {path}", e.strerror or str(e)) from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise PyrtError(f"cgroup {path}", f"cannot write {value!r}: {e.strerror}") from None
    finally:
        os.close(fd)


def read(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


def read_pids(procs_file: str) -> list[int]:
    try:
        return [int(x) for x in read(procs_file).split()]
    except FileNotFoundError:
        return []


def rmdir(path: str) -> None:
    """Remove a cgroup dir, retrying while the kernel still counts exiting tasks."""
    for _ in range(100):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != 16:  # EBUSY
                raise PyrtError(f"cgroup {path}", e.strerror or str(e)) from None
            time.sleep(0.01)
    raise PyrtError(f"cgroup {path}", "still busy")


class Cgroup:
    """One container's cgroup, across every hierarchy the host mounts."""

    def paths(self) -> dict[str, str]:
        """Hierarchy name -> absolute directory; saved in the container's state."""
        raise NotImplementedError

    def create(self) -> None:
        """Make the directories; refuse a cgroup that already holds processes."""
        raise NotImplementedError

    def check(self, resources: dict[str, Any]) -> None:
        """Raise the ConfigError apply() would, as far as it is known before create()."""
        raise NotImplementedError

    def apply(self, resources: dict[str, Any]) -> None:
        """Write linux.resources; any resource the driver cannot honour is an error."""
        raise NotImplementedError

    def add(self, pid: int) -> None:
        raise NotImplementedError

    def pids(self) -> list[int]:
        raise NotImplementedError

    def freezer_file(self) -> str:
        """The file whose content tells whether the cgroup is frozen ("" if none)."""
        raise NotImplementedError

    def freeze(self, frozen: bool) -> None:
        """Freeze (pause) or thaw (resume) every process, returning once it is done."""
        raise NotImplementedError

    def destroy(self) -> None:
        raise NotImplementedError
