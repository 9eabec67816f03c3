"""The driver interface shared by the v1 and v2 cgroup drivers."""

from __future__ import annotations

import errno
import os
import time

from pyrt.errors import ConfigError, PyrtError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
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
    with open(path, encoding="utf-8") as f:
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


class Setting:
    """One value for one cgroup file, and the config field it comes from.

    `controller` names the v1 hierarchy (on v2 it names the controller that must be
    enabled); `optional` settings are skipped when the file does not exist (as runc does);
    `fallback` is a second (file, value) tried when `file` does not exist; `verify` reads
    the value back, for files the kernel silently clamps.
    """

    __slots__ = ("controller", "fallback", "file", "optional", "pointer", "value", "verify")

    def __init__(self, controller: str, file: str, value: object, pointer: str, *,
                 optional: bool = False, fallback: tuple[str, str] | None = None,
                 verify: bool = False) -> None:
        self.controller = controller
        self.file = file
        self.value = str(value)
        self.pointer = pointer
        self.optional = optional
        self.fallback = fallback
        self.verify = verify

    def __repr__(self) -> str:
        return f"Setting({self.controller!r}, {self.file!r}, {self.value!r}, {self.pointer!r})"


def write_settings(settings: list[tuple[str, Setting]]) -> None:
    """Write (directory, setting) pairs in order.

    A write the kernel refuses with EINVAL is retried once after the others: the kernel
    checks some pairs against each other (memory limit <= memory+swap limit, cfs quota
    against period, rt runtime against period), so the right order depends on the values
    already there.
    """
    retry = []
    for path, setting in settings:
        if _write_setting(path, setting, retry_einval=True) is False:
            retry.append((path, setting))
    for path, setting in retry:
        _write_setting(path, setting, retry_einval=False)


def _write_setting(path: str, setting: Setting, retry_einval: bool) -> bool:
    name, value = setting.file, setting.value
    if setting.fallback and not os.path.exists(f"{path}/{name}"):
        name, value = setting.fallback
    target = f"{path}/{name}"
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if setting.optional:
            return True
        raise ConfigError(setting.pointer, f"this host's cgroup has no {name}") from None
    except OSError as e:
        raise PyrtError(f"cgroup {target}", e.strerror or str(e)) from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        if e.errno == errno.EINVAL and retry_einval:
            return False
        raise PyrtError(setting.pointer,
                        f"cannot write {value!r} to {name}: {e.strerror}") from None
    finally:
        os.close(fd)
    if setting.verify:
        got = read(target).strip()
        if got != value:
            raise PyrtError(setting.pointer, f"the kernel set {name} to {got}, not {value}")
    return True


