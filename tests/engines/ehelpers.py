"""Helpers for the engine suite: a command runner, a zombie reaper, cgroup and mount probes.

Processes are started through ``rthelpers.spawn`` (tests/runtime) so that the reaper
thread never steals the exit status of a command we are still waiting for: pytest is
a child subreaper (tests/conftest.py), and conmon and the containerd shims, which
daemonize, are reparented to it when they exit.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

_rt = str(Path(__file__).resolve().parent.parent / "runtime")
if _rt not in sys.path:
    sys.path.insert(0, _rt)

import rthelpers as h  # noqa: E402

CGROUP_TOP = "pyrt-engines"  # every engine container's cgroup is under /pyrt-engines/s<pid>/


def describe(res: subprocess.CompletedProcess) -> str:
    return h.describe(res)


def ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    return h.assert_ok(res)


def run(argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 60,
        input: str | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run a command to completion; stdout/stderr through temp files (never pipes:
    a daemonizing child such as conmon would keep a pipe open)."""
    argv = [str(a) for a in argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as inp:
        if input is not None:
            inp.write(input.encode())
            inp.seek(0)
        p = h.spawn(argv, stdin=inp if input is not None else subprocess.DEVNULL,
                    stdout=out, stderr=err, env=env, cwd=cwd)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            err.seek(0)
            raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}\n"
                                 f"stderr so far:\n{err.read().decode(errors='replace')}"
                                 ) from None
        finally:
            h.spawned_done(p)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, p.returncode,
                                           out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


def start_daemon(argv: Sequence[str], log: Path, env: dict[str, str] | None = None
                 ) -> subprocess.Popen:
    """A long-running child of pytest, output to ``log``."""
    with open(log, "ab") as f:
        return h.spawn([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                       env=env, start_new_session=True)


def stop_daemon(p: subprocess.Popen, timeout: float = 20) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    h.spawned_done(p)


def private_mount_ns(argv: Sequence[str], tmpfs: Iterable[str]) -> list[str]:
    """``argv`` in a new private mount namespace with empty tmpfs over ``tmpfs``.

    The engines hard-code a few host paths (containerd's shim sockets in
    /run/containerd/s, dockerd's /run/docker/plugins and /etc/docker/key.json, the
    image blob-info cache in /var/lib/containers/cache); a tmpfs over them in the
    daemon's own mount namespace keeps the host's copies untouched.
    """
    mounts = " && ".join(f"mount -t tmpfs -o mode=755 pyrt-engines {d}" for d in tmpfs)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'{mounts} && exec "$@"', "sh", *map(str, argv)]


def wait_for(pred: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    return h.wait_for(pred, timeout=timeout, what=what, interval=0.05)


class Reaper:
    """Reap pytest's exited children that nobody waits for (conmon, shims)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reaper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            h.reap_zombies()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        h.reap_zombies()


# --------------------------------------------------------------------------- cgroups


def proc_cgroups(pid: int) -> dict[str, str]:
    """controller -> cgroup path of ``pid`` ("" key for the cgroup2 line)."""
    out: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            out[c.removeprefix("name=")] = path
    return out


def cg_file(pid: int, controller: str, name: str) -> str:
    """The content of a v1 cgroup file of ``pid``'s cgroup (stripped)."""
    path = proc_cgroups(pid)[controller]
    return Path(f"/sys/fs/cgroup/{controller}{path}/{name}").read_text().strip()


def cgroup_subdirs(rel: str) -> set[str]:
    """Every cgroup directory below /<rel> in any hierarchy, as paths relative to it."""
    found: set[str] = set()
    for m in h.cgroup_mounts():
        top = os.path.join(m, rel.lstrip("/"))
        for dirpath, _dirs, _files in os.walk(top):
            if dirpath != top:
                found.add(os.path.relpath(dirpath, top))
    return found


def remove_cgroup_tree(rel: str) -> list[str]:
    """Kill what is left in /<rel> (every hierarchy), rmdir it depth-first; busy dirs."""
    assert rel.strip("/") and "process_api" not in rel
    h.kill_and_reap((), rel)
    failed = []
    for m in h.cgroup_mounts():
        top = os.path.join(m, rel.lstrip("/"))
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            for _ in range(50):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                failed.append(dirpath)
        parent = os.path.dirname(top)
        if os.path.basename(parent) == CGROUP_TOP:
            try:
                os.rmdir(parent)
            except OSError:
                pass
    return failed


def dead_sessions() -> set[str]:
    """``s<pid>`` dirs below /pyrt-engines whose pytest is gone (a killed run)."""
    found = set()
    for m in h.cgroup_mounts():
        top = os.path.join(m, CGROUP_TOP)
        if os.path.isdir(top):
            found |= {e for e in os.listdir(top) if e.startswith("s") and e[1:].isdigit()
                      and not h.pid_alive(int(e[1:]))}
    return found


# --------------------------------------------------------------------------- mounts


def mount_points(pid: int | str = "self", under: str = "/") -> list[str]:
    """Mount points seen by ``pid`` at or below ``under``."""
    under = under.rstrip("/") + "/"
    pts = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            mp = h._unescape(line.split()[4])
            if (mp + "/").startswith(under):
                pts.append(mp)
    return pts


# --------------------------------------------------------------------------- ptys


class Session:
    """An interactive command driven through util-linux ``script`` (it owns the pty)."""

    def __init__(self, command: str, env: dict[str, str] | None = None):
        self.proc = h.spawn(["script", "-q", "-e", "-c", command, "/dev/null"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
        self.buf = b""

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def expect(self, needle: str, timeout: float = 30) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        want = needle.encode()
        deadline = time.monotonic() + timeout
        while want not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"did not see {needle!r}; got {self.buf!r}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError(f"EOF before {needle!r}; got {self.buf!r}")
                self.buf += chunk
        before, _, self.buf = self.buf.partition(want)
        return before.decode(errors="replace")

    def wait(self, timeout: float = 30) -> int:
        try:
            rest = self.proc.communicate(timeout=timeout)[0]
            self.buf += rest or b""
            return self.proc.returncode
        finally:
            h.spawned_done(self.proc)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        h.spawned_done(self.proc)
