"""linux.resources on this cgroup v1 (hybrid) host: the files runc 1.1.5 writes, read
from the host once `create` has returned, and a clear refusal (exit 1, nothing left
behind) for what the host cannot honour.

Facts checked against runc 1.1.5 here (libcontainer/cgroups/fs/*.go):
* memory: limit -> memory.limit_in_bytes, reservation -> memory.soft_limit_in_bytes,
  swap -> memory.memsw.limit_in_bytes (written before the limit when the current limit is
  below the new swap value, so the key order of config.json does not matter),
  swappiness (0-100, else an error), disableOOMKiller -> memory.oom_control = 1;
  kernel/kernelTCP are ignored with a warning (this kernel refuses kmem limits anyway).
* cpu: shares (read back: the kernel clamps, runc then fails), cfs quota/period,
  cpuset cpus/mems, rt_period_us then rt_runtime_us; runc 1.1.5 ignores burst and idle.
* blockIO: weight -> blkio.weight or, when that file is missing, blkio.bfq.weight;
  leafWeight -> blkio.leaf_weight; weightDevice -> blkio[.bfq].weight_device;
  throttle -> blkio.throttle.{read,write}_{bps,iops}_device, one "MAJ:MIN RATE" line each.
* A resource whose controller is not mounted (hugetlb, net_cls, net_prio, rdma here) is
  an error ("cannot set hugetlb limit: container could not join or create cgroup").
* `unified` on v1: "invalid configuration: cannot use unified on cgroup v1", exit 1.
"""

from __future__ import annotations

import os

import cghelpers as cg
import pytest
import rthelpers as h
from cghelpers import set_resources
from rthelpers import assert_ok, describe

MiB = 1 << 20
UNLIMITED_V1 = 9223372036854771712  # what v1 memory files read when unlimited (4K pages)

# ----------------------------------------------------------------- memory


def test_memory_limits(rt, make_bundle):
    b = set_resources(make_bundle(write=False), memory={
        "limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB,
        "swappiness": 10, "disableOOMKiller": True})
    assert_ok(rt.create(b))
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert cg.cgread(b, "memory", "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert cg.cgread(b, "memory", "memory.memsw.limit_in_bytes") == str(96 * MiB)
    assert cg.cgread(b, "memory", "memory.swappiness") == "10"
    assert "oom_kill_disable 1" in cg.cgread(b, "memory", "memory.oom_control").splitlines()


def test_memory_swap_listed_before_limit(rt, make_bundle):
    """memsw must never be below the limit: with swap first in config.json, writing it
    before the limit would fail; runc orders the writes by the current limit."""
    b = set_resources(make_bundle(write=False), memory={"swap": 96 * MiB, "limit": 64 * MiB})
    assert_ok(rt.create(b))
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert cg.cgread(b, "memory", "memory.memsw.limit_in_bytes") == str(96 * MiB)


def test_memory_swap_unlimited(rt, make_bundle):
    b = set_resources(make_bundle(write=False), memory={"limit": 64 * MiB, "swap": -1})
    assert_ok(rt.create(b))
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert int(cg.cgread(b, "memory", "memory.memsw.limit_in_bytes")) >= UNLIMITED_V1


def test_memory_kernel_limits_are_ignored(rt, make_bundle):
    """runc 1.1.5: "Kernel memory settings are ignored and will be removed"; the
    container runs and the kmem files keep their (unlimited) defaults."""
    b = set_resources(make_bundle(write=False),
                      memory={"limit": 64 * MiB, "kernel": 32 * MiB, "kernelTCP": 16 * MiB})
    assert_ok(rt.create(b))
    assert cg.cgread(b, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    for name in ("memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes"):
        if cg.cgexists(b, "memory", name):
            assert int(cg.cgread(b, "memory", name)) >= UNLIMITED_V1, name


@pytest.mark.pyrt_only
def test_runtime_memory_is_not_charged_to_the_container(rt, make_bundle):
    """Until execve the init is the runtime: its pages, shared with `pyrt create` at the
    fork, must not be copied into (and charged to) the container's memory cgroup.
    Measured: 0 bytes of anonymous memory there after create; about 200 KiB if the pages
    are not unshared first. pyrt-only: runc 1.1.5's init is charged about 1.6 MiB here.
    With a cgroup mount (as `runc spec` has), the init joins memory early: at that mount,
    before the rest of the rootfs, pivot_root and the masks."""
    b = set_resources(make_bundle(write=False), memory={"limit": 64 * MiB})
    b.add_mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "ro"])
    assert_ok(rt.create(b))
    stat = dict(line.split() for line in cg.cgread(b, "memory", "memory.stat").splitlines())
    assert int(stat["rss"]) <= 64 * 1024, stat


