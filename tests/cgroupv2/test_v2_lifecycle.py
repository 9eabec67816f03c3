"""The container's cgroup through its life: freeze on pause, removal on delete."""

from __future__ import annotations

import pytest
import rthelpers as h
from v2helpers import cgdir, cgread, keyed, start_and_wait_ready

BACKGROUND = "sleep 1000 & echo >/ready; exec sleep 1000"


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
