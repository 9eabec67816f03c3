"""The root filesystem: propagation, the config's mounts, pivot_root, masked/readonly paths.

Mount targets are resolved with openat2(RESOLVE_IN_ROOT) against the rootfs, so a
symlink in the rootfs can never lead a mount out of it; the mount is then made on the
resolved fd through /proc/self/fd/N.
"""

from __future__ import annotations

import errno
import os
import stat

from pyrt.errors import ConfigError, PyrtError, oserror
from pyrt.linux import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrt.config import Mount

# option -> (flags to set, flags to clear)
FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "ro": (sc.MS_RDONLY, 0), "rw": (0, sc.MS_RDONLY),
    "nosuid": (sc.MS_NOSUID, 0), "suid": (0, sc.MS_NOSUID),
    "nodev": (sc.MS_NODEV, 0), "dev": (0, sc.MS_NODEV),
    "noexec": (sc.MS_NOEXEC, 0), "exec": (0, sc.MS_NOEXEC),
    "sync": (sc.MS_SYNCHRONOUS, 0), "async": (0, sc.MS_SYNCHRONOUS),
    "dirsync": (sc.MS_DIRSYNC, 0),
    "remount": (sc.MS_REMOUNT, 0),
    "mand": (sc.MS_MANDLOCK, 0), "nomand": (0, sc.MS_MANDLOCK),
    "noatime": (sc.MS_NOATIME, 0), "atime": (0, sc.MS_NOATIME),
    "nodiratime": (sc.MS_NODIRATIME, 0), "diratime": (0, sc.MS_NODIRATIME),
    "relatime": (sc.MS_RELATIME, 0), "norelatime": (0, sc.MS_RELATIME),
    "strictatime": (sc.MS_STRICTATIME, 0), "nostrictatime": (0, sc.MS_STRICTATIME),
    "lazytime": (sc.MS_LAZYTIME, 0), "nolazytime": (0, sc.MS_LAZYTIME),
    "nosymfollow": (sc.MS_NOSYMFOLLOW, 0), "symfollow": (0, sc.MS_NOSYMFOLLOW),
    "silent": (sc.MS_SILENT, 0), "loud": (0, sc.MS_SILENT),
    "bind": (sc.MS_BIND, 0), "rbind": (sc.MS_BIND | sc.MS_REC, 0),
}
PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# statvfs f_flag bits a remount must keep when they are locked (user namespaces)
_LOCKED = ((1, sc.MS_RDONLY), (2, sc.MS_NOSUID), (4, sc.MS_NODEV), (8, sc.MS_NOEXEC),
           (1024, sc.MS_NOATIME), (2048, sc.MS_NODIRATIME), (4096, sc.MS_RELATIME))
_UNSUPPORTED = ("copy-symlink",)
IDMAP_OPTIONS = ("idmap", "ridmap")
# runc's extension: a tmpfs starts with a copy of the directory it covers
COPYUP = "tmpcopyup"


