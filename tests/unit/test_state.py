"""pyrt.state: container ids, the state directory, its lock and the derived status.

Everything runs in a tmp root with this test process (or a short-lived child) standing
in for a container's init: no root, no /run.
"""

from __future__ import annotations

import datetime
import os
import re
import select
import stat
import threading
import time
from pathlib import Path

import pytest

from pyrt import state
from pyrt.errors import NotExist, PyrtError
from pyrt.state import Container, State

RFC3339_NANO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


def make_state(container_id: str = "c1", pid: int | None = None, start_time: int | None = None,
               **kw: object) -> State:
    pid = os.getpid() if pid is None else pid
    if start_time is None:
        start_time = state.process_start_time(pid) or 0
    return State(id=container_id, pid=pid, start_time=start_time, bundle="/b/" + container_id,
                 rootfs="/b/rootfs", created=state.utc_now(), oci_version="1.3.0",
                 **kw)  # type: ignore[arg-type]


@pytest.fixture
def root(tmp_path: Path) -> str:
    return str(tmp_path / "root")


# ---------------------------------------------------------------- ids

@pytest.mark.parametrize("cid", ["a", "abc-DEF_123", "x.y", "a+b", "...", "-", "1", "a" * 200,
                                 ".hidden"])
def test_check_id_accepts(cid: str) -> None:
    state.check_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "/abs", "a\nb", "ü", "a:b",
                                 "a\x00b", "*"])
def test_check_id_rejects(cid: str) -> None:
    with pytest.raises(PyrtError):
        state.check_id(cid)


@pytest.mark.parametrize("cid", ["", "..", "a/b"])
def test_create_and_open_check_the_id(root: str, cid: str) -> None:
    with pytest.raises(PyrtError):
        Container.create(root, cid)
    with pytest.raises(PyrtError):
        Container.open(root, cid)


# ---------------------------------------------------------------- process start time, clock

def test_process_start_time_of_self() -> None:
    t = state.process_start_time(os.getpid())
    assert isinstance(t, int) and t > 0
    assert state.process_start_time(os.getpid()) == t


