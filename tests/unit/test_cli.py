"""pyrt.cli: runc-style flag parsing and main()'s exit codes and output.

main() is only driven on paths that need no root: --version, help, usage errors, and
list/state against a tmp --root (never the default /run/pyrt).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrt import __version__, cli, log, state
from pyrt.errors import PyrtError

CREATE = cli.COMMANDS["create"]
RUN = cli.COMMANDS["run"]
KILL = cli.COMMANDS["kill"]
PS = cli.COMMANDS["ps"]


@pytest.fixture(autouse=True)
def _reset_log() -> Iterator[None]:
    """main() configures the module-global log target; do not leak it into other tests."""
    yield
    log.configure("", "text", False)


def parse(argv: list[str], cmd: cli.Command = CREATE, **kw: bool) -> tuple[cli.Options,
                                                                           list[str]]:
    return cli.parse_flags(argv, cmd.flags, cmd.name,
                           stop_after_args=kw.pop("stop_after_args", cmd.stop_after_args), **kw)


# ---------------------------------------------------------------- parse_flags

def test_defaults() -> None:
    opts, args = parse([])
    assert args == []
    assert opts.bundle == "" and opts.pid_file == ""
    assert opts.no_pivot is False
    assert opts.preserve_fds == "0"
    assert opts["no_new_keyring"] is False


@pytest.mark.parametrize("argv", [
    ["--bundle", "/b", "c1"], ["--bundle=/b", "c1"], ["-b", "/b", "c1"], ["-b=/b", "c1"],
    ["-bundle", "/b", "c1"], ["-bundle=/b", "c1"], ["c1", "--bundle", "/b"],
    ["c1", "-b=/b"],
])
def test_value_flag_spellings(argv: list[str]) -> None:
    opts, args = parse(argv)
    assert opts.bundle == "/b"
    assert args == ["c1"]


def test_value_may_start_with_dash_or_be_empty() -> None:
    assert parse(["--pid-file", "-x", "c1"])[0].pid_file == "-x"
    assert parse(["--pid-file=", "c1"])[0].pid_file == ""
    assert parse(["--pid-file=a=b", "c1"])[0].pid_file == "a=b"


def test_last_occurrence_wins() -> None:
    assert parse(["-b", "/one", "c1", "--bundle", "/two"])[0].bundle == "/two"


def test_single_dash_long_boolean() -> None:
    opts, args = parse(["-no-subreaper", "c1", "-d"], RUN)
    assert opts.no_subreaper is True and opts.detach is True
    assert opts.keep is False
    assert args == ["c1"]


@pytest.mark.parametrize("text,value", [("true", True), ("false", False), ("1", True),
                                        ("0", False), ("TRUE", True), ("False", False)])
def test_boolean_with_value(text: str, value: bool) -> None:
    opts, _ = parse([f"--detach={text}", "c1"], RUN)
    assert opts.detach is value


def test_boolean_false_overrides_earlier_true() -> None:
    assert parse(["-d", "c1", "--detach=false"], RUN)[0].detach is False


def test_boolean_does_not_take_the_next_token() -> None:
    opts, args = parse(["--detach", "false", "c1"], RUN)
    assert opts.detach is True
    assert args == ["false", "c1"]


@pytest.mark.parametrize("bad", ["--detach=yes", "--detach=", "-d=2"])
def test_boolean_with_bad_value(bad: str) -> None:
    with pytest.raises(PyrtError) as info:
        parse([bad, "c1"], RUN)
    assert info.value.what == "run"
    assert "invalid boolean value" in info.value.why and bad in info.value.why


def test_double_dash_ends_flags() -> None:
    opts, args = parse(["-b", "/b", "--", "--no-pivot", "-x"])
    assert opts.bundle == "/b" and opts.no_pivot is False
    assert args == ["--no-pivot", "-x"]


def test_lone_dash_is_positional() -> None:
    assert parse(["-", "c1"])[1] == ["-", "c1"]


def test_unknown_flag() -> None:
    with pytest.raises(PyrtError) as info:
        parse(["c1", "--nope"])
    assert info.value.what == "create"
    assert "--nope" in info.value.why and "not defined" in info.value.why


def test_unknown_single_dash_flag() -> None:
    with pytest.raises(PyrtError, match="-z"):
        parse(["-z", "c1"])


@pytest.mark.parametrize("argv", [["c1", "--bundle"], ["--pid-file"], ["-b"]])
def test_missing_value(argv: list[str]) -> None:
    with pytest.raises(PyrtError) as info:
        parse(argv)
    assert "needs an argument" in info.value.why
    assert argv[-1] in info.value.why


def test_kill_passes_everything_after_the_id_through() -> None:
    opts, args = parse(["c1", "-9"], KILL)
    assert args == ["c1", "-9"]
    opts, args = parse(["c1", "--all"], KILL)
    assert args == ["c1", "--all"] and opts.all is False
    opts, args = parse(["-a", "c1", "KILL"], KILL)
    assert args == ["c1", "KILL"] and opts.all is True
    opts, args = parse(["--all=true", "c1"], KILL)
    assert opts.all is True and args == ["c1"]


def test_ps_passes_ps_options_through() -> None:
    opts, args = parse(["--format", "json", "c1", "-e", "-o", "pid"], PS)
    assert opts.format == "json"
    assert args == ["c1", "-e", "-o", "pid"]


def test_without_stop_after_args_flags_after_positionals_parse() -> None:
    opts, args = parse(["c1", "-a"], KILL, stop_after_args=False)
    assert opts.all is True and args == ["c1"]


def test_stop_at_first_arg_for_global_flags() -> None:
    opts, rest = cli.parse_flags(["--root", "/r", "-debug", "list", "--format", "json"],
                                 cli.GLOBAL_FLAGS, "pyrt", stop_at_first_arg=True)
    assert opts.root == "/r" and opts.debug is True
    assert rest == ["list", "--format", "json"]


def test_options_attribute_access() -> None:
    opts, _ = parse([])
    with pytest.raises(AttributeError):
        _ = opts.nonexistent


# ---------------------------------------------------------------- main

def run(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capfd.readouterr()
    return rc, out, err


@pytest.fixture
def root(tmp_path: Path) -> str:
    path = tmp_path / "root"
    path.mkdir()
    return str(path)


@pytest.mark.parametrize("flag", ["--version", "-v", "-version"])
def test_version(capfd: pytest.CaptureFixture[str], flag: str) -> None:
    rc, out, err = run(capfd, flag)
    assert rc == 0
    assert out.startswith(f"pyrt version {__version__}\n")
    assert "spec: 1." in out
    assert err == ""


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"], ["help"]])
def test_help(capfd: pytest.CaptureFixture[str], argv: list[str]) -> None:
    rc, out, err = run(capfd, *argv)
    assert rc == 0 and err == ""
    assert out.startswith("usage: pyrt")
    for name in cli.COMMANDS:
        assert f"   {name} " in out


def test_command_help(capfd: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capfd, "create", "--help")
    assert rc == 0
    assert out.startswith("usage: pyrt create [flags] <container-id>")
    assert "--bundle, -b DIR" in out
    assert "pidfd-socket" not in out  # hidden


def test_unknown_command(capfd: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capfd, "frobnicate")
    assert rc == 1
    assert out == ""
    assert err == "pyrt: frobnicate: unknown command (see pyrt --help)\n"


def test_unknown_global_flag(capfd: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capfd, "--frob", "list")
    assert rc == 1
    assert err.startswith("pyrt: ") and "--frob" in err
    assert err.count("\n") == 1


def test_wrong_number_of_arguments(capfd: pytest.CaptureFixture[str], root: str) -> None:
    rc, _, err = run(capfd, "--root", root, "state")
    assert rc == 1
    assert err == "pyrt: state: needs exactly 1 argument(s): <container-id>, got 0\n"
    rc, _, err = run(capfd, "--root", root, "kill", "a", "b", "c")
    assert rc == 1 and "needs 1 to 2 argument(s)" in err
    rc, _, err = run(capfd, "--root", root, "list", "extra")
    assert rc == 1 and "got 1" in err


def test_list_empty_root_prints_header_only(capfd: pytest.CaptureFixture[str],
                                           root: str) -> None:
    rc, out, err = run(capfd, "--root", root, "list")
    assert rc == 0, err
    assert out == "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"


def test_list_missing_root_is_empty(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, _ = run(capfd, "--root", str(tmp_path / "none"), "list", "-q")
    assert rc == 0 and out == ""


def test_list_json_empty_is_null(capfd: pytest.CaptureFixture[str], root: str) -> None:
    for argv in (["list", "--format", "json"], ["list", "-f=json"], ["list", "--format=json"]):
        rc, out, err = run(capfd, "--root", root, *argv)
        assert (rc, out, err) == (0, "null\n", "")


def test_list_bad_format(capfd: pytest.CaptureFixture[str], root: str) -> None:
    rc, out, err = run(capfd, "--root", root, "list", "--format", "yaml")
    assert rc == 1 and out == ""
    assert "invalid format 'yaml'" in err


def test_root_must_not_be_slash(capfd: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capfd, "--root", "/", "list")
    assert rc == 1 and err == "pyrt: --root: must not be /\n"


def test_root_that_is_a_file(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    rc, _, err = run(capfd, "--root", str(tmp_path / "file"), "list")
    assert rc == 1
    assert err.startswith("pyrt: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_state_of_missing_container(capfd: pytest.CaptureFixture[str], root: str) -> None:
    rc, out, err = run(capfd, "--root", root, "state", "nope")
    assert rc == 1 and out == ""
    assert err == "pyrt: container nope: does not exist\n"


def test_state_with_invalid_id(capfd: pytest.CaptureFixture[str], root: str) -> None:
    rc, _, err = run(capfd, "--root", root, "state", "../x")
    assert rc == 1 and "invalid" in err


def test_kill_bad_signal_and_missing_container(capfd: pytest.CaptureFixture[str],
                                               root: str) -> None:
    rc, _, err = run(capfd, "--root", root, "kill", "nope", "NOSUCHSIG")
    assert rc == 1 and "unknown signal name" in err
    rc, _, err = run(capfd, "--root", root, "kill", "nope", "KILL")
    assert rc == 1 and err == "pyrt: container nope: does not exist\n"


def _saved_container(root: str, cid: str = "c1") -> state.State:
    st = state.State(id=cid, pid=os.getpid(),
                     start_time=state.process_start_time(os.getpid()) or 0,
                     bundle="/bundles/" + cid, rootfs="/bundles/rootfs",
                     created=state.utc_now(), oci_version="1.3.0")
    with state.Container.create(root, cid) as ctr:
        ctr.save(st)
    return st


def test_state_of_saved_container(capfd: pytest.CaptureFixture[str], root: str) -> None:
    st = _saved_container(root)
    rc, out, err = run(capfd, "--root", root, "state", "c1")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["id"] == "c1" and doc["pid"] == os.getpid() and doc["status"] == "running"
    assert doc["bundle"] == st.bundle and doc["created"] == st.created
    assert out.startswith('{\n  "ociVersion": "1.3.0",\n')


def test_list_with_containers(capfd: pytest.CaptureFixture[str], root: str) -> None:
    _saved_container(root, "b")
    _saved_container(root, "a")
    state.Container.create(root, "half").close()  # create died before saving: not listed
    rc, out, _ = run(capfd, "--root", root, "list", "-q")
    assert rc == 0 and out == "a\nb\n"
    rc, out, _ = run(capfd, "--root", root, "list", "--format", "json")
    docs = json.loads(out)
    assert [d["id"] for d in docs] == ["a", "b"]
    assert all(d["status"] == "running" and d["pid"] == os.getpid() for d in docs)
    rc, out, _ = run(capfd, "--root", root, "list")
    lines = out.splitlines()
    assert lines[0].startswith("ID ") and len(lines) == 3
    assert lines[1].split()[:4] == ["a", str(os.getpid()), "running", "/bundles/a"]


def test_systemd_cgroup_refused(capfd: pytest.CaptureFixture[str], root: str) -> None:
    rc, _, err = run(capfd, "--root", root, "--systemd-cgroup", "list")
    assert rc == 1 and "--systemd-cgroup" in err


def test_bad_log_format(capfd: pytest.CaptureFixture[str], root: str) -> None:
    rc, _, err = run(capfd, "--root", root, "--log-format", "xml", "list")
    assert rc == 1 and "invalid log-format 'xml'" in err


RFC3339_NANO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z"


def test_log_file_json(capfd: pytest.CaptureFixture[str], root: str, tmp_path: Path) -> None:
    logfile = tmp_path / "log.json"
    rc, _, err = run(capfd, "--root", root, "--log", str(logfile), "--log-format", "json",
                     "state", "nope")
    assert rc == 1
    assert err == "pyrt: container nope: does not exist\n"  # stderr still gets it
    lines = logfile.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert set(entry) == {"level", "msg", "time"}
    assert entry["level"] == "error"
    assert entry["msg"] == "container nope: does not exist"
    assert re.fullmatch(RFC3339_NANO, entry["time"])


def test_log_file_text(capfd: pytest.CaptureFixture[str], root: str, tmp_path: Path) -> None:
    logfile = tmp_path / "log.txt"
    rc, _, _ = run(capfd, "--root", root, "--log", str(logfile), "state", "nope")
    assert rc == 1
    text = logfile.read_text()
    assert re.fullmatch(rf'time="{RFC3339_NANO}" level=error '
                        r'msg="container nope: does not exist"\n', text), text


def test_log_file_appends(capfd: pytest.CaptureFixture[str], root: str, tmp_path: Path) -> None:
    logfile = tmp_path / "log.json"
    for _ in range(2):
        run(capfd, "--root", root, "--log", str(logfile), "--log-format", "json", "state", "x")
    assert len(logfile.read_text().splitlines()) == 2


def test_debug_log(capfd: pytest.CaptureFixture[str], root: str, tmp_path: Path) -> None:
    logfile = tmp_path / "log.json"
    rc, _, _ = run(capfd, "--root", root, "--debug", "--log", str(logfile), "--log-format",
                   "json", "list")
    assert rc == 0
    entries = [json.loads(line) for line in logfile.read_text().splitlines()]
    assert [e["level"] for e in entries] == ["debug"]
    assert entries[0]["msg"].startswith("list")


def test_pidfd_socket_is_refused_not_ignored(tmp_path: Path,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--root", str(tmp_path), "create", "--pidfd-socket", "/x", "--bundle",
                     str(tmp_path), "c1"])
    assert code == 1
    assert "--pidfd-socket: not supported" in capfd.readouterr().err
    assert not (tmp_path / "c1").exists()