class MountPlan:
    """One entry of `mounts`, parsed before anything is made."""

    def __init__(self, mount: Mount, bundle: str, ptr: str, label: str = "") -> None:
        """`label`: linux.mountLabel (SELinux), for the mount types runc labels."""
        self.destination = "/" + mount.destination.lstrip("/")
        self.label = label
        self.type = mount.type
        self.flags = 0
        self.propagation: list[int] = []
        # id-mapped: idmap/ridmap given, or mappings; `tree_fd` is the detached, already
        # id-mapped clone of the source made by `pyrt create` (see linux/idmap.py)
        self.idmap = bool(mount.uidMappings or mount.gidMappings)
        self.idmap_recursive = False
        self.tree_fd = -1
        data: list[str] = []
        self.copyup = False
        for opt in mount.options:
            if opt in IDMAP_OPTIONS:
                self.idmap = True
                self.idmap_recursive = opt == "ridmap"
            elif opt == COPYUP:
                self.copyup = mount.type == "tmpfs"  # ignored elsewhere, as runc does
            elif opt in FLAG_OPTIONS:
                on, off = FLAG_OPTIONS[opt]
                self.flags = (self.flags | on) & ~off
            elif opt in PROPAGATION:
                self.propagation.append(PROPAGATION[opt])
            elif opt in _UNSUPPORTED or (opt.startswith("r") and opt[1:] in FLAG_OPTIONS):
                raise ConfigError(f"{ptr}/options", f"mount option {opt!r} not supported yet")
            else:
                data.append(opt)
        if mount.type == "bind":
            self.flags |= sc.MS_BIND
        self.data = ",".join(data) or None
        self.bind = bool(self.flags & sc.MS_BIND)
        if label and not self.bind:
            from pyrt.linux import lsm

            self.data = lsm.mount_data(self.data, mount.type, label)
        source = mount.source
        if self.bind and source and not source.startswith("/"):
            source = os.path.join(bundle, source)
        self.source = source
        if self.bind and not os.path.exists(source):
            raise ConfigError(f"{ptr}/source", f"bind source {source} does not exist")
        if bool(mount.uidMappings) != bool(mount.gidMappings):
            missing = "gidMappings" if mount.uidMappings else "uidMappings"
            raise ConfigError(f"{ptr}/{missing}", "id-mapped mounts need both uidMappings "
                              "and gidMappings")
        if self.idmap and not self.bind:
            raise ConfigError(ptr, "id-mapped mounts are only supported for bind mounts")


# ---------------------------------------------------------------- safe paths in the rootfs

def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """Open `path` as if root_fd were "/", never leaving it through symlinks or `..`."""
    return sc.openat2(root_fd, path.lstrip("/") or ".", flags,
                      sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS)


def make_in_root(root_fd: int, path: str, directory: bool = True, mode: int = 0o755) -> int:
    """Resolve `path` inside the root, creating what is missing; returns an O_PATH fd.

    Each missing component is created in its parent's resolved fd, so a symlink planted
    in the rootfs is followed only within it.
    """
    parts = _normalize(path.split("/"))
    for _ in range(64):
        try:
            return open_in_root(root_fd, "/".join(parts))
        except FileNotFoundError:
            pass
        # find the deepest existing ancestor
        depth = len(parts) - 1
        while depth > 0:
            try:
                parent = open_in_root(root_fd, "/".join(parts[:depth]))
                break
            except FileNotFoundError:
                depth -= 1
        else:
            parent = os.dup(root_fd)
        try:
            name = parts[depth]
            last = depth == len(parts) - 1
            if last and not directory:
                fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
                             | os.O_NOFOLLOW, 0o644, dir_fd=parent)
                os.close(fd)
            else:
                os.mkdir(name, mode, dir_fd=parent)
        except FileExistsError:
            # raced, or a dangling symlink: follow it by hand, still inside the root
            try:
                link = os.readlink(name, dir_fd=parent)
            except OSError:
                link = None
            if link is not None:
                base = [] if link.startswith("/") else parts[:depth]
                parts = _normalize([*base, *link.split("/"), *parts[depth + 1 :]])
        finally:
            os.close(parent)
    raise PyrtError(f"path {path}", "could not be created inside the rootfs")


def _normalize(parts: list[str]) -> list[str]:
    """Drop "." and empty parts and apply ".." without going above the root."""
    out: list[str] = []
    for p in parts:
        if p == "..":
            if out:
                out.pop()
        elif p and p != ".":
            out.append(p)
    return out


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _check_ordinary_dir(root_fd: int, m: MountPlan) -> None:
    """procfs and sysfs go on a real directory of the rootfs, never through a symlink
    (CVE-2019-16884, CVE-2023-27561): one that a process sharing a volume with the
    container could redirect would leave the masks and read-only paths, made later by
    path, on a decoy."""
    parent, _, name = m.destination.rstrip("/").rpartition("/")
    if not name:
        return
    try:
        parent_fd = open_in_root(root_fd, parent)
    except FileNotFoundError:
        return  # nothing there yet: make_in_root makes real directories
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    finally:
        os.close(parent_fd)
    if not stat.S_ISDIR(st.st_mode):
        raise PyrtError(f"mount {m.destination}",
                        f"{m.type} must be mounted on an ordinary directory")


