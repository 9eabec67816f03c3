"""pyrt.cgroups.devices_bpf.program: the cgroup device eBPF program, without a kernel.

The program is decoded and run by a small interpreter for the instructions it may use
(written here from the eBPF instruction-set spec, independent of the module's tables),
which also does the checks of the kernel verifier that matter here: known opcodes, jumps
forward and inside the program, no unreachable instruction, no read of an unset register,
a verdict of 0 or 1.  Its answers are compared with two models: the per-access-bit
"later rule wins" semantics the module documents, and the devices controller of cgroup v1
(default behaviour plus an exception list), on rule sets where the two must agree.
tests/runtime/test_devices_bpf.py loads the program into the real kernel.
"""

from __future__ import annotations

import itertools
import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrt.cgroups import device_rules
from pyrt.cgroups.device_rules import DeviceRule
from pyrt.cgroups.devices_bpf import program

pytestmark = pytest.mark.skipif(sys.byteorder != "little", reason="encodings below are LE")

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1
BLOCK, CHAR = 1, 2  # BPF_DEVCG_DEV_*
MKNOD, READ, WRITE = 1, 2, 4  # BPF_DEVCG_ACC_*
BITS = {"m": MKNOD, "r": READ, "w": WRITE}
ACCESSES = ["".join(c) for n in (1, 2, 3) for c in itertools.combinations("rwm", n)]
PROLOGUE = 6  # instructions loading type, access, major, minor


def rule(allow: bool, type_: str, major: int | None = None, minor: int | None = None,
         access: str = "rwm") -> DeviceRule:
    return DeviceRule(allow=allow, type=type_, major=major, minor=minor, access=access)


DENY_ALL = rule(False, "a")
ALLOW_ALL = rule(True, "a")


# ------------------------------------------------------------------ decoder / interpreter


def decode(prog: bytes) -> list[tuple[int, int, int, int, int]]:
    assert prog and len(prog) % 8 == 0
    out = []
    for i in range(0, len(prog), 8):
        code, regs, off, imm = struct.unpack_from("<BBhi", prog, i)
        out.append((code, regs & 0xF, regs >> 4, off, imm))
    return out


def check_static(prog: bytes) -> None:
    """The verifier's control-flow checks: every jump forward and in range, every
    instruction reachable, no path running off the end."""
    insns = decode(prog)
    n = len(insns)
    reachable = {0}
    for pc, (code, _dst, _src, off, _imm) in enumerate(insns):
        if pc not in reachable:
            continue
        if code == 0x95:  # exit
            continue
        if code & 0x07 == 0x05:  # jump class
            assert off >= 0, f"backward jump at {pc}"
            assert pc + 1 + off < n, f"jump out of the program at {pc}"
            reachable.add(pc + 1 + off)
            if code == 0x05:  # ja: no fall-through
                continue
        assert pc + 1 < n, f"falls off the end at {pc}"
        reachable.add(pc + 1)
    assert reachable == set(range(n)), f"unreachable: {sorted(set(range(n)) - reachable)}"


