"""The syscall seam: Python wrappers over the C shim that raise OSError like the os module.

Tests that cannot have a kernel feature replace functions here; nothing else touches
the shim directly.
"""

from __future__ import annotations

import os

from pyrt._shim import ffi, lib

# clone(2)/unshare(2) namespace flags
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000
MNT_DETACH = 0x2

# open_tree(2), mount_setattr(2), move_mount(2)
OPEN_TREE_CLONE = 0x1
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_IDMAP = 0x00100000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40

# openat2(2) resolve flags
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_IN_ROOT = 0x10

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# ioctl(2) requests for ttys
TIOCSCTTY = 0x540E
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def _check(result: int, what: str | bytes | None = None) -> int:
    if result < 0:
        raise OSError(-result, os.strerror(-result), what)
    return result


def _b(s: str | bytes | None) -> object:
    if s is None:
        return ffi.NULL
    return s.encode() if isinstance(s, str) else s


def unshare(flags: int) -> None:
    _check(lib.pyrt_unshare(flags))


def setns(fd: int, nstype: int = 0) -> None:
    _check(lib.pyrt_setns(fd, nstype))


def ns_type(fd: int) -> int:
    """The CLONE_NEW* type of the namespace file open at fd (NS_GET_NSTYPE)."""
    return _check(lib.pyrt_ns_type(fd))


def mount(
    source: str | None,
    target: str,
    fstype: str | None = None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    _check(lib.pyrt_mount(_b(source), _b(target), _b(fstype), flags, _b(data)), target)


def open_tree(dirfd: int, path: str, flags: int) -> int:
    """open_tree(2): returns a new fd (O_CLOEXEC is added) for the (cloned) mount tree."""
    return _check(lib.pyrt_open_tree(dirfd, _b(path), flags | os.O_CLOEXEC), path)


def mount_setattr(dirfd: int, path: str, flags: int, attr_set: int = 0, attr_clr: int = 0,
                  propagation: int = 0, userns_fd: int = 0) -> None:
    _check(lib.pyrt_mount_setattr(dirfd, _b(path), flags, attr_set, attr_clr, propagation,
                                  userns_fd), path)


def move_mount(from_dirfd: int, from_path: str, to_dirfd: int, to_path: str,
               flags: int) -> None:
    _check(lib.pyrt_move_mount(from_dirfd, _b(from_path), to_dirfd, _b(to_path), flags),
           to_path)


def umount2(target: str, flags: int = 0) -> None:
    _check(lib.pyrt_umount2(_b(target), flags), target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(lib.pyrt_pivot_root(_b(new_root), _b(put_old)), new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(lib.pyrt_sethostname(raw, len(raw)))


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(lib.pyrt_setdomainname(raw, len(raw)))


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): returns a new fd (O_CLOEXEC is added)."""
    return _check(lib.pyrt_openat2(dirfd, _b(path), flags | os.O_CLOEXEC, mode, resolve), path)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(lib.pyrt_prctl(option, arg2, arg3, arg4, arg5))


def join_session_keyring(name: str | None = None) -> None:
    _check(lib.pyrt_join_session_keyring(_b(name)))


def ioctl_int(fd: int, request: int, value: int = 0) -> int:
    """An ioctl whose argument is a pointer to one int; returns that int afterwards."""
    box = ffi.new("int *", value)
    _check(lib.pyrt_ioctl_int(fd, request, box))
    return int(box[0])


def fork(cgroup_fd: int = -1, hold: tuple[int, int] = (-1, -1)) -> int:
    """os.fork() by clone3: 0 in the child, its pid in the parent. With `cgroup_fd`, the
    child is born in the cgroup2 cgroup open there (CLONE_INTO_CGROUP): no move
    afterwards, so no wait for an RCU grace period (docs/performance.md). With `hold`, a
    pipe (read end, write end), it closes the write end and waits, having touched
    nothing, until every other copy of it is closed (csrc/shim.h). An OSError where the
    kernel refuses (clone3 is ENOSYS under some seccomp profiles): fork plainly then."""
    return _check(lib.pyrt_fork(cgroup_fd, *hold))


MADV_POPULATE_WRITE = 23


def madvise(addr: int, length: int, advice: int) -> None:
    _check(lib.pyrt_madvise(addr, length, advice))


def bpf(cmd: int, attr: bytearray) -> int:
    """bpf(2) with attr, a union bpf_attr the caller packed (the kernel may write into it).

    Pointer fields inside attr take addresses from address(); the buffers they point
    to must stay alive and unresized until the call returns.
    """
    return _check(lib.pyrt_bpf(cmd, ffi.from_buffer(attr), len(attr)))


def address(buf: bytearray) -> int:
    """The address of buf's storage, for a pointer field of a struct passed to the kernel."""
    return int(ffi.cast("uintptr_t", ffi.from_buffer(buf)))