# types runc does not check against /proc (CVE-2019-19921) unless bind mounted
_NOT_UNDER_PROC_CHECKED = ("proc", "sysfs", "mqueue", "tmpfs", "cgroup", "cgroup2")
# the files lxcfs emulates, which may be bind mounted over procfs's own
LXCFS_FILES = ("cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg",
               "slabinfo", "net/dev", "sys/kernel/ns_last_pid")


def _check_proc_target(root_fd: int, target_fd: int, m: MountPlan) -> None:
    """As runc (CVE-2019-19921): on /proc only another procfs, below /proc only the files
    lxcfs emulates; anything else would give the container a /proc the runtime does not
    control. The target is checked where it resolved, symlinks followed."""
    rel = os.path.relpath(os.readlink(fd_path(target_fd)), os.readlink(fd_path(root_fd)))
    if rel == "proc":
        if _fstype(m.source) != "proc":
            raise PyrtError(f"mount {m.destination}",
                            "cannot be mounted on /proc: it is not a proc filesystem")
    elif rel.startswith("proc/") and rel[5:] not in LXCFS_FILES:
        raise PyrtError(f"mount {m.destination}", "cannot be mounted inside /proc")


def _fstype(path: str) -> str:
    """The filesystem type of the mount holding path ("" if it cannot be told)."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return ""
    want = f"{os.major(dev)}:{os.minor(dev)}"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if left.split()[2] == want:
                return right.split()[0]
    return ""


# ---------------------------------------------------------------- the rootfs

def prepare_root(rootfs: str, propagation: str) -> None:
    """Set "/" propagation, keep the rootfs's parent mount private, bind the rootfs to itself."""
    flags = PROPAGATION.get(propagation, sc.MS_SLAVE | sc.MS_REC)
    sc.mount(None, "/", None, flags)
    _make_parent_private(rootfs)
    sc.mount(rootfs, rootfs, "bind", sc.MS_BIND | sc.MS_REC)


def _make_parent_private(rootfs: str) -> None:
    """pivot_root refuses a shared parent mount: make the one holding the rootfs private."""
    best, shared = "", False
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            if (rootfs == point or rootfs.startswith(point.rstrip("/") + "/")) and \
                    len(point) >= len(best):
                best = point
                shared = any(x.startswith("shared:") for x in fields[6:fields.index("-")])
    if best and shared:
        sc.mount(None, best, None, sc.MS_PRIVATE)


def mount_one(root_fd: int, m: MountPlan, in_userns: bool, cgroupns: bool = True) -> None:
    is_dir = True
    if m.bind:
        is_dir = os.path.isdir(m.source)
    if m.type in ("proc", "sysfs"):
        _check_ordinary_dir(root_fd, m)
    target_fd = make_in_root(root_fd, m.destination, directory=is_dir)
    try:
        target = fd_path(target_fd)
        if m.bind or m.type not in _NOT_UNDER_PROC_CHECKED:
            _check_proc_target(root_fd, target_fd, m)
        if m.type == "cgroup":
            _mount_cgroup(root_fd, m, cgroupns)
            return
        if m.bind:
            if m.tree_fd >= 0:
                sc.move_mount(m.tree_fd, "", target_fd, "",
                              sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH)
                os.close(m.tree_fd)
                m.tree_fd = -1
            else:
                sc.mount(m.source, target, None, m.flags & (sc.MS_BIND | sc.MS_REC))
            # reopen: the fd still points at the covered directory, not the new mount
            os.close(target_fd)
            target_fd = open_in_root(root_fd, m.destination)
            target = fd_path(target_fd)
            extra = m.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
            if extra:
                _remount(target, sc.MS_BIND | sc.MS_REMOUNT | extra)
        else:
            if m.copyup:
                _mount_copyup(root_fd, m, target)
            else:
                _mount_plain(root_fd, m, target)
            os.close(target_fd)
            target_fd = open_in_root(root_fd, m.destination)
            target = fd_path(target_fd)
            if m.type == "mqueue" and m.label:
                from pyrt.linux import lsm

                lsm.label_mqueue(target, m.label)
        for flag in m.propagation:
            sc.mount(None, target, None, flag)
    except OSError as e:
        raise oserror(f"mount {m.destination}", e) from None
    finally:
        os.close(target_fd)


