"""linux.resources.devices on cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE
attached to the container's cgroup with bpf(2) (cgroup2 has no devices controller).

Imported only by the v2 driver when it applies device rules.

The program answers one question per device access: may this (type, major, minor) be
opened for read/write or mknod'ed?  Its context is struct bpf_cgroup_dev_ctx: u32
access_type (access bits << 16 | device type), u32 major, u32 minor; it returns 1 to
allow, 0 to deny (EPERM).

Rule semantics (those of the devices controller of cgroup v1, where each rule written
updates the state left by the ones before): later rules override earlier ones, the
default is deny, and an "a" rule is a reset (allow=False: deny everything, allow=True:
allow everything; its other fields are ignored, as v1 and runc ignore them).  Each
requested access bit is decided on its own by the last rule that matches the device and
names that bit; an access is allowed when all of its bits are.  So "allow c 1:3 r" then
"allow c 1:3 w" allows read-write, and "allow c 1:3 rw" then "deny c 1:3 w" denies
read-write (v1 would too).  Unlike v1, a later rule may also narrow an earlier wildcard
("allow c *:* rwm" then "deny c 1:3 rwm" denies 1:3), where v1 silently ignores the deny
and runc refuses the rule set.

The program walks the rules from the last one back to the first (or to the last reset):
    w2 = type; w3 = requested access bits not decided yet; w4 = major; w5 = minor
    per rule: if the device does not match, go to the next block;
      deny:  if w3 shares a bit with the rule's access, return 0
      allow: clear the rule's bits from w3; if w3 is now empty, return 1
    a reset returns its verdict; running off the end returns 0 (the default).
"""

from __future__ import annotations

import errno
import os
import struct
import sys

from pyrt.errors import PyrtError, oserror
from pyrt.linux import syscalls

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyrt.cgroups.device_rules import DeviceRule

# bpf(2) commands, program and attach types, flags (include/uapi/linux/bpf.h)
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

# struct bpf_cgroup_dev_ctx encodings
DEV_BLOCK = 1
DEV_CHAR = 2
ACC_MKNOD = 1
ACC_READ = 2
ACC_WRITE = 4
ACC_ALL = ACC_MKNOD | ACC_READ | ACC_WRITE
_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
_TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR}

# Largest device numbers Linux has (dev_t: 12-bit major, 20-bit minor); a rule naming a
# bigger one matches no device.
MAX_MAJOR = (1 << 12) - 1
MAX_MINOR = (1 << 20) - 1

# Instruction encoding: opcode classes, sizes, modes, ALU and jump operations.
LDX, ALU, JMP, ALU64 = 0x01, 0x04, 0x05, 0x07
W, MEM = 0x00, 0x60
K = 0x00
AND, RSH, MOV = 0x50, 0x70, 0xB0
JA, JSET, JNE, EXIT = 0x00, 0x40, 0x50, 0x90

INSN_SIZE = 8
LICENSE = b"Apache\0"  # pyrt's license; the program calls no GPL-only helper
PROG_NAME = b"pyrt_devices"
_LOG_START = 1 << 16
_LOG_MAX = 1 << 24
_NEXT = object()  # placeholder offset: the first instruction of the next block

_Insn = tuple[int, int, int, "int | object", int]  # code, dst, src, off, imm


def program(rules: Sequence[DeviceRule]) -> bytes:
    """The program (struct bpf_insn array) enforcing rules; see the module docstring."""
    insns: list[_Insn] = [
        (LDX | W | MEM, 2, 1, 0, 0),       # w2 = ctx->access_type
        (ALU | AND | K, 2, 0, 0, 0xFFFF),  # w2 &= 0xffff: the device type
        (LDX | W | MEM, 3, 1, 0, 0),       # w3 = ctx->access_type
        (ALU | RSH | K, 3, 0, 0, 16),      # w3 >>= 16: the access bits
        (LDX | W | MEM, 4, 1, 4, 0),       # w4 = ctx->major
        (LDX | W | MEM, 5, 1, 8, 0),       # w5 = ctx->minor
    ]
    for rule in reversed(rules):
        if rule.type == "a":
            insns += _verdict(rule.allow)
            break  # earlier rules are dead (and the verifier rejects unreachable code)
        insns += _block(rule)
    else:
        insns += _verdict(False)
    return b"".join(_encode(*insn) for insn in insns)


def _block(rule: DeviceRule) -> list[_Insn]:
    """The instructions for one "b" or "c" rule; jumps to _NEXT when it does not decide."""
    if rule.type not in _TYPES:
        raise PyrtError("device rule", f"unknown device type {rule.type!r}")
    access = 0
    for char in rule.access:
        access |= _ACCESS[char]
    major = -1 if rule.major is None else rule.major
    minor = -1 if rule.minor is None else rule.minor
    if not access or major > MAX_MAJOR or minor > MAX_MINOR:
        return []  # matches no access of any device
    block: list[_Insn] = [(JMP | JNE | K, 2, 0, _NEXT, _TYPES[rule.type])]
    # a negative number is a wildcard, like None (runc reads -1 so)
    if major >= 0:
        block.append((JMP | JNE | K, 4, 0, _NEXT, major))
    if minor >= 0:
        block.append((JMP | JNE | K, 5, 0, _NEXT, minor))
    if rule.allow:
        if access != ACC_ALL:
            block.append((ALU | AND | K, 3, 0, 0, ~access))  # these bits are allowed
            block.append((JMP | JNE | K, 3, 0, _NEXT, 0))    # bits left to decide
    elif access != ACC_ALL:
        block.append((JMP | JSET | K, 3, 0, 1, access))  # a requested bit is denied
        block.append((JMP | JA, 0, 0, _NEXT, 0))
    block += _verdict(rule.allow)
    end = len(block)
    return [(code, dst, src, end - i - 1 if off is _NEXT else off, imm)
            for i, (code, dst, src, off, imm) in enumerate(block)]


