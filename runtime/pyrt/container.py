"""The lifecycle: create, start, state, kill, delete, run, list (runtime-spec runtime.md)."""

from __future__ import annotations

import _signal
import os
import select

from pyrt import cgroups, state
from pyrt.errors import NotExist, PyrtError, oserror
from pyrt.state import CREATED, PAUSED, RUNNING, STOPPED, Container, State

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrt.cgroups.base import Cgroup
    from pyrt.init import Plan

KILL_TIMEOUT = 10.0


# ---------------------------------------------------------------- create

def create(root: str, container_id: str, bundle: str, *, pid_file: str = "",
           console_socket: str = "", no_pivot: bool = False, no_new_keyring: bool = False,
           preserve_fds: int = 0, detach: bool = True, rootless_cgroups: bool = False
           ) -> tuple[Container, int | None]:
    """Make the container and leave its init blocked on the exec fifo.

    Returns the container (lock still held) and, when not detached and the process has a
    terminal, the pty master for the caller to relay. `rootless_cgroups`: the cgroup is
    made only where the user may (see cgroups/rootless.py).
    """
    from pyrt import config as config_mod
    from pyrt.init import Plan

    bundle = os.path.abspath(bundle)
    if not os.path.isdir(bundle):
        raise PyrtError(f"bundle {bundle}", "not a directory")
    pid_file = os.path.abspath(pid_file) if pid_file else ""
    config = config_mod.load(bundle)
    plan = Plan(config, bundle, container_id, console_socket=console_socket, no_pivot=no_pivot,
                no_new_keyring=no_new_keyring, preserve_fds=preserve_fds, detach=detach)
    cgroup = cgroups.open_cgroup(config.linux.cgroupsPath, container_id)
    cgroup.check(config.linux.resources)
    cgroup.check_unused()
    plan.open_namespaces()
    ctr = Container.create(root, container_id)
    pid = 0
    try:
        cgroup = _make_cgroup(cgroup, config.linux.resources, rootless_cgroups,
                              bool(config.linux.cgroupsPath))
        plan.cgroup_join = cgroup.open_self_join()
        os.mkfifo(ctr.fifo_path, 0o622)
        os.chmod(ctr.fifo_path, 0o622)
        plan.fifo_fd = os.open(ctr.fifo_path, os.O_PATH | os.O_CLOEXEC)
        pid, master = _spawn(plan, cgroup)
        start_time = state.process_start_time(pid)
        if start_time is None:
            raise PyrtError("container init", "exited during create")
        ctr.save(State(
            id=container_id, pid=pid, start_time=start_time, bundle=bundle,
            rootfs=plan.rootfs, created=state.utc_now(), oci_version=config.ociVersion,
            annotations=config.annotations, cgroup_paths=cgroup.paths(),
            resources=config.linux.resources,
            freezer=cgroup.freezer_file(),
            new_pidns=config.linux.namespace("pid") is not None, hooks=config.hooks,
            seccomp=plan.seccomp.to_json() if plan.seccomp else None,
        ))
        if pid_file:
            _write_pid_file(pid_file, pid)
    except BaseException:
        if pid:
            _kill_and_wait(pid)
        _quiet(cgroup.destroy)
        _quiet(ctr.remove)
        ctr.close()
        if config.hooks.get("poststop"):  # as runc: a failed create is destroyed
            _poststop(config.hooks, plan.spec_state(STOPPED, pid))
        raise
    finally:
        plan.close()
        if plan.fifo_fd >= 0:
            os.close(plan.fifo_fd)
    return ctr, master


def _make_cgroup(cgroup: Cgroup, resources: dict[str, Any], rootless: bool,
                 path_given: bool) -> Cgroup:
    """Make the container's cgroup and write its resources; rootless: only what the user
    may, and device rules are tried but not required (as runc)."""
    if not rootless:
        cgroup.create()
        cgroup.apply(resources)
        return cgroup
    from pyrt.cgroups import rootless as rootless_cgroups

    made = rootless_cgroups.create(cgroup, resources, path_given)
    made.apply({k: v for k, v in resources.items() if k != "devices"})
    if resources.get("devices") is not None:
        _quiet(lambda: made.apply({"devices": resources["devices"]}))
    return made