def _mount_plain(root_fd: int, m: MountPlan, target: str) -> None:
    source = m.source or m.type
    try:
        sc.mount(source, target, m.type, m.flags, m.data)
    except PermissionError:
        if m.type != "sysfs":
            raise
        # no network namespace of our own (or a user namespace): bind the host's
        sc.mount("/sys", target, None, sc.MS_BIND | sc.MS_REC)
        fresh = open_in_root(root_fd, m.destination)  # the target fd is the covered dir
        try:
            _remount(fd_path(fresh), sc.MS_BIND | sc.MS_REMOUNT | m.flags)
        finally:
            os.close(fresh)


def _mount_copyup(root_fd: int, m: MountPlan, target: str) -> None:
    """A tmpfs filled with a copy of the directory it covers (read through a descriptor
    opened before the mount), made read-only only once filled."""
    from pyrt.linux.copyup import copy_tree

    covered = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sc.mount(m.source or m.type, target, m.type, m.flags & ~sc.MS_RDONLY, m.data)
        fresh = open_in_root(root_fd, m.destination, os.O_RDONLY | os.O_DIRECTORY)
        try:
            copy_tree(covered, fresh)
        finally:
            os.close(fresh)
    finally:
        os.close(covered)
    if m.flags & sc.MS_RDONLY:
        fresh = open_in_root(root_fd, m.destination)
        try:
            sc.mount(None, fd_path(fresh), None, sc.MS_REMOUNT | m.flags)
        finally:
            os.close(fresh)


def _remount(target: str, flags: int) -> None:
    try:
        sc.mount(None, target, None, flags)
    except PermissionError:
        # locked flags of the source mount must be kept (e.g. inside a user namespace)
        vfs = os.statvfs(target).f_flag
        for bit, flag in _LOCKED:
            if vfs & bit:
                flags |= flag
        sc.mount(None, target, None, flags)


def _mount_cgroup(root_fd: int, m: MountPlan, cgroupns: bool) -> None:
    """A `cgroup` mount: cgroup2 on a unified host; on v1 a tmpfs with one mount per
    hierarchy. In a cgroup namespace each mount's root is the container's own cgroup;
    without one, the container's cgroup directories are bound there instead (as runc),
    so it never sees the host's tree."""
    from pyrt import cgroups

    flags = m.flags & ~sc.MS_RDONLY
    own = cgroups.own_cgroups()
    if cgroups.host_mode() == cgroups.UNIFIED:
        _mount_hierarchy(root_fd, m.destination, "", own.get("", "/"), m.flags, cgroupns)
        return
    data = "mode=755"
    if m.label:  # runc mounts this tmpfs as any other, labelled
        from pyrt.linux import lsm

        data = lsm.labelled(data, m.label)
    target_fd = open_in_root(root_fd, m.destination)
    try:
        sc.mount("tmpfs", fd_path(target_fd), "tmpfs", flags, data)
    finally:
        os.close(target_fd)
    for hierarchy, path in own.items():
        if not hierarchy:
            continue
        name = hierarchy.removeprefix("name=")
        os.close(make_in_root(root_fd, f"{m.destination}/{name}"))
        _mount_hierarchy(root_fd, f"{m.destination}/{name}", hierarchy, path, m.flags, cgroupns)
        if "," in name:  # cpu,cpuacct -> also reachable as cpu and cpuacct
            for alias in name.split(","):
                try:
                    os.symlink(name, alias, dir_fd=_dir_fd(root_fd, m.destination))
                except FileExistsError:
                    pass
    if m.flags & sc.MS_RDONLY:
        target_fd = open_in_root(root_fd, m.destination)
        try:
            _remount(fd_path(target_fd), sc.MS_REMOUNT | sc.MS_RDONLY | flags)
        finally:
            os.close(target_fd)


