"""The container's cgroup through its life: freeze on pause, removal on delete."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import rthelpers as h
from v2helpers import MiB, cgdir, cgread, keyed, start_and_wait_ready

BACKGROUND = "sleep 1000 & echo >/ready; exec sleep 1000"
TRACING = Path("/sys/kernel/tracing")


@pytest.fixture
def cgroup_moves() -> Iterator[Callable[[], list[str]]]:
    """A private ftrace instance of the kernel's cgroup_attach_task event, which a move
    into a cgroup fires (a write to cgroup.procs), and a birth there does not; the
    function returns the events so far."""
    if not (TRACING / "instances").is_dir():
        pytest.skip("no tracefs at /sys/kernel/tracing")
    instance = TRACING / "instances" / f"pyrt-tests-{os.getpid()}"
    instance.mkdir()
    try:
        (instance / "events/cgroup/cgroup_attach_task/enable").write_text("1")
        yield lambda: [line for line in (instance / "trace").read_text().splitlines()
                       if "cgroup_attach_task:" in line]
    finally:
        instance.rmdir()


@pytest.mark.pyrt_only  # runc 1.1.5 writes both pids to cgroup.procs
def test_init_and_exec_are_born_in_the_cgroup(rt, bundle_with, cgroup_moves):
    """Nothing is moved into the container's cgroup: the init and an exec'd process are
    born there (clone3 with CLONE_INTO_CGROUP), so no pyrt command waits for the RCU
    grace period a move waits for (docs/performance.md). The init waits, untouched,
    until `create` has copied the pages they share: see
    test_runtime_memory_is_not_charged_to_the_container."""
    b = bundle_with({"memory": {"limit": 64 * MiB}})
    st = rt.create_started(b)
    h.assert_ok(rt("exec", b.id, "true"))
    assert cgread(b, "cgroup.procs").split() == [str(st["pid"])]
    moved_in = [e for e in cgroup_moves() if f" dst_path={b.cgroup_path} " in e]
    assert not moved_in


def test_pause_resume_freezes_the_cgroup(rt, bundle_with):
    b = bundle_with({})
    rt.create_started(b)
    h.assert_ok(rt("pause", b.id))
    assert rt.status(b.id) == "paused"
    assert cgread(b, "cgroup.freeze") == "1"
    assert keyed(b, "cgroup.events")["frozen"] == "1"
    h.assert_ok(rt("resume", b.id))
    assert rt.status(b.id) == "running"
    assert cgread(b, "cgroup.freeze") == "0"
    assert keyed(b, "cgroup.events")["frozen"] == "0"


def test_delete_removes_the_cgroup(rt, bundle_with):
    b = bundle_with({"pids": {"limit": 10}})
    st = rt.create_started(b)
    assert cgread(b, "cgroup.procs").split() == [str(st["pid"])]
    h.assert_ok(rt.kill(b.id, "KILL"))
    rt.wait_status(b.id, "stopped")
    h.assert_ok(rt.delete(b.id))
    assert not cgdir(b).exists()


def _delete_force_kills_all(rt, b):
    start_and_wait_ready(rt, b)
    pids = [int(p) for p in cgread(b, "cgroup.procs").split()]
    assert len(pids) == 2, pids
    rt.pids_seen.update(pids)
    h.assert_ok(rt.delete(b.id, force=True))
    assert not cgdir(b).exists()
    h.wait_for(lambda: not any(h.pid_alive(p) for p in pids), what="the cgroup's processes to die")


def test_delete_force_kills_a_running_container(rt, bundle_with):
    _delete_force_kills_all(rt, bundle_with({}, ("sh", "-c", BACKGROUND)))


@pytest.mark.pyrt_only  # runc 1.1.5 rmdirs before the processes it killed are gone (EBUSY)
def test_delete_force_kills_every_process_without_a_pid_namespace(rt, bundle_with):
    # Without a pid namespace the background sleep does not die with the init: only
    # killing the whole cgroup (cgroup.kill) gets it.
    b = bundle_with({}, ("sh", "-c", BACKGROUND))
    b.remove_namespace("pid")
    _delete_force_kills_all(rt, b)
