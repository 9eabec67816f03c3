"""What runs in a process `pyrt exec` adds to a running container, from fork to execve.

The first child joins the init's namespaces (user first); joining a pid namespace only
places our children in it, so it forks once more, hands the grandchild's pid to the
parent and leaves. The grandchild waits until the parent has put it in the container's
cgroup, takes its terminal, becomes the process the JSON describes, puts on the
container's seccomp filter (before becoming it without no_new_privs, as in init.py),
and execs.
"""

from __future__ import annotations

import _signal
import os

from pyrt.linux import caps, namespaces, process, terminal
from pyrt.linux import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from pyrt.cgroups.base import SelfJoin
    from pyrt.config import Process
    from pyrt.linux.seccomp import Program
    from pyrt.linux.sync import Channel


class ExecPlan:
    """The process to add, checked before the fork."""

    def __init__(self, proc: Process, ns_fds: dict[str, int], preserve_fds: int,
                 seccomp_doc: dict[str, Any] | None = None) -> None:
        """`seccomp_doc`: the container's filter as create saved it in its state."""
        self.process = proc
        self.seccomp: Program | None = None
        if seccomp_doc:
            from pyrt.linux.seccomp import Program

            self.seccomp = Program.from_json(seccomp_doc)
        self.ns_fds = ns_fds
        self.preserve_fds = preserve_fds
        self.cgroup_join: SelfJoin | None = None  # set by the caller, before the fork
        self.caps = caps.CapPlan(proc.capabilities)
        self.rlimits = process.check_rlimits(proc)
        self.lsm = bool(proc.apparmorProfile or proc.selinuxLabel)
        if self.lsm:
            from pyrt.linux import lsm

            lsm.check(proc.apparmorProfile, proc.selinuxLabel, "/process/")


def child(plan: ExecPlan, ch: Channel) -> NoReturn:
    """Entry point of the forked child; never returns."""
    try:
        joins = plan.cgroup_join.fds() | plan.cgroup_join.fork_fds() if plan.cgroup_join \
            else set()
        process.close_fds_except({ch.fileno(), *plan.ns_fds.values(), *joins,
                                  *range(3 + plan.preserve_fds)})
        process.default_signals()
        sc.prctl(sc.PR_SET_PDEATHSIG, _signal.SIGKILL)
        process.set_oom_score_adj(plan.process.oomScoreAdj)  # while /proc/self is ours
        # From before we join until execve we are the host's Python: not dumpable, so
        # nothing in the container can ptrace us or open /proc/<pid>/exe (the
        # CVE-2019-5736 path to the host binary), our fds, memory, root or cwd. The fork
        # below inherits it; execve makes the new program dumpable.
        sc.prctl(sc.PR_SET_DUMPABLE, 0)
        # the host's procfs, for our LSM attrs: the container's /proc could be a decoy
        host_proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) \
            if plan.lsm else -1
        caps.preload()  # while the host's filesystem is still ours to import from
        # The cgroup namespace after the fork: the process is born in the container's
        # cgroup2 cgroup where it can be (SelfJoin.fork), and the kernel refuses a clone
        # into a cgroup outside the caller's cgroup namespace. Where that cgroup charges
        # memory (v2), it is held until we have left, so that it copies none of the
        # pages we share in there.
        namespaces.join(plan.ns_fds, skip=("cgroup",))
        join = plan.cgroup_join
        pid, born = join.fork() if join else (os.fork(), False)
        if pid:
            ch.send("pid", pid=pid, born_in_cgroup2=born)
            os._exit(0)  # and so release it
        namespaces.join(plan.ns_fds)
        if host_proc >= 0:
            _apply_lsm(plan.process, host_proc)
        _become(plan, ch)
    except BaseException as e:  # every failure must reach the parent as one message
        ch.fail("exec", e)


def _apply_lsm(proc: Process, host_proc: int) -> None:
    """The AppArmor profile and SELinux label our execve puts on, written under our
    own entry of the host's procfs (thread-self: our pid there, not in the container)."""
    from pyrt.linux import lsm

    own = os.open("thread-self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=host_proc)
    try:
        lsm.apply_exec(own, proc.apparmorProfile, proc.selinuxLabel)
    finally:
        os.close(own)
        os.close(host_proc)


def _become(plan: ExecPlan, ch: Channel) -> NoReturn:
    proc = plan.process
    if plan.cgroup_join is not None:  # in the pid namespace: move ourselves in
        plan.cgroup_join.enter(memory=False)
        plan.cgroup_join.enter(memory=True)
    ch.recv("go")  # we are in the container's cgroup
    if proc.terminal:
        master, slave, name = terminal.open_pty(proc.consoleSize)
        ch.send("console", fd=master, name=name)
        os.close(master)
        terminal.become_session_leader(slave)
    if plan.seccomp is not None and not proc.noNewPrivileges:
        plan.seccomp.install(ch)
    executable, env = process.become(proc, plan.caps, plan.rlimits)
    if plan.seccomp is not None and proc.noNewPrivileges:
        plan.seccomp.install(ch)
    ch.send("ready")
    ch.close()
    process.execve(executable, proc.args, env, plan.preserve_fds)
