"""Command line: runc's commands, flags and spellings; parsing and dispatch only.

Accepted as urfave/cli (runc's parser) accepts them: `--flag value`, `--flag=value`,
single-dash long flags (`-no-subreaper`), flags after the container id (except for
kill, which passes everything after the id through), `--` to end flags.
"""

from __future__ import annotations

import os
import sys

from pyrt import OCI_VERSION, __version__, log
from pyrt.errors import PyrtError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Flag:
    def __init__(self, names: str, value: str = "", help: str = "", default: Any = None,
                 hidden: bool = False) -> None:
        self.names = names.split(",")
        self.key = self.names[0].replace("-", "_")
        self.value = value  # "" for a boolean flag, else the value's name for help
        self.help = help
        self.default = default if default is not None else (False if not value else "")
        self.hidden = hidden


class Command:
    def __init__(self, name: str, usage: str, args: str, nargs: tuple[int, int],
                 flags: list[Flag], run: Callable[[Options], int],
                 stop_after_args: bool = False) -> None:
        self.name, self.usage, self.args, self.nargs = name, usage, args, nargs
        self.flags = flags
        self.run = run
        self.stop_after_args = stop_after_args


class Options(dict):  # type: ignore[type-arg]
    """Parsed flags by key, plus `args` (positionals) and the global flags."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def parse_flags(argv: list[str], flags: list[Flag], where: str,
                stop_after_args: bool = False, stop_at_first_arg: bool = False
                ) -> tuple[Options, list[str]]:
    """Flags anywhere among positionals; returns (options, positionals)."""
    by_name = {name: f for f in flags for name in f.names}
    opts = Options({f.key: f.default for f in flags})
    args: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok == "--":
            args.extend(argv[i:])
            break
        if (args and stop_after_args) or not tok.startswith("-") or tok == "-":
            if stop_at_first_arg:
                args.extend(argv[i - 1 :])
                break
            args.append(tok)
            continue
        name, eq, value = tok.lstrip("-").partition("=")
        flag = by_name.get(name)
        if flag is None:
            raise PyrtError(where, f"flag provided but not defined: {tok}")
        if not flag.value:
            if eq and value.lower() not in ("true", "false", "1", "0"):
                raise PyrtError(where, f"invalid boolean value {value!r} for {tok}")
            opts[flag.key] = not eq or value.lower() in ("true", "1")
            continue
        if not eq:
            if i >= len(argv):
                raise PyrtError(where, f"flag needs an argument: {tok}")
            value = argv[i]
            i += 1
        if isinstance(flag.default, list):
            opts[flag.key] = [*opts[flag.key], value]
        else:
            opts[flag.key] = value
    return opts, args


# ---------------------------------------------------------------- commands

def _root(opts: Options) -> str:
    """--root, or the default: /run/pyrt, or $XDG_RUNTIME_DIR/pyrt when rootless."""
    if not opts.root:
        from pyrt import rootless

        opts["root"] = rootless.default_root()
    root: str = os.path.abspath(opts.root)
    if root == "/":
        raise PyrtError("--root", "must not be /")
    return root


def _int_flag(opts: Options, key: str, flag: str) -> int:
    try:
        value = int(opts[key] or 0)
    except ValueError:
        raise PyrtError(flag, f"not a number: {opts[key]!r}") from None
    if value < 0:
        raise PyrtError(flag, "must not be negative")
    return value


def _create_opts(opts: Options) -> dict[str, Any]:
    if opts.pidfd_socket:
        raise PyrtError("--pidfd-socket", "not supported by pyrt yet")
    from pyrt import rootless

    return {
        "rootless_cgroups": rootless.cgroups_rootless(opts.rootless),
        "pid_file": opts.pid_file, "console_socket": opts.console_socket,
        "no_pivot": opts.no_pivot, "no_new_keyring": opts.no_new_keyring,
        "preserve_fds": _int_flag(opts, "preserve_fds", "--preserve-fds"),
    }


def cmd_create(opts: Options) -> int:
    from pyrt import container

    ctr, _ = container.create(_root(opts), opts.args[0], opts.bundle or ".",
                              **_create_opts(opts))
    ctr.close()
    return 0


def cmd_run(opts: Options) -> int:
    from pyrt import container

    return container.run(_root(opts), opts.args[0], opts.bundle or ".", detach=opts.detach,
                         keep=opts.keep, no_subreaper=opts.no_subreaper,
                         **_create_opts(opts))


def _on_container(action: str) -> Callable[[Options], int]:
    """The command that runs `container.<action>` on one container under its lock."""

    def command(opts: Options) -> int:
        from pyrt import container
        from pyrt.state import Container

        with Container.open(_root(opts), opts.args[0]) as ctr:
            getattr(container, action)(ctr)
        return 0

    return command


def cmd_state(opts: Options) -> int:
    from pyrt import jsonio
    from pyrt.state import Container

    with Container.open(_root(opts), opts.args[0], shared=True) as ctr:
        doc = ctr.oci_state()
    sys.stdout.write(jsonio.dumps_indented(doc))
    return 0


def cmd_kill(opts: Options) -> int:
    from pyrt import container
    from pyrt.linux import signals
    from pyrt.state import Container

    if len(opts.args) > 2:
        raise PyrtError("kill", "too many arguments")
    sig = signals.parse(opts.args[1] if len(opts.args) > 1 else "SIGTERM")
    with Container.open(_root(opts), opts.args[0]) as ctr:
        container.kill(ctr, sig, all_processes=opts.all)
    return 0


def cmd_delete(opts: Options) -> int:
    from pyrt import container

    container.delete(_root(opts), opts.args[0], force=opts.force)
    return 0


def cmd_list(opts: Options) -> int:
    from pyrt import container, jsonio

    if opts.format not in ("table", "json"):
        raise PyrtError("list --format", f"invalid format {opts.format!r}: table or json")
    docs = container.list_containers(_root(opts))
    if opts.quiet:
        sys.stdout.write("".join(d["id"] + "\n" for d in docs))
    elif opts.format == "json":
        sys.stdout.write(jsonio.dumps(docs or None, compact=True) + "\n")
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[d["id"], str(d["pid"]), d["status"], d["bundle"], d["created"], d["owner"]]
                 for d in docs]
        widths = [max(12, max(len(r[c]) for r in rows) + 3) for c in range(5)]
        for r in rows:
            sys.stdout.write("".join(r[c].ljust(widths[c]) for c in range(5)) + r[5] + "\n")
    return 0


def cmd_ps(opts: Options) -> int:
    """`ps --format json`: the pids, as containerd reads them; table: host `ps` filtered."""
    from pyrt import container, jsonio
    from pyrt.state import Container

    if opts.format not in ("table", "json"):
        raise PyrtError("ps --format", f"invalid format {opts.format!r}: table or json")
    with Container.open(_root(opts), opts.args[0], shared=True) as ctr:
        pids = container.pids(ctr)
    if opts.format == "json":
        sys.stdout.write(jsonio.dumps(pids, compact=True) + "\n")
        return 0
    import subprocess

    ps_args = opts.args[1:] or ["-ef"]
    try:
        out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise PyrtError("ps", str(e)) from None
    lines = out.stdout.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise PyrtError("ps", "the ps output has no PID column")
    column = header.index("PID")
    wanted = set(pids)
    sys.stdout.write(lines[0] + "\n")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            sys.stdout.write(line + "\n")
    return 0


# (flag, section, field, kind): how runc's update flags fill a LinuxResources object
_UPDATE_FIELDS = (
    ("blkio-weight", "blockIO", "weight", "uint"), ("cpu-period", "cpu", "period", "uint"),
    ("cpu-quota", "cpu", "quota", "int"), ("cpu-burst", "cpu", "burst", "uint"),
    ("cpu-share", "cpu", "shares", "uint"), ("cpu-rt-period", "cpu", "realtimePeriod", "uint"),
    ("cpu-rt-runtime", "cpu", "realtimeRuntime", "int"), ("cpu-idle", "cpu", "idle", "int"),
    ("cpuset-cpus", "cpu", "cpus", "str"), ("cpuset-mems", "cpu", "mems", "str"),
    ("memory", "memory", "limit", "size"), ("memory-swap", "memory", "swap", "size"),
    ("memory-reservation", "memory", "reservation", "size"),
    ("kernel-memory", "memory", "kernel", "size"),
    ("kernel-memory-tcp", "memory", "kernelTCP", "size"),
    ("pids-limit", "pids", "limit", "int"),
)


def _update_value(flag: str, kind: str, text: str) -> int | str:
    from pyrt import units

    if kind == "str":
        return text
    if kind == "size":
        return -1 if text == "-1" else units.ram_in_bytes(text, f"--{flag}")
    try:
        value = int(text)
    except ValueError:
        raise PyrtError(f"--{flag}", f"not a number: {text!r}") from None
    if kind == "uint" and value < 0:
        raise PyrtError(f"--{flag}", "must not be negative")
    return value


def _update_resources(opts: Options) -> dict[str, Any]:
    """The LinuxResources an update asks for: from --resources (a file or - for stdin),
    else from the flags."""
    if opts.l3_cache_schema or opts.mem_bw_schema:
        raise PyrtError("update", "Intel RDT is not supported by pyrt")
    if opts.resources:
        from pyrt import config, jsonio

        what = f"--resources {opts.resources}"
        try:
            if opts.resources == "-":
                text = sys.stdin.read()
            else:
                with open(opts.resources, encoding="utf-8") as f:
                    text = f.read()
            return config.parse_resources(jsonio.loads(text))
        except OSError as e:
            raise PyrtError(what, e.strerror or str(e)) from None
        except (jsonio.JSONError, UnicodeDecodeError) as e:
            raise PyrtError(what, str(e)) from None
    resources: dict[str, Any] = {}
    for flag, section, name, kind in _UPDATE_FIELDS:
        text = opts[flag.replace("-", "_")]
        if text != "":
            resources.setdefault(section, {})[name] = _update_value(flag, kind, text)
    return resources


def cmd_update(opts: Options) -> int:
    from pyrt import container
    from pyrt.state import Container

    resources = _update_resources(opts)
    with Container.open(_root(opts), opts.args[0]) as ctr:
        container.update(ctr, resources)
    return 0


def cmd_events(opts: Options) -> int:
    from pyrt import events, units

    interval = units.duration_seconds(opts.interval, "--interval")
    if interval <= 0:
        raise PyrtError("--interval", "must be greater than 0")
    if opts.stats:
        events.stats_once(_root(opts), opts.args[0])
    else:
        events.stream(_root(opts), opts.args[0], interval)
    return 0


def cmd_spec(opts: Options) -> int:
    """A default config.json like `runc spec`, runnable with the demo rootfs."""
    from pyrt import defaults, jsonio

    path = os.path.join(opts.bundle or ".", "config.json")
    doc = defaults.config()
    if opts.rootless:
        doc = defaults.rootless(doc, os.getuid(), os.getgid())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise PyrtError(path, "already exists: remove it first") from None
    except OSError as e:
        raise PyrtError(path, e.strerror or str(e)) from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(jsonio.dumps_indented(doc, indent=4) + "\n")
    return 0


def cmd_features(opts: Options) -> int:
    from pyrt import jsonio
    from pyrt.features import features

    sys.stdout.write(jsonio.dumps_indented(features(), indent=4) + "\n")
    return 0


def cmd_validate(opts: Options) -> int:
    """Every problem of the bundle's config.json, each with its JSON pointer."""
    from pyrt import jsonio
    from pyrt.validate import validate_bundle

    if opts.format not in ("text", "json"):
        raise PyrtError("validate --format", f"invalid format {opts.format!r}: text or json")
    problems = validate_bundle(opts.bundle or ".")
    if opts.format == "json":
        doc = {"valid": not problems,
               "problems": [{"pointer": p, "message": m} for p, m in problems]}
        sys.stdout.write(jsonio.dumps(doc) + "\n")
    elif problems:
        sys.stdout.write("".join(f"{p or '/'}: {m}\n" for p, m in problems))
    else:
        sys.stdout.write("config.json is valid\n")
    return 1 if problems else 0