def _verdict(allow: bool) -> list[_Insn]:
    return [(ALU64 | MOV | K, 0, 0, 0, int(allow)), (JMP | EXIT, 0, 0, 0, 0)]


def _encode(code: int, dst: int, src: int, off: int | object, imm: int) -> bytes:
    """struct bpf_insn: u8 code, u8 dst_reg:4 + src_reg:4 (bitfields), s16 off, s32 imm."""
    regs = dst | src << 4 if sys.byteorder == "little" else dst << 4 | src
    assert isinstance(off, int)
    return struct.pack("=BBhi", code, regs, off, imm)


def install(cgroup_dir: str, rules: Sequence[DeviceRule]) -> None:
    """Enforce rules in cgroup_dir (a cgroup2 directory), replacing the device program(s)
    attached there before: the new program is attached first, then the old ones are
    detached, so no access the old or new rules deny is allowed in between."""
    what = f"cgroup {cgroup_dir}"
    code = program(rules)
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise oserror(what, err) from None
    try:
        old = attached(dir_fd, what)
        prog_fd = _load(code, what)
        try:
            attr = bytearray(struct.pack("=IIIII", dir_fd, prog_fd, BPF_CGROUP_DEVICE,
                                         BPF_F_ALLOW_MULTI, 0))
            try:
                syscalls.bpf(BPF_PROG_ATTACH, attr)
            except OSError as err:
                raise PyrtError(what, _why("cannot attach the device program", err)) from None
        finally:
            os.close(prog_fd)
        for prog_id in old:
            _detach(dir_fd, prog_id, what)
    finally:
        os.close(dir_fd)


def attached(dir_fd: int, what: str) -> list[int]:
    """Ids of the device programs attached to the cgroup open at dir_fd (BPF_PROG_QUERY)."""
    count = 64
    while True:
        ids = bytearray(4 * count)
        attr = bytearray(struct.pack("=IIIIQII", dir_fd, BPF_CGROUP_DEVICE, 0, 0,
                                     syscalls.address(ids), count, 0))
        try:
            syscalls.bpf(BPF_PROG_QUERY, attr)
        except OSError as err:
            if err.errno == errno.ENOSPC:  # attr now holds the real count
                count = struct.unpack_from("=I", attr, 24)[0]
                continue
            raise PyrtError(what, _why("cannot query its device programs", err)) from None
        found = struct.unpack_from("=I", attr, 24)[0]
        return list(struct.unpack_from(f"={found}I", ids))


def _why(failed: str, err: OSError) -> str:
    hint = " (not a cgroup2 directory?)" if err.errno == errno.EBADF else ""
    return f"{failed}: {err.strerror}{hint}"


def _load(code: bytes, what: str) -> int:
    """BPF_PROG_LOAD; on failure, load again with a verifier log to explain why."""
    insns = bytearray(code)
    license = bytearray(LICENSE)
    try:
        return syscalls.bpf(BPF_PROG_LOAD, _load_attr(insns, license, bytearray()))
    except OSError:
        pass  # the verifier runs again below, this time with a log
    size = _LOG_START
    while True:
        log = bytearray(size)
        try:
            return syscalls.bpf(BPF_PROG_LOAD, _load_attr(insns, license, log))
        except OSError as err:
            if err.errno == errno.ENOSPC and size < _LOG_MAX:  # the log did not fit
                size *= 2
                continue
            why = err.strerror
            reason = _last_reason(log)
            if reason:
                why = f"{why}: {reason}"
            raise PyrtError(what, f"the kernel refused the device program: {why}") from None


def _last_reason(log: bytearray) -> str:
    """The verifier log's last line, skipping the statistics line the kernel ends it with
    ("processed N insns (limit ...) ...")."""
    lines = log.split(b"\0", 1)[0].decode(errors="replace").strip().splitlines()
    reasons = [line for line in lines if not line.startswith("processed ")]
    return (reasons or lines or [""])[-1].strip()


def _load_attr(insns: bytearray, license: bytearray, log: bytearray) -> bytearray:
    """The BPF_PROG_LOAD part of union bpf_attr, up to prog_name."""
    return bytearray(struct.pack(
        "=IIQQIIQII16s", BPF_PROG_TYPE_CGROUP_DEVICE, len(insns) // INSN_SIZE,
        syscalls.address(insns), syscalls.address(license),
        1 if log else 0, len(log), syscalls.address(log) if log else 0,
        0, 0, PROG_NAME))


def _detach(dir_fd: int, prog_id: int, what: str) -> None:
    """Detach program prog_id from the cgroup; one already gone is fine."""
    try:
        prog_fd = syscalls.bpf(BPF_PROG_GET_FD_BY_ID, bytearray(struct.pack("=III", prog_id, 0, 0)))
    except OSError as err:
        if err.errno == errno.ENOENT:
            return
        raise PyrtError(what, f"cannot open device program {prog_id}: {err.strerror}") from None
    try:
        syscalls.bpf(BPF_PROG_DETACH, bytearray(struct.pack("=IIII", dir_fd, prog_fd,
                                                            BPF_CGROUP_DEVICE, 0)))
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise PyrtError(what, f"cannot detach device program {prog_id}: "
                                  f"{err.strerror}") from None
    finally:
        os.close(prog_fd)
