"""What the container process sees: process/user/caps/rlimits/env/cwd/hostname...

Each test runs a foreground `run` of `sh -c SCRIPT` and checks its stdout.
"""

from __future__ import annotations

import re

import pytest
import rthelpers as h
from rthelpers import assert_ok, describe


def out_of(res) -> str:
    assert_ok(res)
    return res.stdout


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    return fields


def test_process_is_pid_1(run_sh):
    assert out_of(run_sh("echo $$")).strip() == "1"


def test_hostname(run_sh):
    res = run_sh("hostname; cat /proc/sys/kernel/hostname",
                 lambda b: b.config.__setitem__("hostname", "box-42"))
    assert out_of(res).split() == ["box-42", "box-42"], describe(res)


@pytest.mark.pyrt_only
def test_domainname(run_sh):
    # pyrt-only: runc 1.1.5 ignores config "domainname" (the container still sees
    # "(none)"); runtime-spec 1.3.0 (pyrt's target) defines it.
    res = run_sh("cat /proc/sys/kernel/domainname",
                 lambda b: b.config.__setitem__("domainname", "example.test"))
    assert out_of(res).strip() == "example.test", describe(res)


def test_env(run_sh):
    def mutate(b):
        b.config["process"]["env"] += ["FOO=bar", "SPACED=a b  c", "EMPTY="]

    res = run_sh("env", mutate)
    lines = out_of(res).splitlines()
    for want in (f"PATH={h.DEFAULT_PATH}", "FOO=bar", "SPACED=a b  c", "EMPTY=", "TERM=xterm"):
        assert want in lines, f"{want!r} not in env:" + describe(res)


def test_home_defaults_from_passwd(run_sh):
    # runc sets HOME from the user's /etc/passwd entry when the config has none.
    res = run_sh("echo HOME=$HOME")
    assert out_of(res).strip() == "HOME=/root", describe(res)


def test_cwd(run_sh):
    res = run_sh("pwd", lambda b: b.config["process"].__setitem__("cwd", "/root"))
    assert out_of(res).strip() == "/root", describe(res)


def test_cwd_missing_is_created(run_sh):
    res = run_sh("pwd", lambda b: b.config["process"].__setitem__("cwd", "/work/here"))
    assert out_of(res).strip() == "/work/here", describe(res)


def test_user_uid_gid_additional_gids(run_sh):
    def mutate(b):
        b.config["process"]["user"] = {
            "uid": h.TESTER_UID, "gid": h.TESTER_GID, "additionalGids": [2000, 3000],
        }

    res = run_sh("id -u; id -g; id -G", mutate)
    uid, gid, groups = out_of(res).splitlines()
    assert uid == str(h.TESTER_UID) and gid == str(h.TESTER_GID), describe(res)
    assert set(groups.split()) == {str(h.TESTER_GID), "2000", "3000"}, describe(res)


def test_user_root_has_no_extra_groups(run_sh):
    res = run_sh("id -u; id -G")
    assert out_of(res).split() == ["0", "0"], describe(res)


def test_umask_from_config(run_sh):
    res = run_sh("umask", lambda b: b.config["process"]["user"].__setitem__("umask", 0o077))
    assert out_of(res).strip() == "0077", describe(res)


def test_umask_default(run_sh):
    assert out_of(run_sh("umask")).strip() == "0022"


def test_rlimit_nofile(run_sh):
    def mutate(b):
        b.config["process"]["rlimits"] = [
            {"type": "RLIMIT_NOFILE", "hard": 1000, "soft": 512},
            {"type": "RLIMIT_CORE", "hard": 4096, "soft": 0},
        ]

    res = run_sh("ulimit -Sn; ulimit -Hn; grep -E '^Max (open files|core file)' /proc/self/limits",
                 mutate)
    lines = out_of(res).splitlines()
    assert lines[:2] == ["512", "1000"], describe(res)
    assert re.search(r"Max core file size\s+0\s+4096", res.stdout), describe(res)


def test_default_rlimit_nofile_1024(run_sh):
    assert out_of(run_sh("ulimit -n")).strip() == "1024"


def test_args0_resolved_via_default_path(rt, make_bundle):
    b = make_bundle(("echo", "via-path"))
    res = assert_ok(rt.run(b))
    assert res.stdout == "via-path\n", describe(res)


