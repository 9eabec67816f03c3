"""pyrt.config: the typed model of config.json, its semantic checks, and load(bundle)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyrt
from pyrt import config
from pyrt.errors import ConfigError, PyrtError

GOOD = Path("/work/shared/oci-runtime-spec/schema/test/config/good")


def _example(name: str) -> dict[str, Any]:
    path = GOOD / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def spec_example() -> dict[str, Any]:
    """The spec's full example; its ociVersion is "0.5.0-dev", so bump it to a 1.x."""
    doc = _example("spec-example.json")
    doc["ociVersion"] = "1.0.0"
    return doc


def base() -> dict[str, Any]:
    """A small valid config that every negative test breaks in one place."""
    return {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]},
        "hostname": "box",
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"},
                                 {"type": "ipc"}, {"type": "network"}]},
    }


def bad(ptr: str, doc: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config.parse(doc)
    assert info.value.what == ptr, str(info.value)
    return info.value


# ---------------------------------------------------------------- good documents

def test_spec_example_parses_into_typed_records() -> None:
    c = config.parse(spec_example())
    assert isinstance(c, config.Config)
    assert c.ociVersion == "1.0.0"
    assert c.root == config.Root(path="rootfs", readonly=True)
    assert c.hostname == "slartibartfast"
    p = c.process
    assert isinstance(p, config.Process)
    assert p.terminal is True
    assert p.args == ["sh"]
    assert p.cwd == "/"
    assert p.user.uid == 1 and p.user.gid == 1
    assert p.user.additionalGids == [5, 6]
    assert p.env[0].startswith("PATH=")
    assert p.rlimits == [
        config.Rlimit(type="RLIMIT_CORE", hard=1024, soft=1024),
        config.Rlimit(type="RLIMIT_NOFILE", hard=1024, soft=1024),
    ]
    assert isinstance(p.capabilities, config.Capabilities)
    assert p.capabilities.ambient == ["CAP_NET_BIND_SERVICE"]
    assert p.noNewPrivileges is True
    assert p.oomScoreAdj is None  # the example has it in linux.resources (pre-1.0 place)
    assert p.apparmorProfile == "acme_secure_profile"
    assert [m.destination for m in c.mounts] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    assert all(isinstance(m, config.Mount) for m in c.mounts)
    assert c.mounts[0].type == "proc" and c.mounts[0].options == []
    assert "nosuid" in c.mounts[1].options
    assert [n.type for n in c.linux.namespaces] == [
        "pid", "network", "ipc", "uts", "mount", "user", "cgroup", "time"]
    assert c.linux.namespace("user") == config.Namespace(type="user", path="")
    assert c.linux.namespace("nope") is None
    assert c.linux.uidMappings == [config.IDMapping(containerID=0, hostID=1000, size=32000)]
    assert c.linux.sysctl == {"net.ipv4.ip_forward": "1", "net.core.somaxconn": "256"}
    assert c.linux.devices[0] == config.Device(type="c", path="/dev/fuse", major=10,
                                               minor=229, fileMode=438, uid=0, gid=0)
    assert c.linux.rootfsPropagation == "slave"
    assert c.linux.cgroupsPath == "/myRuntime/myContainer"
    assert "memory" in c.linux.resources  # kept raw: the cgroup driver checks it
    assert c.linux.maskedPaths and c.linux.readonlyPaths
    assert isinstance(c.linux.seccomp, config.Seccomp)
    assert set(c.hooks) >= {"prestart", "poststart", "poststop"}
    assert c.annotations == {"com.example.key1": "value1", "com.example.key2": "value2"}


def test_spec_example_as_shipped_is_rejected_for_its_0_x_version() -> None:
    # The file says "ociVersion": "0.5.0-dev"; pyrt takes 1.x only (see test_oci_version_*).
    with pytest.raises(ConfigError) as info:
        config.parse(_example("spec-example.json"))
    assert info.value.what == "/ociVersion"


def test_minimal_gets_defaults() -> None:
    c = config.parse(_example("minimal.json"))
    assert c.root == config.Root(path="rootfs", readonly=False)
    assert c.process is None
    assert c.mounts == [] and c.hostname == "" and c.annotations == {}
    assert c.linux == config.Linux()
    assert c.linux.namespaces == [] and c.linux.resources == {}


def test_minimal_for_start_process_defaults() -> None:
    c = config.parse(_example("minimal-for-start.json"))
    assert c.process is not None
    assert c.process.user == config.User(uid=0, gid=0)
    assert c.process.terminal is False and c.process.env == [] and c.process.rlimits == []
    assert c.process.capabilities is None


def test_defaults_are_fresh_per_parse() -> None:
    a = config.parse(_example("minimal.json"))
    b = config.parse(_example("minimal.json"))
    a.mounts.append(config.Mount(destination="/x"))
    a.linux.namespaces.append(config.Namespace(type="pid"))
    assert b.mounts == [] and b.linux.namespaces == []


def test_base_is_valid() -> None:
    assert config.parse(base()).hostname == "box"


def test_unknown_keys_are_ignored() -> None:
    doc = base()
    doc["x-vendor"] = {"anything": [1, 2]}
    doc["process"]["futureField"] = 3
    config.parse(doc)


def test_null_optional_means_absent() -> None:
    doc = base()
    doc["mounts"] = None
    doc["process"]["env"] = None
    c = config.parse(doc)
    assert c.mounts == [] and c.process is not None and c.process.env == []


def test_joined_user_namespace_needs_no_mappings() -> None:
    doc = base()
    doc["linux"]["namespaces"].append({"type": "user", "path": "/proc/1/ns/user"})
    config.parse(doc)


def test_time_offsets_with_time_namespace() -> None:
    doc = base()
    doc["linux"]["namespaces"].append({"type": "time"})
    doc["linux"]["timeOffsets"] = {"monotonic": {"secs": -5, "nanosecs": 7},
                                   "boottime": {"secs": 3}}
    c = config.parse(doc)
    assert c.linux.timeOffsets["monotonic"] == {"secs": -5, "nanosecs": 7}


@pytest.mark.parametrize("key,ns", [("net.ipv4.ip_forward", "network"),
                                    ("kernel.msgmax", "ipc"), ("kernel.sem", "ipc"),
                                    ("fs.mqueue.queues_max", "ipc"),
                                    ("kernel.hostname", "uts")])
def test_namespaced_sysctl_allowed_with_its_namespace(key: str, ns: str) -> None:
    doc = base()
    doc["linux"]["namespaces"] = [{"type": ns}]
    doc.pop("hostname")
    doc["linux"]["sysctl"] = {key: "1"}
    config.parse(doc)


# ---------------------------------------------------------------- bad documents

def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split("/")
    node: Any = doc
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize("path,value,ptr", [
    ("process/args", "sh", "/process/args"),
    ("process/args", ["sh", 1], "/process/args/1"),
    ("process/cwd", 5, "/process/cwd"),
    ("process/terminal", "yes", "/process/terminal"),
    ("process/terminal", 1, "/process/terminal"),
    ("process/rlimits/0/hard", "1024", "/process/rlimits/0/hard"),
    ("process/rlimits/0/soft", 1.5, "/process/rlimits/0/soft"),
    ("process/rlimits/0/hard", True, "/process/rlimits/0/hard"),
    ("process/rlimits", {}, "/process/rlimits"),
    ("process/user/uid", -1, "/process/user/uid"),
    ("process/user/gid", "0", "/process/user/gid"),
    ("process/user/additionalGids", [1, -2], "/process/user/additionalGids/1"),
    ("process/env", ["A=1", None], "/process/env/1"),
    ("process/oomScoreAdj", "5", "/process/oomScoreAdj"),
    ("process", [], "/process"),
    ("root", "rootfs", "/root"),
    ("root/readonly", "true", "/root/readonly"),
    ("ociVersion", 1, "/ociVersion"),
    ("hostname", ["box"], "/hostname"),
    ("mounts", {"destination": "/x"}, "/mounts"),
    ("mounts", [{"destination": "/x", "options": "ro"}], "/mounts/0/options"),
    ("mounts", [{"destination": "/x", "uidMappings": [{"containerID": 0, "hostID": -1,
                                                       "size": 1}]}],
     "/mounts/0/uidMappings/0/hostID"),
    ("annotations", {"a": 1}, "/annotations/a"),
    ("linux", "x", "/linux"),
    ("linux/namespaces", [{"type": "pid"}, {"type": 5}], "/linux/namespaces/1/type"),
    ("linux/devices", [{"type": "c", "path": "/dev/x", "major": "1"}],
     "/linux/devices/0/major"),
    ("linux/devices", [{"type": "c", "path": "/dev/x", "fileMode": -1}],
     "/linux/devices/0/fileMode"),
    ("linux/resources", [], "/linux/resources"),
    ("linux/sysctl", {"net.core.somaxconn": 256}, "/linux/sysctl/net.core.somaxconn"),
    ("linux/uidMappings", [{"containerID": 0, "hostID": 0, "size": "1"}],
     "/linux/uidMappings/0/size"),
    ("linux/timeOffsets", {"monotonic": {"secs": "1"}}, "/linux/timeOffsets/monotonic/secs"),
    ("linux/timeOffsets", {"monotonic": {"nanosecs": -1}},
     "/linux/timeOffsets/monotonic/nanosecs"),
    ("linux/seccomp", "none", "/linux/seccomp"),
])
def test_wrong_type_points_at_the_field(path: str, value: Any, ptr: str) -> None:
    bad(ptr, _set(base(), path, value))


def test_document_not_an_object() -> None:
    for doc in ([], "x", 1, None):
        with pytest.raises(ConfigError) as info:
            config.parse(doc)
        assert info.value.what == ""


@pytest.mark.parametrize("path,ptr", [
    ("root/path", "/root/path"),
    ("root", "/root"),
    ("ociVersion", "/ociVersion"),
    ("process/args", "/process/args"),
    ("process/cwd", "/process/cwd"),
    ("process/rlimits/0/soft", "/process/rlimits/0/soft"),
    ("linux/namespaces/0/type", "/linux/namespaces/0/type"),
])
def test_missing_required_field(path: str, ptr: str) -> None:
    doc = base()
    *parents, last = path.split("/")
    node: Any = doc
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    del node[last]
    e = bad(ptr, doc)
    assert e.why == "is required"


def test_missing_mount_destination() -> None:
    doc = base()
    doc["mounts"] = [{"destination": "/a"}, {"type": "tmpfs"}]
    bad("/mounts/1/destination", doc)


def test_empty_mount_destination() -> None:
    doc = base()
    doc["mounts"] = [{"destination": ""}]
    bad("/mounts/0/destination", doc)


def test_empty_root_path() -> None:
    bad("/root/path", _set(base(), "root/path", ""))


def test_empty_args() -> None:
    e = bad("/process/args", _set(base(), "process/args", []))
    assert "non-empty" in e.why


@pytest.mark.parametrize("cwd", ["", "tmp", "./", "relative/dir"])
def test_relative_cwd(cwd: str) -> None:
    e = bad("/process/cwd", _set(base(), "process/cwd", cwd))
    assert "absolute" in e.why


def test_soft_rlimit_above_hard() -> None:
    doc = base()
    doc["process"]["rlimits"].append({"type": "RLIMIT_CORE", "hard": 10, "soft": 11})
    bad("/process/rlimits/1", doc)


def test_soft_equal_hard_is_fine() -> None:
    config.parse(_set(base(), "process/rlimits/0/soft", 1024))


def test_duplicate_namespace_type() -> None:
    doc = base()
    doc["linux"]["namespaces"] = [{"type": "pid"}, {"type": "pid", "path": "/proc/1/ns/pid"}]
    doc.pop("hostname")
    e = bad("/linux/namespaces/1/type", doc)
    assert "duplicate" in e.why


def test_unknown_namespace_type() -> None:
    doc = base()
    doc["linux"]["namespaces"] = [{"type": "pid"}, {"type": "net"}]
    doc.pop("hostname")
    e = bad("/linux/namespaces/1/type", doc)
    assert "unknown" in e.why


def test_relative_namespace_path() -> None:
    doc = base()
    doc["linux"]["namespaces"][0]["path"] = "proc/1/ns/pid"
    bad("/linux/namespaces/0/path", doc)


def test_new_user_namespace_without_mappings() -> None:
    doc = base()
    doc["linux"]["namespaces"].append({"type": "user"})
    bad("/linux/uidMappings", doc)
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    bad("/linux/uidMappings", doc)  # gid mappings still missing
    doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    config.parse(doc)


@pytest.mark.parametrize("key", ["uidMappings", "gidMappings"])
def test_mappings_without_user_namespace(key: str) -> None:
    doc = base()
    doc["linux"][key] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    e = bad("/linux/uidMappings", doc)
    assert "user namespace" in e.why


@pytest.mark.parametrize("key", ["hostname", "domainname"])
def test_hostname_needs_new_uts_namespace(key: str) -> None:
    doc = base()
    doc.pop("hostname")
    doc[key] = "box"
    doc["linux"]["namespaces"] = [{"type": "pid"}]
    bad(f"/{key}", doc)
    doc["linux"]["namespaces"] = [{"type": "uts", "path": "/proc/1/ns/uts"}]
    bad(f"/{key}", doc)


def test_time_offsets_need_new_time_namespace() -> None:
    doc = base()
    doc["linux"]["timeOffsets"] = {"monotonic": {"secs": 1}}
    bad("/linux/timeOffsets", doc)
    doc["linux"]["namespaces"].append({"type": "time", "path": "/proc/1/ns/time"})
    bad("/linux/timeOffsets", doc)


def test_time_offsets_unknown_clock() -> None:
    doc = base()
    doc["linux"]["namespaces"].append({"type": "time"})
    doc["linux"]["timeOffsets"] = {"monotonic": {"secs": 1}, "realtime": {"secs": 1}}
    e = bad("/linux/timeOffsets/realtime", doc)
    assert "clock" in e.why


@pytest.mark.parametrize("value", ["rshared", "private", "", "rslave"])
def test_known_rootfs_propagation(value: str) -> None:
    config.parse(_set(base(), "linux/rootfsPropagation", value))


@pytest.mark.parametrize("value", ["shared ", "RSHARED", "recursive", "bind"])
def test_unknown_rootfs_propagation(value: str) -> None:
    bad("/linux/rootfsPropagation", _set(base(), "linux/rootfsPropagation", value))


@pytest.mark.parametrize("kind", ["x", "", "cb", "C"])
def test_bad_device_type(kind: str) -> None:
    doc = base()
    doc["linux"]["devices"] = [{"type": "c", "path": "/dev/a", "major": 1, "minor": 3},
                               {"type": kind, "path": "/dev/b"}]
    e = bad("/linux/devices/1/type", doc)
    assert "device type" in e.why


def test_relative_device_path() -> None:
    doc = base()
    doc["linux"]["devices"] = [{"type": "c", "path": "dev/null", "major": 1, "minor": 3}]
    bad("/linux/devices/0/path", doc)


@pytest.mark.parametrize("version", ["0.5.0-dev", "2.0.0", "", "10.0", "v1.0.0"])
def test_oci_version_major_must_be_1(version: str) -> None:
    e = bad("/ociVersion", _set(base(), "ociVersion", version))
    assert repr(version) in e.why


@pytest.mark.parametrize("version", ["1.0.0", "1.3.0", "1.0.2-dev", "1"])
def test_oci_version_1_x_accepted(version: str) -> None:
    config.parse(_set(base(), "ociVersion", version))


@pytest.mark.parametrize("key,why", [
    ("net.ipv4.ip_forward", "network"),
    ("kernel.msgmax", "ipc"),
    ("kernel.shm_rmid_forced", "ipc"),
    ("fs.mqueue.msg_max", "ipc"),
    ("kernel.domainname", "uts"),
])
def test_namespaced_sysctl_without_its_namespace(key: str, why: str) -> None:
    doc = base()
    doc.pop("hostname")
    doc["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"}]
    doc["linux"]["sysctl"] = {key: "1"}
    e = bad(f"/linux/sysctl/{key}", doc)
    assert why in e.why