def cmd_exec(opts: Options) -> int:
    """runc exec: errors exit 255 (as runc), else the process's own exit code."""
    from pyrt import container

    try:
        if opts.process and len(opts.args) > 1:
            raise PyrtError("exec", "give either --process or a command, not both")
        if not opts.process and len(opts.args) < 2:
            raise PyrtError("exec", "needs a command to run (or --process FILE)")
        return container.exec_process(
            _root(opts), opts.args[0], lambda bundle: _exec_process(opts, bundle),
            detach=opts.detach, pid_file=opts.pid_file, console_socket=opts.console_socket,
            preserve_fds=_int_flag(opts, "preserve_fds", "--preserve-fds"),
            ignore_paused=opts.ignore_paused)
    except PyrtError as e:
        log.error(str(e))
        return 255


def _exec_process(opts: Options, bundle: str) -> Any:
    from pyrt import exec_process

    if opts.process:
        return exec_process.from_file(opts.process)
    return exec_process.from_flags(
        bundle, args=opts.args[1:], tty=opts.tty, env=opts.env, cwd=opts.cwd, user=opts.user,
        additional_gids=opts.additional_gids, no_new_privs=opts.no_new_privs,
        apparmor=opts.apparmor, process_label=opts.process_label, caps=opts.cap)


