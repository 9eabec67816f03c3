"""AppArmor and SELinux for the container's processes and mounts, as runc does.

- process.apparmorProfile: "exec <profile>" written to our own /proc attr apparmor/exec
  (attr/exec on kernels without the per-LSM directory); it takes effect at execve.
- process.selinuxLabel: written to attr/exec (at execve) and attr/keycreate (the session
  keyring the init makes).
- linux.mountLabel: context="<label>" in the data of the mounts runc labels (tmpfs,
  devpts and other filesystems but proc, sysfs, mqueue, cgroup and bind mounts, masked
  directories); on mqueue it becomes the mount point's security.selinux, when SELinux
  is enabled.

Where the host lacks the LSM, runc 1.1.5 refuses a selinuxLabel before making anything
and fails in its init on an apparmorProfile (the kernel rejects the attr write); pyrt
refuses both before making anything. A mountLabel goes to the mounts regardless, as in
runc: a kernel without SELinux rejects the option.

The attr files are opened under a directory fd of our own /proc/<pid> on the host's
procfs, taken before entering the container's mount namespace: never through the
container's /proc, which the container's rootfs or mounts could fake (CVE-2019-16884).
"""

from __future__ import annotations

import os

from pyrt.errors import ConfigError, PyrtError

APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
MOUNTINFO = "/proc/self/mountinfo"
CURRENT = "/proc/self/attr/current"

# mount types whose data never carries the label (runc's mountToRootfs)
UNLABELED = ("proc", "sysfs", "mqueue", "cgroup", "cgroup2", "bind")


def apparmor_enabled() -> bool:
    try:
        with open(APPARMOR_ENABLED, "rb") as f:
            return f.read(1) == b"Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    """As go-selinux: a writable selinuxfs is mounted and we are not in the "kernel"
    context (what an SELinux kernel without a loaded policy reports)."""
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="replace") as f:
            mounted = any(_rw_selinuxfs(line) for line in f)
    except OSError:
        return False
    if not mounted:
        return False
    try:
        with open(CURRENT, "rb") as f:
            return f.read().rstrip(b"\0\n") != b"kernel"
    except OSError:
        return True  # go-selinux treats an unreadable context as not "kernel"


def _rw_selinuxfs(line: str) -> bool:
    left, _, right = line.partition(" - ")
    fields = left.split()
    return right.split()[:1] == ["selinuxfs"] and len(fields) > 5 and \
        "rw" in fields[5].split(",")


def check(apparmor_profile: str, selinux_label: str, at: str) -> None:
    """Refuse what this host cannot apply; `at` is the JSON pointer (or flag) prefix."""
    if selinux_label and not selinux_enabled():
        raise ConfigError(f"{at}selinuxLabel",
                          "SELinux is disabled or not supported on this host")
    if apparmor_profile and not apparmor_enabled():
        raise ConfigError(f"{at}apparmorProfile",
                          "AppArmor is disabled or not supported on this host")


def apply_exec(proc_dir: int, apparmor_profile: str, selinux_label: str) -> None:
    """Set what our next execve puts on: `proc_dir` is an fd of our /proc/<pid>."""
    if apparmor_profile:
        name = "apparmor/exec" if _exists(proc_dir, "attr/apparmor/exec") else "exec"
        _write_attr(proc_dir, name, f"exec {apparmor_profile}",
                    f"apparmor profile {apparmor_profile}")
    if selinux_label:
        _write_attr(proc_dir, "exec", selinux_label, f"selinux label {selinux_label}")


def set_key_label(proc_dir: int, selinux_label: str) -> None:
    """The label of the keyrings we create from now on (the session keyring)."""
    if selinux_label:
        _write_attr(proc_dir, "keycreate", selinux_label, f"selinux label {selinux_label}")


def mount_data(data: str | None, fstype: str, label: str) -> str | None:
    """A mount's data with the mount label in it, for the types runc labels."""
    if not label or fstype in UNLABELED:
        return data
    return labelled(data, label)


def labelled(data: str | None, label: str) -> str:
    """Mount data with SELinux's context= option (quoted: labels hold commas)."""
    context = f'context="{label}"'
    return f"{data},{context}" if data else context


def label_mqueue(path: str, label: str) -> None:
    """runc labels an mqueue mount point after mounting it (SELinux only)."""
    if label and selinux_enabled():
        try:
            os.setxattr(path, "security.selinux", label.encode(), follow_symlinks=False)
        except OSError as e:
            raise PyrtError(f"mount label {label}", e.strerror or str(e)) from None


def _exists(dir_fd: int, path: str) -> bool:
    try:
        os.stat(path, dir_fd=dir_fd)
    except OSError:
        return False
    return True


def _write_attr(proc_dir: int, name: str, value: str, what: str) -> None:
    try:
        fd = os.open(f"attr/{name}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=proc_dir)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise PyrtError(what, f"attr/{name}: {e.strerror or e}") from None
