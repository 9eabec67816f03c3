"""Fixtures for the engine suite: podman, containerd and docker with pyrt or runc.

One ``Lab`` per session owns a temporary directory with every engine's state, the
image archive (built from busybox-static, no registry), a cgroup parent
``/pyrt-engines/s<pytest pid>`` and a reaper thread.  Engines start on first use and
stop at the end of the session, which then checks that the host's default engine
paths (``engines.HOST_DEFAULTS``) are as they were and removes the cgroup parent.

Every test is parametrized over the runtime (pyrt, runc): the same assertions hold
for both.  After each test every container is removed and the runtime's state dir,
the test's cgroups and the engine's mounts must be gone.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

import edrivers as en  # noqa: E402
import ehelpers as eh  # noqa: E402
from eimage import BUSYBOX, build_archive  # noqa: E402

SESSION_TAG = f"s{os.getpid()}"
CGROUP_PARENT = f"/{eh.CGROUP_TOP}/{SESSION_TAG}"
RUNTIMES = ("pyrt", "runc")
TOOLS = {"podman": ("podman", "conmon"), "docker": ("dockerd", "docker", "containerd"),
         "containerd": ("containerd", "ctr", "containerd-shim-runc-v2")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(_here)
    for item in items:
        if here in Path(str(item.path)).resolve().parents and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="the engine tests need root"))


def missing_tools(kind: str) -> list[str]:
    return [t for t in TOOLS[kind] if not shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin")]


class Lab:
    def __init__(self) -> None:
        self.host_before = {p: os.path.lexists(p) for p in en.HOST_DEFAULTS}
        # short: unix socket paths must fit in 108 bytes
        self.base = Path(tempfile.mkdtemp(prefix="pyrt-eng-", dir="/tmp"))
        self.archive = build_archive(self.base / "busybox-image.tar")
        self.runtimes = en.runtimes()
        self.reaper = eh.Reaper()
        self._podman: en.PodmanStore | None = None
        self._engines: dict[str, en.Engine] = {}
        self._containerd: en.Containerd | None = None
        self.failed_to_start: dict[str, str] = {}

    def cgroup_parent(self, name: str) -> str:
        return f"{CGROUP_PARENT}/{name}"

    def engine(self, kind: str, rt: str) -> en.Engine:
        key = f"{kind}-{rt}"
        if key in self.failed_to_start:
            pytest.skip(self.failed_to_start[key])
        if key not in self._engines:
            missing = missing_tools(kind)
            if missing:
                pytest.skip(f"not installed: {missing} (make engine-deps)")
            runtime = self.runtimes[rt]
            try:
                if kind == "podman":
                    if self._podman is None:
                        self._podman = en.PodmanStore(self.base, self.archive)
                    self._engines[key] = en.Podman(self._podman, runtime,
                                                   self.cgroup_parent(key))
                else:
                    self._engines[key] = en.Docker(self.base, runtime,
                                                   self.cgroup_parent(key), self.archive)
            except AssertionError as e:
                self.failed_to_start[key] = f"{key} did not start: {e}"
                raise
        return self._engines[key]

    def containerd(self) -> en.Containerd:
        if "containerd" in self.failed_to_start:
            pytest.skip(self.failed_to_start["containerd"])
        if self._containerd is None:
            missing = missing_tools("containerd")
            if missing:
                pytest.skip(f"not installed: {missing} (make engine-deps)")
            try:
                self._containerd = en.Containerd(self.base, self.archive, self.runtimes)
            except AssertionError as e:
                self.failed_to_start["containerd"] = f"containerd did not start: {e}"
                raise
        return self._containerd

    def close(self) -> list[str]:
        problems = []
        for e in self._engines.values():
            if isinstance(e, en.Docker):
                e.close()
        if self._containerd is not None:
            self._containerd.close()
        if self._podman is not None:
            self._podman.close()
        self.reaper.close()
        busy = eh.remove_cgroup_tree(CGROUP_PARENT)
        for stale in eh.dead_sessions():  # subtrees of killed earlier runs
            busy += eh.remove_cgroup_tree(f"/{eh.CGROUP_TOP}/{stale}")
        if busy:
            problems.append(f"cgroup dirs still busy: {busy}")
        left = eh.mount_points("self", str(self.base))
        if left:
            problems.append(f"mounts left under {self.base}: {left}")
        else:
            shutil.rmtree(self.base, ignore_errors=True)
        changed = [p for p, was in self.host_before.items() if os.path.lexists(p) != was]
        if changed:
            problems.append(f"host default engine paths changed: {changed}")
        return problems


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if not os.path.exists(BUSYBOX):
        pytest.skip(f"{BUSYBOX} (busybox-static) is needed")
    lab = Lab()
    yield lab
    problems = lab.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, lab: Lab) -> en.Runtime:
    return lab.runtimes[request.param]


def _checked(e: en.Engine) -> Iterator[en.Engine]:
    before = e.snapshot()
    yield e
    e.remove_all()
    problems = e.leftovers(before)
    assert not problems, "after removing every container:\n" + "\n".join(problems)


@pytest.fixture(params=[(k, r) for k in ("podman", "docker") for r in RUNTIMES],
                ids=lambda p: f"{p[0]}-{p[1]}")
def eng(request: pytest.FixtureRequest, lab: Lab) -> Iterator[en.Engine]:
    """podman or docker, with pyrt or runc as its runtime; checked for leftovers."""
    kind, rt = request.param
    yield from _checked(lab.engine(kind, rt))


@pytest.fixture
def ctr(lab: Lab, runtime: en.Runtime) -> Iterator[CtrRunner]:
    """containerd's ctr, creating containers with ``runtime``; checked for leftovers."""
    c = lab.containerd()
    runner = CtrRunner(c, runtime, lab.cgroup_parent(f"ctr-{runtime.name}"))
    before = runner.snapshot()
    yield runner
    c.remove_all()
    problems = runner.leftovers(before)
    assert not problems, "after removing every container:\n" + "\n".join(problems)


