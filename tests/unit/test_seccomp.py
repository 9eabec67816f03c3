"""linux.seccomp: the typed parse, the checks, and the filter pyrt builds with libseccomp.

The filters are real: a forked child sets no_new_privs (so no privilege is needed),
loads the program and reports what its syscalls returned.
"""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from pyrt import config
from pyrt.errors import ConfigError
from pyrt.linux import seccomp

PR_SET_NO_NEW_PRIVS = 38


def parse(doc: dict[str, Any]) -> config.Seccomp:
    return config._seccomp(doc, "/linux/seccomp")


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.what, p.why) for p in config.seccomp_problems(parse(doc))]


FULL = {
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "listenerPath": "/run/agent.sock", "listenerMetadata": "m",
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["kill"], "action": "SCMP_ACT_NOTIFY",
         "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 0xFF, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["mkdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
    ],
}


# ---------------------------------------------------------------- parse and checks

def test_parse_full_profile() -> None:
    sec = parse(FULL)
    assert sec.defaultAction == "SCMP_ACT_ERRNO" and sec.defaultErrnoRet == 38
    assert sec.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert sec.flags == ["SECCOMP_FILTER_FLAG_LOG"]
    assert (sec.listenerPath, sec.listenerMetadata) == ("/run/agent.sock", "m")
    assert sec.syscalls[0] == config.Syscall(names=["read", "write"], action="SCMP_ACT_ALLOW")
    assert sec.syscalls[1].args == [
        config.SeccompArg(index=1, value=9, op="SCMP_CMP_EQ"),
        config.SeccompArg(index=0, value=0xFF, valueTwo=1, op="SCMP_CMP_MASKED_EQ")]
    assert sec.syscalls[2].errnoRet == 5
    assert problems(FULL) == []


def test_parse_defaults() -> None:
    sec = parse({"defaultAction": "SCMP_ACT_ALLOW", "flags": None})
    assert sec.flags is None  # absent, not empty: see seccomp.filter_flags
    assert sec.syscalls == [] and sec.architectures == [] and sec.defaultErrnoRet is None
    assert parse({"defaultAction": "SCMP_ACT_ALLOW", "flags": []}).flags == []


def test_whole_config_parses_seccomp() -> None:
    doc = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
           "linux": {"seccomp": {"defaultAction": "SCMP_ACT_BOGUS"}}}
    c = config.parse_types(doc)
    assert isinstance(c.linux.seccomp, config.Seccomp) and c.unsupported == []
    with pytest.raises(ConfigError) as info:
        config.parse(doc)
    assert info.value.what == "/linux/seccomp/defaultAction"


@pytest.mark.parametrize("doc,ptr", [
    ({"defaultAction": 1}, "/linux/seccomp/defaultAction"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": -1},
     "/linux/seccomp/defaultErrnoRet"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": "SCMP_ARCH_X86"},
     "/linux/seccomp/architectures"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "mkdir", "action": "x"}]},
     "/linux/seccomp/syscalls/0/names"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"]}]},
     "/linux/seccomp/syscalls/0/action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}]}]},
     "/linux/seccomp/syscalls/0/args/0/value"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "valueTwo": "2", "op": "SCMP_CMP_EQ"}]}]},
     "/linux/seccomp/syscalls/0/args/0/valueTwo"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1}]}]},
     "/linux/seccomp/syscalls/0/args/0/op"),
])
def test_wrong_types_point_at_the_field(doc: dict[str, Any], ptr: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(doc)
    assert info.value.what == ptr


RULE = {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}


def _rule(**kw: Any) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{**RULE, **kw}]}


