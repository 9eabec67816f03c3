"""What runs in the container's init from fork until execve.

The parent (`pyrt create`) builds a Plan: everything is parsed and checked before the
fork, so the child only acts. The child reports each step over the sync Channel; an
error becomes one message and exit, never a traceback.

Order, as runc's: join every cgroup hierarchy but memory (cgroups/base.py, SelfJoin;
on cgroup v2 we are born in the cgroup, held until the parent has copied the pages we
share; the parent adds us where we could not get in by ourselves); write oom_score_adj
and become non-dumpable (until execve: CVE-2019-5736); join namespaces given by path
(user first); make a user namespace and wait for its id maps (and make the time
namespace then, while our /proc entries are still ours); make the other namespaces (a
new pid namespace inside a user namespace needs one more fork); set up the rootfs and
/dev; pivot_root; read-only and masked paths; join the memory cgroup once the parent has
copied the pages we share (linux/memory.py), and make the cgroup namespace there
(earlier if a cgroup mount or hooks need it); rlimits; user and capabilities;
no_new_privs; the seccomp filter (before the user and capabilities change when there is
no no_new_privs: see linux/seccomp.py); say "ready"; block opening the exec fifo until
`start`; execve.
"""

from __future__ import annotations

import _signal
import os
import stat

from pyrt import state
from pyrt.errors import ConfigError, PyrtError, oserror
from pyrt.linux import caps, devices, hooks, mounts, namespaces, process, terminal
from pyrt.linux import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from pyrt.cgroups.base import SelfJoin
    from pyrt.config import Config
    from pyrt.linux.idmap import Maps
    from pyrt.linux.seccomp import Program
    from pyrt.linux.sync import Channel


class Plan:
    """The container to make, checked before anything is made."""

    def __init__(self, config: Config, bundle: str, container_id: str, *,
                 console_socket: str = "",
                 no_pivot: bool = False, no_new_keyring: bool = False,
                 preserve_fds: int = 0, detach: bool = True) -> None:
        if config.process is None:
            raise ConfigError("/process", "is required to create a container")
        if config.unsupported:
            raise ConfigError(config.unsupported[0], "not supported by pyrt yet")
        self.config = config
        self.process = config.process
        self.bundle = bundle
        self.container_id = container_id
        self.create_hooks = any(config.hooks.get(k) for k in
                                ("prestart", "createRuntime", "createContainer"))
        self.rootfs = os.path.realpath(os.path.join(bundle, config.root.path))
        if not os.path.isdir(self.rootfs):
            raise ConfigError("/root/path", f"{self.rootfs} is not a directory")
        linux = config.linux
        if linux.namespace("mount") is None:
            raise ConfigError("/linux/namespaces", "a mount namespace is required")
        if self.process.apparmorProfile or self.process.selinuxLabel:
            from pyrt.linux import lsm

            lsm.check(self.process.apparmorProfile, self.process.selinuxLabel, "/process/")
        self.mount_label = linux.mountLabel
        self.mounts = [mounts.MountPlan(m, bundle, f"/mounts/{i}", self.mount_label)
                       for i, m in enumerate(config.mounts)]
        self.setup_dev = not any(m.destination == "/dev" and m.bind for m in self.mounts)
        self.caps = caps.CapPlan(self.process.capabilities)
        self.rlimits = process.check_rlimits(self.process)
        terminal.check(self.process.terminal, console_socket, detach)
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        from pyrt import rootless
        from pyrt.linux import userns

        self.unprivileged = rootless.unprivileged()
        userns.check(config, self.unprivileged)
        self.idmaps: dict[int, Maps | None] = {}
        if any(m.idmap for m in self.mounts):
            from pyrt.linux import idmap

            self.idmaps = idmap.plan(self.mounts, config)
        self.new_flags = namespaces.new_flags(linux)
        self.new_user = bool(self.new_flags & sc.CLONE_NEWUSER)
        self.in_userns = linux.namespace("user") is not None
        self.cgroupns = linux.namespace("cgroup") is not None
        # a new pid namespace must belong to the container's user namespace, so with one
        # the init makes it after entering that user namespace, and forks once more
        self.pid_ns_in_init = bool(self.new_flags & sc.CLONE_NEWPID) and self.in_userns
        self.seccomp: Program | None = None
        if linux.seccomp is not None:
            from pyrt.linux import seccomp

            self.seccomp = seccomp.build(linux.seccomp)
        self.ns_fds: dict[str, int] = {}
        self.fifo_fd = -1
        self.cgroup_join: SelfJoin | None = None  # set by the caller, before the fork
        self.in_cgroup = False

    def spec_state(self, status: str, pid: int) -> dict[str, object]:
        """The state hooks read while the container is being made."""
        return state.spec_state(self.config.ociVersion, self.container_id, status, pid,
                                self.bundle, self.config.annotations)

    def open_namespaces(self) -> None:
        """Open the namespaces given by path, and make the id-mapped mounts' trees (here:
        the init will lack the rights over the host's filesystems that it takes)."""
        self.ns_fds = namespaces.open_paths(self.config.linux)
        if self.idmaps:
            from pyrt.linux import idmap

            try:
                idmap.clone_all(self.mounts, self.idmaps, self.ns_fds.get("user", -1))
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        if self.cgroup_join is not None:
            self.cgroup_join.close()
        for fd in self.ns_fds.values():
            os.close(fd)
        self.ns_fds.clear()
        for m in self.mounts:
            if m.tree_fd >= 0:
                os.close(m.tree_fd)
                m.tree_fd = -1


