"""The engines under test, each with ALL its state under one temporary directory.

* ``Podman``: podman + conmon, no daemon; its own containers.conf/storage.conf/
  registries.conf (``CONTAINERS_*`` variables), --root/--runroot/--tmpdir, the cgroupfs
  manager, file locks, CNI backend (never used: --network none), and the runtime given
  as a two-line wrapper that only adds ``--root <tmp>/state/<name>`` (podman's cleanup
  process drops ``--runtime-flag``, so a flag would send ``delete`` to /run/<name>).
* ``Docker``: one dockerd per runtime (``--add-runtime``/``--default-runtime``) with its
  own data-root, exec-root, pidfile, socket and config file, no bridge and no iptables,
  ``native.cgroupdriver=cgroupfs``, a ``--cgroup-parent`` under the test parent, and
  the containerd it starts and manages itself (in its exec-root).
* ``Containerd``: one containerd (own config, root, state, socket), driven with ``ctr``;
  the runtime is chosen per container (``ctr run --runc-binary --runc-root``).

containerd and dockerd run in a private mount namespace with tmpfs over the few host
paths they hard-code (see ``ehelpers.private_mount_ns``); ``ctr`` joins that namespace
(nsenter) because it makes FIFOs under /run/containerd/fifo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ehelpers as eh
from eimage import IMAGE, PAUSE_CMD, PAUSE_IMAGE, build_archive

# Host paths the engines use by default: the suite must leave them as it found them.
HOST_DEFAULTS = (
    "/var/lib/docker", "/var/lib/containerd", "/var/lib/containers", "/var/lib/cni",
    "/run/docker", "/run/containerd", "/run/containers", "/run/libpod", "/run/runc",
    "/run/pyrt", "/run/docker.sock", "/run/docker.pid", "/etc/docker/key.json",
)


@dataclass(frozen=True)
class Runtime:
    name: str  # "pyrt" or "runc": what the engines call it
    path: str


def runtimes() -> dict[str, Runtime]:
    pyrt = os.path.join(os.path.dirname(sys.executable), "pyrt")
    if not os.access(pyrt, os.X_OK):
        pyrt = shutil.which("pyrt") or pyrt
    runc = shutil.which("runc") or "/usr/sbin/runc"
    return {"pyrt": Runtime("pyrt", pyrt), "runc": Runtime("runc", runc)}


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONTAINERS_", "DOCKER_", "CONTAINERD_", "XDG_", "PYRT_"))}
    env["HOME"] = str(home)
    env["PATH"] = "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"  # /usr/bin/docker first
    return env


class Engine:
    """What the podman/docker tests need from either CLI."""

    kind = ""
    name = ""
    runtime: Runtime
    cgroup_parent = ""  # containers' cgroups are directly below this (absolute)
    allowed_cgroups: frozenset[str] = frozenset()  # engine-owned dirs below cgroup_parent

    def argv(self, *args: str) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def __call__(self, *args: str, timeout: float = 90, input: str | None = None
                 ) -> subprocess.CompletedProcess:
        return eh.run(self.argv(*args), env=self.env(), timeout=timeout, input=input)

    def ok(self, *args: str, **kw: Any) -> str:
        return eh.ok(self(*args, **kw)).stdout

    def run_flags(self) -> list[str]:
        """Flags every ``run``/``create`` gets: no network, the test cgroup parent."""
        return ["--network", "none"]

    def run(self, *args: str, **kw: Any) -> subprocess.CompletedProcess:
        return self("run", *self.run_flags(), *args, **kw)

    def inspect(self, name: str, fmt: str) -> str:
        return self.ok("inspect", "--format", fmt, name).strip()

    def pid(self, name: str) -> int:
        return int(self.inspect(name, "{{.State.Pid}}"))

    def status(self, name: str) -> str:
        return self.inspect(name, "{{.State.Status}}")

    def wait_status(self, name: str, want: str, timeout: float = 30) -> None:
        eh.wait_for(lambda: self.status(name) == want, timeout, f"{name} {want}")

    # -- what the runtime leaves behind ---------------------------------------
    @property
    def state_root(self) -> Path:
        """The runtime's --root as this engine passes it."""
        raise NotImplementedError

    @property
    def mount_ns_pid(self) -> int | str:
        """A process in the mount namespace where the engine mounts rootfs."""
        return "self"

    @property
    def home(self) -> Path:
        raise NotImplementedError

    def remove_all(self) -> None:
        raise NotImplementedError

    def snapshot(self) -> list[str]:
        return sorted(eh.mount_points(self.mount_ns_pid, str(self.home)))

    def leftovers(self, mounts_before: list[str]) -> list[str]:
        """State dirs, cgroups and mounts left after every container was removed."""
        found: list[str] = []
        if self.state_root.is_dir():
            left = sorted(os.listdir(self.state_root))
            if left:
                found.append(f"runtime state left in {self.state_root}: {left}")
        try:
            eh.wait_for(lambda: not (eh.cgroup_subdirs(self.cgroup_parent)
                                     - self.allowed_cgroups), 10, "cgroups to go")
        except AssertionError:
            cgs = sorted(eh.cgroup_subdirs(self.cgroup_parent) - self.allowed_cgroups)
            found.append(f"cgroups left below {self.cgroup_parent}: {cgs}")
        extra = sorted(set(self.snapshot()) - set(mounts_before))
        if extra:
            found.append(f"mounts left: {extra}")
        return found


