"""Side-by-side benchmark of pyrt, runc and crun (run as root: `make bench`).

All runtimes run interleaved round-robin in one process, inside one private mount
namespace with /sys/fs/cgroup/unified unmounted (crun 1.8.1 refuses hybrid hosts, and
every runtime gets the same environment). Only ratios from one run are meaningful.
Results go to bench/results.md.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CGROUP_PARENT = "/pyrt-bench"
PR_SET_CHILD_SUBREAPER = 36


def reexec_in_private_mount_ns() -> None:
    """Run the rest of the benchmark in `unshare -m` with the cgroup2 mount of a hybrid
    host detached from our view only."""
    if os.environ.get("PYRT_BENCH_NS") == "1":
        return
    os.environ["PYRT_BENCH_NS"] = "1"
    script = (
        "mount --make-rprivate / && "
        "{ ! mountpoint -q /sys/fs/cgroup/unified || umount /sys/fs/cgroup/unified; } && "
        'exec "$0" "$@"'
    )
    os.execvp("unshare", ["unshare", "-m", "sh", "-c", script, sys.executable, *sys.argv])


def make_bundle(path: str, args: list[str]) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "runtime"))
    from pyrt import defaults, demo

    demo.build_rootfs(os.path.join(path, "rootfs"))
    config = defaults.config(args, terminal=False)
    config["ociVersion"] = "1.0.2"  # crun 1.8.1 refuses versions it does not know
    config["linux"]["resources"] = {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 64 * 1024 * 1024},
        "pids": {"limit": 64},
    }
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def set_cgroup(bundle: str, path: str) -> None:
    cfg_path = os.path.join(bundle, "config.json")
    with open(cfg_path) as f:
        config = json.load(f)
    config["linux"]["cgroupsPath"] = path
    with open(cfg_path, "w") as f:
        json.dump(config, f, indent=2)


class Runtime:
    def __init__(self, name: str, binary: str, workdir: str) -> None:
        self.name = name
        self.binary = binary
        self.root = os.path.join(workdir, f"root-{name}")
        self.bundle = os.path.join(workdir, f"bundle-{name}")
        self.counter = 0

    def cmd(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.root, *args]

    def call(self, *args: str) -> None:
        # stderr goes to a file, not a pipe: the container inherits it and would hold
        # a pipe open until it exits
        with tempfile.TemporaryFile() as err:
            res = subprocess.run(self.cmd(*args), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err)
            if res.returncode != 0:
                err.seek(0)
                raise RuntimeError(f"{self.name} {' '.join(args)}: {err.read().decode().strip()}")

    def next_id(self) -> str:
        self.counter += 1
        return f"bench-{self.name}-{self.counter}"

    def lifecycle(self) -> float:
        cid = self.next_id()
        pid_file = os.path.join(self.root, f"{cid}.pid")
        t0 = time.perf_counter()
        self.call("create", "--bundle", self.bundle, "--pid-file", pid_file, cid)
        with open(pid_file) as f:
            pid = int(f.read())
        self.call("start", cid)
        wait_exit(pid)
        self.call("delete", cid)
        elapsed = time.perf_counter() - t0
        os.unlink(pid_file)
        return elapsed

    def run(self) -> float:
        cid = self.next_id()
        t0 = time.perf_counter()
        self.call("run", "--bundle", self.bundle, cid)
        return time.perf_counter() - t0

    def cleanup(self) -> None:
        if os.path.isdir(self.root):
            for cid in os.listdir(self.root):
                subprocess.run(self.cmd("delete", "--force", cid), capture_output=True)


def wait_exit(pid: int) -> None:
    """We are the subreaper: the init is re-parented to us, so we can reap it."""
    while True:
        try:
            got, _ = os.waitpid(pid, 0)
            if got == pid:
                return
        except ChildProcessError:
            # not (yet) our child: poll until it is gone
            if not os.path.exists(f"/proc/{pid}"):
                return
            time.sleep(0.0005)


def reap_all() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def remove_cgroups() -> None:
    """Remove our cgroup parent from every hierarchy. With the cgroup2 mount hidden, a
    runtime may have made plain directories in the tmpfs below it: those go too."""
    for ctrl in os.listdir("/sys/fs/cgroup"):
        base = f"/sys/fs/cgroup/{ctrl}{CGROUP_PARENT}"
        if not os.path.isdir(base):
            continue
        if os.path.exists(f"{base}/cgroup.procs"):
            for sub in sorted(os.listdir(base), reverse=True):
                if os.path.isdir(f"{base}/{sub}"):
                    os.rmdir(f"{base}/{sub}")
            os.rmdir(base)
        else:
            shutil.rmtree(base)


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p90 * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--iterations", type=int, default=30)
    parser.add_argument("--pyrt", default=os.path.join(os.path.dirname(HERE), ".venv/bin/pyrt"))
    parser.add_argument("--output", default=os.path.join(HERE, "results.md"))
    args = parser.parse_args()
    reexec_in_private_mount_ns()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    workdir = tempfile.mkdtemp(prefix="pyrt-bench-")
    runtimes = [Runtime("pyrt", args.pyrt, workdir)]
    for name in ("runc", "crun"):
        path = shutil.which(name)
        if path:
            runtimes.append(Runtime(name, path, workdir))
    results: dict[str, dict[str, list[float]]] = {r.name: {"lifecycle": [], "run": []}
                                                  for r in runtimes}
    try:
        for rt in runtimes:
            make_bundle(rt.bundle, ["/bin/true"])
            set_cgroup(rt.bundle, f"{CGROUP_PARENT}/{rt.name}")
            rt.lifecycle()  # warm-up
        for _ in range(args.iterations):
            for rt in runtimes:
                results[rt.name]["lifecycle"].append(rt.lifecycle())
                results[rt.name]["run"].append(rt.run())
                reap_all()
    finally:
        for rt in runtimes:
            rt.cleanup()
        reap_all()
        shutil.rmtree(workdir, ignore_errors=True)
        remove_cgroups()
    write_report(args, runtimes, results)
    return 0


ROWS = (("lifecycle", "create + start + wait + delete of /bin/true"),
        ("run", "run of /bin/true (foreground, deletes itself)"))


def write_report(args: argparse.Namespace, runtimes: list[Runtime],
                 results: dict[str, dict[str, list[float]]]) -> None:
    def version(rt: Runtime) -> str:
        out = subprocess.run([rt.binary, "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0] if out else "?"

    lines = [
        "# pyrt benchmark",
        "",
        f"Command: `make bench` ({args.iterations} iterations, runtimes interleaved round-robin)",
        f"Machine: {platform.node()}, {os.cpu_count()} cores, kernel {platform.release()}, "
        f"Python {platform.python_version()}",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "Runtimes: " + "; ".join(f"{r.name}: {version(r)}" for r in runtimes),
        "",
        "| row | runtime | median ms | p90 ms | ratio to runc (median) |",
        "|---|---|---|---|---|",
    ]
    for key, title in ROWS:
        runc_median = summary(results["runc"][key])[0] if "runc" in results else None
        for rt in runtimes:
            median, p90 = summary(results[rt.name][key])
            ratio = f"{median / runc_median:.2f}" if runc_median else "-"
            lines.append(f"| {title} | {rt.name} | {median:.1f} | {p90:.1f} | {ratio} |")
    text = "\n".join(lines) + "\n"
    with open(args.output, "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    sys.exit(main())