def child(plan: Plan, ch: Channel) -> NoReturn:
    """Entry point of the forked init; never returns."""
    try:
        # the parent's fds (its container lock above all) go; stdio, the preserved fds,
        # and what the plan needs stay
        joins = plan.cgroup_join.fds() if plan.cgroup_join else set()
        process.close_fds_except({ch.fileno(), plan.fifo_fd, *plan.ns_fds.values(), *joins,
                                  *(m.tree_fd for m in plan.mounts if m.tree_fd >= 0),
                                  *range(3 + plan.preserve_fds)})
        process.default_signals()
        sc.prctl(sc.PR_SET_PDEATHSIG, _signal.SIGKILL)
        if plan.cgroup_join is not None:  # every hierarchy but memory, now
            plan.cgroup_join.enter(memory=False)
        caps.preload()
        _namespaces(plan, ch)
        _exec(plan, ch)
    except BaseException as e:  # every failure must reach the parent as one message
        ch.fail("container init", e)


def _namespaces(plan: Plan, ch: Channel) -> None:
    linux = plan.config.linux
    # what must be written to our own /proc entries: after the next line they belong
    # to the host's root, out of reach once we are in a user namespace
    process.set_oom_score_adj(plan.process.oomScoreAdj)
    # Until execve we are the host's Python, soon in the container's pid namespace: not
    # dumpable, so nothing in there can open /proc/<pid>/exe (the host binary,
    # CVE-2019-5736), our fds (the host's procfs among them), memory, root or cwd.
    # execve makes the container's program dumpable again.
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    namespaces.join(plan.ns_fds, skip=("pid",))  # pid by path: the parent did setns
    if plan.in_userns and not plan.new_user:
        # a user namespace joined by path: become its root (as runc), or what we make
        # would belong to an id it may not map
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    if plan.new_user:
        sc.unshare(sc.CLONE_NEWUSER)
        # our /proc/<pid> files must be the caller's for it (or newuidmap) to write the
        # maps: dumpable just for that
        dumpable = sc.prctl(sc.PR_GET_DUMPABLE)
        sc.prctl(sc.PR_SET_DUMPABLE, 1)
        ch.send("userns")
        ch.recv("maps")
        if plan.new_flags & sc.CLONE_NEWTIME:
            # now, while our /proc/self/timens_offsets is still ours to write
            namespaces.enter_new_time_ns(linux.timeOffsets)
        sc.prctl(sc.PR_SET_DUMPABLE, 1 if dumpable == 1 else 0)  # 2 cannot be set back
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    if plan.pid_ns_in_init:
        # fork once more so our child is the new pid namespace's pid 1; we hand its pid
        # over and leave
        sc.unshare(sc.CLONE_NEWPID)
        hold_r, hold_w = os.pipe()
        try:
            pid, held = sc.fork(hold=(hold_r, hold_w)), True
        except OSError:  # clone3 refused
            pid, held = os.fork(), False
        if pid:
            ch.send("pid", pid=pid)
            os._exit(0)  # closes hold_w: our child goes on
        # no parent-death signal here: our parent is about to exit on purpose (if
        # `pyrt create` fails, it kills us by pid). We wait for it to leave: the parent
        # must have our pid before any message of ours; and, held in the shim, before
        # we write to any page we share with it (each would be copied, and charged to
        # the container's memory cgroup where we are already in it: cgroup v2)
        if not held:
            os.close(hold_w)
            os.read(hold_r, 1)
        os.close(hold_r)
    rest = plan.new_flags & ~(sc.CLONE_NEWUSER | sc.CLONE_NEWPID | sc.CLONE_NEWTIME
                              | sc.CLONE_NEWCGROUP)
    if rest:
        sc.unshare(rest)
    if plan.new_flags & sc.CLONE_NEWTIME and not plan.new_user:
        namespaces.enter_new_time_ns(linux.timeOffsets)
    if not plan.no_new_keyring:
        if plan.process.selinuxLabel:  # the keyring's label (still the host's /proc)
            from pyrt.linux import lsm

            proc_self = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                lsm.set_key_label(proc_self, plan.process.selinuxLabel)
            finally:
                os.close(proc_self)
        try:
            sc.join_session_keyring(None)
        except OSError as e:
            if e.errno not in (38, 1):  # ENOSYS, EPERM: no keyrings here, as runc
                raise