# --------------------------------------------------------------------------- podman


class Podman(Engine):
    kind = "podman"
    allowed_cgroups = frozenset({"conmon"})  # podman puts conmon there (cgroupfs manager)

    def __init__(self, store: PodmanStore, runtime: Runtime, cgroup_parent: str):
        self.store = store
        self.runtime = runtime
        self.name = f"podman-{runtime.name}"
        self.cgroup_parent = cgroup_parent
        self.wrapper = store.dir / "bin" / runtime.name
        self._state = store.dir / "state" / runtime.name
        self.wrapper.parent.mkdir(exist_ok=True)
        self.wrapper.write_text(
            f'#!/bin/sh\nexec {runtime.path} --root {self._state} "$@"\n')
        self.wrapper.chmod(0o755)

    @property
    def home(self) -> Path:
        return self.store.dir

    @property
    def state_root(self) -> Path:
        return self._state

    def argv(self, *args: str) -> list[str]:
        return [*self.store.global_args(), "--runtime", str(self.wrapper), *args]

    def env(self) -> dict[str, str]:
        return self.store.env

    def run_flags(self) -> list[str]:
        return ["--network", "none", "--cgroup-parent", self.cgroup_parent]

    def snapshot(self) -> list[str]:
        # the overlay driver binds its home directory on first use: engine-wide, kept
        home = str(self.store.dir / "root" / "overlay")
        return [m for m in super().snapshot() if m != home]

    def remove_all(self) -> None:
        eh.ok(self("rm", "--all", "--force", "--time", "0"))