@pytest.mark.parametrize("doc,ptr,why", [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "/linux/seccomp/defaultAction", "unknown action"),
    ({"syscalls": [RULE]}, "/linux/seccomp/defaultAction", "is required"),
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"},
     "/linux/seccomp/defaultAction", "cannot be the default"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
     "/linux/seccomp/defaultErrnoRet", "takes no errno"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
     "/linux/seccomp/architectures/0", "unknown architecture"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]},
     "/linux/seccomp/flags/0", "unknown flag"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"},
     "/linux/seccomp/listenerMetadata", "needs a listenerPath"),
    (_rule(action="SCMP_ACT_NOPE"), "/linux/seccomp/syscalls/0/action", "unknown action"),
    (_rule(action="SCMP_ACT_LOG", errnoRet=1), "/linux/seccomp/syscalls/0/errnoRet",
     "takes no errno"),
    (_rule(errnoRet=65536), "/linux/seccomp/syscalls/0/errnoRet", "at most 65535"),
    (_rule(names=[]), "/linux/seccomp/syscalls/0/names", "at least one"),
    (_rule(names=["mkdir", ""]), "/linux/seccomp/syscalls/0/names/1", "must not be empty"),
    (_rule(args=[{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]),
     "/linux/seccomp/syscalls/0/args/0/index", "0 to 5"),
    (_rule(args=[{"index": 0, "value": 0, "op": "SCMP_CMP_SOMEWHAT"}]),
     "/linux/seccomp/syscalls/0/args/0/op", "unknown operator"),
    (_rule(action="SCMP_ACT_NOTIFY"), "/linux/seccomp/listenerPath", "needs a listenerPath"),
    ({**_rule(action="SCMP_ACT_NOTIFY", names=["mkdir", "write"]), "listenerPath": "/x"},
     "/linux/seccomp/syscalls/0/names/1", "cannot be used for write"),
    ({**_rule(action="SCMP_ACT_NOTIFY", names=["sendmsg"]), "listenerPath": "/x"},
     "/linux/seccomp/syscalls/0/names/0", "cannot be used for sendmsg"),
])
def test_problems(doc: dict[str, Any], ptr: str, why: str) -> None:
    found = problems(doc)
    assert found and found[0][0] == ptr and why in found[0][1], found


def test_no_default_action_and_no_rules_is_no_filter() -> None:
    assert problems({}) == []
    assert seccomp.build(parse({})) is None


def test_errno_and_trace_take_an_errno() -> None:
    assert problems({**_rule(errnoRet=0), "defaultErrnoRet": 2,
                     "defaultAction": "SCMP_ACT_TRACE"}) == []


# ---------------------------------------------------------------- actions, conditions, flags

def test_action_values() -> None:
    assert seccomp.action("SCMP_ACT_KILL", None) == 0  # the thread, as runc and libseccomp
    assert seccomp.action("SCMP_ACT_KILL_THREAD", None) == 0
    assert seccomp.action("SCMP_ACT_KILL_PROCESS", None) == 0x80000000
    assert seccomp.action("SCMP_ACT_TRAP", None) == 0x00030000
    assert seccomp.action("SCMP_ACT_ERRNO", None) == 0x00050000 | errno.EPERM
    assert seccomp.action("SCMP_ACT_ERRNO", 38) == 0x00050000 | 38
    assert seccomp.action("SCMP_ACT_TRACE", None) == 0x7FF00000 | errno.EPERM
    assert seccomp.action("SCMP_ACT_TRACE", 7) == 0x7FF00007
    assert seccomp.action("SCMP_ACT_LOG", None) == 0x7FFC0000
    assert seccomp.action("SCMP_ACT_ALLOW", None) == 0x7FFF0000
    assert seccomp.action("SCMP_ACT_NOTIFY", None) == 0x7FC00000
    assert set(seccomp.ACTIONS) == set(config.SECCOMP_ACTIONS)


def _args(*specs: tuple[int, str, int, int]) -> config.Syscall:
    return config.Syscall(names=["x"], action="SCMP_ACT_ERRNO", args=[
        config.SeccompArg(index=i, op=op, value=v, valueTwo=v2) for i, op, v, v2 in specs])


