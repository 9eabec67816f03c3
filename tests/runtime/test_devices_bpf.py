"""pyrt.cgroups.devices_bpf.install against the real kernel (root).

pyrt's v2 driver enforces linux.resources.devices with a BPF_PROG_TYPE_CGROUP_DEVICE
program.  This host is hybrid (v1 controllers, and a cgroup2 at /sys/fs/cgroup/unified):
the kernel runs the device programs of a task's cgroup2 cgroup in that mode too, so the
module is tested here directly, not through a container (the v2 driver that calls it is
not wired yet; hence pyrt_only).  A prober child moves itself into a test cgroup, then
opens and mknods devices on request and reports the errno; it stays alive across
install() calls, as a container's processes do across `update`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyrt.cgroups import device_rules, devices_bpf
from pyrt.cgroups.device_rules import DeviceRule
from pyrt.errors import PyrtError

pytestmark = pytest.mark.pyrt_only

PROBER = r"""
import errno, json, os, sys
with open(sys.argv[1] + "/cgroup.procs", "w") as f:
    f.write("0")
print("joined", flush=True)
kinds = {"c": 0o020000, "b": 0o060000}
flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}
for line in sys.stdin:
    op = json.loads(line)
    try:
        if op[0] == "open":
            os.close(os.open(op[1], flags[op[2]] | os.O_NONBLOCK | os.O_NOCTTY))
        else:
            os.mknod(op[1], kinds[op[2]] | 0o600, os.makedev(op[3], op[4]))
            os.unlink(op[1])
        print("ok", flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
"""


def rule(allow: bool, type_: str, major: int | None = None, minor: int | None = None,
         access: str = "rwm") -> DeviceRule:
    return DeviceRule(allow=allow, type=type_, major=major, minor=minor, access=access)


DENY_ALL = rule(False, "a")
ALLOW_ALL = rule(True, "a")


def cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    return None


@pytest.fixture
def cgroup(request: pytest.FixtureRequest):
    mount = cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup2 mounted")
    path = Path(mount, "pyrt-tests", f"s{os.getpid()}", f"bpf-{request.node.name}"[:60])
    path.mkdir(parents=True)
    yield str(path)
    path.rmdir()  # fails (and so the test errors) if a prober was left in it


class Prober:
    """A child process in the cgroup that performs device operations on request."""

    def __init__(self, cgroup: str, scratch: Path) -> None:
        self.scratch = scratch
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", PROBER, cgroup],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == "joined\n"
        with open(f"{cgroup}/cgroup.procs") as f:
            assert str(self.proc.pid) in f.read().split()

    def _ask(self, op: list[object]) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(op) + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def open(self, dev: str, mode: str) -> str:
        return self._ask(["open", dev, mode])

    def mknod(self, kind: str, major: int, minor: int) -> str:
        return self._ask(["mknod", str(self.scratch / "node"), kind, major, minor])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait() == 0


@pytest.fixture
def prober(cgroup: str, tmp_path: Path):
    probers: list[Prober] = []

    def start() -> Prober:
        probers.append(Prober(cgroup, tmp_path))
        return probers[-1]

    yield start
    for p in probers:
        if p.proc.poll() is None:
            p.proc.kill()
        p.proc.wait()


def attached(cgroup: str) -> list[int]:
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return devices_bpf.attached(fd, cgroup)
    finally:
        os.close(fd)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# /dev/null 1:3, /dev/zero 1:5, /dev/full 1:7, /dev/random 1:8, /dev/urandom 1:9,
# /dev/loop-control 10:237
RULES = [
    DENY_ALL,
    rule(True, "c", 1, None),                        # every mem device ...
    rule(False, "c", 1, 7),                          # ... but full: a later rule wins
    rule(False, "c", 1, 5, "w"),                     # zero: read-only
    rule(True, "c", 1, 8, "r"), rule(False, "c", 1, 8), rule(True, "c", 1, 8, "r"),
    rule(True, "b", None, None, "m"),                # mknod of any block device
]


def test_rules_are_enforced(cgroup, prober):
    fds = open_fds()
    devices_bpf.install(cgroup, RULES)
    assert open_fds() == fds
    assert len(attached(cgroup)) == 1
    p = prober()
    assert p.open("/dev/null", "rw") == "ok"
    assert p.open("/dev/urandom", "rw") == "ok"
    assert p.open("/dev/full", "r") == "EPERM"            # later deny beats the wildcard
    assert p.open("/dev/zero", "r") == "ok"
    assert p.open("/dev/zero", "w") == "EPERM"
    assert p.open("/dev/zero", "rw") == "EPERM"           # a denied bit denies the request
    assert p.open("/dev/random", "r") == "ok"             # allow, deny, allow again
    assert p.open("/dev/random", "w") == "EPERM"
    assert p.open("/dev/loop-control", "rw") == "EPERM"   # no rule: the default, deny
    # mknod follows "m"
    assert p.mknod("c", 1, 3) == "ok"
    assert p.mknod("c", 1, 5) == "ok"                     # zero's deny was "w" only
    assert p.mknod("c", 1, 7) == "EPERM"
    assert p.mknod("c", 10, 237) == "EPERM"
    assert p.mknod("b", 7, 0) == "ok"
    # a node made elsewhere still cannot be opened without "r"
    os.mknod(p.scratch / "loop0", 0o060600, os.makedev(7, 0))
    assert p.open(str(p.scratch / "loop0"), "r") == "EPERM"
    p.close()


def test_default_and_resets(cgroup, prober):
    p = prober()
    devices_bpf.install(cgroup, [rule(True, "c", 1, 3)])  # no reset: the default is deny
    assert p.open("/dev/null", "rw") == "ok"
    assert p.open("/dev/zero", "r") == "EPERM"
    devices_bpf.install(cgroup, [rule(False, "c", 1, 3), ALLOW_ALL])
    assert p.open("/dev/null", "rw") == "ok"
    assert p.open("/dev/loop-control", "rw") == "ok"
    devices_bpf.install(cgroup, [ALLOW_ALL, rule(False, "c", 1, 3)])
    assert p.open("/dev/null", "r") == "EPERM"
    assert p.open("/dev/zero", "rw") == "ok"
    assert p.mknod("b", 7, 0) == "ok"
    p.close()


def test_runc_defaults(cgroup, prober):
    """A config denying everything gets runc's default devices (and mknod of any)."""
    rules = device_rules.parse([{"allow": False, "access": "rwm"}], "/linux/resources/devices")
    devices_bpf.install(cgroup, rules)
    p = prober()
    for dev in ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"):
        assert p.open(dev, "rw") == "ok", dev
    assert p.open("/dev/loop-control", "rw") == "EPERM"
    assert p.mknod("c", 10, 237) == "ok"
    assert p.mknod("b", 8, 0) == "ok"
    p.close()


def test_install_replaces_the_program_of_a_running_process(cgroup, prober):
    devices_bpf.install(cgroup, [DENY_ALL, rule(True, "c", 1, 3)])
    first = attached(cgroup)
    p = prober()
    assert p.open("/dev/null", "rw") == "ok"
    assert p.open("/dev/zero", "r") == "EPERM"

    fds = open_fds()
    devices_bpf.install(cgroup, [DENY_ALL, rule(True, "c", 1, 5)])
    assert open_fds() == fds
    second = attached(cgroup)
    assert len(first) == len(second) == 1 and first != second
    assert p.open("/dev/null", "rw") == "EPERM"
    assert p.open("/dev/zero", "r") == "ok"

    devices_bpf.install(cgroup, [DENY_ALL, rule(True, "c", 1, 3)])
    assert len(attached(cgroup)) == 1
    assert p.open("/dev/null", "rw") == "ok"
    p.close()


def test_missing_directory(tmp_path):
    fds = open_fds()
    with pytest.raises(PyrtError) as info:
        devices_bpf.install(str(tmp_path / "nope"), [DENY_ALL])
    assert info.value.what == f"cgroup {tmp_path / 'nope'}"
    assert "No such file or directory" in info.value.why
    assert open_fds() == fds


def test_not_a_cgroup2_directory(tmp_path):
    fds = open_fds()
    with pytest.raises(PyrtError) as info:
        devices_bpf.install(str(tmp_path), [DENY_ALL])
    assert info.value.what == f"cgroup {tmp_path}"
    assert info.value.why == ("cannot query its device programs: Bad file descriptor "
                              "(not a cgroup2 directory?)")
    assert open_fds() == fds


def test_a_rejected_program_reports_the_verifier(cgroup, monkeypatch):
    devices_bpf.install(cgroup, [ALLOW_ALL])
    before = attached(cgroup)
    fds = open_fds()
    # exit without setting r0: the verifier refuses to read an unset register
    monkeypatch.setattr(devices_bpf, "program", lambda rules: bytes.fromhex("9500000000000000"))
    with pytest.raises(PyrtError) as info:
        devices_bpf.install(cgroup, [DENY_ALL])
    assert info.value.what == f"cgroup {cgroup}"
    assert info.value.why.startswith("the kernel refused the device program: ")
    assert "R0 !read_ok" in info.value.why
    assert "\n" not in str(info.value)
    assert open_fds() == fds
    assert attached(cgroup) == before  # the old program still guards the cgroup


def test_the_kernel_accepts_every_rule_shape(cgroup):
    """The verifier takes blocks of every shape, in one program (the unit tests check what
    each shape decides)."""
    shapes = [rule(allow, t, major, minor, access)
              for allow in (True, False) for t in "cb" for major in (None, 1)
              for minor in (None, 3) for access in ("r", "w", "m", "rw", "rm", "wm", "rwm")]
    devices_bpf.install(cgroup, shapes)
    devices_bpf.install(cgroup, [DENY_ALL, *shapes])
    devices_bpf.install(cgroup, [*shapes, ALLOW_ALL, *shapes])
    assert len(attached(cgroup)) == 1
