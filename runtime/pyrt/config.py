"""Typed model of config.json (runtime-spec v1.3.0, Linux) and the checks a schema cannot make.

`load(bundle)` reads and parses the bundle's config.json into records, checking every
type on the way, and raises ConfigError with the JSON pointer of the first problem.
"""

from __future__ import annotations

import os

from pyrt import jsonio
from pyrt.errors import ConfigError, PyrtError
from pyrt.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, TypeVar

    T = TypeVar("T")

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
# the five capability sets of process.capabilities
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
# capability names by number (linux/capability.h)
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
SECCOMP_ACTIONS = (
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
)
SECCOMP_OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
                     "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
SECCOMP_ARCHS = (
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
)
SECCOMP_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                 "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
RLIMIT_TYPES = (
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
    "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
)


@record
class Root:
    path: str
    readonly: bool = False


@record
class IDMapping:
    containerID: int
    hostID: int
    size: int


@record
class Mount:
    destination: str
    type: str = ""
    source: str = ""
    options: list[str] = field(default_factory=list)
    uidMappings: list[IDMapping] = field(default_factory=list)
    gidMappings: list[IDMapping] = field(default_factory=list)


@record
class Rlimit:
    type: str
    hard: int
    soft: int


@record
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additionalGids: list[int] = field(default_factory=list)
    username: str = ""


@record
class Capabilities:
    bounding: list[str] = field(default_factory=list)
    effective: list[str] = field(default_factory=list)
    inheritable: list[str] = field(default_factory=list)
    permitted: list[str] = field(default_factory=list)
    ambient: list[str] = field(default_factory=list)


@record
class Process:
    args: list[str]
    cwd: str
    terminal: bool = False
    consoleSize: dict[str, int] | None = None
    env: list[str] = field(default_factory=list)
    user: User = field(default_factory=User)
    rlimits: list[Rlimit] = field(default_factory=list)
    capabilities: Capabilities | None = None
    noNewPrivileges: bool = False
    oomScoreAdj: int | None = None
    apparmorProfile: str = ""
    selinuxLabel: str = ""


@record
class Namespace:
    type: str
    path: str = ""


@record
class Device:
    type: str
    path: str
    major: int = 0
    minor: int = 0
    fileMode: int | None = None
    uid: int | None = None
    gid: int | None = None


@record
class SeccompArg:
    index: int
    value: int
    op: str
    valueTwo: int = 0


@record
class Syscall:
    names: list[str]
    action: str
    errnoRet: int | None = None
    args: list[SeccompArg] = field(default_factory=list)


@record
class Seccomp:
    defaultAction: str = ""
    defaultErrnoRet: int | None = None
    architectures: list[str] = field(default_factory=list)
    flags: list[str] | None = None  # None (absent) differs from []: see linux/seccomp.py
    listenerPath: str = ""
    listenerMetadata: str = ""
    syscalls: list[Syscall] = field(default_factory=list)