def _spawn(plan: Plan, cgroup: Cgroup) -> tuple[int, int | None]:
    """Fork the init, put it in its cgroup, and drive it until it says "ready"."""
    from pyrt import init
    from pyrt.linux import hooks, memory, userns
    from pyrt.linux import syscalls as sc
    from pyrt.linux.sync import Channel

    own_pidns = -1
    if "pid" in plan.ns_fds:
        own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        sc.setns(plan.ns_fds["pid"], sc.CLONE_NEWPID)  # our children are born there
    elif plan.new_flags & sc.CLONE_NEWPID and not plan.pid_ns_in_init:
        own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        sc.unshare(sc.CLONE_NEWPID)
    parent_ch, child_ch = Channel.pair()
    join = plan.cgroup_join
    pid, born = join.fork() if join is not None else (os.fork(), False)
    if pid == 0:
        parent_ch.close()
        init.child(plan, child_ch)
    child_ch.close()
    if own_pidns >= 0:
        sc.setns(own_pidns, sc.CLONE_NEWPID)
        os.close(own_pidns)
    master = None
    runtime_hooks = plan.create_hooks
    try:
        # Our pages are shared with the init until one of us writes them. We copy ours
        # first, so that none is copied (and charged) in its memory cgroup: on v1 on the
        # other CPU while it sets up, before it joins memory; on cgroup v2, where it was
        # born in its cgroup (cgroups/base.py, SelfJoin), while it waits to be released.
        memory.unshare_pages()
        if join is not None:
            join.release()
        if plan.new_user:
            parent_ch.recv("userns")
            userns.write_id_maps(pid, plan.config.linux)
            parent_ch.send("maps")
        if plan.pid_ns_in_init:
            grandchild = parent_ch.recv("pid")["pid"]
            os.waitpid(pid, 0)
            pid = grandchild
        # Then we add it where it could not get in by itself (such a write waits for an
        # RCU grace period, docs/performance.md) and say "go". It waits for that before
        # it joins memory (v1) and makes its cgroup namespace.
        cgroup.add(pid, join, born_in_cgroup2=born)
        parent_ch.send("go")
        while True:
            msg = parent_ch.recv(("hooks", "console", "seccomp", "ready"))
            if msg["type"] == "ready":
                break
            if msg["type"] == "seccomp":
                from pyrt.linux import seccomp

                seccomp.forward(plan.seccomp, msg, parent_ch, pid,
                                plan.spec_state("creating", pid))
                continue
            if msg["type"] == "hooks" and runtime_hooks:
                runtime_hooks = False
                for kind in ("prestart", "createRuntime"):
                    hooks.run_all(plan.config.hooks, kind, plan.spec_state("creating", pid),
                                  cwd=plan.bundle)
                parent_ch.send("hooks-done")
            elif msg["type"] == "console":
                master = _console(msg, plan, master)
            else:
                raise PyrtError("container init", f"sent {msg['type']!r} out of turn")
    except BaseException:
        _kill_and_wait(pid)
        if master is not None:
            os.close(master)
        raise
    finally:
        parent_ch.close()
    return pid, master


def _console(msg: dict[str, Any], plan: Plan, master: int | None) -> int | None:
    """The init's one "console" message (process.terminal only)."""
    if not plan.process.terminal or master is not None:
        os.close(msg["fd"])
        raise PyrtError("container init", "sent 'console' out of turn")
    return _take_console(msg, plan.console_socket)


def _take_console(msg: dict[str, Any], console_socket: str) -> int | None:
    """The pty master an init sent: handed on over --console-socket (then None), or
    kept for the caller to relay."""
    if not console_socket:
        return int(msg["fd"])
    from pyrt.linux import terminal

    try:
        terminal.send_to_socket(console_socket, msg["fd"], msg["name"])
    finally:
        os.close(msg["fd"])
    return None


def _write_pid_file(path: str, pid: int) -> None:
    """The decimal pid, no newline, written atomically (callers Atoi the whole file)."""
    tmp = f"{path}.pyrt-tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(str(pid))
        os.rename(tmp, path)
    except OSError as e:
        raise oserror(f"pid file {path}", e) from None


def _quiet(fn: Any) -> None:
    try:
        fn()
    except (OSError, PyrtError):
        pass


# ---------------------------------------------------------------- start

