"""Side-by-side benchmark of pyrt, runc and crun (run as root: `make bench`).

All runtimes run interleaved round-robin in one process, inside one private mount
namespace with /sys/fs/cgroup/unified unmounted (crun 1.8.1 refuses hybrid hosts, and
every runtime gets the same environment). Only ratios from one run are meaningful.
Each runtime has its own --root; every bundle shares one busybox rootfs and has a
memory and pids limit, so cgroup work is exercised. Results go to bench/results.md.
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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
CGROUP_PARENT = "/pyrt-bench"
PR_SET_CHILD_SUBREAPER = 36
MiB = 1024 * 1024
PHASES = ("create", "start", "wait", "delete")  # of the lifecycle row


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


def pyrt_modules() -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "runtime"))


class Runtime:
    """One runtime under test: its binary, its --root, its bundles."""

    def __init__(self, name: str, binary: str, workdir: str, rootfs: str) -> None:
        self.name = name
        self.binary = binary
        self.workdir = workdir
        self.root = os.path.join(workdir, f"root-{name}")
        self.rootfs = rootfs
        self.counter = 0

    def bundle(self, tag: str, args: list[str], memory: int = 64 * MiB) -> str:
        """A bundle of our own (config.json only; the rootfs is shared) with its own cgroup."""
        from pyrt import defaults

        path = os.path.join(self.workdir, f"bundle-{self.name}-{tag}")
        os.makedirs(path, exist_ok=True)
        config = defaults.config(args, terminal=False)
        config["ociVersion"] = "1.0.2"  # crun 1.8.1 refuses versions it does not know
        config["root"] = {"path": self.rootfs, "readonly": True}
        config["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{self.name}/{tag}"
        config["linux"]["resources"] = {
            "devices": [{"allow": False, "access": "rwm"}],
            "memory": {"limit": memory},
            "pids": {"limit": 64},
        }
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f)
        return path

    def call(self, *args: str, check: bool = True) -> tuple[float, int]:
        """Run the runtime once: (seconds, exit status). Its stderr goes to a file, not a
        pipe: a container inherits it and would hold a pipe open until it exits."""
        with open(os.devnull, "rb+") as null, tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            pid = os.posix_spawn(self.binary, [self.binary, "--root", self.root, *args],
                                 os.environ, file_actions=[
                                     (os.POSIX_SPAWN_DUP2, null.fileno(), 0),
                                     (os.POSIX_SPAWN_DUP2, null.fileno(), 1),
                                     (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
            _, status = os.waitpid(pid, 0)
            elapsed = time.perf_counter() - t0
            code = os.waitstatus_to_exitcode(status)
            if check and code != 0:
                err.seek(0)
                why = err.read().decode().strip()
                raise RuntimeError(f"{self.name} {' '.join(args)}: {why}")
        return elapsed, code

    def next_id(self) -> str:
        self.counter += 1
        return f"bench-{self.name}-{self.counter}"

    # ------------------------------------------------------------ rows

    def lifecycle(self, bundle: str) -> dict[str, float]:
        """create, start, wait for the exit, delete: seconds for each (PHASES)."""
        cid = self.next_id()
        pid_file = os.path.join(self.workdir, f"{cid}.pid")
        t0 = time.perf_counter()
        self.call("create", "--bundle", bundle, "--pid-file", pid_file, cid)
        t1 = time.perf_counter()
        with open(pid_file) as f:
            pid = int(f.read())
        self.call("start", cid)
        t2 = time.perf_counter()
        wait_exit(pid)
        t3 = time.perf_counter()
        self.call("delete", cid)
        t4 = time.perf_counter()
        os.unlink(pid_file)
        return dict(zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True))

    def run(self, bundle: str) -> float:
        return self.call("run", "--bundle", bundle, self.next_id())[0]

    def run_ok(self, bundle: str) -> bool:
        cid = self.next_id()
        ok = self.call("run", "--bundle", bundle, cid, check=False)[1] == 0
        self.call("delete", "--force", cid, check=False)
        return ok

    def peak_rss_kib(self, *args: str) -> int:
        """Peak RSS of one call, from GNU time: the runtime is forked from `time`, a small
        process (our own wait4 would count the benchmark's memory, copied at the spawn)."""
        with tempfile.NamedTemporaryFile("r") as out:
            subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, self.binary,
                            "--root", self.root, *args], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            return int(out.read().split()[-1])

    def peak_rss_lifecycle(self, bundle: str) -> int:
        """The largest peak RSS among create, state, start and delete of one container."""
        cid = self.next_id()
        peaks = [self.peak_rss_kib("create", "--bundle", bundle, cid),
                 self.peak_rss_kib("state", cid), self.peak_rss_kib("start", cid)]
        time.sleep(0.1)
        peaks.append(self.peak_rss_kib("delete", "--force", cid))
        return max(peaks)

    def cleanup(self) -> None:
        if os.path.isdir(self.root):
            for cid in os.listdir(self.root):
                self.call("delete", "--force", cid, check=False)