_CREATE_FLAGS = [
    Flag("bundle,b", "DIR", "path to the bundle directory (default: the current directory)"),
    Flag("console-socket", "PATH", "unix socket that receives the pty master"),
    Flag("pidfd-socket", "PATH", "unix socket that receives the init's pidfd", hidden=True),
    Flag("pid-file", "FILE", "file to write the init's pid to"),
    Flag("no-pivot", "", "use MS_MOVE and chroot instead of pivot_root"),
    Flag("no-new-keyring", "", "do not make a new session keyring"),
    Flag("preserve-fds", "N", "pass N extra fds (from 3) to the container", default="0"),
]

COMMANDS = {c.name: c for c in [
    Command("create", "create a container", "<container-id>", (1, 1), _CREATE_FLAGS,
            cmd_create),
    Command("run", "create and start a container", "<container-id>", (1, 1), [
        *_CREATE_FLAGS,
        Flag("detach,d", "", "detach from the container's process"),
        Flag("keep", "", "do not delete the container after it exits"),
        Flag("no-subreaper", "", "do not make pyrt a subreaper"),
    ], cmd_run),
    Command("start", "start the process of a created container", "<container-id>", (1, 1),
            [], _on_container("start")),
    Command("state", "print the state of a container", "<container-id>", (1, 1), [],
            cmd_state),
    Command("kill", "send a signal to the container's init (default SIGTERM)",
            "<container-id> [signal]", (1, 2),
            [Flag("all,a", "", "signal every process of the container", hidden=True)],
            cmd_kill, stop_after_args=True),
    Command("delete", "delete a container and everything it holds", "<container-id>", (1, 1),
            [Flag("force,f", "", "kill the container first if it is running")], cmd_delete),
    Command("exec", "run a new process in a running container",
            "<container-id> [command [args...]]", (1, 9999), [
                Flag("process,p", "FILE", "the process as runtime-spec JSON"),
                Flag("tty,t", "", "allocate a pseudo-TTY"),
                Flag("console-socket", "PATH", "unix socket that receives the pty master"),
                Flag("detach,d", "", "do not wait for the process"),
                Flag("pid-file", "FILE", "file to write the process's pid to"),
                Flag("cwd", "DIR", "working directory in the container"),
                Flag("env,e", "K=V", "set an environment variable (repeatable)", default=[]),
                Flag("user,u", "UID[:GID]", "user to run as"),
                Flag("additional-gids,g", "GID", "an extra group (repeatable)", default=[]),
                Flag("cap,c", "CAP", "add a capability (repeatable)", default=[]),
                Flag("no-new-privs", "", "set no_new_privs"),
                Flag("preserve-fds", "N", "pass N extra fds (from 3)", default="0"),
                Flag("process-label", "LABEL", "SELinux label for the process"),
                Flag("apparmor", "PROFILE", "AppArmor profile for the process"),
                Flag("ignore-paused", "", "exec even into a paused container"),
                Flag("pidfd-socket", "PATH", "not supported", hidden=True),
            ], cmd_exec, stop_after_args=True),
    Command("pause", "freeze every process of the container", "<container-id>", (1, 1), [],
            _on_container("pause")),
    Command("resume", "thaw a paused container", "<container-id>", (1, 1), [],
            _on_container("resume")),
    Command("update", "change a container's cgroup limits", "<container-id>", (1, 1), [
        Flag("resources,r", "FILE", "LinuxResources JSON to apply (- for stdin)"),
        *[Flag(flag, "VALUE", f"linux.resources.{section}.{name}")
          for flag, section, name, _ in _UPDATE_FIELDS],
        Flag("l3-cache-schema", "SCHEMA", "Intel RDT (not supported)", hidden=True),
        Flag("mem-bw-schema", "SCHEMA", "Intel RDT (not supported)", hidden=True),
    ], cmd_update),
    Command("events", "print the container's cgroup stats and OOM kills as JSON lines",
            "<container-id>", (1, 1), [
                Flag("interval", "DURATION", "time between stats (Go syntax: 5s, 100ms)",
                     default="5s"),
                Flag("stats", "", "print the stats once and exit"),
            ], cmd_events),
    Command("ps", "list the container's processes", "<container-id> [ps options]", (1, 99),
            [Flag("format,f", "FORMAT", "table or json", default="table")], cmd_ps,
            stop_after_args=True),
    Command("spec", "write a default config.json", "", (0, 0), [
        Flag("bundle,b", "DIR", "where to write config.json (default: the current directory)"),
        Flag("rootless", "", "a config an unprivileged user can run"),
    ], cmd_spec),
    Command("validate", "check a bundle's config.json and list every problem", "", (0, 0), [
        Flag("bundle,b", "DIR", "the bundle (default: the current directory)"),
        Flag("format,f", "FORMAT", "text or json", default="text"),
    ], cmd_validate),
    Command("features", "print what this runtime supports (runtime-spec features.md)", "",
            (0, 0), [], cmd_features),
    Command("list", "list containers", "", (0, 0), [
        Flag("format,f", "FORMAT", "table or json", default="table"),
        Flag("quiet,q", "", "print only the container ids"),
    ], cmd_list),
]}

