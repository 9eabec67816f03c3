"""Command-line surface: list output, flag spellings, --log, --version/--help, usage
errors (CALLERS.md 2.1-2.4, 2.6)."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import rthelpers as h
from rthelpers import assert_fails, assert_ok, describe

# ------------------------------------------------------------------------- list


def test_list_empty(rt):
    res = assert_ok(rt("list"))
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ID"), describe(res)
    assert assert_ok(rt("list", "-q")).stdout.strip() == ""


def test_list_json_empty_is_null_or_empty_array(rt):
    res = assert_ok(rt("list", "--format", "json"))
    # runc 1.1.5 prints `null`; an empty array is just as good for callers.
    assert json.loads(res.stdout) in (None, []), describe(res)


def test_list_table_quiet_and_json(rt, make_bundle):
    a, b = make_bundle(), make_bundle()
    assert_ok(rt.create(a))
    rt.create_started(b)
    res = assert_ok(rt("list"))
    lines = res.stdout.splitlines()
    header = lines[0].split()
    assert header[0] == "ID" and {"PID", "STATUS", "BUNDLE"} <= set(header), describe(res)
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert set(rows) == {a.id, b.id}, describe(res)
    assert rows[a.id][header.index("STATUS")] == "created"
    assert rows[b.id][header.index("STATUS")] == "running"
    assert rows[b.id][header.index("BUNDLE")] == str(b.path)

    quiet = assert_ok(rt("list", "-q"))
    assert sorted(quiet.stdout.split("\n")[:-1]) == sorted([a.id, b.id]), describe(quiet)
    assert quiet.stdout.endswith("\n")
    assert sorted(assert_ok(rt("list", "--quiet")).stdout.split()) == sorted([a.id, b.id])

    js = assert_ok(rt("list", "--format", "json"))
    arr = json.loads(js.stdout)
    assert isinstance(arr, list) and len(arr) == 2, describe(js)
    by_id = {o["id"]: o for o in arr}
    assert set(by_id) == {a.id, b.id}
    for bnd, status in ((a, "created"), (b, "running")):
        o = by_id[bnd.id]
        assert o["status"] == status and o["pid"] == rt.state(bnd.id)["pid"], o
        assert o["bundle"] == str(bnd.path), o
    js2 = assert_ok(rt("list", "-f", "json"))
    assert {o["id"] for o in json.loads(js2.stdout)} == {a.id, b.id}


def test_list_shows_stopped(rt, make_bundle):
    b = make_bundle(("true",))
    assert_ok(rt.create(b))
    assert_ok(rt.start(b.id))
    rt.wait_status(b.id, "stopped")
    arr = json.loads(assert_ok(rt("list", "--format", "json")).stdout)
    assert [(o["id"], o["status"]) for o in arr] == [(b.id, "stopped")]


# ------------------------------------------------------------------ flag spellings


@pytest.mark.parametrize("style", ["--bundle=DIR", "-b DIR", "after-id", "-bundle DIR"])
def test_bundle_flag_spellings(rt, bundle, style):
    d = str(bundle.path)
    argv = {
        "--bundle=DIR": ["create", f"--bundle={d}", bundle.id],
        "-b DIR": ["create", "-b", d, bundle.id],
        "after-id": ["create", bundle.id, "--bundle", d],
        "-bundle DIR": ["create", "-bundle", d, bundle.id],  # Go-style single-dash long flag
    }[style]
    assert_ok(rt(*argv))
    st = rt.state(bundle.id)
    assert st["status"] == "created" and os.path.realpath(st["bundle"]) == str(bundle.path)


def test_bundle_defaults_to_cwd(rt, bundle):
    assert_ok(rt("create", bundle.id, cwd=bundle.path))
    assert os.path.realpath(rt.state(bundle.id)["bundle"]) == str(bundle.path)


def test_relative_bundle_is_made_absolute(rt, bundle):
    assert_ok(rt("create", "--bundle", bundle.path.name, bundle.id, cwd=bundle.path.parent))
    st = rt.state(bundle.id)
    assert st["bundle"] == str(bundle.path), st


def test_root_flag_spellings(rt, bundle, tmp_path):
    alt = tmp_path / "altroot"
    assert_ok(rt("create", "--bundle", str(bundle.path), bundle.id,
                 global_args=[f"--root={alt}"]))
    assert (alt / bundle.id).is_dir(), f"state not under --root={alt}"
    res = assert_ok(rt("state", bundle.id, global_args=["--root", str(alt)]))
    assert json.loads(res.stdout)["status"] == "created"
    assert_fails(rt("state", bundle.id), 1, "does not exist")  # other root: not there
    assert_ok(rt("delete", "--force", bundle.id, global_args=["-root", str(alt)]))
    h.reap_zombies()
    h.assert_no_leftovers(bundle.id, alt, bundle.cgroup_path, bundle.path)


def test_pid_file_flag_spellings(rt, make_bundle, tmp_path):
    b1, b2 = make_bundle(), make_bundle()
    assert_ok(rt("create", f"--pid-file={tmp_path / 'a.pid'}", "-b", str(b1.path), b1.id))
    assert_ok(rt("create", "-pid-file", str(tmp_path / "b.pid"), "-b", str(b2.path), b2.id))
    assert int((tmp_path / "a.pid").read_text()) == rt.state(b1.id)["pid"]
    assert int((tmp_path / "b.pid").read_text()) == rt.state(b2.id)["pid"]


def test_engine_flags_accepted(rt, bundle, tmp_path):
    """Flags containerd/conmon pass on create: --no-new-keyring, --preserve-fds 0."""
    assert_ok(rt("create", "--bundle", str(bundle.path), "--pid-file",
                 str(tmp_path / "init.pid"), "--no-new-keyring", "--preserve-fds", "0",
                 bundle.id))
    assert rt.status(bundle.id) == "created"


def test_global_flags_accepted(rt):
    for flags in (["--debug"], ["--rootless", "false"], ["--rootless=auto"],
                  ["--log-format", "text"]):
        res = rt("list", global_args=["--root", str(rt.root), *flags])
        assert res.returncode == 0, f"global flags {flags} refused:" + describe(res)


# ------------------------------------------------------------------------- logs


def test_log_json_on_failure(rt, tmp_path):
    log = tmp_path / "log.json"
    res = rt("state", "no-such-container",
             global_args=["--root", str(rt.root), "--log", str(log), "--log-format", "json"])
    assert_fails(res, 1)
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
    assert lines, "nothing logged"
    last = json.loads(lines[-1])
    assert last["level"] == "error", last
    assert "does not exist" in last["msg"], last
    assert isinstance(last.get("time"), str) and last["time"], last


def test_log_json_single_object_for_podman(rt, tmp_path):
    """podman json.Unmarshal()s the whole --log file: one failing command at default
    verbosity must leave exactly one JSON object."""
    log = tmp_path / "oci-log"
    res = rt("state", "no-such-container",
             global_args=["--root", str(rt.root), "--log-format=json", f"--log={log}"])
    assert_fails(res, 1)
    obj = json.loads(log.read_text())
    assert obj["level"] == "error" and "does not exist" in obj["msg"], obj


def test_log_json_with_unwritable_stderr(rt, tmp_path):
    """containerd's shim may hand the runtime a read-only /dev/null as stderr (a CRI pod
    sandbox): the error must still reach --log, and the exit status stay 1."""
    log = tmp_path / "log.json"
    argv = rt.argv("state", "no-such-container",
                   global_args=["--root", str(rt.root), "--log", str(log), "--log-format", "json"])
    with open(os.devnull) as ro:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=ro,
                             timeout=20, check=False)
    assert res.returncode == 1, res
    obj = json.loads(log.read_text())
    assert obj["level"] == "error" and "does not exist" in obj["msg"], obj


def test_log_is_appended(rt, tmp_path):
    log = tmp_path / "log.json"
    log.write_text('{"level":"info","msg":"earlier","time":"2020-01-01T00:00:00Z"}\n')
    g = ["--root", str(rt.root), "--log", str(log), "--log-format", "json"]
    assert_fails(rt("state", "nope-1", global_args=g), 1)
    assert_fails(rt("kill", "nope-2", global_args=g), 1)
    lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()]
    assert lines[0]["msg"] == "earlier"
    errors = [ln for ln in lines if ln["level"] == "error"]
    assert len(errors) == 2, lines


def test_log_json_create_failure_names_cause(rt, make_bundle, tmp_path):
    """containerd reports the last "level":"error" line of --log for create failures."""
    b = make_bundle(("no-such-binary",))
    log = tmp_path / "log.json"
    res = rt("create", "--bundle", str(b.path), b.id,
             global_args=["--root", str(rt.root), "--log", str(log), "--log-format", "json"])
    assert_fails(res, 1)
    errors = [json.loads(ln) for ln in log.read_text().splitlines()
              if ln.strip() and json.loads(ln).get("level") == "error"]
    assert errors, log.read_text()
    assert "no-such-binary" in errors[-1]["msg"], errors


def test_log_text_format(rt, tmp_path):
    log = tmp_path / "log.txt"
    assert_fails(rt("state", "nope", global_args=["--root", str(rt.root), "--log", str(log)]), 1)
    text = log.read_text()
    assert "does not exist" in text and "error" in text, text


def test_invalid_log_format(rt):
    assert_fails(rt("list", global_args=["--root", str(rt.root), "--log-format", "xml"]), 1)


@pytest.mark.pyrt_only
def test_error_is_one_line(rt):
    # pyrt-only: DESIGN.md promises exactly one stderr line `pyrt: <what>: <why>`
    # (runc prints logrus text lines instead).
    res = assert_fails(rt("state", "no-such-container"), 1, "does not exist")
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"^pyrt: .+: .+", lines[0]), describe(res)


# ------------------------------------------------------------- version/help/usage


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(rt, flag):
    res = assert_ok(rt(flag, global_args=[]))
    assert "version" in res.stdout.lower(), describe(res)
    assert re.search(r"\d+\.\d+", res.stdout), describe(res)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(rt, flag):
    res = assert_ok(rt(flag, global_args=[]))
    for cmd in ("create", "start", "state", "kill", "delete", "run", "list"):
        assert cmd in res.stdout, f"help does not mention {cmd}:" + describe(res)


def test_unknown_command(rt):
    res = rt("frobnicate")
    assert res.returncode != 0, describe(res)  # runc 1.1.5 exits 3 here
    assert res.stderr.strip() or res.stdout.strip(), describe(res)


@pytest.mark.parametrize("argv", [["list", "--frob"], ["--frob", "list"],
                                  ["state", "--frob", "x"], ["delete", "--nope", "x"]])
def test_unknown_flag(rt, argv):
    res = rt(*argv, global_args=[] if argv[0] == "--frob" else None)
    assert res.returncode != 0, describe(res)
    assert res.stderr.strip(), describe(res)


@pytest.mark.parametrize("ids", [[], ["a1", "a2"]])
def test_create_needs_exactly_one_id(rt, bundle, ids):
    res = rt("create", "--bundle", str(bundle.path), *ids)
    assert_fails(res, 1)
    assert rt.list_ids() == []


@pytest.mark.parametrize("cmd", ["state", "start", "delete"])
def test_commands_need_an_id(rt, cmd):
    assert_fails(rt(cmd), 1)
