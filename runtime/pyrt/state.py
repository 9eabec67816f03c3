"""The state store: `<root>/<id>/` holds state.json, the lock and, while created, exec.fifo.

Status is derived, never stored: init gone (or its start time changed: pid reuse) ->
stopped; exec fifo present -> created; frozen cgroup -> paused; else running.
Every command on a container holds an flock on `<root>/<id>/lock`; the lock file is
linked into place already locked, so no command ever sees a half-made container.
"""

from __future__ import annotations

import fcntl
import os
import time

from pyrt import jsonio
from pyrt.errors import NotExist, PyrtError, oserror
from pyrt.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ROOT = "/run/pyrt"
FIFO = "exec.fifo"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-")

CREATED, RUNNING, PAUSED, STOPPED = "created", "running", "paused", "stopped"


def check_id(container_id: str) -> None:
    if not container_id:
        raise PyrtError("container id", "must not be empty")
    if container_id in (".", "..") or not set(container_id) <= _ID_CHARS:
        raise PyrtError(f"container id {container_id!r}", "invalid: use [A-Za-z0-9_+.-]")


def process_start_time(pid: int) -> int | None:
    """Start time of a live (not zombie) process from /proc/<pid>/stat, else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


@record
class State:
    id: str
    pid: int
    start_time: int
    bundle: str
    rootfs: str
    created: str
    oci_version: str
    annotations: dict[str, str] = field(default_factory=dict)
    cgroup_paths: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)  # linux.resources, as updated
    freezer: str = ""
    new_pidns: bool = True
    hooks: dict[str, Any] = field(default_factory=dict)
    seccomp: dict[str, Any] | None = None  # linux/seccomp.py Program.to_json()

    def to_json(self) -> dict[str, Any]:
        names: tuple[str, ...] = self.__record_fields__  # type: ignore[attr-defined]
        return {n: getattr(self, n) for n in names}

    def hook_state(self, status: str) -> dict[str, Any]:
        """The runtime-spec state a hook reads on its stdin."""
        return spec_state(self.oci_version, self.id, status, self.pid, self.bundle,
                          self.annotations)


def spec_state(oci_version: str, container_id: str, status: str, pid: int, bundle: str,
               annotations: dict[str, str]) -> dict[str, Any]:
    """The runtime-spec state object as hooks read it (no pid once stopped, as runc)."""
    doc: dict[str, Any] = {"ociVersion": oci_version, "id": container_id, "status": status,
                           "pid": pid, "bundle": bundle}
    if status == STOPPED:
        del doc["pid"]
    if annotations:
        doc["annotations"] = annotations
    return doc


def utc_now() -> str:
    """RFC 3339 with nanoseconds, UTC, as runc writes `created`."""
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def _locked_file(directory: str, name: str) -> int:
    """Create `directory/name` already locked (exclusively): no one can open it unlocked."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as e:
        import errno  # only here: its import costs every command ~0.1 ms

        if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR):
            raise
        # no O_TMPFILE here (e.g. overlayfs before Linux 6.6): lock under a temporary
        # name, then rename into place
        tmp = os.path.join(directory, f".{name}.{os.getpid()}")
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(tmp, os.path.join(directory, name))
        return fd
    fcntl.flock(fd, fcntl.LOCK_EX)
    dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:  # a dir_fd makes os.link use linkat(AT_SYMLINK_FOLLOW) on the magic link
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    return fd


class Container:
    """One container's directory, opened under its lock (held until close())."""

    def __init__(self, root: str, container_id: str, lock_fd: int, state: State | None) -> None:
        self.root = root
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.lock_fd = lock_fd
        self.state = state

    # ------------------------------------------------------------ opening

    @classmethod
    def create(cls, root: str, container_id: str) -> Container:
        """Make `<root>/<id>/` exclusively, with its lock held; state is saved later."""
        check_id(container_id)
        try:
            os.makedirs(root, 0o700, exist_ok=True)
        except OSError as e:
            raise oserror(f"state root {root}", e) from None
        path = os.path.join(root, container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise PyrtError(f"container {container_id}", "already exists") from None
        except OSError as e:
            raise oserror(f"container {container_id}", e) from None
        try:
            fd = _locked_file(path, "lock")
        except OSError as e:
            os.rmdir(path)
            raise oserror(f"container {container_id}", e) from None
        return cls(root, container_id, fd, None)

    @classmethod
    def open(cls, root: str, container_id: str, shared: bool = False) -> Container:
        """Open an existing container under its lock; NotExist if there is none."""
        check_id(container_id)
        path = os.path.join(root, container_id)
        try:
            fd = os.open(os.path.join(path, "lock"), os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise NotExist(container_id) from None
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink == 0:  # deleted while we waited for the lock
            os.close(fd)
            raise NotExist(container_id)
        container = cls(root, container_id, fd, None)
        try:
            with open(os.path.join(path, "state.json"), encoding="utf-8") as f:
                container.state = State(**jsonio.loads(f.read()))
        except FileNotFoundError:
            pass  # its create died before saving: only `delete` may see it
        except (ValueError, TypeError) as e:
            raise PyrtError(f"container {container_id}", f"corrupt state.json: {e}") from None
        return container

    def close(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ state

    def require_state(self) -> State:
        if self.state is None:
            raise NotExist(self.id)
        return self.state

    def save(self, state: State) -> None:
        """Write state.json atomically (temp file + rename)."""
        tmp = os.path.join(self.dir, "state.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(jsonio.dumps(state.to_json(), compact=True))
        os.rename(tmp, os.path.join(self.dir, "state.json"))
        self.state = state

    @property
    def fifo_path(self) -> str:
        return os.path.join(self.dir, FIFO)

    def status(self) -> str:
        state = self.require_state()
        if state.pid <= 0 or process_start_time(state.pid) != state.start_time:
            return STOPPED
        if state.freezer and frozen(state.freezer):
            return PAUSED  # created or running, as runc
        if os.path.exists(self.fifo_path):
            return CREATED
        return RUNNING

    def remove(self) -> None:
        """Remove the directory; commands waiting on the lock then see it gone."""
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def oci_state(self) -> dict[str, Any]:
        """The runtime-spec state object, with runc's extra fields."""
        state = self.require_state()
        status = self.status()
        doc: dict[str, Any] = {
            "ociVersion": state.oci_version,
            "id": state.id,
            "pid": 0 if status == STOPPED else state.pid,
            "status": status,
            "bundle": state.bundle,
            "rootfs": state.rootfs,
            "created": state.created,
        }
        if state.annotations:
            doc["annotations"] = state.annotations
        doc["owner"] = ""
        return doc


def frozen(freezer: str) -> bool:
    """freezer is a v1 freezer.state or a v2 cgroup.freeze file."""
    try:
        with open(freezer, encoding="utf-8") as f:
            value = f.read().strip()
    except OSError:
        return False
    return value in ("FROZEN", "FREEZING", "1")


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isdir(os.path.join(root, n)))
