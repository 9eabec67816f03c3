"""POSIX-platform hooks (runtime-spec config.md): run one, with the state on stdin.

A hook gets the container's state JSON on stdin, its `env` (or pyrt's own environment
when it has none, as runc does), the cwd runc gives it (the bundle for prestart,
createRuntime and poststart, the rootfs for createContainer, the process's cwd for
startContainer, the caller's for poststop), and is killed after `timeout` seconds. Its stdout and
stderr are kept (in a memfd, so a chatty hook cannot block) and the last line is quoted
in the error when it fails.
"""

from __future__ import annotations

import _signal
import os
import select

from pyrt import jsonio
from pyrt.errors import PyrtError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")


def run_all(hooks: dict[str, Any], name: str, state: dict[str, Any], cwd: str | None = None,
            env: dict[str, str] | None = None) -> None:
    """Run the hooks of one kind in order; the first failure stops the rest and raises."""
    for i, hook in enumerate(hooks.get(name) or []):
        run_one(hook, state, f"{name} hook {i} ({hook.get('path')})", cwd, env)


def run_one(hook: dict[str, Any], state: dict[str, Any], what: str, cwd: str | None = None,
            default_env: dict[str, str] | None = None) -> None:
    path = hook["path"]
    args = hook.get("args") or [path]
    if "env" in hook and hook["env"] is not None:
        env = dict(item.partition("=")[::2] for item in hook["env"])
    else:
        env = dict(os.environ) if default_env is None else default_env
    timeout = hook.get("timeout")
    stdin_r, stdin_w = os.pipe()
    out = os.memfd_create("pyrt-hook-output", os.MFD_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            if cwd:
                os.chdir(cwd)
            os.dup2(stdin_r, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.closerange(3, 1 << 20)
            os.execve(path, args, env)
        except OSError as e:
            os.write(2, f"{e.strerror}\n".encode())
        os._exit(127)
    os.close(stdin_r)
    try:
        try:
            os.write(stdin_w, jsonio.dumps(state, compact=True).encode())
        except BrokenPipeError:
            pass  # the hook does not read its stdin
        os.close(stdin_w)
        status = _wait(pid, timeout)
        if status is None:
            raise PyrtError(what, f"timed out after {timeout}s")
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            os.lseek(out, 0, os.SEEK_SET)
            text = os.read(out, 1 << 16).decode(errors="replace").strip().splitlines()
            detail = f": {text[-1]}" if text else ""
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            raise PyrtError(what, f"failed with {how}{detail}")
    finally:
        os.close(out)


def _wait(pid: int, timeout: int | None) -> int | None:
    """The hook's wait status, or None (after killing it) when it outlives `timeout`."""
    if timeout:
        pidfd = os.pidfd_open(pid)
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(int(timeout) * 1000):
                os.kill(pid, _signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
        finally:
            os.close(pidfd)
    return os.waitpid(pid, 0)[1]