def start(ctr: Container) -> None:
    """Release the init blocked on the exec fifo; it then execs the user's process."""
    st = ctr.require_state()
    status = ctr.status()
    if status != CREATED:
        why = {RUNNING: "cannot start an already running container",
               STOPPED: "cannot start a container that has stopped",
               PAUSED: "cannot start a container in the paused state"}[status]
        raise PyrtError(f"container {ctr.id}", why)
    # The pidfd first: opening the fifo releases the init, which may exec and exit at once.
    pidfd = _pidfd(st)
    if pidfd < 0:
        raise PyrtError(f"container {ctr.id}", "cannot start a container that has stopped")
    try:
        fifo = os.open(ctr.fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        os.close(pidfd)
        raise PyrtError(f"container {ctr.id}", "cannot start an already running container") \
            from None
    try:
        poller = select.poll()
        poller.register(fifo, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        while True:
            events = dict(poller.poll())
            if fifo in events:
                byte = os.read(fifo, 1)
                if byte == b"0":
                    break
                if byte:  # a startContainer hook failed; the init has exited
                    os.unlink(ctr.fifo_path)
                    raise PyrtError(f"container {ctr.id}",
                                    os.read(fifo, 4096).decode(errors="replace"))
                if pidfd not in events:
                    continue
            if pidfd in events:
                raise PyrtError(f"container {ctr.id}", "init exited before it could start")
    finally:
        os.close(fifo)
        os.close(pidfd)
    os.unlink(ctr.fifo_path)
    if st.hooks.get("poststart"):
        from pyrt.linux import hooks

        try:
            hooks.run_all(st.hooks, "poststart", st.hook_state(RUNNING), cwd=st.bundle)
        except PyrtError:
            # runtime-spec 1.3.0: a failed poststart hook stops the container
            _quiet(lambda: kill(ctr, _signal.SIGKILL, all_processes=True))
            _quiet(lambda: _wait_dead(st))
            raise


def _pidfd(st: State) -> int:
    """A pidfd for the init, checked against its recorded start time (-1 if it is gone)."""
    try:
        fd = os.pidfd_open(st.pid)
    except OSError:
        return -1
    if state.process_start_time(st.pid) != st.start_time:
        os.close(fd)
        return -1
    return fd


# ---------------------------------------------------------------- kill

def kill(ctr: Container, sig: int, all_processes: bool = False) -> None:
    st = ctr.require_state()
    if ctr.status() == STOPPED:
        if all_processes:
            return
        raise PyrtError(f"container {ctr.id}", "container not running")
    if all_processes or (not st.new_pidns and sig == _signal.SIGKILL):
        # as runc: without a pid namespace of its own, killing the init would not take
        # the rest of the container with it
        for pid in cgroups.from_paths(st.cgroup_paths).pids():
            _quiet(lambda pid=pid: os.kill(pid, sig))
    pidfd = _pidfd(st)
    if pidfd < 0:
        if all_processes:
            return
        raise PyrtError(f"container {ctr.id}", "container not running")
    try:
        _signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        if not all_processes:
            raise PyrtError(f"container {ctr.id}", "container not running") from None
    finally:
        os.close(pidfd)
    if sig == _signal.SIGKILL and st.freezer and state.frozen(st.freezer):
        cgroups.from_paths(st.cgroup_paths).freeze(False)  # as runc: frozen tasks die thawed


def _kill_and_wait(pid: int) -> None:
    """SIGKILL a child of ours and reap it."""
    _quiet(lambda: os.kill(pid, _signal.SIGKILL))
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _wait_dead(st: State, timeout: float = KILL_TIMEOUT) -> None:
    pidfd = _pidfd(st)
    if pidfd < 0:
        return
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(int(timeout * 1000)):
            raise PyrtError(f"container {st.id}", "init did not die after SIGKILL")
    finally:
        os.close(pidfd)


# ---------------------------------------------------------------- delete

def delete(root: str, container_id: str, force: bool = False) -> None:
    try:
        ctr = Container.open(root, container_id)
    except NotExist:
        if force:
            return
        raise
    with ctr:
        if ctr.state is None:  # a create that died before saving: clean its remains
            _quiet(ctr.remove)
            if force:
                return
            raise NotExist(container_id)
        st = ctr.state
        status = ctr.status()
        if status in (RUNNING, PAUSED) and not force:
            raise PyrtError(f"container {container_id}",
                            f"cannot delete a container that is not stopped: {status}")
        if status != STOPPED:
            kill(ctr, _signal.SIGKILL, all_processes=True)  # thaws a paused container
            _wait_dead(st)
        destroy(ctr)


def destroy(ctr: Container) -> None:
    """Remove everything create made (the cgroup, then the state directory), then run the
    poststop hooks."""
    st = ctr.require_state()
    cgroup = cgroups.from_paths(st.cgroup_paths)
    for pid in cgroup.pids():  # stragglers of a shared pid namespace
        _quiet(lambda pid=pid: os.kill(pid, _signal.SIGKILL))
    cgroup.destroy()
    ctr.remove()
    if st.hooks.get("poststop"):
        _poststop(st.hooks, st.hook_state(STOPPED))


def _poststop(hooks_doc: dict[str, Any], hook_state: dict[str, Any]) -> None:
    """poststop hooks: a failure is a warning, and the delete still succeeds."""
    from pyrt import log
    from pyrt.linux import hooks

    try:
        hooks.run_all(hooks_doc, "poststop", hook_state)
    except PyrtError as e:
        log.warning(str(e))


# ---------------------------------------------------------------- pause, resume, ps

def pause(ctr: Container) -> None:
    """Freeze the container (allowed when created or running, as in runc)."""
    st = ctr.require_state()
    status = ctr.status()
    if status not in (CREATED, RUNNING):
        raise PyrtError(f"container {ctr.id}", f"cannot pause a container that is {status}")
    cgroups.from_paths(st.cgroup_paths).freeze(True)


def resume(ctr: Container) -> None:
    st = ctr.require_state()
    status = ctr.status()
    if status != PAUSED:
        raise PyrtError(f"container {ctr.id}", f"cannot resume a container that is {status}")
    cgroups.from_paths(st.cgroup_paths).freeze(False)


def update(ctr: Container, changes: dict[str, Any]) -> None:
    """Write new linux.resources into a created, running or paused container's cgroup."""
    from pyrt.cgroups.update import merge

    st = ctr.require_state()
    if ctr.status() == STOPPED:
        raise PyrtError(f"container {ctr.id}", "container not running")
    if not st.cgroup_paths:
        raise PyrtError(f"container {ctr.id}", "has no cgroup to update (rootless, and no "
                        "cgroup was delegated to the user)")
    merged, touched = merge(st.resources, changes)
    cgroup = cgroups.from_paths(st.cgroup_paths)
    memory = merged.get("memory") or {}
    limit = memory.get("limit") or 0
    if "memory" in touched and memory.get("checkBeforeUpdate") and limit > 0:
        usage = cgroup.memory_usage()
        if usage > limit:
            raise PyrtError("/linux/resources/memory/limit",
                            f"{limit} is below the container's memory usage ({usage})")
    cgroup.apply({key: merged[key] for key in touched})
    st.resources = merged
    ctr.save(st)


def pids(ctr: Container) -> list[int]:
    """Host pids of every process in the container's cgroup."""
    st = ctr.require_state()
    if ctr.status() == STOPPED:
        return []
    if not st.cgroup_paths:
        raise PyrtError(f"container {ctr.id}", "has no cgroup to list its processes from "
                        "(rootless, and no cgroup was delegated to the user)")
    return cgroups.from_paths(st.cgroup_paths).pids()


# ---------------------------------------------------------------- exec

_NS_FILES = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid",
             "mount": "mnt", "cgroup": "cgroup", "time": "time"}


def exec_process(root: str, container_id: str, make_process: Any, *, detach: bool = False,
                 pid_file: str = "", console_socket: str = "", preserve_fds: int = 0,
                 ignore_paused: bool = False) -> int:
    """Run one more process in a running container (runc exec).

    `make_process(bundle)` returns the config.Process to run. Not detached: wait for it
    and return its exit code (128+signal when killed); detached: return 0 once it runs.
    """
    from pyrt import exec_init
    from pyrt.linux import syscalls as sc
    from pyrt.linux import terminal
    from pyrt.linux.sync import Channel

    pid_file = os.path.abspath(pid_file) if pid_file else ""
    with Container.open(root, container_id, shared=True) as ctr:
        st = ctr.require_state()
        status = ctr.status()
        if status in (STOPPED, CREATED) or (status == PAUSED and not ignore_paused):
            hint = " (see --ignore-paused)" if status == PAUSED else ""
            raise PyrtError(f"container {container_id}",
                            f"cannot exec in a {status} container{hint}")
        proc = make_process(st.bundle)
        terminal.check(proc.terminal, console_socket, detach)
        ns_fds = _init_namespaces(st.pid)
        cgroup = cgroups.from_paths(st.cgroup_paths)
        if state.process_start_time(st.pid) != st.start_time:  # died while we opened them
            for fd in ns_fds.values():
                os.close(fd)
            raise PyrtError(f"container {container_id}", "cannot exec in a stopped container")
    cgroup_join = None
    try:
        plan = exec_init.ExecPlan(proc, ns_fds, preserve_fds, st.seccomp)
        plan.cgroup_join = cgroup_join = cgroup.open_self_join()
        if not detach:
            sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)  # the process is our grandchild
        parent_ch, child_ch = Channel.pair()
        # a plain fork: this child stays on the host's side and forks the process (born
        # in the container's cgroup2 cgroup, SelfJoin.fork, where it can be)
        first = os.fork()
        if first == 0:
            parent_ch.close()
            exec_init.child(plan, child_ch)
    finally:
        for fd in ns_fds.values():
            os.close(fd)
        if cgroup_join is not None:
            cgroup_join.close()
    child_ch.close()
    pid = 0
    master = None
    try:
        msg = parent_ch.recv("pid")
        pid = msg["pid"]
        os.waitpid(first, 0)
        cgroup.add(pid, cgroup_join, born_in_cgroup2=msg["born_in_cgroup2"])
        parent_ch.send("go")
        if proc.terminal:
            master = _take_console(parent_ch.recv("console"), console_socket)
        while (msg := parent_ch.recv(("seccomp", "ready")))["type"] == "seccomp":
            from pyrt.linux import seccomp

            seccomp.forward(plan.seccomp, msg, parent_ch, pid, st.hook_state(RUNNING))
        if pid_file:
            _write_pid_file(pid_file, pid)
    except BaseException:
        _quiet(lambda: os.waitpid(first, os.WNOHANG))
        if pid:
            _kill_and_wait(pid)
        if master is not None:
            os.close(master)
        raise
    finally:
        parent_ch.close()
    if detach:
        return 0
    return _wait_foreground(pid, master)


