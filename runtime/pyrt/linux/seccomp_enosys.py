"""runc's -ENOSYS stub, put in front of a filter that denies what it does not list.

A profile written for an older kernel does not name the syscalls added since; its
default action (EPERM, say) would make libc think a new syscall exists but is
forbidden, where -ENOSYS makes it fall back to the older one, as on an older kernel.
So, as runc does: for each architecture the profile lists, a syscall number above the
largest the profile names for that architecture returns -ENOSYS; every other syscall
goes on to the filter libseccomp built. Not done when the default action lets
syscalls through (ALLOW, LOG, TRACE) or already is ENOSYS, nor without "architectures".
x32 shares x86_64's AUDIT_ARCH and marks its syscall numbers with bit 30, so that
architecture checks its two halves apart.
"""

from __future__ import annotations

import struct

# classic BPF (linux/filter.h, linux/bpf_common.h)
_LD_W_ABS = 0x20
_JA = 0x05
_JEQ_K = 0x15
_JGT_K = 0x25
_JSET_K = 0x45
_RET_K = 0x06
_INSN = struct.Struct("=HBBI")

_NR, _ARCH = 0, 4  # offsets in struct seccomp_data
AUDIT_ARCH_X86_64 = 0xC000003E
SCMP_ARCH_X32 = 0x4000003E  # libseccomp's token: not an AUDIT_ARCH value
X32_SYSCALL_BIT = 0x40000000
RET_ERRNO_ENOSYS = 0x00050000 | 38


def wanted(default_action: int) -> bool:
    """Whether the profile's default action calls for the stub."""
    permissive = default_action in (0x7FFF0000, 0x7FFC0000) or (
        default_action & 0xFFFF0000) == 0x7FF00000  # ALLOW, LOG, TRACE(any)
    return not permissive and default_action != RET_ERRNO_ENOSYS


def stub(last: dict[int, int]) -> bytes:
    """BPF to prepend to a filter; `last`: the largest syscall number the profile
    names, by libseccomp arch token. Empty when there is nothing to check."""
    sections: dict[int, dict[str, int]] = {}  # AUDIT_ARCH -> {"": nr, "x32": nr}
    for token, nr in last.items():
        if token == SCMP_ARCH_X32:
            sections.setdefault(AUDIT_ARCH_X86_64, {})["x32"] = nr
        else:
            sections.setdefault(token, {})[""] = nr
    if not sections:
        return b""
    # instructions as (code, jt label, jf label, k); labels resolve to offsets below
    code: list[tuple[int, str, str, int]] = [(_LD_W_ABS, "", "", _ARCH)]
    code += [(_JEQ_K, f"arch{arch}", "", arch) for arch in sections]
    code.append((_JA, "filter", "", 0))
    labels: dict[str, int] = {}
    for arch, limits in sections.items():
        labels[f"arch{arch}"] = len(code)
        code.append((_LD_W_ABS, "", "", _NR))
        if arch == AUDIT_ARCH_X86_64:
            code.append((_JSET_K, "x32", "", X32_SYSCALL_BIT))
        if "" in limits:
            code.append((_JGT_K, "enosys", "", limits[""]))
        code.append((_JA, "filter", "", 0))
        if arch == AUDIT_ARCH_X86_64:
            labels["x32"] = len(code)
            if "x32" in limits:
                code.append((_JGT_K, "enosys", "", limits["x32"]))
            code.append((_JA, "filter", "", 0))
    labels["enosys"] = len(code)
    code.append((_RET_K, "", "", RET_ERRNO_ENOSYS))
    labels["filter"] = len(code)
    out = bytearray()
    for pc, (op, jt, jf, k) in enumerate(code):
        if op == _JA:
            out += _INSN.pack(op, 0, 0, labels[jt] - pc - 1)
        else:
            rel_t = labels[jt] - pc - 1 if jt else 0
            rel_f = labels[jf] - pc - 1 if jf else 0
            out += _INSN.pack(op, rel_t, rel_f, k)  # the stub is short: offsets < 256
    return bytes(out)
