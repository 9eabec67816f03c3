"""Id-mapped bind mounts (mounts with uidMappings/gidMappings, or the idmap/ridmap options).

Made by `pyrt create` before the init is forked, because MOUNT_ATTR_IDMAP needs
CAP_SYS_ADMIN over the filesystem's own user namespace (the host's, for ext4 or tmpfs),
which the init no longer has once it is in a user namespace: the source tree is cloned
detached (open_tree(OPEN_TREE_CLONE)), given the mapping of a user namespace made for it
(mount_setattr(MOUNT_ATTR_IDMAP)), and the init moves the clone onto its destination
(move_mount). The mapping reads as a user namespace's does: an on-disk id in
[containerID, containerID + size) shows as hostID + (id - containerID) through the mount.
"""

from __future__ import annotations

import errno
import os

from pyrt.errors import ConfigError, PyrtError
from pyrt.linux import syscalls as sc
from pyrt.linux import userns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrt.config import Config, IDMapping
    from pyrt.linux.mounts import MountPlan

AT_FDCWD = -100
Maps = tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]]


def as_maps(uid_maps: list[IDMapping], gid_maps: list[IDMapping]) -> Maps:
    """Mappings in a hashable form, so that mounts with equal ones share a namespace."""
    return (tuple((m.containerID, m.hostID, m.size) for m in uid_maps),
            tuple((m.containerID, m.hostID, m.size) for m in gid_maps))


def userns_with(maps: Maps) -> int:
    """An fd of a new user namespace with these maps, made by a short-lived child."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(ready_r)
            os.close(done_w)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(done_r, 1)  # until the parent has what it needs
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise PyrtError("id-mapped mount", "could not make a user namespace for the mapping")
        for name, lines in (("uid_map", maps[0]), ("gid_map", maps[1])):
            userns.write_proc(pid, name, "".join(f"{c} {h} {n}\n" for c, h, n in lines),
                              "id-mapped mount")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)


def clone_tree(source: str, destination: str, userns_fd: int, rbind: bool,
               recursive: bool) -> int:
    """A detached clone of the mount tree at `source`, id-mapped through `userns_fd`
    (its submounts too when `recursive`: ridmap); returns its fd."""
    what = f"mount {destination}"
    try:
        fd = sc.open_tree(AT_FDCWD, source,
                          sc.OPEN_TREE_CLONE | (sc.AT_RECURSIVE if rbind else 0))
    except OSError as e:
        raise PyrtError(what, f"cannot clone {source}: {e.strerror}") from None
    try:
        sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if recursive else 0),
                         attr_set=sc.MOUNT_ATTR_IDMAP, userns_fd=userns_fd)
    except OSError as e:
        os.close(fd)
        raise PyrtError(what, _why(source, e)) from None
    return fd


def _why(source: str, e: OSError) -> str:
    if e.errno == errno.ENOSYS:
        return "id-mapped mounts need Linux 5.12 or later (no mount_setattr here)"
    if e.errno == errno.EINVAL:
        fstype = _fstype(source)
        return (f"the filesystem of {source} ({fstype}) does not support id-mapped mounts "
                "on this kernel")
    return f"cannot id-map {source}: {e.strerror}"


def _fstype(path: str) -> str:
    """The filesystem type of the mount holding `path` (from /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    best, fstype = "", "unknown"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            point = left.split()[4].replace("\\040", " ")
            if (path == point or path.startswith(point.rstrip("/") + "/")) and \
                    len(point) >= len(best):
                best, fstype = point, right.split()[0]
    return fstype


def plan(mounts: list[MountPlan], config: Config) -> dict[int, Maps | None]:
    """The mapping of each id-mapped mount, by index: its own, else (idmap or ridmap
    alone) the container's user namespace's: its mappings, or None when the container
    joins one by path. Without either, a ConfigError (runtime-spec config.md)."""
    linux = config.linux
    user_ns = linux.namespace("user")
    wanted: dict[int, Maps | None] = {}
    for i, (m, spec) in enumerate(zip(mounts, config.mounts, strict=True)):
        if not m.idmap:
            continue
        if spec.uidMappings:
            wanted[i] = as_maps(spec.uidMappings, spec.gidMappings)
        elif user_ns is not None and user_ns.path:
            wanted[i] = None
        elif user_ns is not None:
            wanted[i] = as_maps(linux.uidMappings, linux.gidMappings)
        else:
            raise ConfigError(f"/mounts/{i}/options", "idmap without uidMappings and "
                              "gidMappings needs the container to have a user namespace")
    return wanted


def clone_all(mounts: list[MountPlan], wanted: dict[int, Maps | None],
              joined_userns_fd: int) -> None:
    """Set each id-mapped mount's tree_fd (the caller closes them)."""
    made: dict[Maps, int] = {}
    try:
        for i, maps in wanted.items():
            if maps is None:
                userns_fd = joined_userns_fd
            else:
                if maps not in made:
                    made[maps] = userns_with(maps)
                userns_fd = made[maps]
            m = mounts[i]
            m.tree_fd = clone_tree(m.source, m.destination, userns_fd,
                                   rbind=bool(m.flags & sc.MS_REC), recursive=m.idmap_recursive)
    finally:
        for fd in made.values():
            os.close(fd)
