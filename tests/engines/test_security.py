"""podman and docker: capabilities and the engine's default seccomp profile.

The denied-syscall probe works under both engines' profiles: ``unshare -U`` is
refused by docker's profile (no CAP_SYS_ADMIN), and podman's (which allows unshare)
refuses the ``sethostname`` that follows in the new user+UTS namespace.  Without a
filter (seccomp=unconfined) the same command succeeds, so the failure is seccomp's.
"""

from __future__ import annotations

import ehelpers as eh
from edrivers import Engine
from eimage import IMAGE

CAP_CHOWN, CAP_NET_ADMIN = 0, 12
PROBE = "unshare -U -r -u sh -c 'hostname in-userns && hostname' 2>&1; echo rc=$?"


def status_field(text: str, field: str) -> str:
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in {text!r}")


def test_cap_drop_and_add(eng: Engine) -> None:
    default = eh.ok(eng.run("--rm", IMAGE, "cat", "/proc/self/status")).stdout
    res = eng.run("--rm", "--cap-drop", "CHOWN", "--cap-add", "NET_ADMIN", IMAGE, "sh", "-c",
                  "cat /proc/self/status; touch /tmp/f; chown 1000 /tmp/f 2>&1; echo rc=$?")
    eh.ok(res)
    base = int(status_field(default, "CapEff"), 16)
    assert base & (1 << CAP_CHOWN) and not base & (1 << CAP_NET_ADMIN)
    want = (base & ~(1 << CAP_CHOWN)) | (1 << CAP_NET_ADMIN)
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status_field(res.stdout, field), 16) == want, (field, res.stdout)
    assert "Operation not permitted" in res.stdout and res.stdout.endswith("rc=1\n"), \
        res.stdout


def test_default_seccomp_profile_denies(eng: Engine) -> None:
    res = eng.run("--rm", IMAGE, "sh", "-c", "grep ^Seccomp: /proc/self/status; " + PROBE)
    eh.ok(res)
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["Seccomp:", "2"], res.stdout
    assert "in-userns" not in lines[1:-1], res.stdout
    assert lines[-1] != "rc=0", res.stdout
    assert any("not permitted" in x or "not implemented" in x for x in lines[1:]), res.stdout


def test_seccomp_unconfined(eng: Engine) -> None:
    res = eng.run("--rm", "--security-opt", "seccomp=unconfined", IMAGE, "sh", "-c",
                  "grep ^Seccomp: /proc/self/status; " + PROBE)
    eh.ok(res)
    assert res.stdout.splitlines() == ["Seccomp:\t0", "in-userns", "rc=0"], res.stdout
