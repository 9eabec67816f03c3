"""linux.seccomp: the filter, built with libseccomp and loaded with seccomp(2).

`pyrt create` builds the BPF program before it forks (every problem is then a config
error, and nothing exists yet); the init only loads the finished bytes. State keeps the
program, so `pyrt exec` puts the same filter on the processes it adds, as runc does.

When (runc's order): with process.noNewPrivileges the filter goes on last, right before
the init says it is ready (then only the exec fifo and execve run under it); without
it, loading a filter needs CAP_SYS_ADMIN, so it goes on before the user and the
capabilities are changed.

SCMP_ACT_NOTIFY: the kernel returns a listener fd at load; the init passes it to the
parent, which sends it with the container process state to linux.seccomp.listenerPath
(runtime-spec config-linux.md, "The Container Process State").

Left as in runc: the -ENOSYS stub in front of a denying filter (seccomp_enosys.py);
unknown syscall names are skipped (they may be newer than this libseccomp, or of
another arch); a rule whose action is the default one is dropped; several conditions
on one argument make one rule each (alternatives); SCMP_ACT_KILL kills the thread;
ERRNO and TRACE default to EPERM; SECCOMP_FILTER_FLAG_TSYNC is accepted and ignored
(the init has one thread); with no "flags" at all SECCOMP_FILTER_FLAG_SPEC_ALLOW is
set when the kernel has it (runc >= 1.2).
"""

from __future__ import annotations

import os

from pyrt.errors import ConfigError, PyrtError, oserror
from pyrt.linux import seccomp_enosys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrt.config import Seccomp, Syscall
    from pyrt.linux.sync import Channel

# return values of a filter (linux/seccomp.h; libseccomp's SCMP_ACT_*)
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

ACTIONS = {
    "SCMP_ACT_KILL": RET_KILL_THREAD, "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS, "SCMP_ACT_TRAP": RET_TRAP,
    "SCMP_ACT_ERRNO": RET_ERRNO, "SCMP_ACT_TRACE": RET_TRACE, "SCMP_ACT_ALLOW": RET_ALLOW,
    "SCMP_ACT_LOG": RET_LOG, "SCMP_ACT_NOTIFY": RET_USER_NOTIF,
}

# seccomp(2) SECCOMP_SET_MODE_FILTER flags
FLAG_TSYNC = 1
FLAG_LOG = 2
FLAG_SPEC_ALLOW = 4
FLAG_NEW_LISTENER = 8
FLAG_WAIT_KILLABLE_RECV = 32
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": FLAG_WAIT_KILLABLE_RECV,
}

EPERM = 1
_EEXIST = 17
_EFAULT = 14
_NR_SCMP_ERROR = -1  # seccomp_syscall_resolve_name: a name libseccomp does not know
_AT = "/linux/seccomp"