class PodmanStore:
    """Storage, configuration and image shared by the podman engines of one session."""

    def __init__(self, base: Path, archive: Path):
        self.dir = base / "podman"
        d = self.dir
        for sub in ("root", "runroot", "tmp", "net", "volumes", "state", "home"):
            (d / sub).mkdir(parents=True)
        (d / "containers.conf").write_text(f"""\
[containers]
netns = "none"
log_driver = "k8s-file"
# No CAP_SYS_RESOURCE here: podman's default nofile/nproc (1048576) cannot be set
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
lock_type = "file"
runtime_supports_json = ["crun", "runc", "pyrt"]
static_dir = "{d}/root/libpod"
tmp_dir = "{d}/tmp"
volume_path = "{d}/volumes"
image_copy_tmp_dir = "{d}/tmp"

[network]
network_backend = "cni"
network_config_dir = "{d}/net"
""")
        (d / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\nrunroot = "{d}/runroot"\ngraphroot = "{d}/root"\n')
        (d / "registries.conf").write_text("unqualified-search-registries = []\n")
        (d / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        self.env = _base_env(d / "home")
        self.env.update(CONTAINERS_CONF=str(d / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(d / "storage.conf"),
                        CONTAINERS_REGISTRIES_CONF=str(d / "registries.conf"),
                        TMPDIR=str(d / "tmp"))
        # podman 4.3 writes its blob-info cache to /var/lib/containers/cache whatever
        # the graphroot: load the image with a throw-away /var/lib.
        argv = eh.private_mount_ns(
            [*self.global_args(), "load", "--signature-policy", str(d / "policy.json"),
             "-q", "-i", str(archive)], ["/var/lib"])
        eh.ok(eh.run(argv, env=self.env))

    def global_args(self) -> list[str]:
        d = self.dir
        return ["podman", "--root", str(d / "root"), "--runroot", str(d / "runroot"),
                "--tmpdir", str(d / "tmp"), "--cgroup-manager", "cgroupfs"]

    def close(self) -> None:
        eh.run([*self.global_args(), "rm", "--all", "--force", "--time", "0"], env=self.env)
        eh.run([*self.global_args(), "rmi", "--all", "--force"], env=self.env)
        # podman leaves the overlay storage's own bind mount behind
        for mp in sorted(eh.mount_points("self", str(self.dir)), reverse=True):
            eh.run(["umount", mp])


# --------------------------------------------------------------------------- docker


class Docker(Engine):
    kind = "docker"

    def __init__(self, base: Path, runtime: Runtime, cgroup_parent: str, archive: Path):
        self.runtime = runtime
        self.name = f"docker-{runtime.name}"
        self.cgroup_parent = cgroup_parent
        self.dir = d = base / self.name
        for sub in ("data", "exec", "cli", "home"):
            (d / sub).mkdir(parents=True)
        (d / "daemon.json").write_text("{}\n")
        self.sock = base / f"{runtime.name}.docker.sock"
        argv = ["dockerd", "--config-file", d / "daemon.json", "--data-root", d / "data",
                "--exec-root", d / "exec", "--pidfile", d / "dockerd.pid",
                "-H", f"unix://{self.sock}",
                "--bridge=none", "--iptables=false", "--ip6tables=false",
                "--ip-forward=false", "--ip-masq=false", "--userland-proxy=false",
                "--storage-driver", "overlay2",
                "--exec-opt", "native.cgroupdriver=cgroupfs",
                "--cgroup-parent", cgroup_parent]
        if runtime.name != "runc":  # "runc" is docker's built-in runtime (runc on PATH)
            argv += ["--add-runtime", f"{runtime.name}={runtime.path}"]
        argv += ["--default-runtime", runtime.name]
        self._env = _base_env(d / "home")
        self._env["DOCKER_CONFIG"] = str(d / "cli")
        self.log = d / "dockerd.log"
        self.daemon = eh.start_daemon(
            eh.private_mount_ns(argv, ["/run", "/etc/docker"]), self.log, self._env)
        try:
            eh.wait_for(self._ready, 60, f"dockerd ({self.log})")
            self.ok("load", "-i", str(archive))
        except BaseException:
            self.close()
            raise

    def _ready(self) -> bool:
        if self.daemon.poll() is not None:
            raise AssertionError(f"dockerd exited {self.daemon.returncode}:\n"
                                 + self.log.read_text()[-3000:])
        return self.sock.exists() and self("version").returncode == 0

    @property
    def home(self) -> Path:
        return self.dir

    @property
    def mount_ns_pid(self) -> int | str:
        return self.daemon.pid

    @property
    def state_root(self) -> Path:
        # docker 20.10 gives the shim Root=<exec-root>/runtime-runc whatever the runtime's
        # name (options.json: {"binary_name": <runtime>, "root": ".../runtime-runc"})
        return self.dir / "exec" / "runtime-runc" / "moby"

    def argv(self, *args: str) -> list[str]:
        return ["/usr/bin/docker", "-H", f"unix://{self.sock}", *args]

    def env(self) -> dict[str, str]:
        return self._env

    def remove_all(self) -> None:
        ids = self.ok("ps", "--all", "--quiet").split()
        if ids:
            eh.ok(self("rm", "--force", *ids))

    def close(self) -> None:
        if self.daemon.poll() is None:
            try:
                self.remove_all()
                self("rmi", "--force", IMAGE)
            except AssertionError:
                pass
        eh.stop_daemon(self.daemon, timeout=30)


# --------------------------------------------------------------------------- containerd


class Containerd:
    """containerd driven with ctr; the runtime is picked per container."""

    NAMESPACE = "pyrt-tests"
    CRI_NAMESPACE = "k8s.io"  # where the CRI plugin keeps images and containers

    def __init__(self, base: Path, archive: Path, runtimes: dict[str, Runtime]):
        self.dir = d = base / "containerd"
        for sub in ("root", "state", "opt"):
            (d / sub).mkdir(parents=True)
        self.sock = base / "containerd.sock"
        self.config = d / "config.toml"
        self.config.write_text(containerd_config(d, self.sock, runtimes))
        self._env = _base_env(d)
        self.log = d / "containerd.log"
        self.daemon = eh.start_daemon(
            eh.private_mount_ns(["containerd", "--config", self.config], ["/run"]),
            self.log, self._env)
        try:
            eh.wait_for(self._ready, 60, f"containerd ({self.log})")
            self.ok("images", "import", str(archive))
            pause = build_archive(d / "pause-image.tar", PAUSE_IMAGE, tuple(PAUSE_CMD))
            for image in (archive, pause):
                self.ok("images", "import", str(image), namespace=self.CRI_NAMESPACE)
        except BaseException:
            self.close()
            raise

    def _ready(self) -> bool:
        if self.daemon.poll() is not None:
            raise AssertionError(f"containerd exited {self.daemon.returncode}:\n"
                                 + self.log.read_text()[-3000:])
        return self.sock.exists() and self("version").returncode == 0

    def argv(self, *args: str, namespace: str = NAMESPACE) -> list[str]:
        return ["nsenter", f"--mount=/proc/{self.daemon.pid}/ns/mnt", "--",
                "ctr", "--address", str(self.sock), "--namespace", namespace, *args]

    def __call__(self, *args: str, timeout: float = 90, input: str | None = None,
                 namespace: str = NAMESPACE) -> subprocess.CompletedProcess:
        return eh.run(self.argv(*args, namespace=namespace), env=self._env, timeout=timeout,
                      input=input)

    def ok(self, *args: str, **kw: Any) -> str:
        return eh.ok(self(*args, **kw)).stdout

    def runc_root(self, rt: Runtime) -> Path:
        return self.dir / f"runc-root-{rt.name}"

    def state_root(self, rt: Runtime) -> Path:
        """Where the shim keeps the runtime's state (--root <runc-root>/<namespace>)."""
        return self.runc_root(rt) / self.NAMESPACE

    def remove_all(self) -> None:
        for line in self.ok("tasks", "ls", "--quiet").split():
            self("tasks", "kill", "--signal", "SIGKILL", line)
            self("tasks", "delete", "--force", line)
        ids = self.ok("containers", "ls", "--quiet").split()
        if ids:
            self.ok("containers", "delete", *ids)

    def close(self) -> None:
        if self.daemon.poll() is None:
            try:
                self.remove_all()
            except AssertionError:
                pass
        eh.stop_daemon(self.daemon, timeout=30)


def containerd_config(d: Path, sock: Path, runtimes: dict[str, Runtime]) -> str:
    """The test containerd's config.toml (version 2).

    The CRI plugin is loaded with a runtime class per runtime (the snippet the README
    shows for Kubernetes); Kubernetes itself is not part of this suite.
    """
    classes = "".join(f"""
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{rt.name}]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{rt.name}.options]
  BinaryName = "{rt.path}"
  Root = "{d}/cri-root-{rt.name}"
""" for rt in runtimes.values())
    return f"""\
version = 2
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  disable_cgroup = false
  enable_selinux = false
  sandbox_image = "{PAUSE_IMAGE}"
  # no CAP_SYS_RESOURCE on this VM: the sandbox's oom_score_adj -998 could not be set
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{d}/cni-bin"
  conf_dir = "{d}/cni-conf"
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "pyrt"
{classes}"""


