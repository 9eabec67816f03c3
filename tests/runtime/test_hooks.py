"""Hooks (runtime-spec config.md, POSIX-platform hooks): order, state, namespaces, failures.

Each hook is a shell script that appends a line to a log file on the host: the hook's
name, its stdin (the state JSON), its pid namespace and its cwd. Hooks that run in the
container see the log's directory through a bind mount.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import rthelpers as h
from rthelpers import assert_ok, describe

HOOK = """#!/bin/sh
state=$(cat)
printf '%s\\t%s\\t%s\\t%s\\n' "$1" "$state" "$(readlink /proc/self/ns/pid)" "$(pwd)" >> {log}
{extra}
"""
KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")


def _setup(b: h.Bundle, tmp_path: Path, extra: dict[str, str] | None = None,
           kinds: tuple[str, ...] = KINDS, timeout: dict[str, int] | None = None) -> Path:
    """Install the recording hook for `kinds`; `extra` adds shell lines to one kind."""
    logdir = tmp_path / "hooklog"
    logdir.mkdir(exist_ok=True)
    log = logdir / "log"
    b.config.setdefault("hooks", {})
    for kind in kinds:
        script = logdir / f"{kind}.sh"
        script.write_text(HOOK.format(log=log, extra=(extra or {}).get(kind, "")))
        script.chmod(0o755)
        hook: dict[str, object] = {"path": str(script), "args": [str(script), kind]}
        if timeout and kind in timeout:
            hook["timeout"] = timeout[kind]
        b.config["hooks"][kind] = [hook]
    # startContainer runs after pivot_root: the scripts and the log must be in there too
    b.add_mount(str(logdir), "bind", str(logdir), ["rbind", "rw"])
    return log


def _entries(log: Path) -> list[tuple[str, dict, str, str]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        kind, state, pidns, cwd = line.split("\t")
        out.append((kind, json.loads(state), pidns, cwd))
    return out


def test_hooks_order_state_namespace_and_cwd(rt, make_bundle, tmp_path):
    b = make_bundle(("true",), write=False)
    log = _setup(b, tmp_path)
    b.write()
    assert_ok(rt.create(b))
    init = rt.state(b.id)["pid"]
    assert_ok(rt.start(b.id))
    rt.wait_status(b.id, "stopped")
    assert_ok(rt.delete(b.id))
    entries = _entries(log)
    kinds = [e[0] for e in entries]
    assert sorted(kinds) == sorted(KINDS), entries
    # runc 1.1.5 runs poststart without waiting for startContainer: only these are ordered
    assert kinds[:3] == ["prestart", "createRuntime", "createContainer"], kinds
    assert kinds[-1] == "poststop", kinds
    host_pidns = os.readlink("/proc/self/ns/pid")
    by_kind = {e[0]: e for e in entries}
    for kind in ("prestart", "createRuntime", "poststart", "poststop"):
        _, state, pidns, cwd = by_kind[kind]
        assert pidns == host_pidns, f"{kind} must run in the runtime's namespace"
        assert state["id"] == b.id and state["bundle"] == str(b.path), state
        if kind == "poststop":
            assert state.get("pid", 0) == 0, f"a stopped container has no pid: {state}"
        else:
            assert state["pid"] == init, f"{kind}: {state}"
        # as runc: the bundle, except for poststop (run from `delete`, in its cwd)
        want = rt.workdir if kind == "poststop" else b.path
        assert cwd == str(want), f"{kind} cwd {cwd}"
    for kind in ("createContainer", "startContainer"):
        assert by_kind[kind][2] != host_pidns, f"{kind} must run in the container's namespace"
    assert by_kind["createContainer"][3] == str(b.rootfs)
    assert by_kind["startContainer"][3] == "/"
    assert by_kind["createRuntime"][1]["status"] == "creating"
    assert by_kind["poststop"][1]["status"] == "stopped"


def test_hook_env_is_exactly_the_configured_one(rt, make_bundle, tmp_path):
    b = make_bundle(("true",), write=False)
    out = tmp_path / "env"
    script = tmp_path / "env.sh"
    script.write_text(f"#!/bin/sh\nenv > {out}\n")
    script.chmod(0o755)
    b.config["hooks"] = {"createRuntime": [{"path": str(script), "env": ["ONLY=this"]}]}
    b.write()
    assert_ok(rt.create(b))
    env = dict(line.split("=", 1) for line in out.read_text().splitlines())
    env.pop("PWD", None)  # the shell adds these
    env.pop("SHLVL", None)
    assert env == {"ONLY": "this"}, env


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_cleans_up(rt, make_bundle, tmp_path, kind):
    b = make_bundle(("true",), write=False)
    log = _setup(b, tmp_path, extra={kind: "exit 3"}, kinds=(kind, "poststop"))
    b.write()
    res = rt.create(b)
    assert res.returncode == 1 and res.stderr.strip(), describe(res)
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)
    assert [e[0] for e in _entries(log)] == [kind, "poststop"], _entries(log)


def test_hook_timeout_fails_create(rt, make_bundle, tmp_path):
    b = make_bundle(("true",), write=False)
    _setup(b, tmp_path, extra={"createRuntime": "exec sleep 30"}, kinds=("createRuntime",),
           timeout={"createRuntime": 1})
    b.write()
    res = rt.create(b, timeout=20)
    assert res.returncode == 1 and res.stderr.strip(), describe(res)
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


def test_failing_poststop_hook_is_a_warning(rt, make_bundle, tmp_path):
    b = make_bundle(("true",), write=False)
    _setup(b, tmp_path, extra={"poststop": "exit 5"}, kinds=("poststop",))
    b.write()
    assert_ok(rt.create(b))
    assert_ok(rt.start(b.id))
    rt.wait_status(b.id, "stopped")
    assert_ok(rt.delete(b.id))
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


@pytest.mark.pyrt_only
def test_failing_poststart_hook_stops_the_container(rt, make_bundle, tmp_path):
    # pyrt-only: runtime-spec 1.3.0 makes a poststart failure an error that stops the
    # container; runc 1.1.5 still warns and continues.
    b = make_bundle(("sleep", "100"), write=False)
    _setup(b, tmp_path, extra={"poststart": "exit 4"}, kinds=("poststart",))
    b.write()
    assert_ok(rt.create(b))
    res = rt.start(b.id)
    assert res.returncode == 1 and "poststart" in res.stderr, describe(res)
    rt.wait_status(b.id, "stopped")


@pytest.mark.pyrt_only
def test_failing_start_container_hook_fails_start(rt, make_bundle, tmp_path):
    # pyrt-only: runc 1.1.5's start returns 0 and the container just stops.
    b = make_bundle(("sleep", "100"), write=False)
    _setup(b, tmp_path, extra={"startContainer": "exit 6"}, kinds=("startContainer",))
    b.write()
    assert_ok(rt.create(b))
    res = rt.start(b.id)
    assert res.returncode == 1 and "startContainer" in res.stderr, describe(res)
    rt.wait_status(b.id, "stopped")


@pytest.mark.pyrt_only
def test_start_container_hooks_finish_before_poststart(rt, make_bundle, tmp_path):
    # pyrt-only: the spec orders startContainer (before the process) before poststart
    # (after it); runc 1.1.5 runs them concurrently.
    b = make_bundle(("true",), write=False)
    log = _setup(b, tmp_path, extra={"startContainer": "sleep 0.3"},
                 kinds=("startContainer", "poststart"))
    b.write()
    assert_ok(rt.create(b))
    assert_ok(rt.start(b.id))
    entries = _entries(log)
    assert [e[0] for e in entries] == ["startContainer", "poststart"]
    # and their states say so (runc 1.1.5 says "created" to poststart)
    assert [e[1]["status"] for e in entries] == ["created", "running"]