class Program:
    """A built filter: the BPF instructions, the seccomp(2) flags and the listener.
    Made in the parent: the init, in the container's mount namespace, imports nothing."""

    def __init__(self, bpf: bytes, flags: int, listener_path: str = "",
                 listener_metadata: str = "") -> None:
        from pyrt._seccomp import lib

        self.set_filter = lib.pyrt_seccomp_set_filter
        self.bpf = bpf
        self.flags = flags
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata

    @property
    def notify(self) -> bool:
        return bool(self.flags & FLAG_NEW_LISTENER)

    def to_json(self) -> dict[str, Any]:
        return {"bpf": self.bpf.hex(), "flags": self.flags,
                "listenerPath": self.listener_path, "listenerMetadata": self.listener_metadata}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Program:
        return cls(bytes.fromhex(doc["bpf"]), doc["flags"], doc["listenerPath"],
                   doc["listenerMetadata"])

    # In the init (or exec's child): methods, so that nothing is imported there.

    def load(self) -> int:
        """Install the filter on the calling thread; the listener fd, or -1."""
        rc = self.set_filter(self.flags, self.bpf, len(self.bpf) // 8)
        if rc < 0:
            raise PyrtError("seccomp", f"cannot load the filter: {os.strerror(-rc)}")
        return rc if self.notify else -1

    def install(self, ch: Channel) -> None:
        """Load the filter; a listener fd goes to the parent, and we wait until it has
        been passed on (the process may block on it from its next notified syscall)."""
        fd = self.load()
        if fd >= 0:
            ch.send("seccomp", fd=fd)
            os.close(fd)
            ch.recv("seccomp-done")


def action(name: str, errno_ret: int | None) -> int:
    """The filter return value for a spec action (ERRNO and TRACE carry an errno)."""
    value = ACTIONS[name]
    if value in (RET_ERRNO, RET_TRACE):
        value |= EPERM if errno_ret is None else errno_ret
    return value


def conditions(rule: Syscall) -> list[list[tuple[int, str, int, int]]]:
    """The rules one syscall of `rule` becomes, each a list of (index, op, value,
    valueTwo) that must all match. As runc: when two conditions test the same
    argument, each condition is a rule of its own (they are alternatives)."""
    conds = [(a.index, a.op, a.value, a.valueTwo) for a in rule.args]
    if len({c[0] for c in conds}) < len(conds):
        return [[c] for c in conds]
    return [conds]


def filter_flags(sec: Seccomp, notify: bool) -> int:
    """seccomp(2) flags for the config (already checked against config.SECCOMP_FLAGS)."""
    if sec.flags is None:
        flags = FLAG_SPEC_ALLOW if flag_supported(FLAG_SPEC_ALLOW) else 0
    else:
        flags = 0
        for i, name in enumerate(sec.flags):
            bit = FLAGS[name]
            if not flag_supported(bit):
                raise ConfigError(f"{_AT}/flags/{i}", f"{name} is not supported by this kernel")
            flags |= bit
    flags &= ~FLAG_TSYNC  # one thread: nothing to synchronise (and it excludes a listener)
    if notify:
        return flags | FLAG_NEW_LISTENER
    return flags & ~FLAG_WAIT_KILLABLE_RECV  # it only qualifies a listener


def flag_supported(bit: int) -> bool:
    """The kernel knows the flag: a filter-less probe fails with EFAULT, not EINVAL."""
    from pyrt._seccomp import ffi, lib

    if bit == FLAG_WAIT_KILLABLE_RECV:
        bit |= FLAG_NEW_LISTENER  # never valid alone
    return bool(lib.pyrt_seccomp_set_filter(bit, ffi.NULL, 0) == -_EFAULT)


def build(sec: Seccomp) -> Program | None:
    """The filter for linux.seccomp (checked by config.seccomp_problems), or None when
    it has neither a default action nor rules (as runc: no filter). ConfigError when
    libseccomp or the kernel refuses a part of it."""
    if not sec.defaultAction and not sec.syscalls:
        return None
    from pyrt._seccomp import ffi, lib

    default = action(sec.defaultAction, sec.defaultErrnoRet)
    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise ConfigError(f"{_AT}/defaultAction", "libseccomp refuses this action")
    tokens = []
    try:
        for i, arch in enumerate(sec.architectures):
            token = arch_token(arch)
            if not token:
                raise ConfigError(f"{_AT}/architectures/{i}",
                                  f"{arch} is not supported by libseccomp {version()}")
            tokens.append(token)
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -_EEXIST:
                raise ConfigError(f"{_AT}/architectures/{i}", os.strerror(-rc))
        if len(sec.syscalls) > 32:  # a binary tree of syscalls, as runc asks for
            lib.seccomp_attr_set(ctx, lib.SCMP_FLTATR_CTL_OPTIMIZE, 2)
        notify = False
        for i, rule in enumerate(sec.syscalls):
            act = action(rule.action, rule.errnoRet)
            if act == default:
                continue
            notify = notify or act == RET_USER_NOTIF
            _add_rule(ctx, act, rule, f"{_AT}/syscalls/{i}")
        bpf = _export(ctx)
    finally:
        lib.seccomp_release(ctx)
    if seccomp_enosys.wanted(default):
        bpf = seccomp_enosys.stub(last_syscalls(tokens, sec.syscalls)) + bpf
    return Program(bpf, filter_flags(sec, notify), sec.listenerPath, sec.listenerMetadata)


def last_syscalls(tokens: list[int], rules: list[Syscall]) -> dict[int, int]:
    """The largest syscall number the rules name, for each arch token that has one."""
    from pyrt._seccomp import lib

    names = {name.encode() for rule in rules for name in rule.names}
    last = {}
    for token in dict.fromkeys(tokens):
        nr = max((lib.seccomp_syscall_resolve_name_arch(token, n) for n in names), default=0)
        if nr > 0:
            last[token] = nr
    return last


def _add_rule(ctx: Any, act: int, rule: Syscall, ptr: str) -> None:
    from pyrt._seccomp import ffi, lib

    groups = conditions(rule)
    for j, name in enumerate(rule.names):
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr == _NR_SCMP_ERROR:
            continue  # as runc: not a syscall of this arch or this libseccomp
        for group in groups:
            cmps = ffi.new("struct scmp_arg_cmp[]", max(len(group), 1))
            for k, (index, op, value, value_two) in enumerate(group):
                cmps[k].arg = index
                cmps[k].op = getattr(lib, op)
                cmps[k].datum_a = value
                cmps[k].datum_b = value_two
            rc = lib.seccomp_rule_add_array(ctx, act, nr, len(group), cmps)
            if rc < 0:
                raise ConfigError(f"{ptr}/names/{j}",
                                  f"libseccomp refuses the rule for {name}: {os.strerror(-rc)}")


def _export(ctx: Any) -> bytes:
    from pyrt._seccomp import lib

    fd = os.memfd_create("pyrt-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise PyrtError("seccomp", f"cannot build the filter: {os.strerror(-rc)}")
        return os.pread(fd, os.lseek(fd, 0, os.SEEK_END), 0)
    finally:
        os.close(fd)


def arch_token(name: str) -> int:
    """libseccomp's token for SCMP_ARCH_<NAME>, 0 when this libseccomp lacks it."""
    from pyrt._seccomp import lib

    return int(lib.seccomp_arch_resolve_name(name.removeprefix("SCMP_ARCH_").lower().encode()))


def version() -> str:
    from pyrt._seccomp import lib

    v = lib.seccomp_version()
    return f"{v.major}.{v.minor}.{v.micro}"


# ---------------------------------------------------------------- in the parent

def send_to_listener(program: Program, fd: int, pid: int, state: dict[str, Any]) -> None:
    """The container process state and the listener fd (SCM_RIGHTS) to listenerPath,
    one connection each; closes fd."""
    import _socket

    from pyrt import OCI_VERSION, jsonio

    doc: dict[str, Any] = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid,
                           "state": state}
    if program.listener_metadata:
        doc["metadata"] = program.listener_metadata
    data = jsonio.dumps(doc, compact=True).encode()
    path = program.listener_path
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        try:
            sock.connect(path)
            fds = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, "little"))]
            sent = sock.sendmsg([data], fds)
            if sent < len(data):
                sock.sendall(data[sent:])
        finally:
            sock.close()
    except OSError as e:
        raise oserror(f"seccomp listener {path}", e) from None
    finally:
        os.close(fd)


