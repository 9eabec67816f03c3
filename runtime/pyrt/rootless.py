"""Rootless mode: pyrt run by an unprivileged user, decided as runc decides it.

Two questions, as in runc: is the caller unprivileged (its euid is not 0: it needs a
user namespace, and newuidmap/newgidmap for any mapping beyond its own ids), and may
cgroup errors be forgiven (the global --rootless flag: true, false, or auto, where
auto means "not root, or root inside a user namespace")?
"""

from __future__ import annotations

import os

from pyrt.errors import PyrtError

DEFAULT_ROOT = "/run/pyrt"
_INITIAL_MAP = ["0", "0", "4294967295"]


def unprivileged() -> bool:
    """Whether the caller is not root (runc's RootlessEUID)."""
    return os.geteuid() != 0


def in_user_namespace() -> bool:
    """Whether we run in a user namespace other than the initial one."""
    try:
        with open("/proc/self/uid_map", encoding="utf-8") as f:
            return f.read().split() != _INITIAL_MAP
    except OSError:
        return False


def cgroups_rootless(flag: str) -> bool:
    """The global --rootless value: true/false as Go's ParseBool reads them, or auto."""
    value = flag.strip()
    if value.lower() in ("", "auto"):
        return unprivileged() or in_user_namespace()
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise PyrtError("--rootless", f"invalid value {flag!r}: true, false or auto")


def default_root() -> str:
    """The state directory when --root is not given: $XDG_RUNTIME_DIR/pyrt for an
    unprivileged user (and root in a user namespace unless $USER is root), else
    /run/pyrt. The XDG directory is made sticky so that it is not pruned."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if not xdg:
        return DEFAULT_ROOT
    if not unprivileged() and (not in_user_namespace() or os.environ.get("USER") == "root"):
        return DEFAULT_ROOT
    root = os.path.join(xdg, "pyrt")
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        os.chmod(root, 0o700 | 0o1000)
    except OSError as e:
        raise PyrtError(f"state root {root}",
                        f"$XDG_RUNTIME_DIR must be writable by the user: {e.strerror}") from None
    return root