def _enter_cgroup(plan: Plan, ch: Channel) -> None:
    """Join the memory cgroup, then make the cgroup namespace (rooted there). As late as
    we can: at a cgroup mount, before hooks, or just before dropping privileges; every
    page we touch once in the memory cgroup is charged to it.
    """
    if plan.in_cgroup:
        return
    # "go": the parent has taken back the pages we shared (they would be copied, and
    # charged, in there) and added us where we could not get in by ourselves
    ch.recv("go")
    if plan.cgroup_join is not None:
        plan.cgroup_join.enter(memory=True)
    if plan.new_flags & sc.CLONE_NEWCGROUP:
        sc.unshare(sc.CLONE_NEWCGROUP)
    plan.in_cgroup = True


def _exec(plan: Plan, ch: Channel) -> NoReturn:
    config, proc = plan.config, plan.process
    linux = config.linux
    mounts.prepare_root(plan.rootfs, linux.rootfsPropagation)
    root_fd = os.open(plan.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for m in plan.mounts:
        if m.type == "cgroup":
            _enter_cgroup(plan, ch)
        mounts.mount_one(root_fd, m, plan.in_userns, plan.cgroupns)
    os.close(mounts.make_in_root(root_fd, proc.cwd))  # runc creates a missing cwd
    if plan.setup_dev:
        devices.create_devices(root_fd, linux.devices, plan.in_userns)
        has_pts = os.path.exists(f"{plan.rootfs}/dev/pts/ptmx")
        devices.create_symlinks(root_fd, with_ptmx=has_pts)
    if config.hostname:
        sc.sethostname(config.hostname)
    if config.domainname:
        sc.setdomainname(config.domainname)
    if plan.create_hooks:
        # prestart and createRuntime run in the parent now, then createContainer here:
        # in the container's namespaces, before pivot_root
        _enter_cgroup(plan, ch)
        ch.send("hooks")
        ch.recv("hooks-done")
        hooks.run_all(config.hooks, "createContainer", plan.spec_state("creating", os.getpid()),
                      cwd=plan.rootfs)
    proc_self = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if plan.no_pivot:
        mounts.move_root(plan.rootfs)
    else:
        mounts.pivot_root(plan.rootfs)
    os.close(root_fd)

    if proc.terminal:
        master, slave, name = terminal.open_pty(proc.consoleSize)
        ch.send("console", fd=master, name=name)
        os.close(master)
        _mount_console(slave)
        terminal.become_session_leader(slave)
    mounts.write_sysctl(linux.sysctl)
    for path in linux.readonlyPaths:  # then the masks, as runc
        mounts.readonly_path(path)
    if linux.maskedPaths:
        null = mounts.open_null()
        for path in linux.maskedPaths:
            mounts.mask_path(path, null, plan.mount_label)
        os.close(null)
    if config.root.readonly:
        mounts.readonly_root()
    _enter_cgroup(plan, ch)
    if proc.apparmorProfile or proc.selinuxLabel:
        from pyrt.linux import lsm

        lsm.apply_exec(proc_self, proc.apparmorProfile, proc.selinuxLabel)
    if plan.seccomp is not None and not proc.noNewPrivileges:
        plan.seccomp.install(ch)  # needs CAP_SYS_ADMIN without no_new_privs
    executable, env = process.become(proc, plan.caps, plan.rlimits)

    sc.prctl(sc.PR_SET_PDEATHSIG, 0)  # from here on we outlive `pyrt create`
    if plan.seccomp is not None and proc.noNewPrivileges:
        plan.seccomp.install(ch)
    ch.send("ready")
    # Blocks until `pyrt start` opens the fifo for reading.
    fifo = os.open(f"fd/{plan.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=proc_self)
    if config.hooks.get("startContainer"):
        try:
            hooks.run_all(config.hooks, "startContainer",
                          plan.spec_state("created", os.getpid()), env=env)
        except PyrtError as e:  # `start` reads this instead of the "0" and fails
            os.write(fifo, b"1" + str(e).encode()[:4000])
            os._exit(1)
    os.write(fifo, b"0")
    os.close(fifo)
    os.close(proc_self)
    os.close(plan.fifo_fd)
    ch.close()
    process.execve(executable, proc.args, env, plan.preserve_fds)


def _mount_console(slave: int) -> None:
    """Bind the pty slave over /dev/console, as runc does: from its fd, onto a
    /dev/console that is not a symlink (which would take the bind elsewhere)."""
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            console = os.open("/dev/console", flags)
        except FileNotFoundError:
            os.close(os.open("/dev/console", os.O_CREAT | os.O_EXCL | os.O_WRONLY
                             | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
            console = os.open("/dev/console", flags)
        try:
            if stat.S_ISLNK(os.fstat(console).st_mode):
                raise PyrtError("/dev/console", "is a symlink")
            sc.mount(mounts.fd_path(slave), mounts.fd_path(console), None, sc.MS_BIND)
        finally:
            os.close(console)
    except OSError as e:
        raise oserror("/dev/console", e) from None