def forward(program: Program | None, msg: dict[str, Any], ch: Channel, pid: int,
            state: dict[str, Any]) -> None:
    """Handle a "seccomp" message of an init or exec child: pass its fd on, let it go."""
    if program is None or not program.listener_path or "fd" not in msg:
        if "fd" in msg:
            os.close(msg["fd"])
        raise PyrtError("container init", "sent a seccomp fd nobody asked for")
    send_to_listener(program, msg["fd"], pid, state)
    ch.send("seccomp-done")


# ---------------------------------------------------------------- pyrt features

def features() -> dict[str, Any]:
    """The linux.seccomp part of `pyrt features` (runtime-spec features-linux.md)."""
    from pyrt.config import SECCOMP_ARCHS, SECCOMP_FLAGS, SECCOMP_OPERATORS

    try:
        from pyrt._seccomp import ffi, lib
    except ImportError:
        return {"enabled": False}
    if lib.pyrt_seccomp_set_filter(0, ffi.NULL, 0) != -_EFAULT:
        return {"enabled": False}  # no CONFIG_SECCOMP_FILTER
    return {
        "enabled": True,
        "actions": sorted(ACTIONS),
        "operators": sorted(SECCOMP_OPERATORS),
        "archs": sorted(a for a in SECCOMP_ARCHS if arch_token(a)),
        "knownFlags": list(SECCOMP_FLAGS),
        "supportedFlags": [f for f in SECCOMP_FLAGS if flag_supported(FLAGS[f])],
    }