def _mount_hierarchy(root_fd: int, destination: str, hierarchy: str, path: str, flags: int,
                     cgroupns: bool) -> None:
    """One hierarchy ("" is cgroup2) at destination, showing only the cgroup at `path`."""
    from pyrt import cgroups

    target_fd = open_in_root(root_fd, destination)
    try:
        if cgroupns and hierarchy:
            name = hierarchy.removeprefix("name=")
            opts = hierarchy if hierarchy.startswith("name=") else name
            sc.mount("cgroup", fd_path(target_fd), "cgroup", flags, opts)
        elif cgroupns:
            sc.mount("cgroup2", fd_path(target_fd), "cgroup2", flags)
        else:
            mount = f"{cgroups.ROOT}/{hierarchy.removeprefix('name=')}" if hierarchy \
                else cgroups.ROOT
            sc.mount(f"{mount}{path}", fd_path(target_fd), None, sc.MS_BIND)
            os.close(target_fd)  # reopen: the fd still points at the covered directory
            target_fd = open_in_root(root_fd, destination)
            _remount(fd_path(target_fd), sc.MS_REMOUNT | sc.MS_BIND | flags)
    finally:
        os.close(target_fd)


def _dir_fd(root_fd: int, path: str) -> int:
    return open_in_root(root_fd, path, os.O_DIRECTORY | os.O_RDONLY)


def pivot_root(rootfs: str) -> None:
    """Make rootfs "/" and detach the old root, as runc does (pivot_root(".", "."))."""
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        sc.pivot_root(".", ".")
        os.fchdir(old)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
    except OSError as e:
        raise oserror("pivot_root", e) from None
    finally:
        os.close(old)
        os.close(new)


def move_root(rootfs: str) -> None:
    """--no-pivot: move the rootfs mount onto "/" and chroot into it."""
    try:
        os.chdir(rootfs)
        sc.mount(rootfs, "/", None, sc.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
    except OSError as e:
        raise oserror("chroot", e) from None


def open_null() -> int:
    """The container's /dev/null, checked to be the null device: binding it by name would
    follow a symlink planted there (from a /dev bind mount, say) and put whatever it
    names, /proc/sys/kernel/core_pattern for one, writable over a masked path
    (CVE-2025-31133). Returns an O_PATH fd to bind from."""
    try:
        fd = os.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise oserror("maskedPaths: /dev/null", e) from None
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise PyrtError("maskedPaths", "/dev/null in the container is not the null device")
    return fd


def mask_path(path: str, null: int, label: str = "") -> None:
    """Hide a path: /dev/null (`null`, from open_null) over a file, an empty read-only
    tmpfs over a directory (with the mount label, as runc)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        if stat.S_ISDIR(st.st_mode):
            data = "size=0k,mode=000"
            if label:
                from pyrt.linux import lsm

                data = lsm.labelled(data, label)
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, data)
        else:
            sc.mount(fd_path(null), path, None, sc.MS_BIND)
    except OSError as e:
        raise oserror(f"maskedPaths {path}", e) from None


def readonly_path(path: str) -> None:
    try:
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as e:
        raise oserror(f"readonlyPaths {path}", e) from None
    flags = sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    try:
        _remount(path, flags)
    except OSError as e:
        raise oserror(f"readonlyPaths {path}", e) from None


def readonly_root() -> None:
    try:
        _remount("/", sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
    except OSError as e:
        raise oserror("root readonly", e) from None


def write_sysctl(sysctl: dict[str, str]) -> None:
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(value)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise PyrtError(f"sysctl {key}", "unknown on this kernel") from None
            raise oserror(f"sysctl {key}", e) from None
