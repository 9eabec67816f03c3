"""cgroup v2 suite: real containers on a pure cgroup v2 host, through the runtime under test.

This host is cgroup v1, so ``make test-cgroupv2`` runs this directory in a QEMU guest
(guest/run-in-guest); anywhere /sys/fs/cgroup is not cgroup2 every test skips.

The fixtures are the runtime suite's (tests/runtime/conftest.py, loaded here under
another module name): ``rt`` (the runtime with a private --root, leftover checks at
teardown) and ``make_bundle`` (busybox bundles whose absolute cgroupsPath lies under
/pyrt-tests/s<pytest pid>/, removed at the end of the session).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_RUNTIME = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "runtime")
if _RUNTIME not in sys.path:
    sys.path.insert(0, _RUNTIME)

import rthelpers as h  # noqa: E402


def _load_runtime_conftest() -> Any:
    spec = importlib.util.spec_from_file_location(
        "runtime_conftest", os.path.join(_RUNTIME, "conftest.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_rc = _load_runtime_conftest()
rt = _rc.rt
make_bundle = _rc.make_bundle
rootfs_template = _rc.rootfs_template
_cgroup_parent_cleanup = _rc._cgroup_parent_cleanup
pytest_runtest_makereport = _rc.pytest_runtest_makereport

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    why = None
    if os.geteuid() != 0:
        why = "cgroup v2 tests need root"
    elif not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        why = "not a cgroup v2 host (make test-cgroupv2 runs these in a v2 guest)"
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.runtime)
            if why:
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture
def bundle_with(make_bundle: Callable[..., h.Bundle]) -> Callable[..., h.Bundle]:
    """``bundle_with(resources, args=("sleep", "100"))``: a bundle whose
    linux.resources also holds ``resources`` (the devices rules stay)."""

    def factory(resources: dict[str, Any], args: tuple[str, ...] = ("sleep", "100")) -> h.Bundle:
        b = make_bundle(args, write=False)
        b.config["linux"]["resources"].update(resources)
        return b.write()

    return factory


@pytest.fixture
def created(rt: h.Runtime, bundle_with: Callable[..., h.Bundle]) -> Callable[..., h.Bundle]:
    """``created(resources, args=...)``: a bundle `create`d with those resources (the
    runtime applies them at create); teardown deletes it."""

    def factory(resources: dict[str, Any], args: tuple[str, ...] = ("sleep", "100")) -> h.Bundle:
        b = bundle_with(resources, args)
        h.assert_ok(rt.create(b, timeout=60))
        return b

    return factory