class Cgroup:
    """One container's cgroup, across every hierarchy the host mounts."""

    def paths(self) -> dict[str, str]:
        """Hierarchy name -> absolute directory; saved in the container's state."""
        raise NotImplementedError

    def create(self) -> None:
        """Make the directories."""
        raise NotImplementedError

    def settings(self, resources: dict[str, Any]) -> list[Setting]:
        """linux.resources as cgroup file writes, in order; a resource this driver cannot
        honour is a ConfigError."""
        raise NotImplementedError

    def check(self, resources: dict[str, Any]) -> None:
        """Before create(): raise the ConfigError apply() would, as far as it is known."""
        raise NotImplementedError

    def check_unused(self) -> None:
        """Before create(), so that a refusal changes nothing (what is there is not
        ours): refuse a cgroup that already holds processes, or is frozen."""
        raise NotImplementedError

    def apply(self, resources: dict[str, Any]) -> None:
        """Write linux.resources; any resource the driver cannot honour is an error."""
        raise NotImplementedError

    def memory_usage(self) -> int:
        """Bytes the cgroup uses now (for memory.checkBeforeUpdate)."""
        raise NotImplementedError

    def open_self_join(self) -> SelfJoin | None:
        """What a new process gets in with by itself (v1 tasks files, a cgroup2 cgroup to
        be born in; None if the driver has nothing): add(pid, join) covers the rest."""
        return None

    def add(self, pid: int, join: SelfJoin | None = None, born_in_cgroup2: bool = False
            ) -> None:
        """Move a process into the cgroup, on every hierarchy (memory last: the pages it
        touches from then on are charged there); with `join`, the process it was made
        for: only where it could not get in by itself (and `born_in_cgroup2`: what
        join.fork() said)."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        raise NotImplementedError

    def freezer_file(self) -> str:
        """The file whose content tells whether the cgroup is frozen ("" if none)."""
        raise NotImplementedError

    def freeze(self, frozen: bool) -> None:
        """Freeze (pause) or thaw (resume) every process, returning once it is done."""
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """The cgroup's statistics in the shape of runc's `events` data."""
        raise NotImplementedError

    def oom_events(self) -> OomWatch:
        """A watch that tells when the kernel OOM-killed in this cgroup."""
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def destroy(self) -> None:
        raise NotImplementedError


class SelfJoin:
    """How a new process gets into its cgroup without the runtime moving it: open v1
    `tasks` files it moves itself in with, writing "0" while it has one thread; and a
    cgroup2 cgroup (a hybrid host's, or cgroup v2's own), which it is born in (fork()).

    Writing a pid to cgroup.procs (or tasks) takes a global kernel lock for writing
    (cgroup_threadgroup_rwsem), and the first writer after a quiet spell waits for an RCU
    grace period: 5 to 25 ms here. A single thread moving itself needs no such lock, and
    neither does a process born in its cgroup.
    """

    def __init__(self, files: list[tuple[str, bool]], cgroup2_dir: str = "",
                 cgroup2_memory: bool = False) -> None:
        """`files`: (path of a tasks file, whether its hierarchy is memory);
        `cgroup2_dir`: the cgroup2 cgroup to be born in; `cgroup2_memory`: whether it
        charges memory (cgroup v2; a hybrid host's cgroup2 has no controllers)."""
        self._open: dict[bool, list[tuple[str, int]]] = {False: [], True: []}
        self._cgroup2_fd = -1
        self._cgroup2_memory = cgroup2_memory
        self._release_fd = -1
        path = cgroup2_dir
        try:
            if cgroup2_dir:
                self._cgroup2_fd = os.open(cgroup2_dir,
                                           os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            for path, memory in files:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                self._open[memory].append((path, fd))
        except OSError as e:
            self.close()
            raise PyrtError(f"cgroup {path}", e.strerror or str(e)) from None

    def fork(self) -> tuple[int, bool]:
        """os.fork(), the child born in the cgroup2 cgroup if there is one, so that
        add() need not move it there: (pid, whether it was born there). Where that fails
        (a kernel before 5.7 has no CLONE_INTO_CGROUP; or the cgroup refuses the child,
        as it does outside our cgroup namespace), a plain fork, and add() moves it as
        before. The child keeps the tasks files and closes the cgroup2 directory.

        A child born where memory is charged (`cgroup2_memory`) is held: it waits,
        having written nothing but its stack, until release() or our exit. Meanwhile
        the caller copies the pages they share (linux/memory.py), or leaves, so that
        the child copies none of them, and the cgroup is charged for none."""
        pid, born = -1, False
        if self._cgroup2_fd >= 0:
            pid = self._fork_into_cgroup2(hold=self._cgroup2_memory)
            born = pid >= 0
        if pid < 0:
            pid = os.fork()
        if pid == 0 and self._cgroup2_fd >= 0:
            os.close(self._cgroup2_fd)
            self._cgroup2_fd = -1
            self._release_fd = -1  # closed in the shim, before the child went on
        return pid, born

    def _fork_into_cgroup2(self, hold: bool) -> int:
        """The child's pid (0 in the child), or -1 where the kernel refused."""
        from pyrt.linux import syscalls as sc

        hold_fd = -1
        if hold:
            hold_fd, self._release_fd = os.pipe2(os.O_CLOEXEC)
        try:
            return sc.fork(self._cgroup2_fd, (hold_fd, self._release_fd))
        except OSError:
            self.release()
            return -1
        finally:
            if hold_fd >= 0:
                os.close(hold_fd)

    def release(self) -> None:
        """Let the child that fork() holds go on (if there is one)."""
        if self._release_fd >= 0:
            os.close(self._release_fd)
            self._release_fd = -1

    def fds(self) -> set[int]:
        """What the new process moves itself in with."""
        return {fd for files in self._open.values() for _, fd in files}

    def fork_fds(self) -> set[int]:
        """What a process that forks the new one must keep for fork()."""
        return {self._cgroup2_fd} if self._cgroup2_fd >= 0 else set()

    def enter(self, memory: bool) -> None:
        """Move the calling process (one thread) in: the memory hierarchy, or the others."""
        files = self._open[memory]
        while files:
            path, fd = files.pop()
            try:
                os.write(fd, b"0")
            except OSError as e:
                raise PyrtError(f"cgroup {os.path.dirname(path)}",
                                f"cannot join: {e.strerror}") from None
            finally:
                os.close(fd)

    def close(self) -> None:
        for files in self._open.values():
            while files:
                os.close(files.pop()[1])
        if self._cgroup2_fd >= 0:
            os.close(self._cgroup2_fd)
            self._cgroup2_fd = -1
        self.release()


class OomWatch:
    """An fd to poll for OOM events, and a way to count the ones that happened."""

    poll_events = 1  # POLLIN

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def consume(self) -> int:
        """How many OOM events happened since the last call (called once fd is readable)."""
        raise NotImplementedError

    def finished(self) -> bool:
        """Whether the cgroup is gone (or, where runc stops there, empty)."""
        raise NotImplementedError

    def close(self) -> None:
        os.close(self.fd)


def map_sections(resources: dict[str, Any],
                 sections: dict[str, Callable[[Any, str], list[Setting]]],
                 elsewhere: tuple[str, ...] = ()) -> list[Setting]:
    """linux.resources as file writes, section by section; `elsewhere` sections are
    enforced by other means (not files), any other unknown one is an error."""
    out: list[Setting] = []
    for key, value in resources.items():
        if value is None or key in elsewhere:
            continue
        mapper = sections.get(key)
        if mapper is None:
            raise ConfigError(f"/linux/resources/{key}", "not supported by pyrt")
        out += mapper(value, f"/linux/resources/{key}")
    return out


def pids_settings(pids: dict[str, Any], ptr: str) -> list[Setting]:
    """pids.limit: 0 means unset and a negative value unlimited, as runc (v1 and v2)."""
    limit = pids.get("limit")
    if not limit:
        return []
    return [Setting("pids", "pids.max", "max" if limit < 0 else limit, f"{ptr}/limit")]


def rdma_settings(rdma: dict[str, Any], ptr: str) -> list[Setting]:
    """rdma.max lines, the same file on v1 and v2."""
    out = []
    for device, limits in rdma.items():
        line = device
        if limits.get("hcaHandles") is not None:
            line += f" hca_handle={limits['hcaHandles']}"
        if limits.get("hcaObjects") is not None:
            line += f" hca_object={limits['hcaObjects']}"
        out.append(Setting("rdma", "rdma.max", line, f"{ptr}/{device}"))
    return out


def hugepage_settings(limits: list[dict[str, Any]], ptr: str, suffix: str) -> list[Setting]:
    """hugetlb.<size>.<suffix>, and the reservation file where the kernel has one."""
    out = []
    for i, item in enumerate(limits):
        p = f"{ptr}/{i}"
        size, limit = need(item, "pageSize", p), need(item, "limit", p)
        out.append(Setting("hugetlb", f"hugetlb.{size}.{suffix}", limit, p))
        out.append(Setting("hugetlb", f"hugetlb.{size}.rsvd.{suffix}", limit, p, optional=True))
    return out


def need(item: dict[str, Any], name: str, ptr: str) -> Any:
    """A required field of a resource entry (the typed parse checks only types)."""
    value = item.get(name)
    if value is None:
        raise ConfigError(f"{ptr}/{name}", "is required")
    return value


def read_int(path: str, default: int = 0) -> int:
    """An integer cgroup file ("max" reads as the largest uint64, as runc reports it)."""
    try:
        text = read(path).strip()
    except OSError:
        return default
    if text == "max":
        return 2**64 - 1
    try:
        return int(text)
    except ValueError:
        return default


def read_keyed(path: str) -> dict[str, int]:
    """A flat-keyed file (`name value` per line) such as memory.stat or cpu.stat."""
    result: dict[str, int] = {}
    try:
        text = read(path)
    except OSError:
        return result
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        try:
            result[name] = int(value)
        except ValueError:
            continue
    return result
