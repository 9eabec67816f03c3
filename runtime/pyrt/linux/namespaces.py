"""Namespaces: joining by path (setns, user first), creating (unshare), time offsets."""

from __future__ import annotations

import os

from pyrt.errors import PyrtError, oserror
from pyrt.linux import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrt.config import Linux

FLAGS = {
    "pid": sc.CLONE_NEWPID, "network": sc.CLONE_NEWNET, "mount": sc.CLONE_NEWNS,
    "ipc": sc.CLONE_NEWIPC, "uts": sc.CLONE_NEWUTS, "user": sc.CLONE_NEWUSER,
    "cgroup": sc.CLONE_NEWCGROUP, "time": sc.CLONE_NEWTIME,
}
# The order runc joins namespaces in: user first, so the rest are joined with its rights.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "mount", "cgroup", "time")


def open_paths(linux: Linux) -> dict[str, int]:
    """Open every namespace given by path and check that it is of its declared type."""
    fds: dict[str, int] = {}
    try:
        for ns in linux.namespaces:
            if not ns.path:
                continue
            try:
                fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise oserror(f"namespace {ns.type} {ns.path}", e) from None
            fds[ns.type] = fd
            try:
                actual = sc.ns_type(fd)
            except OSError:
                actual = -1
            if actual != FLAGS[ns.type]:
                raise PyrtError(f"namespace {ns.type} {ns.path}",
                                f"not a namespace of type {ns.type}")
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


def new_flags(linux: Linux) -> int:
    """CLONE_NEW* flags of the namespaces to create (those without a path)."""
    flags = 0
    for ns in linux.namespaces:
        if not ns.path:
            flags |= FLAGS[ns.type]
    return flags


def join(fds: dict[str, int], skip: tuple[str, ...] = ()) -> None:
    for ns_type in JOIN_ORDER:
        if ns_type in fds and ns_type not in skip:
            try:
                sc.setns(fds[ns_type], FLAGS[ns_type])
            except OSError as e:
                raise oserror(f"namespace {ns_type}", e) from None
            os.close(fds.pop(ns_type))


CLOCKS = {"monotonic": 1, "boottime": 7}


def enter_new_time_ns(offsets: dict[str, dict[str, int]]) -> None:
    """Make a time namespace, set its clock offsets, and move into it ourselves."""
    sc.unshare(sc.CLONE_NEWTIME)
    if offsets:
        text = "".join(
            f"{CLOCKS[clock]} {off.get('secs', 0)} {off.get('nanosecs', 0)}\n"
            for clock, off in offsets.items()
        )
        with open("/proc/self/timens_offsets", "w", encoding="utf-8") as f:
            f.write(text)
    fd = os.open("/proc/self/ns/time_for_children", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(fd, sc.CLONE_NEWTIME)
    finally:
        os.close(fd)