@record
class Linux:
    namespaces: list[Namespace] = field(default_factory=list)
    uidMappings: list[IDMapping] = field(default_factory=list)
    gidMappings: list[IDMapping] = field(default_factory=list)
    timeOffsets: dict[str, dict[str, int]] = field(default_factory=dict)
    devices: list[Device] = field(default_factory=list)
    cgroupsPath: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    rootfsPropagation: str = ""
    sysctl: dict[str, str] = field(default_factory=dict)
    maskedPaths: list[str] = field(default_factory=list)
    readonlyPaths: list[str] = field(default_factory=list)
    mountLabel: str = ""
    seccomp: Seccomp | None = None

    def namespace(self, ns_type: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None


@record
class Config:
    ociVersion: str
    root: Root
    process: Process | None = None
    mounts: list[Mount] = field(default_factory=list)
    hostname: str = ""
    domainname: str = ""
    hooks: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    linux: Linux = field(default_factory=Linux)
    unsupported: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- parsing

_SIMPLE = {str: "a string", bool: "a boolean", int: "an integer", dict: "an object"}


def _expect(value: Any, kind: type, ptr: str) -> Any:
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(ptr, f"must be {_SIMPLE.get(kind, kind.__name__)}")
    return value


def _list(value: Any, ptr: str, item: Callable[[Any, str], T]) -> list[T]:
    if not isinstance(value, list):
        raise ConfigError(ptr, "must be an array")
    return [item(v, f"{ptr}/{i}") for i, v in enumerate(value)]


def _str(v: Any, p: str) -> str:
    return _expect(v, str, p)  # type: ignore[no-any-return]


def _int(v: Any, p: str) -> int:
    return _expect(v, int, p)  # type: ignore[no-any-return]


def _uint(v: Any, p: str) -> int:
    if _int(v, p) < 0:
        raise ConfigError(p, "must not be negative")
    return v  # type: ignore[no-any-return]


def _obj(value: Any, ptr: str, cls: type[T], fields: dict[str, Callable[[Any, str], Any]]) -> T:
    """Build record `cls` from JSON object `value`; unknown keys are ignored as the spec says."""
    _expect(value, dict, ptr)
    kwargs = {}
    for name, conv in fields.items():
        if name in value and value[name] is not None:
            kwargs[name] = conv(value[name], f"{ptr}/{name}")
    try:
        return cls(**kwargs)
    except TypeError as e:
        missing = str(e).split("missing field ")[-1].strip("'")
        raise ConfigError(f"{ptr}/{missing}", "is required") from None


def key(name: str) -> str:
    """An object key as a JSON pointer token (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


def _strmap(v: Any, p: str) -> dict[str, str]:
    for k, item in _expect(v, dict, p).items():
        _str(item, f"{p}/{key(k)}")
    return v  # type: ignore[no-any-return]


def _optional(conv: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda v, p: None if v is None else conv(v, p)


def _typed_dict(types: dict[str, Callable[[Any, str], Any]]) -> Callable[[Any, str], Any]:
    """Check the listed keys of an object; other keys are left to whoever uses them."""
    def check(v: Any, p: str) -> dict[str, Any]:
        for k, item in _expect(v, dict, p).items():
            if k in types:
                types[k](item, f"{p}/{key(k)}")
        return v  # type: ignore[no-any-return]
    return check


def _bool(v: Any, p: str) -> bool:
    return _expect(v, bool, p)  # type: ignore[no-any-return]


_int_or_null = _optional(_int)
_RESOURCES = _typed_dict({
    "memory": _typed_dict(dict.fromkeys(
        ("limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness"), _int_or_null)
        | {"disableOOMKiller": _optional(_bool), "useHierarchy": _optional(_bool),
           "checkBeforeUpdate": _optional(_bool)}),
    "cpu": _typed_dict(dict.fromkeys(
        ("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod"),
        _int_or_null) | {"cpus": _optional(_str), "mems": _optional(_str),
                         "idle": _int_or_null}),
    "pids": _typed_dict({"limit": _int_or_null}),
    "devices": lambda v, p: _list(v, p, _typed_dict({
        "allow": _bool, "type": _optional(_str), "major": _int_or_null,
        "minor": _int_or_null, "access": _optional(_str)})),
    "blockIO": _typed_dict({
        "weight": _optional(_uint), "leafWeight": _optional(_uint),
        "weightDevice": lambda v, p: _list(v, p, _typed_dict({
            "major": _int, "minor": _int, "weight": _optional(_uint),
            "leafWeight": _optional(_uint)})),
    } | dict.fromkeys(
        ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
         "throttleWriteIOPSDevice"),
        lambda v, p: _list(v, p, _typed_dict({"major": _int, "minor": _int, "rate": _uint})))),
    "hugepageLimits": lambda v, p: _list(v, p, _typed_dict({"pageSize": _str, "limit": _uint})),
    "network": _typed_dict({
        "classID": _optional(_uint),
        "priorities": lambda v, p: _list(v, p, _typed_dict({"name": _str, "priority": _uint})),
    }),
    "rdma": lambda v, p: [_typed_dict({"hcaHandles": _optional(_uint),
                                       "hcaObjects": _optional(_uint)})(item, f"{p}/{key(k)}")
                          for k, item in _expect(v, dict, p).items()],
    "unified": _strmap,
})


def _idmap(v: Any, p: str) -> IDMapping:
    return _obj(v, p, IDMapping, {"containerID": _uint, "hostID": _uint, "size": _uint})


def _strlist(v: Any, p: str) -> list[str]:
    return _list(v, p, _str)


def _u64(v: Any, p: str) -> int:
    if _uint(v, p) >= 1 << 64:
        raise ConfigError(p, "must fit in 64 bits")
    return v  # type: ignore[no-any-return]


def _seccomp(v: Any, p: str) -> Seccomp:
    arg: dict[str, Callable[[Any, str], Any]] = {
        "index": _uint, "value": _u64, "valueTwo": _u64, "op": _str}
    rule: dict[str, Callable[[Any, str], Any]] = {
        "names": _strlist, "action": _str, "errnoRet": _uint,
        "args": lambda v, p: _list(v, p, lambda v, p: _obj(v, p, SeccompArg, arg))}
    return _obj(v, p, Seccomp, {
        "defaultAction": _str, "defaultErrnoRet": _uint, "architectures": _strlist,
        "flags": _strlist, "listenerPath": _str, "listenerMetadata": _str,
        "syscalls": lambda v, p: _list(v, p, lambda v, p: _obj(v, p, Syscall, rule)),
    })


def _mount(v: Any, p: str) -> Mount:
    return _obj(v, p, Mount, {
        "destination": _str, "type": _str, "source": _str, "options": _strlist,
        "uidMappings": lambda v, p: _list(v, p, _idmap),
        "gidMappings": lambda v, p: _list(v, p, _idmap),
    })


def _process(v: Any, p: str) -> Process:
    return _obj(v, p, Process, {
        "args": _strlist, "cwd": _str, "terminal": lambda v, p: _expect(v, bool, p),
        "consoleSize": lambda v, p: _obj(v, p, dict, {"height": _uint, "width": _uint}),
        "env": _strlist,
        "user": lambda v, p: _obj(v, p, User, {
            "uid": _uint, "gid": _uint, "umask": _uint,
            "additionalGids": lambda v, p: _list(v, p, _uint), "username": _str,
        }),
        "rlimits": lambda v, p: _list(v, p, lambda v, p: _obj(
            v, p, Rlimit, {"type": _str, "hard": _uint, "soft": _uint})),
        "capabilities": lambda v, p: _obj(v, p, Capabilities, dict.fromkeys(
            CAP_SETS, _strlist)),
        "noNewPrivileges": lambda v, p: _expect(v, bool, p),
        "oomScoreAdj": _int, "apparmorProfile": _str, "selinuxLabel": _str,
    })


def _hook(v: Any, p: str) -> dict[str, Any]:
    hook: dict[str, Any] = _typed_dict({
        "path": _str, "args": _strlist, "env": _strlist, "timeout": _optional(_int)})(v, p)
    if not isinstance(hook.get("path"), str):
        raise ConfigError(f"{p}/path", "is required")
    if not hook["path"].startswith("/"):
        raise ConfigError(f"{p}/path", "must be an absolute path")
    if hook.get("timeout") is not None and hook["timeout"] < 1:
        raise ConfigError(f"{p}/timeout", "must be at least 1 second")
    return hook


def _hooks(v: Any, p: str) -> dict[str, list[dict[str, Any]]]:
    """Hooks by kind; each is checked (path absolute, args/env strings, timeout >= 1)."""
    out = {}
    for kind, items in _expect(v, dict, p).items():
        if items is not None:
            out[kind] = _list(items, f"{p}/{key(kind)}", _hook)
    return out


def parse_process(doc: Any) -> Process:
    """A runtime-spec process object alone (`exec --process`), type-checked."""
    return _process(doc, "")


def _linux(v: Any, p: str) -> Linux:
    return _obj(v, p, Linux, {
        "namespaces": lambda v, p: _list(v, p, lambda v, p: _obj(
            v, p, Namespace, {"type": _str, "path": _str})),
        "uidMappings": lambda v, p: _list(v, p, _idmap),
        "gidMappings": lambda v, p: _list(v, p, _idmap),
        "timeOffsets": lambda v, p: {
            k: _obj(o, f"{p}/{key(k)}", dict, {"secs": _int, "nanosecs": _uint})
            for k, o in _expect(v, dict, p).items()
        },
        "devices": lambda v, p: _list(v, p, lambda v, p: _obj(v, p, Device, {
            "type": _str, "path": _str, "major": _int, "minor": _int,
            "fileMode": _uint, "uid": _uint, "gid": _uint})),
        "cgroupsPath": _str,
        "resources": _RESOURCES,
        "rootfsPropagation": _str,
        "sysctl": _strmap,
        "maskedPaths": _strlist,
        "readonlyPaths": _strlist,
        "mountLabel": _str,
        "seccomp": _seccomp,
    })


# Valid settings pyrt cannot honour yet: `create` refuses them rather than run a container
# without them (a silently skipped hook or seccomp profile would be a security hole).
UNSUPPORTED = (
    ("linux", "intelRdt"), ("linux", "personality"),
    ("linux", "netDevices"), ("linux", "memoryPolicy"), ("process", "ioPriority"),
    ("process", "scheduler"), ("process", "execCPUAffinity"),
)


def _unsupported(doc: dict[str, Any]) -> list[str]:
    found = []
    for path in UNSUPPORTED:
        node: Any = doc
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node:
            found.append("/" + "/".join(path))
    return found


def parse(doc: Any) -> Config:
    """Typed parse of a config.json document plus the semantic checks; raises ConfigError."""
    config = parse_types(doc)
    check(config)
    return config


def parse_types(doc: Any) -> Config:
    """The typed parse alone: the first field of a wrong type raises ConfigError."""
    config = _obj(doc, "", Config, {
        "ociVersion": _str,
        "root": lambda v, p: _obj(v, p, Root, {
            "path": _str, "readonly": lambda v, p: _expect(v, bool, p)}),
        "process": _process,
        "mounts": lambda v, p: _list(v, p, _mount),
        "hostname": _str,
        "domainname": _str,
        "hooks": _hooks,
        "annotations": _strmap,
        "linux": _linux,
    })
    config.unsupported = _unsupported(doc)
    return config


def parse_resources(doc: Any) -> dict[str, Any]:
    """A LinuxResources object on its own (`update --resources`), type-checked."""
    return _RESOURCES(doc, "/linux/resources")  # type: ignore[no-any-return]


def read_text(bundle: str) -> str:
    """The text of `<bundle>/config.json`; PyrtError when it cannot be read as UTF-8."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise PyrtError(f"bundle {bundle}", f"cannot read config.json: {e.strerror}") from None
    except UnicodeDecodeError:
        raise PyrtError(path, "not UTF-8 text") from None


def load(bundle: str) -> Config:
    """Read and parse `<bundle>/config.json`."""
    text = read_text(bundle)
    try:
        doc = jsonio.loads(text)
    except jsonio.JSONError as e:
        raise PyrtError(os.path.join(bundle, "config.json"), str(e)) from None
    return parse(doc)


# ---------------------------------------------------------------- semantic checks

def check(config: Config) -> None:
    """Raise the first semantic problem of a parsed config."""
    for problem in problems(config):
        raise problem


def problems(config: Config) -> Iterator[ConfigError]:
    """What a schema cannot say, checked as runc checks it: every problem, in order."""
    major = config.ociVersion.split(".", 1)[0]
    if major != "1":
        yield ConfigError("/ociVersion", f"unsupported version {config.ociVersion!r}: need 1.x")
    if not config.root.path:
        yield ConfigError("/root/path", "must not be empty")
    if config.process is not None:
        yield from process_problems(config.process)
    linux = config.linux
    seen: set[str] = set()
    for i, ns in enumerate(linux.namespaces):
        ptr = f"/linux/namespaces/{i}/type"
        if ns.type not in NAMESPACE_TYPES:
            yield ConfigError(ptr, f"unknown namespace type {ns.type!r}")
        if ns.type in seen:
            yield ConfigError(ptr, f"duplicate namespace type {ns.type!r}")
        seen.add(ns.type)
        if ns.path and not ns.path.startswith("/"):
            yield ConfigError(f"/linux/namespaces/{i}/path", "must be an absolute path")
    user = linux.namespace("user")
    if user is not None and not user.path and not (linux.uidMappings and linux.gidMappings):
        yield ConfigError("/linux/uidMappings", "a new user namespace needs uid and gid mappings")
    if (linux.uidMappings or linux.gidMappings) and user is None:
        yield ConfigError("/linux/uidMappings", "mappings need a user namespace")
    uts = linux.namespace("uts")
    if config.hostname and (uts is None or uts.path):
        yield ConfigError("/hostname", "setting the hostname needs a new uts namespace")
    if config.domainname and (uts is None or uts.path):
        yield ConfigError("/domainname", "setting the domainname needs a new uts namespace")
    if linux.timeOffsets:
        time_ns = linux.namespace("time")
        if time_ns is None or time_ns.path:
            yield ConfigError("/linux/timeOffsets", "time offsets need a new time namespace")
        for clock in linux.timeOffsets:
            if clock not in ("monotonic", "boottime"):
                yield ConfigError(f"/linux/timeOffsets/{key(clock)}", "unknown clock")
    if linux.rootfsPropagation not in ("", "shared", "slave", "private", "unbindable",
                                       "rshared", "rslave", "rprivate", "runbindable"):
        yield ConfigError("/linux/rootfsPropagation",
                          f"unknown propagation {linux.rootfsPropagation!r}")
    for i, dev in enumerate(linux.devices):
        if dev.type not in ("c", "b", "u", "p"):
            yield ConfigError(f"/linux/devices/{i}/type", f"unknown device type {dev.type!r}")
        if not dev.path.startswith("/"):
            yield ConfigError(f"/linux/devices/{i}/path", "must be an absolute path")
    for i, m in enumerate(config.mounts):
        if not m.destination:
            yield ConfigError(f"/mounts/{i}/destination", "must not be empty")
    yield from _sysctl_problems(config)
    if linux.seccomp is not None:
        yield from seccomp_problems(linux.seccomp)


def process_problems(proc: Process, at: str = "/process") -> Iterator[ConfigError]:
    """The checks of one process object; pointers start with `at`."""
    if not proc.args:
        yield ConfigError(f"{at}/args", "must be a non-empty array of strings")
    if not proc.cwd.startswith("/"):
        yield ConfigError(f"{at}/cwd", "must be an absolute path")
    seen_rlimits: set[str] = set()
    for i, rl in enumerate(proc.rlimits):
        if rl.type not in RLIMIT_TYPES:
            yield ConfigError(f"{at}/rlimits/{i}/type", f"unknown rlimit {rl.type!r}")
        elif rl.type in seen_rlimits:
            yield ConfigError(f"{at}/rlimits/{i}/type", f"duplicate rlimit {rl.type!r}")
        seen_rlimits.add(rl.type)
        if rl.soft > rl.hard:
            yield ConfigError(f"{at}/rlimits/{i}", "soft limit exceeds hard limit")
    caps = proc.capabilities
    for name in CAP_SETS:
        for i, cap in enumerate(getattr(caps, name) if caps else ()):
            if cap.upper() not in CAPABILITIES:
                yield ConfigError(f"{at}/capabilities/{name}/{i}", f"unknown capability {cap!r}")


_NET_SYSCTL = ("net.",)
_IPC_SYSCTL = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def _sysctl_problems(config: Config) -> Iterator[ConfigError]:
    """As runc: a sysctl is allowed only where its namespace is the container's own."""
    ns = config.linux.namespace
    for name in config.linux.sysctl:
        ptr = f"/linux/sysctl/{key(name)}"
        if name.startswith("fs.mqueue.") or name in _IPC_SYSCTL:
            if ns("ipc") is None:
                yield ConfigError(ptr, "needs an ipc namespace")
        elif name.startswith(_NET_SYSCTL):
            if ns("network") is None:
                yield ConfigError(ptr, "needs a network namespace")
        elif name in ("kernel.hostname", "kernel.domainname"):
            if ns("uts") is None:
                yield ConfigError(ptr, "needs a uts namespace")
        else:
            yield ConfigError(ptr, "is not namespaced: it would change the host")


_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
# the init hands the notify fd to pyrt with sendmsg; runc's own hand-off writes
_NOT_NOTIFIABLE = ("write", "sendmsg")


def seccomp_problems(sec: Seccomp, at: str = "/linux/seccomp") -> Iterator[ConfigError]:
    """linux.seccomp against the spec's names and rules (libseccomp checks the rest)."""
    if not sec.defaultAction and not sec.syscalls:
        return  # as runc: no default action and no rules is no filter at all
    yield from _action_problems(sec.defaultAction, sec.defaultErrnoRet, f"{at}/defaultAction",
                                f"{at}/defaultErrnoRet")
    if sec.defaultAction == "SCMP_ACT_NOTIFY":
        yield ConfigError(f"{at}/defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    for i, arch in enumerate(sec.architectures):
        if arch not in SECCOMP_ARCHS:
            yield ConfigError(f"{at}/architectures/{i}", f"unknown architecture {arch!r}")
    for i, flag in enumerate(sec.flags or ()):
        if flag not in SECCOMP_FLAGS:
            yield ConfigError(f"{at}/flags/{i}", f"unknown flag {flag!r}")
    if sec.listenerMetadata and not sec.listenerPath:
        yield ConfigError(f"{at}/listenerMetadata", "needs a listenerPath")
    notify = False
    for i, rule in enumerate(sec.syscalls):
        ptr = f"{at}/syscalls/{i}"
        yield from _action_problems(rule.action, rule.errnoRet, f"{ptr}/action",
                                    f"{ptr}/errnoRet")
        if not rule.names:
            yield ConfigError(f"{ptr}/names", "must name at least one syscall")
        for j, name in enumerate(rule.names):
            if not name:
                yield ConfigError(f"{ptr}/names/{j}", "must not be empty")
            elif rule.action == "SCMP_ACT_NOTIFY" and name in _NOT_NOTIFIABLE:
                yield ConfigError(f"{ptr}/names/{j}",
                                  f"SCMP_ACT_NOTIFY cannot be used for {name}")
        notify = notify or rule.action == "SCMP_ACT_NOTIFY"
        for k, arg in enumerate(rule.args):
            if arg.index > 5:
                yield ConfigError(f"{ptr}/args/{k}/index", "must be 0 to 5")
            if arg.op not in SECCOMP_OPERATORS:
                yield ConfigError(f"{ptr}/args/{k}/op", f"unknown operator {arg.op!r}")
    if notify and not sec.listenerPath:
        yield ConfigError(f"{at}/listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath")


def _action_problems(action: str, errno_ret: int | None, ptr: str, errno_ptr: str
                     ) -> Iterator[ConfigError]:
    if action not in SECCOMP_ACTIONS:
        yield ConfigError(ptr, f"unknown action {action!r}" if action else "is required")
    elif errno_ret is not None and action not in _ERRNO_ACTIONS:
        yield ConfigError(errno_ptr, f"{action} takes no errno")
    if errno_ret is not None and errno_ret > 0xFFFF:
        yield ConfigError(errno_ptr, "must be at most 65535")