def wait_exit(pid: int) -> None:
    """We are the subreaper: the init is re-parented to us, so we can reap it."""
    while True:
        try:
            if os.waitpid(pid, 0)[0] == pid:
                return
        except ChildProcessError:
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
            for dirpath, _dirs, _files in sorted(os.walk(base), key=lambda w: -len(w[0])):
                os.rmdir(dirpath)
        else:
            shutil.rmtree(base)


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p90 * 1000


# ---------------------------------------------------------------- the runs

def latency_rows(runtimes: list[Runtime], n: int) -> dict[str, dict[str, list[float]]]:
    """Interleaved round-robin: lifecycle (and its phases), run, state of a created
    container, exec, and --version (the least a call of the runtime costs)."""
    out: dict[str, dict[str, list[float]]] = {r.name: {} for r in runtimes}
    setup = {}
    for rt in runtimes:
        true_bundle = rt.bundle("true", ["/bin/true"])
        created = rt.next_id()
        rt.call("create", "--bundle", rt.bundle("created", ["/bin/true"]), created)
        running = rt.next_id()
        rt.call("run", "--detach", "--bundle", rt.bundle("sleeper", ["sleep", "600"]), running)
        setup[rt.name] = (true_bundle, created, running)
        rt.lifecycle(true_bundle)  # warm-up
    for _ in range(n):
        for rt in runtimes:
            true_bundle, created, running = setup[rt.name]
            rows = out[rt.name]
            phases = rt.lifecycle(true_bundle)
            rows.setdefault("lifecycle", []).append(sum(phases.values()))
            for phase, seconds in phases.items():
                rows.setdefault(phase, []).append(seconds)
            rows.setdefault("run", []).append(rt.run(true_bundle))
            rows.setdefault("state", []).append(rt.call("state", created)[0])
            rows.setdefault("exec", []).append(rt.call("exec", running, "/bin/true")[0])
            rows.setdefault("version", []).append(rt.call("--version")[0])
            reap_all()
    for rt in runtimes:
        _, created, running = setup[rt.name]
        rt.call("delete", "--force", created)
        rt.call("delete", "--force", running)
    return out


def list_rows(runtimes: list[Runtime], count: int, n: int) -> dict[str, list[float]]:
    """`list` with `count` created containers present."""
    ids: dict[str, list[str]] = {}
    for rt in runtimes:
        ids[rt.name] = []
        for i in range(count):
            cid = rt.next_id()
            rt.call("create", "--bundle", rt.bundle(f"list-{i}", ["/bin/true"]), cid)
            ids[rt.name].append(cid)
    out: dict[str, list[float]] = {r.name: [] for r in runtimes}
    for _ in range(n):
        for rt in runtimes:
            out[rt.name].append(rt.call("list")[0])
    for rt in runtimes:
        for cid in ids[rt.name]:
            rt.call("delete", "--force", cid)
        reap_all()
    return out


def throughput(rt: Runtime, count: int, workers: int) -> float:
    """Containers per second: create, start, wait, delete by parallel workers."""
    bundles = [rt.bundle(f"tp-{i}", ["/bin/true"]) for i in range(count)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(rt.lifecycle, bundles))
    return count / (time.perf_counter() - t0)


def min_memory(rt: Runtime, step: int = 64 * 1024, tries: int = 5) -> int:
    """The smallest memory limit (bytes, bisected) at which `run /bin/true` succeeds
    `tries` times in a row. Near the edge a run may succeed or be OOM-killed from one try
    to the next (the kernel charges in per-CPU batches), so one success is not enough."""

    def works(limit: int) -> bool:
        bundle = rt.bundle(f"mem-{limit}", ["/bin/true"], memory=limit)
        return all(rt.run_ok(bundle) for _ in range(tries))

    lo, hi = 0, 64 * MiB  # lo fails (assumed), hi works (checked)
    if not works(hi):
        return -1
    while hi - lo > step:
        mid = (lo + hi) // 2 // 4096 * 4096
        if works(mid):
            hi = mid
        else:
            lo = mid
    return hi


