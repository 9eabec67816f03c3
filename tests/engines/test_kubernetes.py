"""Kubernetes' path to the runtime: containerd's CRI plugin with a runtime class per
runtime (``runtimes.pyrt`` / ``runtimes.runc`` with ``BinaryName``, the README snippet),
driven over CRI as a kubelet would with ``runtime_handler`` = the class: a pod sandbox
(the "pause" container) and an app container in it, ExecSync, stop, remove.

The pod uses the host's network namespace (no CNI plugin to run) and a cgroup parent
below the test's.  There is no kubelet here: ``cri.Client`` speaks CRI directly.
"""

from __future__ import annotations

import json
import os

import cri
import ehelpers as eh
import pytest
from edrivers import Runtime
from eimage import IMAGE

from conftest import Lab

SLEEPER = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


def test_pod_with_runtime_class(lab: Lab, runtime: Runtime) -> None:
    pytest.importorskip("grpc", reason="grpcio (make test-engines installs it)")
    c = lab.containerd()
    client = cri.Client(str(c.sock))
    assert client.version() == "containerd"
    parent = lab.cgroup_parent(f"cri-{runtime.name}")
    logs = c.dir / f"pod-logs-{runtime.name}"
    logs.mkdir()
    root = c.dir / f"cri-root-{runtime.name}" / c.CRI_NAMESPACE
    mounts = sorted(eh.mount_points(c.daemon.pid, str(c.dir)))
    pod_cfg = cri.pod_config(f"pod-{runtime.name}", f"uid-{runtime.name}", parent, str(logs))
    pod = client.run_pod(pod_cfg, runtime.name)
    app = ""
    try:
        app = client.create_container(
            pod, cri.container_config("app", IMAGE, ["sh", "-c", "echo started; " + SLEEPER],
                                      "app.log"), pod_cfg)
        client.start_container(app)
        assert client.container_state(app) == 1  # running
        # both the sandbox and the app container are the runtime's
        listed = eh.ok(eh.run([runtime.path, "--root", str(root), "list", "--format", "json"]))
        ids = {x["id"]: x for x in json.loads(listed.stdout)}
        assert set(ids) == {pod, app}, listed.stdout
        assert {x["status"] for x in ids.values()} == {"running"}
        for x in ids.values():
            assert eh.proc_cgroups(x["pid"])["memory"] == f"{parent}/{x['id']}"
        # the app joined the sandbox's ipc and pid namespaces (PodSandboxConfig's defaults)
        app_pid, pod_pid = ids[app]["pid"], ids[pod]["pid"]
        for ns in ("ipc", "pid"):
            assert os.readlink(f"/proc/{app_pid}/ns/{ns}") == \
                os.readlink(f"/proc/{pod_pid}/ns/{ns}"), ns
        code, out, _ = client.exec_sync(app, ["sh", "-c", "echo pid1=$(cat /proc/1/comm); exit 3"])
        assert (code, out) == (3, "pid1=sleep\n")  # the pause container's process
        eh.wait_for(lambda: "started" in eh.h.read(logs / "app.log"), 20, "the app's log")
        client.stop_container(app, 10)
        assert client.container_state(app) == 2  # exited
    finally:
        if app:
            client.stop_container(app, 0)
            client.remove_container(app)
        client.stop_pod(pod)
        client.remove_pod(pod)
        client.close()
    assert not (root.is_dir() and os.listdir(root)), os.listdir(root)
    eh.wait_for(lambda: not eh.cgroup_subdirs(parent), 10, "the pod's cgroups to go")
    assert sorted(eh.mount_points(c.daemon.pid, str(c.dir))) == mounts
