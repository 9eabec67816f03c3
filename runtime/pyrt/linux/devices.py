"""/dev: the default devices, linux.devices, and the standard symlinks."""

from __future__ import annotations

import os
import stat

from pyrt.errors import oserror
from pyrt.linux import syscalls as sc
from pyrt.linux.mounts import fd_path, make_in_root, open_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrt.config import Device

# path, major, minor: the devices every container gets (runtime-spec config-linux.md)
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
)
_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_devices(root_fd: int, devices: list[Device], in_userns: bool) -> None:
    """Make the default devices and linux.devices (bind-mounted from the host in a user
    namespace, where mknod is not allowed)."""
    wanted: dict[str, tuple[int, int, int, int, int]] = {}
    for path, major, minor in DEFAULT_DEVICES:
        wanted[path] = (stat.S_IFCHR | 0o666, major, minor, 0, 0)
    for dev in devices:
        mode = _TYPES[dev.type] | (0o666 if dev.fileMode is None else dev.fileMode & 0o7777)
        wanted[dev.path] = (mode, dev.major, dev.minor, dev.uid or 0, dev.gid or 0)
    for path, (mode, major, minor, uid, gid) in wanted.items():
        try:
            _make_device(root_fd, path, mode, major, minor, uid, gid, in_userns)
        except OSError as e:
            raise oserror(f"device {path}", e) from None


def _make_device(root_fd: int, path: str, mode: int, major: int, minor: int,
                 uid: int, gid: int, in_userns: bool) -> None:
    parent, name = os.path.split(path)
    dir_fd = make_in_root(root_fd, parent)
    try:
        dfd = os.open(fd_path(dir_fd), os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(dir_fd)
    try:
        try:
            os.unlink(name, dir_fd=dfd)
        except FileNotFoundError:
            pass
        if in_userns:
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644,
                         dir_fd=dfd)
            os.close(fd)
            target = open_in_root(root_fd, path)
            try:
                sc.mount(path, fd_path(target), None, sc.MS_BIND)
            finally:
                os.close(target)
            return
        os.mknod(name, mode, os.makedev(major, minor), dir_fd=dfd)
        os.chmod(name, mode & 0o7777, dir_fd=dfd)
        os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
    finally:
        os.close(dfd)


def create_symlinks(root_fd: int, with_ptmx: bool) -> None:
    """/dev/fd, /dev/std{in,out,err}, and /dev/ptmx -> pts/ptmx when /dev/pts exists."""
    links = list(SYMLINKS)
    if with_ptmx:
        links.append(("pts/ptmx", "/dev/ptmx"))
    dev = open_in_root(root_fd, "/dev", os.O_DIRECTORY | os.O_RDONLY)
    try:
        for target, path in links:
            name = os.path.basename(path)
            if name == "ptmx":
                try:
                    os.unlink(name, dir_fd=dev)
                except FileNotFoundError:
                    pass
            try:
                os.symlink(target, name, dir_fd=dev)
            except FileExistsError:
                pass
            except OSError as e:
                raise oserror(f"symlink {path}", e) from None
    finally:
        os.close(dev)