class CtrRunner:
    """``ctr`` with the runtime options of one runtime."""

    def __init__(self, c: en.Containerd, rt: en.Runtime, cgroup_parent: str):
        self.c = c
        self.runtime = rt
        self.cgroup_parent = cgroup_parent

    def __call__(self, *args: str, **kw):
        return self.c(*args, **kw)

    def ok(self, *args: str, **kw) -> str:
        return self.c.ok(*args, **kw)

    def run_flags(self, cid: str) -> list[str]:
        return ["--runc-binary", self.runtime.path, "--runc-root",
                str(self.c.runc_root(self.runtime)), "--cgroup", f"{self.cgroup_parent}/{cid}"]

    def run(self, *flags: str, cid: str, args: tuple[str, ...] = (), **kw):
        """``ctr run [flags] <runtime flags> IMAGE cid args...``"""
        return self.c("run", *flags, *self.run_flags(cid), en.IMAGE, cid, *args, **kw)

    def snapshot(self) -> list[str]:
        return sorted(eh.mount_points(self.c.daemon.pid, str(self.c.dir)))

    def leftovers(self, before: list[str]) -> list[str]:
        found = []
        root = self.c.state_root(self.runtime)
        if root.is_dir() and os.listdir(root):
            found.append(f"runtime state left in {root}: {os.listdir(root)}")
        try:
            eh.wait_for(lambda: not eh.cgroup_subdirs(self.cgroup_parent), 10, "cgroups")
        except AssertionError:
            found.append(f"cgroups left: {sorted(eh.cgroup_subdirs(self.cgroup_parent))}")
        extra = sorted(set(self.snapshot()) - set(before))
        if extra:
            found.append(f"mounts left: {extra}")
        return found