@pytest.mark.parametrize("key", ["vm.swappiness", "kernel.pid_max", "fs.file-max",
                                 "kernel.msgmax2", "netfilter.x"])
def test_non_namespaced_sysctl_rejected(key: str) -> None:
    doc = base()  # has every namespace a sysctl could belong to
    doc["linux"]["sysctl"] = {"net.core.somaxconn": "1", key: "1"}
    e = bad(f"/linux/sysctl/{key}", doc)
    assert "not namespaced" in e.why


def test_config_error_is_a_pyrt_error_with_pointer_in_message() -> None:
    e = bad("/process/args", _set(base(), "process/args", "sh"))
    assert isinstance(e, PyrtError)
    assert str(e) == "/process/args: must be an array"


def test_pointer_escapes_slash_in_keys() -> None:
    doc = base()
    doc["annotations"] = {"example.com/tilde~key": 5}
    bad("/annotations/example.com~1tilde~0key", doc)


# ---------------------------------------------------------------- load(bundle)

def test_load_reads_bundle_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(base()))
    c = config.load(str(tmp_path))
    assert c.hostname == "box"


def test_load_non_ascii_utf8(tmp_path: Path) -> None:
    doc = base()
    doc["annotations"] = {"名前": "värde ☃"}
    (tmp_path / "config.json").write_text(json.dumps(doc, ensure_ascii=False),
                                          encoding="utf-8")
    assert config.load(str(tmp_path)).annotations == {"名前": "värde ☃"}