def _init_namespaces(init_pid: int) -> dict[str, int]:
    """fds of the init's namespaces that differ from ours (joining our own user
    namespace again would fail)."""
    fds: dict[str, int] = {}
    for ns_type, name in _NS_FILES.items():
        path = f"/proc/{init_pid}/ns/{name}"
        try:
            if os.readlink(path) == os.readlink(f"/proc/self/ns/{name}"):
                continue
            fds[ns_type] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # a namespace type this kernel lacks
    return fds


# ---------------------------------------------------------------- run

def run(root: str, container_id: str, bundle: str, *, detach: bool = False, keep: bool = False,
        no_subreaper: bool = False, **create_opts: Any) -> int:
    """create + start; in the foreground, wait and return the container's exit code."""
    from pyrt.linux import syscalls as sc

    if not detach and not no_subreaper:
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    ctr, master = create(root, container_id, bundle, detach=detach, **create_opts)
    try:
        try:
            start(ctr)
        except BaseException:
            _quiet(lambda: kill(ctr, _signal.SIGKILL, all_processes=True))
            _quiet(lambda: _wait_dead(ctr.require_state()))
            _quiet(lambda: destroy(ctr))
            raise
        if detach:
            return 0
        pid = ctr.require_state().pid
    finally:
        ctr.close()
    code = _wait_foreground(pid, master)
    if not keep:
        _quiet(lambda: delete(root, container_id, force=True))
    return code


