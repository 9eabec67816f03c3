"""podman and docker: the runtime's failures as the engines report them.

The engines turn a runtime error into an exit status by reading the runtime's error
text: podman from the one JSON object in ``--log`` (``--log-format json``), docker
through containerd's shim from the last ``"level":"error"`` line of the bundle's
log.json.  "no such file or directory" -> 127, "permission denied" -> 126; the text
must reach the user.  And when the container is already gone (killed and deleted
behind the engine's back), stop and rm must still work: the engines recognise
"does not exist" / "container not running" / "no such process".
"""

from __future__ import annotations

import os
import signal

import ehelpers as eh
import pytest
from edrivers import Engine
from eimage import IMAGE

SLEEPER = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


def test_missing_executable_is_127(eng: Engine) -> None:
    res = eng.run("--rm", IMAGE, "/no/such/binary")
    assert res.returncode == 127, eh.describe(res)
    assert "/no/such/binary" in res.stderr, eh.describe(res)
    assert "no such file or directory" in res.stderr.lower(), eh.describe(res)
    assert "{" not in res.stderr, "the engine did not decode the JSON log:" + eh.describe(res)
    assert eng.ok("ps", "--all", "--quiet") == ""


def test_not_executable_is_126(eng: Engine) -> None:
    res = eng.run("--rm", IMAGE, "/etc/passwd")
    assert res.returncode == 126, eh.describe(res)
    assert "permission denied" in res.stderr.lower(), eh.describe(res)


def test_exec_missing_executable(eng: Engine) -> None:
    eng.ok("run", *eng.run_flags(), "--detach", "--name", "em", IMAGE, "sh", "-c", SLEEPER)
    eng.wait_status("em", "running")
    res = eng("exec", "em", "/no/such/binary")
    assert res.returncode == (127 if eng.kind == "podman" else 126), eh.describe(res)
    # docker 20.10 prints this one on stdout
    assert "no such file or directory" in (res.stderr + res.stdout).lower(), eh.describe(res)
    assert eng.status("em") == "running"


def test_container_deleted_behind_the_engines_back(eng: Engine) -> None:
    cid = eng.ok("run", *eng.run_flags(), "--detach", "--name", "gone", IMAGE,
                 "sh", "-c", SLEEPER).strip()
    eng.wait_status("gone", "running")
    pid = eng.pid("gone")
    rt = [eng.runtime.path, "--root", str(eng.state_root)]
    eh.ok(eh.run([*rt, "delete", "--force", cid]))
    assert not (eng.state_root / cid).exists()
    eh.wait_for(lambda: not eh.h.pid_alive(pid), 20, "the container's process to go")
    eh.wait_for(lambda: eng.status("gone") == "exited", 30, "the engine to notice")
    res = eng("stop", "gone")
    assert res.returncode == 0, eh.describe(res)
    eh.ok(eng("rm", "--force", "gone"))
    assert eng.ok("ps", "--all", "--quiet") == ""


def test_kill_after_the_process_died_unnoticed(eng: Engine) -> None:
    """The init is dead (a zombie: its conmon is stopped) while podman still thinks it
    runs: `podman kill` gets "container not running" from the runtime's kill, asks the
    runtime's state ("stopped") and reports the container as stopped; once conmon goes
    on, the container is exited."""
    if eng.kind != "podman":
        pytest.skip("docker: the shim that would have to be stopped also serves the kill")
    eng.ok("run", *eng.run_flags(), "--detach", "--name", "dead", IMAGE, "sleep", "1000")
    eng.wait_status("dead", "running")
    pid = eng.pid("dead")
    conmon = int(eng.inspect("dead", "{{.State.ConmonPid}}"))
    os.kill(conmon, signal.SIGSTOP)
    try:
        os.kill(pid, signal.SIGKILL)
        eh.wait_for(lambda: eh.h.proc_stat(pid)[0] == "Z", 10, "a zombie init")
        assert eng.status("dead") == "running"
        res = eng("kill", "--signal", "TERM", "dead")
        assert res.returncode == 125, eh.describe(res)
        assert "container not running" in res.stderr, eh.describe(res)
        assert "container state improper: stopped" in res.stderr, eh.describe(res)
    finally:
        os.kill(conmon, signal.SIGCONT)
    eh.wait_for(lambda: eng.status("dead") == "exited", 30, "podman to see the exit")