def test_conditions_on_distinct_arguments_make_one_rule() -> None:
    rule = _args((0, "SCMP_CMP_EQ", 1, 0), (1, "SCMP_CMP_GT", 2, 0))
    assert seccomp.conditions(rule) == [[(0, "SCMP_CMP_EQ", 1, 0), (1, "SCMP_CMP_GT", 2, 0)]]


def test_conditions_on_one_argument_make_a_rule_each() -> None:
    rule = _args((1, "SCMP_CMP_EQ", 1, 0), (1, "SCMP_CMP_EQ", 2, 0), (0, "SCMP_CMP_NE", 3, 0))
    assert seccomp.conditions(rule) == [[(1, "SCMP_CMP_EQ", 1, 0)], [(1, "SCMP_CMP_EQ", 2, 0)],
                                        [(0, "SCMP_CMP_NE", 3, 0)]]


def test_no_conditions_is_one_unconditional_rule() -> None:
    assert seccomp.conditions(_args()) == [[]]


def _flags(flags: list[str] | None, notify: bool = False) -> int:
    return seccomp.filter_flags(parse({"defaultAction": "SCMP_ACT_ALLOW", "flags": flags}),
                                notify)


def test_flags_as_runc() -> None:
    # this kernel has SPEC_ALLOW (4.17+): runc >= 1.2 sets it when "flags" is absent
    assert seccomp.flag_supported(seccomp.FLAG_SPEC_ALLOW)
    assert _flags(None) == seccomp.FLAG_SPEC_ALLOW
    assert _flags([]) == 0
    assert _flags(["SECCOMP_FILTER_FLAG_TSYNC"]) == 0  # one thread: accepted, ignored
    assert _flags(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]) == 2 | 4
    assert _flags([], notify=True) == seccomp.FLAG_NEW_LISTENER
    # WAIT_KILLABLE_RECV qualifies a listener; alone the kernel refuses it
    assert _flags(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]) == 0
    assert _flags(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"], notify=True) == 8 | 32


def test_flag_the_kernel_lacks_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # (this kernel has every flag: an older one is simulated)
    monkeypatch.setattr(seccomp, "flag_supported", lambda bit: bit != seccomp.FLAG_LOG)
    with pytest.raises(ConfigError) as info:
        _flags(["SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"])
    assert info.value.what == "/linux/seccomp/flags/1"
    assert _flags(None) == seccomp.FLAG_SPEC_ALLOW


# ---------------------------------------------------------------- building

def build(doc: dict[str, Any]) -> seccomp.Program:
    sec = parse(doc)
    assert problems(doc) == []
    program = seccomp.build(sec)
    assert program is not None
    return program


def test_build_gives_bpf_and_flags() -> None:
    program = build({**FULL, "flags": []})
    assert program.bpf and len(program.bpf) % 8 == 0
    assert program.flags == seccomp.FLAG_NEW_LISTENER and program.notify
    assert (program.listener_path, program.listener_metadata) == ("/run/agent.sock", "m")
    again = seccomp.Program.from_json(program.to_json())
    assert (again.bpf, again.flags, again.listener_path, again.listener_metadata) == (
        program.bpf, program.flags, program.listener_path, program.listener_metadata)
    assert not build({"defaultAction": "SCMP_ACT_ALLOW"}).notify


def test_unknown_names_are_skipped() -> None:
    plain = build(_rule(names=["mkdir"]))
    assert build(_rule(names=["mkdir", "no_such_syscall"])).bpf == plain.bpf
    assert build(_rule(names=["no_such_syscall"])).bpf == build(_rule(names=[
        "also_not_one"])).bpf


def test_rule_with_the_default_action_is_dropped() -> None:
    doc = _rule()
    doc["syscalls"].append({"names": ["chmod"], "action": "SCMP_ACT_ALLOW"})
    assert build(doc).bpf == build(_rule()).bpf


def test_another_errno_is_another_action() -> None:
    assert build(_rule(errnoRet=2)).bpf != build(_rule()).bpf


def test_arch_libseccomp_lacks_is_a_config_error() -> None:
    if seccomp.arch_token("SCMP_ARCH_LOONGARCH64"):
        pytest.skip("this libseccomp has loongarch64")
    with pytest.raises(ConfigError) as info:
        seccomp.build(parse({"defaultAction": "SCMP_ACT_ALLOW",
                             "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_LOONGARCH64"]}))
    assert info.value.what == "/linux/seccomp/architectures/1"
    assert "libseccomp" in info.value.why


