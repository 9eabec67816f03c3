"""The container process: rlimits, user and groups, the executable, and execve."""

from __future__ import annotations

import _signal
import os
import resource
import stat

from pyrt.errors import ConfigError, PyrtError, oserror
from pyrt.linux import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from pyrt.config import Process, User
    from pyrt.linux.caps import CapPlan

RLIMITS = {
    name: getattr(resource, name)
    for name in dir(resource)
    if name.startswith("RLIMIT_")
}


def check_rlimits(proc: Process) -> list[tuple[int, int, int]]:
    """process.rlimits as (resource, soft, hard); unknown types are a ConfigError."""
    out = []
    for i, rl in enumerate(proc.rlimits):
        if rl.type not in RLIMITS:
            raise ConfigError(f"/process/rlimits/{i}/type", f"unknown rlimit {rl.type!r}")
        out.append((RLIMITS[rl.type], rl.soft, rl.hard))
    return out


def set_rlimits(limits: list[tuple[int, int, int]]) -> None:
    for res, soft, hard in limits:
        try:
            resource.setrlimit(res, (_inf(soft), _inf(hard)))
        except (OSError, ValueError) as e:
            name = next(n for n, v in RLIMITS.items() if v == res)
            raise PyrtError(f"rlimit {name}", f"cannot set {soft}/{hard}: {e}") from None


def _inf(value: int) -> int:
    return resource.RLIM_INFINITY if value >= (1 << 64) - 1 else value


def set_user(user: User, setgroups: bool) -> None:
    """Groups, gid, uid: in that order, while we still may change them."""
    try:
        if setgroups:
            _set_groups(user.additionalGids)
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
    except OSError as e:
        raise PyrtError(f"user {user.uid}:{user.gid}", e.strerror or str(e)) from None


def _set_groups(gids: list[int]) -> None:
    """setgroups(2); where the user namespace denies it (rootless, mapping only the
    caller's gid) the groups cannot change at all, which is fine when none were asked for."""
    try:
        os.setgroups(gids)
    except PermissionError:
        if gids or not _setgroups_denied():
            raise


def _setgroups_denied() -> bool:
    try:
        with open("/proc/self/setgroups", encoding="utf-8") as f:
            return f.read().strip() == "deny"
    except OSError:
        return False


def home_of(uid: int) -> str:
    """HOME for uid from the container's /etc/passwd, "/" if it has none (as runc)."""
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def environment(proc: Process) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in proc.env:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    if "HOME" not in env:
        env["HOME"] = home_of(proc.user.uid)
    return env


def find_executable(name: str, env: dict[str, str]) -> str:
    """args[0] resolved against PATH inside the container, as exec.LookPath does."""
    if "/" in name:
        candidates = [name]
    else:
        path = env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    for candidate in candidates:
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(candidate, os.X_OK):
            return candidate
        if "/" in name:
            raise PyrtError(f"exec {name!r}", "permission denied: not an executable file")
    if "/" in name:
        raise PyrtError(f"exec {name!r}", "no such file or directory")
    raise PyrtError(f"exec {name!r}", "executable file not found in $PATH")


def become(proc: Process, caps: CapPlan, rlimits: list[tuple[int, int, int]]
           ) -> tuple[str, dict[str, str]]:
    """Make the calling process the container's `proc`, short of execve: cwd, rlimits,
    capabilities and user (in runc's order), umask, no_new_privs.
    Returns the executable (looked up as the user) and the environment."""
    try:
        os.chdir(proc.cwd)
    except OSError as e:
        raise oserror(f"process cwd {proc.cwd}", e) from None
    set_rlimits(rlimits)
    caps.drop_bounding()
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    set_user(proc.user, setgroups=True)
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    caps.apply()
    os.umask(0o022 if proc.user.umask is None else proc.user.umask)
    if proc.noNewPrivileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    env = environment(proc)
    executable = find_executable(proc.args[0], env)
    try:
        os.chdir(proc.cwd)  # again as the user, who may not reach it
        # A cwd through one of our own fds (/proc/self/fd/N/..) can lead out of the
        # root (CVE-2024-21626); getcwd(3) then fails: the kernel says "(unreachable)".
        os.getcwd()
    except FileNotFoundError:
        raise PyrtError(f"process cwd {proc.cwd}", "outside the container's root") from None
    except OSError as e:
        raise oserror(f"process cwd {proc.cwd}", e) from None
    return executable, env


def set_oom_score_adj(value: int | None) -> None:
    """Through the host's /proc, before the process becomes non-dumpable (as runc)."""
    if value is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w", encoding="utf-8") as f:
            f.write(str(value))
    except OSError as e:
        raise oserror("oom_score_adj", e) from None


# signals CPython ignores or handles itself: the container must get the defaults
_RESET_SIGNALS = ("SIGINT", "SIGPIPE", "SIGXFSZ")


def default_signals() -> None:
    """In a forked child: default dispositions and an empty mask, as execve expects."""
    for name in _RESET_SIGNALS:
        _signal.signal(getattr(_signal, name), _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def close_fds_except(keep: set[int]) -> None:
    """In a forked child: close every fd inherited from the parent but `keep`."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listdir's own fd


def execve(executable: str, args: list[str], env: dict[str, str], preserve_fds: int) -> NoReturn:
    """Close everything but stdio and the preserved fds, and exec; never returns."""
    for fd in range(3, 3 + preserve_fds):
        os.set_inheritable(fd, True)
    os.closerange(3 + preserve_fds, 1 << 20)
    try:
        os.execve(executable, args, env)
    except OSError as e:
        os.write(2, f"pyrt: exec {args[0]}: {e.strerror}\n".encode())
    os._exit(127)
