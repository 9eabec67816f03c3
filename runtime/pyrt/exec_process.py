"""The process `pyrt exec` adds: a runtime-spec process file as it is, or the container's
own process with the command line's changes, as runc builds it."""

from __future__ import annotations

from pyrt import config, jsonio
from pyrt.errors import PyrtError


def from_file(path: str) -> config.Process:
    """`exec --process FILE`: type-checked like config.json's process."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = jsonio.loads(f.read())
    except (OSError, ValueError) as e:
        raise PyrtError(f"--process {path}", str(e)) from None
    proc = config.parse_process(doc)
    _check(proc, "")
    return proc


def from_flags(bundle: str, *, args: list[str], tty: bool, env: list[str], cwd: str,
               user: str, additional_gids: list[str], no_new_privs: bool, apparmor: str,
               process_label: str, caps: list[str]) -> config.Process:
    """The container's own process (from its bundle) changed by exec's flags."""
    proc = config.load(bundle).process
    if proc is None:
        raise PyrtError(f"bundle {bundle}", "config.json has no process to start from")
    proc.args = args
    proc.terminal = tty
    variables = dict(item.partition("=")[::2] for item in proc.env)
    for item in env:
        key, _, value = item.partition("=")
        variables[key] = value
    proc.env = [f"{k}={v}" for k, v in variables.items()]
    if cwd:
        proc.cwd = cwd
    if user:
        uid, _, gid = user.partition(":")
        try:
            proc.user.uid = int(uid)
            proc.user.gid = int(gid) if gid else 0
        except ValueError:
            raise PyrtError(f"--user {user}", "must be UID[:GID]") from None
        proc.user.additionalGids = []
    for gid_text in additional_gids:
        try:
            proc.user.additionalGids.append(int(gid_text))
        except ValueError:
            raise PyrtError(f"--additional-gids {gid_text}", "not a number") from None
    if no_new_privs:
        proc.noNewPrivileges = True
    if apparmor:  # as runc: an empty flag keeps the container's
        proc.apparmorProfile = apparmor
    if process_label:
        proc.selinuxLabel = process_label
    if caps:
        sets = proc.capabilities or config.Capabilities()
        for name in config.CAP_SETS:
            getattr(sets, name).extend(c for c in caps if c not in getattr(sets, name))
        proc.capabilities = sets
    _check(proc, "/process")
    return proc


def _check(proc: config.Process, pointer: str) -> None:
    for problem in config.process_problems(proc, pointer):
        raise problem