def test_native_arch_listed_again_is_fine() -> None:
    build({"defaultAction": "SCMP_ACT_ALLOW",
           "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]})


# ---------------------------------------------------------------- loading (real filters)

def _in_child(program: seccomp.Program, *calls: Any) -> list[int]:
    """Fork; the child sets no_new_privs, loads `program`, then runs each call and
    reports its errno (0: success). The filter never reaches this process."""
    from pyrt.linux import syscalls as sc

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        results = []
        try:
            sc.prctl(PR_SET_NO_NEW_PRIVS, 1)
            program.load()
            for call in calls:
                try:
                    call()
                    results.append(0)
                except OSError as e:
                    results.append(e.errno or -1)
            os.write(w, ",".join(map(str, results)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    return [int(x) for x in out.split(",")] if out else []


def test_loaded_filter_denies_with_its_errno(tmp_path: Any) -> None:
    program = build({"defaultAction": "SCMP_ACT_ALLOW", "flags": [], "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSPC},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
         "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
    ]})
    (tmp_path / "d").mkdir()
    me = os.getpid()
    assert _in_child(program,
                     lambda: os.mkdir(tmp_path / "x"),
                     lambda: os.rmdir(tmp_path / "d"),
                     lambda: os.kill(me, 0),
                     lambda: os.kill(me, 28),  # SIGWINCH: ignored by this process
                     lambda: os.stat(tmp_path)) == [
        errno.ENOSPC, errno.EPERM, errno.EXDEV, 0, 0]
    assert not (tmp_path / "x").exists() and (tmp_path / "d").exists()


DENIED = ["acct", "add_key", "bpf", "chroot", "delete_module", "fanotify_init",
          "finit_module", "init_module", "ioperm", "iopl", "kcmp", "kexec_load", "keyctl",
          "lookup_dcookie", "mbind", "mount", "move_pages", "name_to_handle_at",
          "open_by_handle_at", "perf_event_open", "pivot_root", "process_vm_readv",
          "process_vm_writev", "quotactl", "reboot", "request_key", "set_mempolicy",
          "setns", "settimeofday", "swapon", "swapoff", "umount2", "unshare",
          "userfaultfd", "vhangup", "mkdir", "mkdirat"]


def test_many_rules_binary_tree(tmp_path: Any) -> None:
    # over 32 rules: the filter is a binary tree of syscalls, as runc asks libseccomp
    assert len(DENIED) > 32
    program = build({"defaultAction": "SCMP_ACT_ALLOW", "flags": [], "syscalls": [
        {"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSPC}
        for name in DENIED]})
    (tmp_path / "d").mkdir()
    assert _in_child(program, lambda: os.mkdir(tmp_path / "x"), lambda: os.stat(tmp_path),
                     lambda: os.rmdir(tmp_path / "d")) == [errno.ENOSPC, 0, 0]


def test_load_without_no_new_privs_or_cap_sys_admin_fails() -> None:
    program = build({"defaultAction": "SCMP_ACT_ALLOW"})
    if os.geteuid() == 0:
        pytest.skip("root holds CAP_SYS_ADMIN")
    with pytest.raises(Exception, match="cannot load the filter"):
        program.load()


# ---------------------------------------------------------------- the -ENOSYS stub

def _x86_64_syscalls() -> dict[str, int]:
    """Syscall numbers from the kernel headers (linux-libc-dev)."""
    import re

    text = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").read_text()
    return {m[1]: int(m[2]) for m in re.finditer(r"#define __NR_(\w+) (\d+)", text)}


def _run_stub(code: bytes, arch: int, nr: int) -> int | str:
    """Run the stub's classic BPF on (arch, nr): its return value, or "filter" when it
    falls through to the filter behind it."""
    insns = [struct.unpack("=HBBI", code[i:i + 8]) for i in range(0, len(code), 8)]
    acc, pc = 0, 0
    while pc < len(insns):
        op, jt, jf, k = insns[pc]
        if op == 0x20:  # ld [k]
            acc = {0: nr, 4: arch}[k]
        elif op == 0x06:  # ret k
            return k
        elif op == 0x05:  # ja k
            pc += k
        else:
            hit = {0x15: acc == k, 0x25: acc > k, 0x45: bool(acc & k)}[op]
            pc += jt if hit else jf
        pc += 1
    assert pc == len(insns)
    return "filter"


def test_enosys_stub_jumps() -> None:
    from pyrt.linux import seccomp_enosys as enosys

    x86_64, i386, x32, aarch64 = 0xC000003E, 0x40000003, 0x4000003E, 0xC00000B7
    bit = enosys.X32_SYSCALL_BIT
    code = enosys.stub({x86_64: 300, i386: 400, x32: bit | 200})
    enosys_ret = 0x00050000 | errno.ENOSYS
    for arch, nr, want in [
        (x86_64, 0, "filter"), (x86_64, 300, "filter"), (x86_64, 301, enosys_ret),
        (x86_64, 999, enosys_ret), (x86_64, bit | 200, "filter"),
        (x86_64, bit | 201, enosys_ret), (i386, 400, "filter"), (i386, 401, enosys_ret),
        (aarch64, 999, "filter"),
    ]:
        assert _run_stub(code, arch, nr) == want, (hex(arch), nr)
    only_x32 = enosys.stub({x32: bit | 200})
    assert _run_stub(only_x32, x86_64, 999) == "filter"
    assert _run_stub(only_x32, x86_64, bit | 201) == enosys_ret
    assert enosys.stub({}) == b""


def test_enosys_stub_only_for_denying_defaults() -> None:
    from pyrt.linux import seccomp_enosys as enosys

    for name in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"):
        assert not enosys.wanted(seccomp.action(name, None))
    assert not enosys.wanted(seccomp.action("SCMP_ACT_ERRNO", errno.ENOSYS))
    for name in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"):
        assert enosys.wanted(seccomp.action(name, None))
    denying = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["write"], "action": "SCMP_ACT_ALLOW"}]}
    no_archs = build(denying)
    with_archs = build({**denying, "architectures": ["SCMP_ARCH_X86_64"]})
    assert len(with_archs.bpf) > len(no_archs.bpf)  # as runc: no architectures, no stub
    allowing = _rule()
    assert build(allowing).bpf == build({**allowing, "architectures": ["SCMP_ARCH_X86_64"]}).bpf


def test_syscalls_newer_than_the_profile_get_enosys(tmp_path: Any) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("syscall numbers of x86_64")
    numbers = _x86_64_syscalls()
    allowed = [n for n, nr in numbers.items() if nr <= 300 and n not in ("mkdir", "mkdirat")]
    program = build({"defaultAction": "SCMP_ACT_ERRNO", "flags": [],
                     "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                     "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]})
    assert numbers["pidfd_open"] > 300
    assert _in_child(program, lambda: os.mkdir(tmp_path / "x"),
                     lambda: os.close(os.pidfd_open(os.getpid())),
                     lambda: os.stat(tmp_path)) == [errno.EPERM, errno.ENOSYS, 0]