def run(prog: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    """Execute the program on one struct bpf_cgroup_dev_ctx; returns r0 at exit."""
    ctx = struct.pack("<III", access << 16 | dev_type, major, minor)
    regs: dict[int, int | str] = {1: "ctx", 10: "fp"}
    insns = decode(prog)
    pc = 0

    def val(r: int) -> int:
        v = regs[r]  # KeyError: read of an unset register
        assert isinstance(v, int), f"r{r} is a pointer"
        return v

    while True:
        code, dst, src, off, imm = insns[pc]
        pc += 1
        if code == 0x61:  # ldxw dst = *(u32 *)(src + off)
            assert regs[src] == "ctx" and off in (0, 4, 8)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:  # w_dst &= imm
            regs[dst] = val(dst) & M32 & imm & M32
        elif code == 0x74:  # w_dst >>= imm
            regs[dst] = (val(dst) & M32) >> imm
        elif code == 0xB7:  # r_dst = imm (sign-extended)
            regs[dst] = imm & M64
        elif code == 0x05:  # ja
            pc += off
        elif code in (0x15, 0x55, 0x45):  # jeq / jne / jset with imm (sign-extended)
            a, b = val(dst), imm & M64
            taken = {0x15: a == b, 0x55: a != b, 0x45: bool(a & b)}[code]
            if taken:
                pc += off
        elif code == 0x95:  # exit
            verdict = val(0)
            assert verdict in (0, 1)
            return verdict
        else:
            raise AssertionError(f"unexpected opcode {code:#x} at {pc - 1}")


def bits(access: str) -> int:
    return sum(BITS[c] for c in set(access))


# ------------------------------------------------------------------ the two models


def matches(r: DeviceRule, dev_type: str, major: int, minor: int) -> bool:
    return (r.type == dev_type and r.major in (None, major) and r.minor in (None, minor))


def later_wins(rules: list[DeviceRule], dev_type: str, major: int, minor: int,
               access: int) -> bool:
    """Each requested bit is decided by the last rule matching the device that names it
    (or the last reset, or deny); allowed when every bit is."""
    for bit in (MKNOD, READ, WRITE):
        if not access & bit:
            continue
        verdict = False
        for r in rules:
            if r.type == "a" or (matches(r, dev_type, major, minor) and bits(r.access) & bit):
                verdict = r.allow
        if not verdict:
            return False
    return True


def cgroup_v1(rules: list[DeviceRule], dev_type: str, major: int, minor: int,
              access: int) -> bool:
    """The v1 devices controller: rules written in order to devices.allow/deny update a
    default behaviour and a list of exceptions keyed by (type, major, minor)."""
    default_allow = True  # a new v1 cgroup (below an allow-all root) allows everything
    exceptions: dict[tuple[str, int | None, int | None], int] = {}
    for r in rules:
        if r.type == "a":
            default_allow, exceptions = r.allow, {}
            continue
        key = (r.type, r.major, r.minor)
        if r.allow != default_allow:  # an exception to the default: add
            exceptions[key] = exceptions.get(key, 0) | bits(r.access)
        elif key in exceptions:  # same as the default: remove those bits (exact key only)
            exceptions[key] &= ~bits(r.access)
            if not exceptions[key]:
                del exceptions[key]
    hits = [b for (t, ma, mi), b in exceptions.items()
            if t == dev_type and ma in (None, major) and mi in (None, minor)]
    if default_allow:  # denied when any exception shares a requested bit
        return not any(b & access for b in hits)
    return any(access & ~b == 0 for b in hits)  # one exception must cover them all


DEVICES = [(t, ma, mi) for t in "bc" for ma in (1, 2, 7) for mi in (0, 3, 5)]


def verdicts(prog: bytes) -> dict[tuple[str, int, int, int], bool]:
    return {(t, ma, mi, acc): bool(run(prog, BLOCK if t == "b" else CHAR, acc, ma, mi))
            for t, ma, mi in DEVICES for acc in range(1, 8)}


def assert_model(rules: list[DeviceRule], model=later_wins) -> None:
    prog = program(rules)
    check_static(prog)
    got = verdicts(prog)
    want = {key: model(rules, *key) for key in got}
    wrong = {k: v for k, v in got.items() if v != want[k]}
    assert not wrong, f"program differs from {model.__name__} on {wrong}"


# ------------------------------------------------------------------ encoding


def test_empty_rule_list_is_the_prologue_and_deny():
    """Exact bytes, cross-checked against the documented encodings."""
    assert program([]) == bytes.fromhex(
        "6112000000000000"  # r2 = *(u32 *)(r1 + 0)
        "54020000ffff0000"  # w2 &= 0xffff
        "6113000000000000"  # r3 = *(u32 *)(r1 + 0)
        "7403000010000000"  # w3 >>= 16
        "6114040000000000"  # r4 = *(u32 *)(r1 + 4)
        "6115080000000000"  # r5 = *(u32 *)(r1 + 8)
        "b700000000000000"  # r0 = 0
        "9500000000000000"  # exit
    )


def test_one_allow_rule_exact_bytes():
    prog = program([DENY_ALL, rule(True, "c", 1, 3, "rw")])
    assert prog[PROLOGUE * 8:] == bytes.fromhex(
        "5502060002000000"  # if r2 != 2 (char) goto +6
        "5504050001000000"  # if r4 != 1 goto +5
        "5505040003000000"  # if r5 != 3 goto +4
        "54030000f9ffffff"  # w3 &= ~6: read and write are allowed
        "5503020000000000"  # if r3 != 0 goto +2: bits left to decide
        "b700000001000000"  # r0 = 1
        "9500000000000000"  # exit
        "b700000000000000"  # r0 = 0 (the reset: deny all)
        "9500000000000000"  # exit
    )


def test_one_deny_rule_exact_bytes():
    prog = program([ALLOW_ALL, rule(False, "b", None, 0, "m")])
    assert prog[PROLOGUE * 8:] == bytes.fromhex(
        "5502050001000000"  # if r2 != 1 (block) goto +5
        "5505040000000000"  # if r5 != 0 goto +4
        "4503010001000000"  # if r3 & 1 (mknod) goto +1
        "0500020000000000"  # goto +2
        "b700000000000000"  # r0 = 0
        "9500000000000000"  # exit
        "b700000001000000"  # r0 = 1 (the reset: allow all)
        "9500000000000000"  # exit
    )


@pytest.mark.parametrize("allow", [True, False])
@pytest.mark.parametrize("access", ACCESSES)
@pytest.mark.parametrize("minor", [None, 3])
@pytest.mark.parametrize("major", [None, 1])
@pytest.mark.parametrize("type_", ["c", "b"])
def test_every_rule_shape(type_, major, minor, access, allow):
    """Size of each block, and its verdicts on every device and access, after either reset."""
    r = rule(allow, type_, major, minor, access)
    block = 1 + (major is not None) + (minor is not None) + (2 if access != "rwm" else 0) + 2
    for reset in (DENY_ALL, ALLOW_ALL):
        prog = program([reset, r])
        assert len(prog) == 8 * (PROLOGUE + block + 2)
        assert_model([reset, r])


def test_rules_before_the_last_reset_are_not_emitted():
    tail = [rule(True, "c", 1, 3)]
    short = program([ALLOW_ALL, *tail])
    assert program([rule(True, "b", 8, 0), rule(False, "c"), ALLOW_ALL, *tail]) == short
    assert program([rule(True, "c", 1, 5), ALLOW_ALL]) == program([ALLOW_ALL])
    assert len(program([ALLOW_ALL])) == 8 * (PROLOGUE + 2)


def test_an_a_rule_is_a_reset_whatever_its_other_fields():
    """As in v1 (the kernel reads only the "a") and runc."""
    odd = DeviceRule(allow=True, type="a", major=1, minor=3, access="r")
    assert program([DENY_ALL, odd]) == program([ALLOW_ALL])


def test_rules_no_device_can_match_are_dropped():
    """dev_t has a 12-bit major and a 20-bit minor; bigger numbers match nothing (and
    would not fit the instruction's signed 32-bit immediate)."""
    assert program([DENY_ALL, rule(True, "c", 4096, 0)]) == program([DENY_ALL])
    assert program([DENY_ALL, rule(True, "c", 1, 1 << 20)]) == program([DENY_ALL])
    assert program([DENY_ALL, rule(True, "c", 1 << 40, None)]) == program([DENY_ALL])
    big = program([DENY_ALL, rule(True, "c", 4095, (1 << 20) - 1)])
    assert run(big, CHAR, READ, 4095, (1 << 20) - 1) == 1
    assert run(big, CHAR, READ, 4095, 0) == 0


def test_negative_numbers_are_wildcards_like_runc():
    assert program([DENY_ALL, rule(True, "c", -1, -1)]) == program([DENY_ALL, rule(True, "c")])


# ------------------------------------------------------------------ semantics


def allowed(rules: list[DeviceRule], dev: str, access: str) -> bool:
    type_, numbers = dev.split()
    major, minor = map(int, numbers.split(":"))
    prog = program(rules)
    check_static(prog)
    return bool(run(prog, BLOCK if type_ == "b" else CHAR, bits(access), major, minor))


def test_default_is_deny():
    assert not allowed([], "c 1:3", "r")
    assert not allowed([rule(True, "c", 1, 5)], "c 1:3", "r")


def test_later_rule_overrides_earlier():
    base = [DENY_ALL, rule(True, "c", 1, None)]
    assert allowed(base, "c 1:7", "rw")
    assert not allowed([*base, rule(False, "c", 1, 7)], "c 1:7", "r")
    assert allowed([*base, rule(False, "c", 1, 7)], "c 1:9", "rw")
    assert allowed([*base, rule(False, "c", 1, 7), rule(True, "c", 1, 7, "r")], "c 1:7", "r")


def test_allowed_access_must_cover_the_request():
    rules = [DENY_ALL, rule(True, "c", 1, 5, "r")]
    assert allowed(rules, "c 1:5", "r")
    assert not allowed(rules, "c 1:5", "w")
    assert not allowed(rules, "c 1:5", "rw")
    assert not allowed(rules, "c 1:5", "m")


def test_access_bits_add_up_across_rules():
    """v1 merges "r" and "w" exceptions for one device into "rw"."""
    rules = [DENY_ALL, rule(True, "c", 1, 8, "r"), rule(True, "c", 1, 8, "w")]
    assert allowed(rules, "c 1:8", "rw")
    assert not allowed(rules, "c 1:8", "m")


def test_a_denied_bit_denies_a_request_naming_it():
    rules = [DENY_ALL, rule(True, "c", 1, 9, "rw"), rule(False, "c", 1, 9, "w")]
    assert allowed(rules, "c 1:9", "r")
    assert not allowed(rules, "c 1:9", "w")
    assert not allowed(rules, "c 1:9", "rw")


def test_resets():
    assert allowed([rule(False, "c", 1, 3), ALLOW_ALL], "c 1:3", "rwm")
    assert not allowed([ALLOW_ALL, rule(False, "c", 1, 3)], "c 1:3", "r")
    assert allowed([ALLOW_ALL, rule(False, "c", 1, 3)], "b 1:3", "r")
    assert not allowed([ALLOW_ALL, rule(True, "c", 1, 3), DENY_ALL], "c 1:3", "r")


def test_type_is_matched():
    rules = [DENY_ALL, rule(True, "b", 7, None)]
    assert allowed(rules, "b 7:0", "rw")
    assert not allowed(rules, "c 7:0", "r")


def test_runc_defaults_after_deny_all():
    """What a container gets from `"devices": [{"allow": false, "access": "rwm"}]`."""
    rules = device_rules.parse([{"allow": False, "access": "rwm"}], "/linux/resources/devices")
    assert_model(rules)
    for dev in ("c 1:3", "c 1:5", "c 1:7", "c 1:8", "c 1:9", "c 5:0", "c 5:1", "c 5:2",
                "c 136:4", "c 10:200"):
        assert allowed(rules, dev, "rw"), dev
    for dev in ("c 10:237", "c 4:1", "b 8:0", "b 7:0"):
        assert not allowed(rules, dev, "r"), dev
        assert allowed(rules, dev, "m"), dev  # mknod of any device, as in runc


# ------------------------------------------------------------------ properties


def rules_from(keys: list[tuple[str, int | None, int | None]]):
    plain = st.builds(lambda allow, key, access: rule(allow, *key, access),
                      st.booleans(), st.sampled_from(keys), st.sampled_from(ACCESSES))
    resets = st.sampled_from([DENY_ALL, ALLOW_ALL])
    return st.lists(st.one_of(plain, plain, plain, resets), max_size=12)


ANY_KEYS = [(t, ma, mi) for t in "bc" for ma in (None, 1, 2) for mi in (None, 3, 5)]
# pairwise disjoint: no device matches two of them
DISJOINT_KEYS = [("c", 1, 3), ("c", 1, 5), ("c", 2, None), ("b", 7, None), ("b", 1, 0),
                 ("b", 2, 3)]


@settings(max_examples=300, deadline=None)
@given(rules_from(ANY_KEYS))
def test_program_follows_later_rule_wins(rules):
    assert_model(rules, later_wins)


@settings(max_examples=300, deadline=None)
@given(rules_from(DISJOINT_KEYS))
def test_program_matches_cgroup_v1_when_rules_do_not_overlap(rules):
    """Where v1 and the documented semantics can differ at all is a later rule narrowing
    an earlier wildcard (v1 ignores it); with disjoint rules they agree exactly."""
    assert_model([DENY_ALL, *rules], cgroup_v1)
    assert_model([ALLOW_ALL, *rules], cgroup_v1)