def _load_error(bundle: Path) -> PyrtError:
    with pytest.raises(PyrtError) as info:
        config.load(str(bundle))
    return info.value


def test_load_missing_config(tmp_path: Path) -> None:
    e = _load_error(tmp_path)
    assert e.what == f"bundle {tmp_path}"
    assert "cannot read config.json" in e.why and "No such file" in e.why


def test_load_missing_bundle(tmp_path: Path) -> None:
    e = _load_error(tmp_path / "nope")
    assert "cannot read config.json" in e.why


def test_load_config_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()
    assert "cannot read config.json" in _load_error(tmp_path).why


@pytest.mark.parametrize("text", ["{", "", "{\"ociVersion\": \"1.0.0\",}", "[1, 2] x",
                                  "{'a': 1}", "\"\x01\""])
def test_load_invalid_json(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.json").write_text(text)
    e = _load_error(tmp_path)
    assert not isinstance(e, ConfigError)
    assert e.what == str(tmp_path / "config.json")
    assert e.why.startswith("invalid JSON")


def test_load_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b'{"ociVersion": "1.0.0", "hostname": "\xff\xfe"}')
    e = _load_error(tmp_path)
    assert e.what == str(tmp_path / "config.json")
    assert "UTF-8" in e.why


def test_load_valid_json_bad_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"ociVersion": "1.0.0"}')
    e = _load_error(tmp_path)
    assert isinstance(e, ConfigError) and e.what == "/root"