# every signal but these is forwarded to the container, as runc does
_NOT_FORWARDED = {"SIGCHLD", "SIGURG", "SIGWINCH", "SIGKILL", "SIGSTOP"}


def _wait_foreground(pid: int, master: int | None) -> int:
    from pyrt.linux import signals

    def forward(sig: int, _frame: object) -> None:
        _quiet(lambda: os.kill(pid, sig))

    for name, num in signals.NAMES.items():
        if name not in _NOT_FORWARDED:
            _quiet(lambda num=num: _signal.signal(num, forward))
    status: list[int] = []

    def reap(block: bool) -> bool:
        """Reap children (we are their subreaper); True once the init is among them."""
        while not status:
            try:
                child, code = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                status.append(255 << 8)
                break
            if child == 0:
                return False
            if child == pid:
                status.append(code)
        return True

    if master is not None:
        from pyrt.linux import terminal

        try:
            terminal.relay(master, lambda: reap(False))
        finally:
            os.close(master)
    reap(True)
    code = os.waitstatus_to_exitcode(status[0])
    return 128 - code if code < 0 else code


# ---------------------------------------------------------------- list

def list_containers(root: str) -> list[dict[str, Any]]:
    import pwd

    out = []
    for container_id in state.list_ids(root):
        try:
            ctr = Container.open(root, container_id, shared=True)
        except PyrtError:
            continue
        with ctr:
            if ctr.state is None:
                continue
            doc = ctr.oci_state()
            uid = os.stat(ctr.dir).st_uid
            try:
                doc["owner"] = pwd.getpwuid(uid).pw_name
            except KeyError:
                doc["owner"] = f"#{uid}"
            out.append(doc)
    return out
