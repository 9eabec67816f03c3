"""podman and docker: terminals (the runtime's --console-socket), interactive sessions.

Interactive sessions run under util-linux ``script``, which gives the engine's CLI a
pty on its stdin and stdout, as a user's terminal would.
"""

from __future__ import annotations

import shlex

import ehelpers as eh
from edrivers import Engine
from eimage import IMAGE

SLEEPER = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


def test_run_t_gets_a_tty(eng: Engine) -> None:
    res = eng.run("--rm", "-t", IMAGE, "sh", "-c", "tty; test -t 0 && test -t 1 && echo both")
    eh.ok(res)
    assert res.stdout.replace("\r", "").splitlines() == ["/dev/pts/0", "both"], res.stdout


def test_exec_t_gets_a_tty(eng: Engine) -> None:
    eng.ok("run", *eng.run_flags(), "--detach", "--name", "et", IMAGE, "sh", "-c", SLEEPER)
    eng.wait_status("et", "running")
    out = eng.ok("exec", "-t", "et", "sh", "-c", "tty; test -t 1 && echo yes")
    lines = out.replace("\r", "").splitlines()
    assert lines[0].startswith("/dev/pts/") and lines[1] == "yes", out
    out = eng.ok("exec", "et", "sh", "-c", "tty || true")
    assert "not a tty" in out, out


def test_interactive_run(eng: Engine) -> None:
    cmd = shlex.join(eng.argv("run", *eng.run_flags(), "--rm", "-it", IMAGE, "sh"))
    s = eh.Session(cmd, env=eng.env())
    try:
        s.send("echo $((6*7))x; tty\n")
        s.expect("42x")
        s.expect("/dev/pts/0")
        s.send("stty size; exit 3\n")
        assert s.wait() == 3, s.buf
    finally:
        s.close()


def test_interactive_exec(eng: Engine) -> None:
    eng.ok("run", *eng.run_flags(), "--detach", "--name", "ie", IMAGE, "sh", "-c", SLEEPER)
    eng.wait_status("ie", "running")
    cmd = shlex.join(eng.argv("exec", "-it", "ie", "sh"))
    s = eh.Session(cmd, env=eng.env())
    try:
        s.send("echo in-$(cat /proc/1/comm)-$((5+6))\n")
        s.expect("in-sh-11")
        s.send("exit 5\n")
        assert s.wait() == 5, s.buf
    finally:
        s.close()
    assert eng.status("ie") == "running"