def test_load_deeply_nested_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("[" * 200_000)
    _load_error(tmp_path)


_SITE = os.path.dirname(os.path.dirname(os.path.abspath(pyrt.__file__)))
def _python() -> str:
    """This interpreter, for a fresh `-I -S` run (as the pyrt launcher runs)."""
    if not os.access(sys.executable, os.X_OK):  # e.g. a venv of root's, run as nobody
        pytest.skip(f"{sys.executable} is not executable by this user")
    return sys.executable


_LOAD_ISOLATED = f"""
import sys
sys.path.append({_SITE!r})
from pyrt import config
from pyrt.errors import PyrtError
assert "json" not in sys.modules
try:
    config.load(sys.argv[1])
except PyrtError as e:
    print("PyrtError", e)
"""


def test_load_invalid_json_in_isolated_interpreter(tmp_path: Path) -> None:
    """As `pyrt create` runs it: python -I -S, where nothing has imported json.decoder."""
    (tmp_path / "config.json").write_text('{"ociVersion" "1.0.0"}')
    out = subprocess.run([_python(), "-I", "-S", "-c", _LOAD_ISOLATED, str(tmp_path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("PyrtError"), out.stdout


# ---------------------------------------------------------------- property: never crash

def _json_values() -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers(-(2**40), 2**40)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
    return st.recursive(scalars, lambda kids: st.lists(kids, max_size=3)
                        | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                        max_leaves=6)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node



def _base_docs() -> list[dict[str, Any]]:
    docs = [base()]
    for make in (spec_example, lambda: _example("minimal-for-start.json")):
        try:
            docs.append(make())
        except pytest.skip.Exception:
            pass
    return docs


_NAMES = st.sampled_from(["type", "path", "args", "cwd", "uid", "hard", "soft", "user",
                          "namespaces", "linux", "process", "root", "time", "monotonic",
                          "net.x", "vm.x", "options", "size", "x"]) | st.text(max_size=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parse_mutated_configs_only_raise_config_errors(data: st.DataObject) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from(_base_docs())))
    for _ in range(data.draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        if not path:  # the document itself
            if action == "replace":
                doc = data.draw(_json_values())
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        old = parent[key]
        if action == "replace":
            parent[key] = data.draw(_json_values().filter(
                lambda v, old=old: type(v) is not type(old)))
        elif action == "delete":
            del parent[key]
        else:
            target = old if isinstance(old, dict | list) else parent
            value = data.draw(_json_values())
            if isinstance(target, dict):
                target[data.draw(_NAMES)] = value
            else:
                target.insert(data.draw(st.integers(0, len(target))), value)
        if not isinstance(doc, dict | list):
            break
    try:
        result = config.parse(doc)
    except PyrtError:
        return
    assert isinstance(result, config.Config)