@pytest.mark.parametrize("memory", [
    # runc: "valid range is 0-100" (this kernel itself takes up to 200)
    pytest.param({"swappiness": 200}, id="swappiness-200"),
    pytest.param({"limit": 64 * MiB, "swap": 32 * MiB}, id="swap-below-limit"),  # EINVAL
])
def test_memory_refused(rt, make_bundle, memory):
    b = set_resources(make_bundle(write=False), memory=memory)
    cg.assert_refused(rt, b, rt.create(b))


# ----------------------------------------------------------------- cpu


def test_cpu_shares_quota_period_cpuset(rt, make_bundle):
    cpu = cg.some_cpu()
    b = set_resources(make_bundle(write=False), cpu={
        "shares": 512, "quota": 50000, "period": 200000, "cpus": cpu, "mems": "0"})
    assert_ok(rt.create(b))
    assert cg.cgread(b, "cpu", "cpu.shares") == "512"
    assert cg.cgread(b, "cpu", "cpu.cfs_quota_us") == "50000"
    assert cg.cgread(b, "cpu", "cpu.cfs_period_us") == "200000"
    assert cg.cgread(b, "cpuset", "cpuset.cpus") == cpu
    assert cg.cgread(b, "cpuset", "cpuset.mems") == "0"


def test_cpu_quota_unlimited(rt, make_bundle):
    b = set_resources(make_bundle(write=False), cpu={"quota": -1, "period": 250000})
    assert_ok(rt.create(b))
    assert cg.cgread(b, "cpu", "cpu.cfs_quota_us") == "-1"
    assert cg.cgread(b, "cpu", "cpu.cfs_period_us") == "250000"


def test_cpu_shares_above_kernel_max_refused(rt, make_bundle):
    """The kernel clamps cpu.shares to 262144 silently; runc reads it back and fails
    ("the maximum allowed cpu-shares is 262144")."""
    b = set_resources(make_bundle(write=False), cpu={"shares": 1 << 20})
    cg.assert_refused(rt, b, rt.create(b))


def test_cpuset_cpus_not_on_host_refused(rt, make_bundle):
    b = set_resources(make_bundle(write=False), cpu={"cpus": str(os.cpu_count() + 8)})
    cg.assert_refused(rt, b, rt.create(b))


@pytest.mark.pyrt_only
def test_cpu_burst(rt, make_bundle):
    # pyrt-only: runc 1.1.5 ignores cpu.burst (cpu.cfs_burst_us stays 0).
    b = set_resources(make_bundle(write=False),
                      cpu={"quota": 50000, "period": 100000, "burst": 20000})
    if not os.path.exists(os.path.join(cg.v1_hierarchies()["cpu"], "cpu.cfs_burst_us")):
        cg.assert_refused(rt, b, rt.create(b))
        return
    assert_ok(rt.create(b))
    assert cg.cgread(b, "cpu", "cpu.cfs_burst_us") == "20000"


@pytest.mark.pyrt_only
def test_cpu_idle(rt, make_bundle):
    # pyrt-only: runc 1.1.5 ignores cpu.idle (the file stays 0).
    b = set_resources(make_bundle(write=False), cpu={"idle": 1})
    if not os.path.exists(os.path.join(cg.v1_hierarchies()["cpu"], "cpu.idle")):
        cg.assert_refused(rt, b, rt.create(b))
        return
    assert_ok(rt.create(b))
    assert cg.cgread(b, "cpu", "cpu.idle") == "1"


def _rt_files_exist() -> bool:
    return os.path.exists(os.path.join(cg.v1_hierarchies()["cpu"], "cpu.rt_runtime_us"))


def test_cpu_realtime(rt, make_bundle):
    """With an rt budget on the parents (a new cgroup has none), runc writes
    cpu.rt_period_us then cpu.rt_runtime_us."""
    b = set_resources(make_bundle(write=False),
                      cpu={"realtimeRuntime": 500, "realtimePeriod": 100000})
    if not _rt_files_exist():  # kernel without CONFIG_RT_GROUP_SCHED
        cg.assert_refused(rt, b, rt.create(b))
        return
    top = cg.cgdir("cpu", f"/{h.CGROUP_PARENT}")
    session = os.path.dirname(cg.cgdir("cpu", b.cgroup_path))
    os.makedirs(session, exist_ok=True)
    try:
        for d, budget in ((top, 20000), (session, 10000)):  # per 1 s period
            if int(h.read(f"{d}/cpu.rt_runtime_us")) < budget:
                with open(f"{d}/cpu.rt_runtime_us", "w") as f:
                    f.write(str(budget))
        assert_ok(rt.create(b))
        assert cg.cgread(b, "cpu", "cpu.rt_period_us") == "100000"
        assert cg.cgread(b, "cpu", "cpu.rt_runtime_us") == "500"
    finally:
        rt.delete(b.id, force=True)  # before the budget can be given back
        h.reap_zombies()
        for d in (session, top):  # give the budget back (best effort)
            try:
                with open(f"{d}/cpu.rt_runtime_us", "w") as f:
                    f.write("0")
            except OSError:
                pass


