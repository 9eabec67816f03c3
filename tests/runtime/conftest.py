"""Fixtures for the runtime suite: real containers driven through the runtime's CLI.

Every test gets its own ``--root`` (``rt``) and bundles under its tmp_path
(``make_bundle``).  Container cgroups use an absolute cgroupsPath under
``/pyrt-tests/s<pytest pid>/`` so nothing lands under this VM's /process_api cgroup.
Teardown force-deletes what is left, reaps exited children (pytest is a subreaper,
see tests/conftest.py) and fails the test when anything leaked.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:  # rthelpers importable under any --import-mode
    sys.path.insert(0, _here)

import rthelpers as h  # noqa: E402

HERE = Path(__file__).resolve().parent
SESSION_TAG = f"s{os.getpid()}"
_counter = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    not_root = os.geteuid() != 0
    for item in items:
        if HERE not in Path(str(item.path)).resolve().parents:
            continue
        item.add_marker(pytest.mark.runtime)
        if not_root:
            item.add_marker(pytest.mark.skip(reason="runtime tests need root"))


@pytest.fixture(scope="session", autouse=True)
def _cgroup_parent_cleanup():
    """At the end of the session remove /sys/fs/cgroup/*/pyrt-tests depth-first."""
    yield
    if os.geteuid() == 0:
        h.kill_and_reap((), f"/{h.CGROUP_PARENT}/{SESSION_TAG}")
        busy = h.remove_cgroup_parent(SESSION_TAG)
        if busy:
            sys.stderr.write(f"\nwarning: cgroup dirs still busy: {busy}\n")


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not os.path.exists(h.BUSYBOX):
        pytest.skip(f"{h.BUSYBOX} (busybox-static) is needed for the runtime tests")
    return h.build_rootfs_template(tmp_path_factory.mktemp("template") / "rootfs")


@pytest.fixture
def rt(runtime_bin: str, tmp_path: Path, request: pytest.FixtureRequest):
    """Runner for the runtime under test with a private --root; checks leftovers."""
    root = tmp_path / "root"
    work = tmp_path / "work"
    work.mkdir()
    runner = h.Runtime(runtime_bin, root, work)
    runner.tracker = h.Tracker()  # type: ignore[attr-defined]
    yield runner

    problems: list[str] = []
    for p in runner.popens:
        if p.poll() is None:
            p.kill()
        try:
            p.wait(timeout=10)
            h.spawned_done(p)
        except subprocess.TimeoutExpired:
            problems.append(f"runtime process {p.pid} did not exit")
    ids: list[str] = []
    if root.is_dir():
        res = runner("list", "-q", timeout=20)
        if res.returncode == 0:
            ids = [line.strip() for line in res.stdout.splitlines() if line.strip()]
        else:
            problems.append("list failed at teardown:" + h.describe(res))
    known = [b.id for b in runner.tracker.bundles]  # type: ignore[attr-defined]
    for cid in dict.fromkeys(ids + known):
        res = runner("delete", "--force", cid, timeout=20)
        if res.returncode != 0 and cid in ids:
            problems.append(f"delete --force {cid} failed at teardown:" + h.describe(res))
    for b in runner.tracker.bundles:  # type: ignore[attr-defined]
        found = []
        for _ in range(50):  # a killed init can take a moment to leave its cgroup
            found = h.leftovers(b.id, root, b.cgroup_path, b.path, runner.pids_seen)
            if not found:
                break
            h.reap_zombies(runner.live_popen_pids())
            time.sleep(0.05)
        problems.extend(found)
        if found:  # do not leak into the next test
            h.kill_and_reap(runner.pids_seen | h.rootfs_procs(b.rootfs), b.cgroup_path,
                            protect=runner.live_popen_pids())
            for d in h.cgroup_dirs(b.cgroup_path):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
    h.reap_zombies(runner.live_popen_pids())
    if problems and not getattr(request.node, "_rt_failed", False):
        pytest.fail("teardown found problems:\n" + "\n".join(problems), pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    rep = yield
    if rep.when == "call" and rep.failed:
        item._rt_failed = True  # type: ignore[attr-defined]
    return rep


def _sanitize(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    return (s[:40] or "c").rstrip("-.")


@pytest.fixture
def make_bundle(rt: h.Runtime, rootfs_template: Path, tmp_path: Path,
                request: pytest.FixtureRequest) -> Callable[..., h.Bundle]:
    """Factory: ``make_bundle(args=("sleep", "100"), cid=None, write=True)``.

    Returns a ``Bundle`` (id, path, rootfs, cgroup_path, config dict, write()).
    """
    base = _sanitize(request.node.name.removeprefix("test_"))

    def factory(args: Sequence[str] = ("sleep", "100"), cid: str | None = None,
                write: bool = True, rootfs: bool = True) -> h.Bundle:
        n = next(_counter)
        cid = cid or f"{base}-{n}"
        path = tmp_path / f"bundle-{n}"
        path.mkdir()
        if rootfs:
            h.clone_rootfs(rootfs_template, path / "rootfs")
        cgpath = f"/{h.CGROUP_PARENT}/{SESSION_TAG}/{_sanitize(cid)}-{n}"
        b = h.Bundle(cid, path, cgpath, h.default_config(args, cgpath))
        rt.tracker.bundles.append(b)  # type: ignore[attr-defined]
        if write:
            b.write()
        return b

    return factory


@pytest.fixture
def bundle(make_bundle: Callable[..., h.Bundle]) -> h.Bundle:
    """One bundle running ``sleep 100``."""
    return make_bundle()


@pytest.fixture
def run_sh(rt: h.Runtime, make_bundle: Callable[..., h.Bundle]):
    """``run_sh(script, mutate=None)`` -> CompletedProcess of a foreground ``run``.

    ``mutate(bundle)`` may edit ``bundle.config`` before the container runs.
    Asserts nothing; the caller checks the exit status and stdout.
    """

    def runner(script: str, mutate: Callable[[h.Bundle], Any] | None = None,
               timeout: float = 20) -> subprocess.CompletedProcess:
        b = make_bundle(("sh", "-c", script), write=False)
        if mutate is not None:
            mutate(b)
        b.write()
        return rt.run(b, timeout=timeout)

    return runner


@pytest.fixture
def console_socket():
    d = tempfile.mkdtemp(prefix="pyrt-cs-", dir="/tmp")  # short path: sun_path <= 108
    path = os.path.join(d, "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    srv.settimeout(15)
    yield srv, path
    srv.close()
    shutil.rmtree(d, ignore_errors=True)