GLOBAL_FLAGS = [
    Flag("root", "DIR", "directory for container state (default: /run/pyrt, or\n"
         + " " * 32 + "$XDG_RUNTIME_DIR/pyrt for an unprivileged user)"),
    Flag("log", "FILE", "log file (default: stderr)"),
    Flag("log-format", "FORMAT", "text or json", default="text"),
    Flag("debug", "", "log debug messages"),
    Flag("systemd-cgroup", "", "use the systemd cgroup driver"),
    Flag("rootless", "VALUE", "forgive cgroup permission errors: true, false or auto\n"
         + " " * 32 + "(auto: when not root, or root in a user namespace)", default="auto"),
    Flag("version,v", "", "print the version"),
    Flag("help,h", "", "show help"),
]


def _flag_help(flags: list[Flag]) -> str:
    lines = []
    for f in flags:
        if f.hidden:
            continue
        names = ", ".join(("-" if len(n) == 1 else "--") + n for n in f.names)
        lines.append(f"   {(names + ' ' + f.value).strip():<28} {f.help}")
    return "\n".join(lines)


def usage(command: Command | None = None) -> str:
    if command is not None:
        return (f"usage: pyrt {command.name} [flags] {command.args}\n\n{command.usage}\n\n"
                f"flags:\n{_flag_help([*command.flags, Flag('help,h', '', 'show help')])}\n")
    cmds = "\n".join(f"   {c.name:<10} {c.usage}" for c in COMMANDS.values())
    return (f"usage: pyrt [global flags] <command> [flags] [args]\n\n"
            f"pyrt is an OCI container runtime (runtime-spec {OCI_VERSION}).\n\n"
            f"commands:\n{cmds}\n\nglobal flags:\n{_flag_help(GLOBAL_FLAGS)}\n")