def test_cpu_realtime_without_parent_budget_refused(rt, make_bundle):
    """A fresh parent has no rt budget: the kernel refuses cpu.rt_runtime_us (EINVAL)
    and runc fails create cleanly."""
    b = make_bundle(write=False)
    parent = f"{os.path.dirname(b.cgroup_path)}/nobudget-{b.id}"
    b.cgroup_path = f"{parent}/ctr"
    b.config["linux"]["cgroupsPath"] = b.cgroup_path
    set_resources(b, cpu={"realtimeRuntime": 500, "realtimePeriod": 100000})
    try:
        cg.assert_refused(rt, b, rt.create(b))
    finally:
        cg.remove_cgroup(parent)


# ----------------------------------------------------------------- pids


def test_pids_limit(rt, make_bundle):
    b = set_resources(make_bundle(write=False), pids={"limit": 10})
    assert_ok(rt.create(b))
    assert cg.cgread(b, "pids", "pids.max") == "10"


def test_pids_limit_negative_is_max(rt, make_bundle):
    b = set_resources(make_bundle(write=False), pids={"limit": -1})
    assert_ok(rt.create(b))
    assert cg.cgread(b, "pids", "pids.max") == "max"


def test_pids_limit_fork_fails_inside(rt, make_bundle):
    """pids.limit 5: the init and a subshell that starts sleeps until a fork fails
    (busybox sh gives up there); then 4 tasks are left: the init and 3 sleeps."""
    script = ("(for i in 1 2 3 4 5 6 7 8; do sleep 100 & done) 2>/tmp/err; "
              "echo done > /tmp/done; exec sleep 100")
    b = set_resources(make_bundle(("sh", "-c", script), write=False), pids={"limit": 5})
    pid = rt.create_started(b)["pid"]
    h.wait_for(lambda: h.read(f"/proc/{pid}/root/tmp/done"), 10, "the fork loop")
    err = h.read(f"/proc/{pid}/root/tmp/err")
    assert "fork" in err, f"no failed fork in the subshell's stderr {err!r}"
    assert cg.cgread(b, "pids", "pids.current") == "4"
    events = cg.cgread(b, "pids", "pids.events")
    if events:
        assert int(events.split()[-1]) >= 1, events


# ----------------------------------------------------------------- blockIO


def test_blkio_weight(rt, make_bundle):
    b = set_resources(make_bundle(write=False), blockIO={"weight": 300})
    name = cg.blkio_weight_file()
    if name is None:
        cg.assert_refused(rt, b, rt.create(b))
        return
    assert_ok(rt.create(b))
    assert cg.cgread(b, "blkio", name).splitlines()[0].split()[-1] == "300"


def test_blkio_leaf_weight(rt, make_bundle):
    """blkio.leaf_weight went with CFQ (Linux 5.0); without it runc fails (ENOENT)."""
    b = set_resources(make_bundle(write=False), blockIO={"leafWeight": 300})
    if "blkio.leaf_weight" not in cg.blkio_child_files():
        cg.assert_refused(rt, b, rt.create(b))
        return
    assert_ok(rt.create(b))
    assert cg.cgread(b, "blkio", "blkio.leaf_weight") == "300"


def test_blkio_weight_device(rt, make_bundle):
    """A per-device weight needs a proportional scheduler (bfq) on that device; with
    another one the kernel refuses it (EOPNOTSUPP) and so does runc."""
    major, minor = cg.block_device()
    b = set_resources(make_bundle(write=False), blockIO={
        "weightDevice": [{"major": major, "minor": minor, "weight": 200}]})
    files = cg.blkio_child_files()
    name = "blkio.weight_device" if "blkio.weight_device" in files else "blkio.bfq.weight_device"
    if name not in files or cg.io_scheduler(major, minor) not in ("bfq", "cfq"):
        cg.assert_refused(rt, b, rt.create(b))
        return
    assert_ok(rt.create(b))
    assert f"{major}:{minor} 200" in cg.cgread(b, "blkio", name).splitlines()


def test_blkio_throttle(rt, make_bundle):
    major, minor = cg.block_device()

    def dev(rate):
        return [{"major": major, "minor": minor, "rate": rate}]

    b = set_resources(make_bundle(write=False), blockIO={
        "throttleReadBpsDevice": dev(1048576), "throttleWriteBpsDevice": dev(2097152),
        "throttleReadIOPSDevice": dev(100), "throttleWriteIOPSDevice": dev(200)})
    assert_ok(rt.create(b))
    for name, rate in (("read_bps_device", 1048576), ("write_bps_device", 2097152),
                       ("read_iops_device", 100), ("write_iops_device", 200)):
        assert cg.cgread(b, "blkio", f"blkio.throttle.{name}") == f"{major}:{minor} {rate}", name