ROWS = ["latency", "list", "throughput", "min_memory", "rss"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--iterations", type=int, default=20)
    parser.add_argument("--list-count", type=int, default=200)
    parser.add_argument("--pyrt", default=os.path.join(os.path.dirname(HERE), ".venv/bin/pyrt"))
    parser.add_argument("--output", default=os.path.join(HERE, "results.md"))
    parser.add_argument("--only", choices=ROWS, action="append",
                        help="measure these rows and print them (no report); repeatable")
    parser.add_argument("--runtimes", default="pyrt,runc,crun",
                        help="comma-separated subset of pyrt,runc,crun")
    args = parser.parse_args()
    rows = args.only or ROWS
    reexec_in_private_mount_ns()
    pyrt_modules()
    from pyrt import demo

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    workdir = tempfile.mkdtemp(prefix="pyrt-bench-")
    rootfs = os.path.join(workdir, "rootfs")
    demo.build_rootfs(rootfs)
    wanted = args.runtimes.split(",")
    runtimes = [Runtime("pyrt", args.pyrt, workdir, rootfs)] if "pyrt" in wanted else []
    for name in ("runc", "crun"):
        path = shutil.which(name)
        if path and name in wanted:
            runtimes.append(Runtime(name, path, workdir, rootfs))
    results: dict[str, Any] = {}
    try:
        if "latency" in rows:
            results["latency"] = latency_rows(runtimes, args.iterations)
        if "list" in rows:
            results["list"] = list_rows(runtimes, args.list_count, args.iterations)
        if "throughput" in rows:
            results["throughput"] = {r.name: [] for r in runtimes}
            for _ in range(2):
                for rt in runtimes:
                    results["throughput"][rt.name].append(throughput(rt, 100, 4))
                    reap_all()
        if "min_memory" in rows:
            results["min_memory"] = {rt.name: min_memory(rt) for rt in runtimes}
        if "rss" in rows:
            results["rss"] = {rt.name: max(rt.peak_rss_lifecycle(rt.bundle("rss", ["/bin/true"]))
                                           for _ in range(3)) for rt in runtimes}
    finally:
        for rt in runtimes:
            rt.cleanup()
        reap_all()
        shutil.rmtree(workdir, ignore_errors=True)
        remove_cgroups()
    if args.only:
        print(json.dumps(results, indent=1))
    else:
        write_report(args, runtimes, results)
    return 0


LATENCY = (("lifecycle", "create + start + wait + delete of /bin/true"),
           ("run", "run of /bin/true (foreground, deletes itself)"),
           ("state", "state of a created container"),
           ("exec", "exec of /bin/true into a running container"))


def write_report(args: argparse.Namespace, runtimes: list[Runtime],
                 results: dict[str, Any]) -> None:
    def version(rt: Runtime) -> str:
        out = subprocess.run([rt.binary, "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0] if out else "?"

    names = [r.name for r in runtimes]
    lines = [
        "# pyrt benchmark",
        "",
        f"Command: `make bench` ({args.iterations} iterations, runtimes interleaved "
        "round-robin, in one private mount namespace without the hybrid cgroup2 mount)",
        f"Machine: {platform.node()}, {os.cpu_count()} cores, kernel {platform.release()}, "
        f"Python {platform.python_version()}",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "Runtimes: " + "; ".join(f"{r.name}: {version(r)}" for r in runtimes),
        "",
        "| row | runtime | median | p90 | ratio to runc (median) |",
        "|---|---|---|---|---|",
    ]

    def latency_line(title: str, samples: dict[str, list[float]]) -> None:
        base = summary(samples["runc"])[0] if "runc" in samples else None
        for name in names:
            median, p90 = summary(samples[name])
            ratio = f"{median / base:.2f}" if base else "-"
            lines.append(f"| {title} | {name} | {median:.1f} ms | {p90:.1f} ms | {ratio} |")

    for key, title in LATENCY:
        latency_line(title, {n: results["latency"][n][key] for n in names})
    latency_line(f"list with {args.list_count} containers", results["list"])
    tp = {n: statistics.median(v) for n, v in results["throughput"].items()}
    for name in names:
        ratio = f"{tp[name] / tp['runc']:.2f}" if "runc" in tp else "-"
        lines.append(f"| throughput: 100 lifecycles by 4 workers | {name} | "
                     f"{tp[name]:.1f} containers/s | - | {ratio} (higher is better) |")
    rss = results["rss"]
    for name in names:
        ratio = f"{rss[name] / rss['runc']:.2f}" if "runc" in rss else "-"
        lines.append(f"| peak RSS of one runtime process (create/state/start/delete) | {name} | "
                     f"{rss[name] / 1024:.1f} MiB | - | {ratio} |")
    mem = results["min_memory"]
    for name in names:
        ratio = f"{mem[name] / mem['runc']:.2f}" if mem.get("runc", 0) > 0 else "-"
        value = "failed" if mem[name] < 0 else f"{mem[name] / MiB:.2f} MiB"
        lines.append(f"| smallest memory limit for `run /bin/true` (5 in a row) | {name} | "
                     f"{value} | - | {ratio} |")
    lines += [
        "",
        "Where the lifecycle's time goes (medians of the same run). `--version` is the least",
        "any call of a runtime costs: its start and exit.",
        "",
        "| runtime | --version | create | start | wait for the exit | delete |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        cells = [f"{summary(results['latency'][name][key])[0]:.1f} ms"
                 for key in ("version", *PHASES)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    with open(args.output, "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    sys.exit(main())
