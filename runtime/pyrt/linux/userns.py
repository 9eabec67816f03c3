"""User namespaces: writing a new one's id maps, and the checks rootless mode needs.

Root writes /proc/<pid>/uid_map and gid_map itself. An unprivileged caller may write
only a map of its own id (for gids, once setgroups is denied in the namespace); any
other map goes through the setuid newuidmap/newgidmap, which check /etc/subuid and
/etc/subgid (as runc does).
"""

from __future__ import annotations

import os

from pyrt.errors import ConfigError, PyrtError, oserror

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyrt.config import Config, IDMapping, Linux


def write_id_maps(pid: int, linux: Linux) -> None:
    """Write uid_map and gid_map of a child that has just made its user namespace.

    Root writes them itself. An unprivileged caller may write only a map of its own id
    (and, for gids, only once setgroups is denied in the namespace); any other map goes
    through the setuid newuidmap/newgidmap, which check /etc/subuid and /etc/subgid.
    """
    for name, maps, own in (("uid", linux.uidMappings, os.geteuid()),
                            ("gid", linux.gidMappings, os.getegid())):
        lines = [(m.containerID, m.hostID, m.size) for m in maps]
        if os.geteuid() == 0 or only_own_id(lines, own):
            if name == "gid" and os.geteuid() != 0:
                write_proc(pid, "setgroups", "deny")
            write_proc(pid, f"{name}_map", "".join(f"{c} {h} {n}\n" for c, h, n in lines))
        else:
            _run_map_tool(f"new{name}map", pid, lines)


def only_own_id(lines: list[tuple[int, int, int]], own: int) -> bool:
    """Whether a map is the one an unprivileged caller may write itself: its own id only."""
    return len(lines) == 1 and lines[0][1:] == (own, 1)


TOOL_DIRS = ("/usr/bin", "/usr/sbin", "/bin")  # looked in after $PATH


def map_tool(name: str) -> str:
    """The path of newuidmap or newgidmap, or a PyrtError naming the package."""
    for d in [*os.environ.get("PATH", "").split(":"), *TOOL_DIRS]:
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise PyrtError(f"user namespace {name}", "not found: a rootless container mapping "
                    "more than the caller's own id needs it (the uidmap package)")


def write_proc(pid: int, name: str, text: str, what: str = "user namespace") -> None:
    """One write(2) to /proc/<pid>/<name>: the kernel takes a map only whole, at once."""
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise oserror(f"{what} {name}", e) from None


def _run_map_tool(tool: str, pid: int, lines: list[tuple[int, int, int]]) -> None:
    """newuidmap/newgidmap PID ID HOSTID COUNT...; its complaint becomes our error.
    (posix_spawn, not subprocess: that import alone costs more than the tool's run.)"""
    argv = [map_tool(tool), str(pid), *(str(x) for line in lines for x in line)]
    err_r, err_w = os.pipe()
    try:
        child = os.posix_spawn(argv[0], argv, {}, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, err_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)])
    except OSError as e:
        os.close(err_r)
        raise oserror(f"user namespace {tool}", e) from None
    finally:
        os.close(err_w)
    try:
        out = b""
        while chunk := os.read(err_r, 4096):
            out += chunk
    finally:
        os.close(err_r)
    code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    if code != 0:
        why = out.decode(errors="replace").strip().replace("\n", "; ")
        what = f"user namespace {tool.removeprefix('new')[:3]}_map"
        raise PyrtError(what, why or f"{tool}: exit status {code}")


# ---------------------------------------------------------------- checks before anything is made

def check(config: Config, unprivileged: bool) -> None:
    """Raise the first problem problems() finds."""
    for problem in problems(config, unprivileged):
        raise problem


def problems(config: Config, unprivileged: bool) -> Iterator[PyrtError]:
    """What would fail in the init, found before anything is made: ids the new user
    namespace does not map, and (unprivileged) what only root may do, as runc checks."""
    linux = config.linux
    user_ns = linux.namespace("user")
    if unprivileged:
        if user_ns is None:
            yield ConfigError("/linux/namespaces", "a rootless container needs a user namespace")
        for i, m in enumerate(config.mounts):
            if m.uidMappings or m.gidMappings or {"idmap", "ridmap"} & set(m.options):
                yield ConfigError(f"/mounts/{i}",
                                  "id-mapped mounts are not supported for rootless containers")
    if user_ns is None or user_ns.path:
        return
    for name, maps in (("uid", linux.uidMappings), ("gid", linux.gidMappings)):
        if maps and not mapped(maps, 0):
            yield ConfigError(f"/linux/{name}Mappings", f"must map container {name} 0: the "
                              "init becomes root in its new user namespace")
    user = config.process.user if config.process is not None else None
    if user is not None:
        if not mapped(linux.uidMappings, user.uid):
            yield ConfigError("/process/user/uid",
                              f"{user.uid} is not mapped in the container's user namespace")
        for ptr, gid in (("/process/user/gid", user.gid),
                         *((f"/process/user/additionalGids/{i}", g)
                           for i, g in enumerate(user.additionalGids))):
            if not mapped(linux.gidMappings, gid):
                yield ConfigError(ptr, f"{gid} is not mapped in the container's user namespace")
    if not unprivileged:
        return
    gid_lines = [(m.containerID, m.hostID, m.size) for m in linux.gidMappings]
    if user is not None and user.additionalGids and only_own_id(gid_lines, os.getegid()):
        yield ConfigError("/process/user/additionalGids", "a rootless container that maps only "
                          "the caller's own gid cannot set additional groups (setgroups is "
                          "denied in its user namespace)")
    for i, m in enumerate(config.mounts):
        for opt in m.options:
            name, _, value = opt.partition("=")
            if name not in ("uid", "gid") or not value.isdigit():
                continue
            if not mapped(linux.uidMappings if name == "uid" else linux.gidMappings,
                          int(value)):
                yield ConfigError(f"/mounts/{i}/options", f"{opt}: not mapped in the rootless "
                                  "container's user namespace")
    for name, maps, own in (("uid", linux.uidMappings, os.geteuid()),
                            ("gid", linux.gidMappings, os.getegid())):
        if not only_own_id([(m.containerID, m.hostID, m.size) for m in maps], own):
            try:
                map_tool(f"new{name}map")
            except PyrtError as e:
                yield e


def mapped(maps: list[IDMapping], container_id: int) -> bool:
    return any(m.containerID <= container_id < m.containerID + m.size for m in maps)