def dispatch(argv: list[str]) -> int:
    gopts, rest = parse_flags(argv, GLOBAL_FLAGS, "pyrt", stop_at_first_arg=True)
    if gopts.log_format not in ("text", "json"):
        raise PyrtError("--log-format", f"invalid log-format {gopts.log_format!r}")
    log.configure(gopts.log, gopts.log_format, gopts.debug)
    if gopts.version:
        sys.stdout.write(f"pyrt version {__version__}\nspec: {OCI_VERSION}\n"
                         f"python: {sys.version.split()[0]}\n")
        return 0
    if gopts.help or not rest or rest[0] == "help":
        sys.stdout.write(usage())
        return 0
    command = COMMANDS.get(rest[0])
    if command is None:
        raise PyrtError(rest[0], "unknown command (see pyrt --help)")
    opts, args = parse_flags(rest[1:], [*command.flags, Flag("help,h")], command.name,
                             stop_after_args=command.stop_after_args)
    if opts.help:
        sys.stdout.write(usage(command))
        return 0
    low, high = command.nargs
    if not low <= len(args) <= high:
        want = f"exactly {low}" if low == high else f"{low} to {high}"
        raise PyrtError(command.name, f"needs {want} argument(s): {command.args}, got {len(args)}")
    if gopts.systemd_cgroup:
        raise PyrtError("--systemd-cgroup", "the systemd cgroup driver is not supported yet")
    for k, v in gopts.items():  # a command's own flag wins (spec --rootless)
        opts.setdefault(k, v)
    opts["args"] = args
    log.debug(f"{command.name} {' '.join(args)}")
    return command.run(opts)


def main(argv: list[str] | None = None) -> int:
    try:
        return dispatch(sys.argv[1:] if argv is None else argv)
    except PyrtError as e:
        log.error(str(e))
        return 1
    except OSError as e:  # one we did not expect to wrap: still one line
        why = e.strerror or str(e)
        log.error(f"{e.filename}: {why}" if e.filename else why)
        return 1
    except KeyboardInterrupt:
        return 130