def test_args0_absolute(rt, make_bundle):
    b = make_bundle(("/bin/echo", "absolute"))
    assert assert_ok(rt.run(b)).stdout == "absolute\n"


def test_args0_resolved_via_config_path(rt, make_bundle):
    b = make_bundle(("hello-tool", "arg1"), write=False)
    tools = b.rootfs / "opt" / "tools"
    tools.mkdir(parents=True)
    script = tools / "hello-tool"
    script.write_text('#!/bin/sh\necho "tool-ran $1"\n')
    script.chmod(0o755)
    b.config["process"]["env"] = ["PATH=/opt/tools:/bin"]
    b.write()
    res = assert_ok(rt.run(b))
    assert res.stdout == "tool-ran arg1\n", describe(res)


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(run_sh, nnp):
    res = run_sh("cat /proc/self/status",
                 lambda b: b.config["process"].__setitem__("noNewPrivileges", nnp))
    assert status_fields(out_of(res))["NoNewPrivs"] == ("1" if nnp else "0"), describe(res)


CAP_CASES = {
    "runc-spec-defaults": None,  # the bundle's default (runc spec) capability block
    "all-equal": {k: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]
                  for k in ("bounding", "effective", "permitted", "inheritable", "ambient")},
    "distinct": {
        "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE",
                     "CAP_SYS_CHROOT"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_KILL"],
    },
    "empty": {},
}


def expected_caps(caps: dict, uid: int = 0) -> dict[str, str]:
    """/proc/self/status Cap* of the exec'ed process, as the kernel computes them.

    Assumes noNewPrivileges (so root gains nothing at execve) and a binary without
    file capabilities.  An ambient cap is only raised when permitted and inheritable.
    For uid 0 execve sets effective = permitted; for other uids permitted = effective
    = ambient (execve drops everything else).
    """
    inh = set(caps.get("inheritable", []))
    prm = set(caps.get("permitted", []))
    amb = set(caps.get("ambient", [])) & inh & prm
    if uid != 0:
        prm = amb
    return {
        "CapInh": h.cap_mask(inh),
        "CapPrm": h.cap_mask(prm),
        "CapEff": h.cap_mask(prm),
        "CapBnd": h.cap_mask(caps.get("bounding", [])),
        "CapAmb": h.cap_mask(amb),
    }


@pytest.mark.parametrize("case", list(CAP_CASES))
def test_capabilities(run_sh, case):
    captured = {}

    def mutate(b):
        if CAP_CASES[case] is not None:
            b.config["process"]["capabilities"] = CAP_CASES[case]
        captured.update(b.config["process"]["capabilities"])

    res = run_sh("cat /proc/self/status", mutate)
    got = status_fields(out_of(res))
    want = expected_caps(captured)
    assert {k: got.get(k) for k in want} == want, describe(res)


@pytest.mark.parametrize("case", ["all-equal", "distinct"])
def test_capabilities_non_root_user(run_sh, case):
    """Non-root keeps exactly its ambient caps across execve: the runtime must keep
    capabilities over setuid and raise ambient ones after it."""
    def mutate(b):
        b.config["process"]["user"] = {"uid": h.TESTER_UID, "gid": h.TESTER_GID}
        b.config["process"]["capabilities"] = CAP_CASES[case]

    res = run_sh("id -u; cat /proc/self/status", mutate)
    text = out_of(res)
    assert text.splitlines()[0] == str(h.TESTER_UID), describe(res)
    got = status_fields(text)
    want = expected_caps(CAP_CASES[case], uid=h.TESTER_UID)
    assert {k: got.get(k) for k in want} == want, describe(res)


def test_sysctl_in_new_netns(run_sh):
    host_before = h.read("/proc/sys/net/ipv4/ip_forward")
    res = run_sh("cat /proc/sys/net/ipv4/ip_forward",
                 lambda b: b.config["linux"].__setitem__("sysctl", {"net.ipv4.ip_forward": "1"}))
    assert out_of(res).strip() == "1", describe(res)
    assert h.read("/proc/sys/net/ipv4/ip_forward") == host_before, "sysctl leaked to host"


def test_sysctl_ipc(run_sh):
    res = run_sh("cat /proc/sys/kernel/msgmax",
                 lambda b: b.config["linux"].__setitem__("sysctl", {"kernel.msgmax": "4242"}))
    assert out_of(res).strip() == "4242", describe(res)