# ----------------------------------------------------------------- hugetlb, network, rdma


def _host_hugepage_sizes() -> list[str]:
    """Page sizes as the spec and the hugetlb files spell them: "2MB", "1GB"..."""
    sizes = []
    for entry in sorted(os.listdir("/sys/kernel/mm/hugepages")):
        kb = int(entry.removeprefix("hugepages-").removesuffix("kB"))
        for unit, scale in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
            if kb % scale == 0:
                sizes.append(f"{kb // scale}{unit}")
                break
    return sizes


def test_hugepage_limits(rt, make_bundle):
    sizes = _host_hugepage_sizes()
    if not sizes:
        pytest.skip("no huge page sizes on this host")
    limits = [{"pageSize": s, "limit": 1 << 30} for s in sizes]
    b = set_resources(make_bundle(write=False), hugepageLimits=limits)
    if not cg.has_controller("hugetlb"):  # enabled in the kernel here, but not mounted
        cg.assert_refused(rt, b, rt.create(b))
        return
    assert_ok(rt.create(b))
    for s in sizes:
        assert cg.cgread(b, "hugetlb", f"hugetlb.{s}.limit_in_bytes") == str(1 << 30), s


def test_network_class_id(rt, make_bundle):
    b = set_resources(make_bundle(write=False), network={"classID": 0x100001})
    if not cg.has_controller("net_cls"):
        cg.assert_refused(rt, b, rt.create(b))
        return
    assert_ok(rt.create(b))
    assert cg.cgread(b, "net_cls", "net_cls.classid") == str(0x100001)


def test_network_priorities(rt, make_bundle):
    b = set_resources(make_bundle(write=False),
                      network={"priorities": [{"name": "lo", "priority": 5}]})
    if not cg.has_controller("net_prio"):
        cg.assert_refused(rt, b, rt.create(b))
        return
    assert_ok(rt.create(b))
    assert "lo 5" in cg.cgread(b, "net_prio", "net_prio.ifpriomap").splitlines()


def test_rdma(rt, make_bundle):
    b = set_resources(make_bundle(write=False),
                      rdma={"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}})
    if not cg.has_controller("rdma"):
        cg.assert_refused(rt, b, rt.create(b))
        return
    # The controller exists but this device most likely does not: the kernel refuses.
    res = rt.create(b)
    if res.returncode == 0:
        assert "mlx5_1 hca_handle=3 hca_object=10000" in cg.cgread(b, "rdma", "rdma.max")
    else:
        cg.assert_refused(rt, b, res)


def test_unified_on_v1_refused(rt, make_bundle):
    b = set_resources(make_bundle(write=False), unified={"memory.max": "1000000"})
    res = cg.assert_refused(rt, b, rt.create(b))
    assert "unified" in res.stderr, describe(res)


# ----------------------------------------------------------------- devices


def test_device_rules_on_host_and_inside(rt, make_bundle):
    """An allow rule for one block device, read-only: devices.list shows it next to
    runc's defaults, and inside a node made with mknod opens for reading only."""
    dev = cg.loop_device()
    if dev is None:
        pytest.skip("no loop device on this host")
    major, minor = dev
    script = (f"{{ mknod /tmp/blk b {major} {minor} && echo made; "
              "(: < /tmp/blk) 2>/dev/null && echo read-ok || echo read-denied; "
              "(: >> /tmp/blk) 2>/dev/null && echo write-ok || echo write-denied; "
              "} > /tmp/out; echo done > /tmp/done; sleep 100")
    b = make_bundle(("sh", "-c", script), write=False)
    caps = [*h.RUNC_SPEC_CAPS, "CAP_MKNOD"]
    b.config["process"]["capabilities"] = {k: caps for k in ("bounding", "effective",
                                                              "permitted")}
    b.config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "b", "major": major, "minor": minor, "access": "r"})
    b.write()
    pid = rt.create_started(b)["pid"]
    listed = cg.cgread(b, "devices", "devices.list").splitlines()
    assert f"b {major}:{minor} r" in listed, listed
    assert "a *:* rwm" not in listed, listed
    for default in ("c 1:3 rwm", "c 1:5 rwm", "c *:* m", "b *:* m", "c 136:* rwm"):
        assert default in listed, (default, listed)
    h.wait_for(lambda: h.read(f"/proc/{pid}/root/tmp/done"), 10, "the device checks")
    assert h.read(f"/proc/{pid}/root/tmp/out").split() == ["made", "read-ok", "write-denied"]