def _forked(exit_now: bool) -> int:
    """A child of this process that exits at once, or sleeps until killed."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if not exit_now:
                time.sleep(60)
        finally:
            os._exit(0)
    return pid


def _dead_pid() -> int:
    pid = _forked(exit_now=True)
    os.waitpid(pid, 0)
    return pid


def test_process_start_time_of_a_later_child_is_not_earlier() -> None:
    pid = _forked(exit_now=False)
    try:
        t = state.process_start_time(pid)
        assert isinstance(t, int)
        assert t >= (state.process_start_time(os.getpid()) or 0)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_process_start_time_of_dead_pid() -> None:
    assert state.process_start_time(_dead_pid()) is None
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert state.process_start_time(pid_max + 1) is None


def test_process_start_time_of_zombie_is_none() -> None:
    pid = _forked(exit_now=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # exited but not reaped yet: a zombie
            stat_text = Path(f"/proc/{pid}/stat").read_text()
            if stat_text[stat_text.rindex(")") + 2] == "Z":
                break
            time.sleep(0.01)
        else:
            pytest.fail("child did not become a zombie")
        assert state.process_start_time(pid) is None
    finally:
        os.waitpid(pid, 0)


def test_utc_now_format() -> None:
    now = state.utc_now()
    assert RFC3339_NANO.match(now), now
    parsed = datetime.datetime.strptime(now[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.UTC)
    assert abs(parsed.timestamp() - time.time()) < 5


# ---------------------------------------------------------------- create / open / save

def test_create_makes_dir_with_lock(root: str) -> None:
    ctr = Container.create(root, "c1")
    try:
        d = Path(root, "c1")
        assert ctr.dir == str(d) and ctr.id == "c1" and ctr.root == root
        assert d.is_dir()
        assert stat.S_IMODE(Path(root).stat().st_mode) == 0o700
        assert (d / "lock").is_file()
        assert os.listdir(d) == ["lock"]
        assert ctr.state is None
        assert ctr.lock_fd >= 0
        assert os.fstat(ctr.lock_fd).st_ino == (d / "lock").stat().st_ino
        assert ctr.fifo_path == str(d / state.FIFO)
    finally:
        ctr.close()
    assert ctr.lock_fd == -1
    ctr.close()  # idempotent


def test_second_create_fails(root: str) -> None:
    Container.create(root, "c1").close()
    with pytest.raises(PyrtError) as info:
        Container.create(root, "c1")
    assert info.value.why == "already exists"
    assert "c1" in info.value.what


def test_create_under_a_file_fails_with_pyrt_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(PyrtError):
        Container.create(str(tmp_path / "file"), "c1")


def test_open_missing(root: str) -> None:
    with pytest.raises(NotExist) as info:
        Container.open(root, "nope")
    assert str(info.value) == "container nope: does not exist"
    os.makedirs(root)
    Path(root, "file").write_text("")
    with pytest.raises(NotExist):
        Container.open(root, "file")  # not a directory


def test_open_before_save_has_no_state(root: str) -> None:
    Container.create(root, "c1").close()
    with Container.open(root, "c1") as ctr:
        assert ctr.state is None
        with pytest.raises(NotExist):
            ctr.require_state()
        with pytest.raises(NotExist):
            ctr.status()


def test_save_then_open_roundtrip(root: str) -> None:
    st = make_state(annotations={"a": "b", "ü": "☃"}, cgroup_paths={"": "/sys/fs/cgroup/x"},
                    freezer="", new_pidns=False,
                    hooks={"poststop": [{"path": "/bin/true", "args": ["true", "x"]}]})
    with Container.create(root, "c1") as ctr:
        ctr.save(st)
        assert ctr.state is st
    assert sorted(os.listdir(Path(root, "c1"))) == ["lock", "state.json"]
    with Container.open(root, "c1", shared=True) as again:
        assert again.state == st
        assert again.require_state() == st


@pytest.mark.parametrize("text", ["{", "[]", '{"id": "c1"}', '{"bogus": 1}', "\"x\"", ""])
def test_corrupt_state_json(root: str, text: str) -> None:
    Container.create(root, "c1").close()
    Path(root, "c1", "state.json").write_text(text)
    with pytest.raises(PyrtError) as info:
        Container.open(root, "c1")
    assert "corrupt state.json" in info.value.why


# ---------------------------------------------------------------- status / oci_state

def test_status_created_running_stopped(root: str) -> None:
    with Container.create(root, "c1") as ctr:
        ctr.save(make_state())
        Path(ctr.fifo_path).write_text("")
        assert ctr.status() == state.CREATED
        os.unlink(ctr.fifo_path)
        assert ctr.status() == state.RUNNING


def test_status_stopped_when_start_time_differs(root: str) -> None:
    me = state.process_start_time(os.getpid())
    assert me is not None
    with Container.create(root, "c1") as ctr:
        ctr.save(make_state(start_time=me + 1))  # the pid was reused by another process
        Path(ctr.fifo_path).write_text("")
        assert ctr.status() == state.STOPPED


def test_status_stopped_for_dead_or_zero_pid(root: str) -> None:
    with Container.create(root, "c1") as ctr:
        ctr.save(make_state(pid=_dead_pid(), start_time=12345))
        assert ctr.status() == state.STOPPED
        ctr.save(make_state(pid=0, start_time=0))
        assert ctr.status() == state.STOPPED


@pytest.mark.parametrize("content,status", [("FROZEN\n", "paused"), ("FREEZING", "paused"),
                                            ("1\n", "paused"), ("THAWED\n", "running"),
                                            ("0\n", "running")])
def test_status_paused_from_freezer_file(root: str, tmp_path: Path, content: str,
                                         status: str) -> None:
    freezer = tmp_path / "freezer.state"
    freezer.write_text(content)
    with Container.create(root, "c1") as ctr:
        ctr.save(make_state(freezer=str(freezer)))
        assert ctr.status() == status
        freezer.unlink()
        assert ctr.status() == state.RUNNING  # unreadable freezer: not paused


def test_oci_state_running(root: str) -> None:
    st = make_state(annotations={"k": "v"})
    with Container.create(root, "c1") as ctr:
        ctr.save(st)
        doc = ctr.oci_state()
    assert {"ociVersion", "id", "status", "pid", "bundle"} <= set(doc)
    assert doc["ociVersion"] == "1.3.0"
    assert doc["id"] == "c1"
    assert doc["status"] == "running"
    assert doc["pid"] == os.getpid()
    assert doc["bundle"] == "/b/c1"
    assert doc["rootfs"] == "/b/rootfs"
    assert RFC3339_NANO.match(doc["created"])
    assert doc["annotations"] == {"k": "v"}


def test_oci_state_stopped_has_pid_0(root: str) -> None:
    with Container.create(root, "c1") as ctr:
        ctr.save(make_state(start_time=1))
        doc = ctr.oci_state()
    assert doc["status"] == "stopped"
    assert doc["pid"] == 0
    assert "annotations" not in doc


def test_oci_state_without_state_is_not_exist(root: str) -> None:
    with Container.create(root, "c1") as ctr, pytest.raises(NotExist):
        ctr.oci_state()


# ---------------------------------------------------------------- remove / list

def test_remove(root: str) -> None:
    with Container.create(root, "c1") as ctr:
        ctr.save(make_state())
        Path(ctr.fifo_path).write_text("")
        ctr.remove()
        assert not Path(root, "c1").exists()
    with pytest.raises(NotExist):
        Container.open(root, "c1")
    Container.create(root, "c1").close()  # the id is free again


def test_list_ids(root: str) -> None:
    assert state.list_ids(root) == []  # root does not exist yet
    for cid in ("b", "a", "c.1"):
        Container.create(root, cid).close()
    Path(root, "stray-file").write_text("")
    assert state.list_ids(root) == ["a", "b", "c.1"]


def test_list_ids_shows_every_valid_id(root: str) -> None:
    state.check_id(".hidden")
    Container.create(root, ".hidden").close()
    assert state.list_ids(root) == [".hidden"]


# ---------------------------------------------------------------- locking

class Opener:
    """A forked child that opens the container (another process, so another flock owner)
    and reports "opened" on a pipe; `done(timeout)` says whether it got there in time.

    The child first closes its copy of the holder's lock fd: a forked copy shares the
    open file description, and with it the flock, which would then never be released.
    """

    def __init__(self, root: str, cid: str, mode: str, holder: Container) -> None:
        r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                os.close(r)
                os.close(holder.lock_fd)
                with Container.open(root, cid, shared=mode == "shared") as ctr:
                    os.write(w, f"opened {ctr.state is None}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        self.fd = r
        self.reaped = False

    def done(self, timeout: float) -> bool:
        return bool(select.select([self.fd], [], [], timeout)[0])

    def finish(self) -> str:
        assert self.done(10), "the child is still waiting for the lock"
        out = os.read(self.fd, 100).decode()
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        self.reaped = True
        assert os.waitstatus_to_exitcode(status) == 0
        return out

    def kill(self) -> None:
        """Clean-up after a failure; never signals a pid that was already reaped."""
        if not self.reaped:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
            self.reaped = True


@pytest.mark.parametrize("mode", ["exclusive", "shared"])
def test_open_from_another_process_waits_for_the_lock(root: str, mode: str) -> None:
    ctr = Container.create(root, "c1")
    opener = Opener(root, "c1", mode, ctr)
    try:
        assert not opener.done(0.3)
        ctr.close()
        assert opener.finish() == "opened True"
    finally:
        ctr.close()
        opener.kill()


def test_shared_opens_do_not_wait_for_each_other(root: str) -> None:
    Container.create(root, "c1").close()
    with Container.open(root, "c1", shared=True) as holder:
        opener = Opener(root, "c1", "shared", holder)
        try:
            assert opener.finish() == "opened True"
        finally:
            opener.kill()


def test_exclusive_open_waits_for_shared_holder(root: str) -> None:
    Container.create(root, "c1").close()
    holder = Container.open(root, "c1", shared=True)
    opener = Opener(root, "c1", "exclusive", holder)
    try:
        assert not opener.done(0.3)
        holder.close()
        assert opener.finish() == "opened True"
    finally:
        holder.close()
        opener.kill()


def test_waiter_sees_not_exist_after_remove(root: str) -> None:
    """flock is per open file: a thread of this process waits like another process would."""
    ctr = Container.create(root, "c1")
    result: list[BaseException | Container] = []

    def wait_open() -> None:
        try:
            result.append(Container.open(root, "c1"))
        except BaseException as e:
            result.append(e)

    waiter = threading.Thread(target=wait_open, daemon=True)
    waiter.start()
    time.sleep(0.2)
    assert result == []  # still waiting for the lock
    ctr.remove()
    ctr.close()
    waiter.join(10)
    assert len(result) == 1
    assert isinstance(result[0], NotExist), result
