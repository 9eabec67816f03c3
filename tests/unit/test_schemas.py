"""pyrt's own JSON Schemas (specs/*.json) checked against the OCI runtime-spec's.

The official runtime-spec v1.3.0 schemas (draft-04, split over several files) live in
shared/oci-runtime-spec beside the checkout.  They serve as an oracle here: their good and
bad examples must get the same verdict from our schemas, and on randomly mutated configs
our config schema must agree with theirs, except for the few rules where ours is
deliberately stricter (see ``pyrt_only_rejects``).  The oracle tests skip when the
official schemas are absent; the checks of our own files always run.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")
referencing_jsonschema = pytest.importorskip("referencing.jsonschema")

SPECS = Path(__file__).resolve().parents[2] / "specs"
KINDS = ("config", "state", "features")
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# Config examples for other platforms: our config schema describes Linux only.
OTHER_PLATFORMS = ("freebsd", "solaris", "vm", "windows", "zos")


def _find_oci_spec() -> Path | None:
    for candidate in (
        Path(__file__).resolve().parents[3] / "shared" / "oci-runtime-spec",
        Path("/work/shared/oci-runtime-spec"),
    ):
        if (candidate / "schema" / "config-schema.json").is_file():
            return candidate
    return None


OCI = _find_oci_spec()
NO_OCI = "the OCI runtime-spec schemas (shared/oci-runtime-spec) are not there"
needs_oci = pytest.mark.skipif(OCI is None, reason=NO_OCI)


# ---------------------------------------------------------------- loading


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _schema_path(kind: str) -> Path:
    return SPECS / f"{kind}-schema.json"


@functools.cache
def our_schema(kind: str) -> dict[str, Any]:
    text = _schema_path(kind).read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    return doc


@functools.cache
def ours(kind: str) -> Any:
    return jsonschema.Draft202012Validator(our_schema(kind))


@functools.cache
def _official_registry() -> Any:
    """Every official schema file under its bare name: their "$ref"s are relative names
    such as defs.json#/definitions/uint32, and the entry schemas have no id, so a ref
    resolves to exactly that name.  defs*.json carry no $schema: they are draft-04."""
    assert OCI is not None
    resources = []
    for path in sorted((OCI / "schema").glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resource = referencing.Resource.from_contents(
            contents, default_specification=referencing_jsonschema.DRAFT4
        )
        resources.append((path.name, resource))
    return referencing.Registry().with_resources(resources)


@functools.cache
def official(kind: str) -> Any:
    if OCI is None:
        pytest.skip(NO_OCI)
    schema = json.loads((OCI / "schema" / f"{kind}-schema.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=_official_registry())


def _why(validator: Any, doc: Any) -> str:
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    return "valid" if error is None else f"{list(error.absolute_path)}: {error.message}"


def _walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


# ---------------------------------------------------------------- 1. our schemas are schemas


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_valid_draft_2020_12(kind: str) -> None:
    schema = our_schema(kind)
    assert schema["$schema"] == DRAFT_2020_12
    assert schema["$id"] == f"https://pyrt.invalid/schemas/{kind}.json"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_self_contained(kind: str) -> None:
    """Every $ref points into the file's own $defs, and every $def is used."""
    schema = our_schema(kind)
    defs = schema.get("$defs", {})
    used = set()
    for path, node in _walk(schema):
        if isinstance(node, dict) and "$ref" in node:
            target = node["$ref"]
            assert target.startswith("#/$defs/"), f"{path}: non-local $ref {target}"
            name = target.removeprefix("#/$defs/")
            assert name in defs, f"{path}: $ref to missing $defs/{name}"
            used.add(name)
    assert set(defs) == used, f"unused $defs: {sorted(set(defs) - used)}"


# ---------------------------------------------------------------- 4. strict 2-space JSON


@pytest.mark.parametrize("kind", KINDS)
def test_schema_file_is_strict_two_space_json(kind: str) -> None:
    text = _schema_path(kind).read_text(encoding="utf-8")
    doc = json.loads(text, object_pairs_hook=_no_duplicate_keys)  # raises on duplicates
    canonical = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    assert text == canonical, (
        f"{_schema_path(kind).name} is not laid out as json.dumps(indent=2) writes it; "
        "reformat it with: python3 -c 'import json,sys; p=sys.argv[1]; "
        "d=json.load(open(p)); open(p,\"w\").write(json.dumps(d, indent=2, "
        "ensure_ascii=False)+\"\\n\")' FILE"
    )
    assert "\t" not in text


def test_duplicate_key_check_works() -> None:
    with pytest.raises(ValueError, match="duplicate key"):
        json.loads('{"a": 1, "a": 2}', object_pairs_hook=_no_duplicate_keys)


# ---------------------------------------------------------------- 2. official examples


def _example_cases(verdict: str) -> list[Any]:
    if OCI is None:
        return [pytest.param("config", None, marks=pytest.mark.skip(reason=NO_OCI))]
    cases = []
    for kind in KINDS:
        for path in sorted((OCI / "schema" / "test" / kind / verdict).glob("*.json")):
            marks = []
            if kind == "config" and path.stem.split("-", 1)[0] in OTHER_PLATFORMS:
                reason = "not a Linux example: pyrt's config schema describes Linux only"
                marks.append(pytest.mark.skip(reason=reason))
            cases.append(pytest.param(kind, path, marks=marks, id=f"{kind}/{path.name}"))
    return cases


@pytest.mark.parametrize(("kind", "path"), _example_cases("good"))
def test_official_good_example_is_valid(kind: str, path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert official(kind).is_valid(doc), _why(official(kind), doc)
    assert ours(kind).is_valid(doc), _why(ours(kind), doc)


@pytest.mark.parametrize(("kind", "path"), _example_cases("bad"))
def test_official_bad_example_is_invalid(kind: str, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.stem.startswith("invalid-json"):
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        return
    doc = json.loads(text)
    assert not official(kind).is_valid(doc)
    assert not ours(kind).is_valid(doc)


@needs_oci
def test_examples_are_there() -> None:
    """Guard against a moved example folder turning the tests above into no-ops."""
    assert OCI is not None
    names = {p.name for p in (OCI / "schema" / "test" / "config" / "good").glob("*.json")}
    assert {"minimal.json", "spec-example.json"} <= names


# ---------------------------------------------------------------- deliberate differences

# (document, our verdict, the official verdict)
STATE = {"ociVersion": "1.3.0", "id": "c1", "bundle": "/b"}
STATE_CASES = [
    pytest.param({**STATE, "status": "running", "pid": 42, "rootfs": "/b/rootfs",
                  "created": "2024-05-01T10:00:00.123456789Z", "owner": ""},
                 True, True, id="runc-extra-fields"),
    pytest.param({**STATE, "status": "stopped", "pid": 0}, True, True, id="stopped-pid-0"),
    pytest.param({**STATE, "status": "stopped"}, True, True, id="stopped-no-pid"),
    pytest.param({**STATE, "status": "creating"}, True, True, id="creating-no-pid"),
    pytest.param({**STATE, "status": "paused", "pid": 42}, True, False, id="paused"),
    pytest.param({**STATE, "status": "running"}, False, True, id="running-no-pid"),
    pytest.param({**STATE, "status": "created"}, False, True, id="created-no-pid"),
    pytest.param({**STATE, "status": "paused"}, False, False, id="paused-no-pid"),
    pytest.param({**STATE, "status": "exploded", "pid": 1}, False, False, id="bad-status"),
    pytest.param({**STATE, "status": "running", "pid": -1}, False, False, id="negative-pid"),
    pytest.param({**STATE, "status": "running", "pid": 1, "annotations": {"k": 1}},
                 False, False, id="annotation-not-string"),
    pytest.param({**STATE, "status": "running", "pid": 1, "ociVersion": "1.0"},
                 False, True, id="version-not-semver"),
    pytest.param({"ociVersion": "1.3.0", "id": "c1", "status": "stopped"},
                 False, False, id="no-bundle"),
]

FEATURES = {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"}
FEATURES_CASES = [
    pytest.param({**FEATURES, "linux": {
        "intelRdt": {"enabled": True, "schemata": True, "monitoring": False},
        "memoryPolicy": {"modes": ["MPOL_BIND", "MPOL_LOCAL"], "flags": ["MPOL_F_STATIC_NODES"]},
        "mountExtensions": {"idmap": {"enabled": True}},
        "cgroup": {"v1": False, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
    }}, True, True, id="v1.3-linux-fields"),
    pytest.param({**FEATURES, "hooks": None, "mountOptions": None, "annotations": None,
                  "potentiallyUnsafeConfigAnnotations": None, "linux": None},
                 True, False, id="null-top-level"),
    pytest.param({**FEATURES, "linux": {"seccomp": {"enabled": None, "actions": None},
                                        "cgroup": None, "namespaces": None}},
                 True, False, id="null-linux"),
    pytest.param({**FEATURES, "linux": {"memoryPolicy": {"modes": ["MPOL_BOGUS"]}}},
                 False, True, id="unknown-mpol-mode"),
    pytest.param({**FEATURES, "linux": {"intelRdt": {"schemata": "yes"}}},
                 False, True, id="rdt-schemata-not-bool"),
    pytest.param({**FEATURES, "linux": {"capabilities": ["cap_kill"]}},
                 False, False, id="bad-capability-name"),
    pytest.param({**FEATURES, "linux": {"namespaces": ["net"]}}, False, False, id="bad-ns"),
    pytest.param({**FEATURES, "linux": {"seccomp": {"archs": ["SCMP_ARCH_Z80"]}}},
                 False, False, id="bad-arch"),
    pytest.param({**FEATURES, "linux": {"seccomp": {"actions": [None]}}},
                 False, False, id="null-array-item"),
    pytest.param({"ociVersionMax": "1.3.0"}, False, False, id="no-min"),
    pytest.param({**FEATURES, "ociVersionMax": None}, False, False, id="null-max"),
]

CONFIG = {"ociVersion": "1.3.0", "root": {"path": "rootfs"}}
CONFIG_CASES = [
    pytest.param({**CONFIG, "ociVersion": "1.0"}, False, True, id="version-not-semver"),
    pytest.param({**CONFIG, "ociVersion": "v1.0.0"}, False, True, id="version-v-prefix"),
    pytest.param({**CONFIG, "annotations": {"": "x"}}, False, True, id="empty-annotation-key"),
    pytest.param({**CONFIG, "linux": {"sysctl": {"": "1"}}}, False, True, id="empty-sysctl-key"),
    pytest.param({**CONFIG, "linux": {"resources": {"unified": {"": "1"}}}},
                 False, True, id="empty-unified-key"),
    pytest.param({**CONFIG, "annotations": {"a": 1}}, False, False, id="annotation-not-string"),
    pytest.param({**CONFIG, "windows": {"layerFolders": 1}}, True, False, id="windows-ignored"),
]


@pytest.mark.parametrize(("doc", "ours_ok", "official_ok"), STATE_CASES)
def test_state_cases(doc: dict[str, Any], ours_ok: bool, official_ok: bool) -> None:
    _check_case("state", doc, ours_ok, official_ok)


@pytest.mark.parametrize(("doc", "ours_ok", "official_ok"), FEATURES_CASES)
def test_features_cases(doc: dict[str, Any], ours_ok: bool, official_ok: bool) -> None:
    _check_case("features", doc, ours_ok, official_ok)


@pytest.mark.parametrize(("doc", "ours_ok", "official_ok"), CONFIG_CASES)
def test_config_cases(doc: dict[str, Any], ours_ok: bool, official_ok: bool) -> None:
    _check_case("config", doc, ours_ok, official_ok)


def _check_case(kind: str, doc: dict[str, Any], ours_ok: bool, official_ok: bool) -> None:
    assert ours(kind).is_valid(doc) == ours_ok, _why(ours(kind), doc)
    if OCI is not None:
        assert official(kind).is_valid(doc) == official_ok, _why(official(kind), doc)


SEMVER_GOOD = ["0.0.0", "1.0.0", "1.3.0", "0.5.0-dev", "1.0.2-dev", "10.20.30",
               "1.0.0-rc.1+build.5", "1.0.0+20240501", "1.0.0-0A.is.legal", "1.2.3----RC-SNAPSHOT"]
SEMVER_BAD = ["", "1", "1.0", "v1.0.0", "01.0.0", "1.01.0", "1.0.0-", "1.0.0+", "1.0.0-01",
              "1.0.0-rc..1", "1.0.0 ", " 1.0.0", "1.0.0-ü", "1.0.0.0", "-1.0.0"]


def is_semver(version: str) -> bool:
    """SemVer 2.0.0, checked piece by piece (independently of the schema's regex)."""
    number = re.compile(r"0|[1-9][0-9]*")
    ident = re.compile(r"[0-9A-Za-z-]+")
    rest, plus, build = version.partition("+")
    if plus and not all(ident.fullmatch(p) for p in build.split(".")):
        return False
    core, dash, pre = rest.partition("-")
    if dash:
        for part in pre.split("."):
            if not ident.fullmatch(part) or (part.isdigit() and not number.fullmatch(part)):
                return False
    parts = core.split(".")
    return len(parts) == 3 and all(number.fullmatch(p) for p in parts)


@pytest.mark.parametrize("version", SEMVER_GOOD + SEMVER_BAD)
def test_oci_version_is_semver(version: str) -> None:
    expected = version in SEMVER_GOOD
    assert is_semver(version) == expected
    for kind, doc in (("config", {**CONFIG, "ociVersion": version}),
                      ("state", {**STATE, "status": "stopped", "ociVersion": version}),
                      ("features", {**FEATURES, "ociVersionMax": version})):
        assert ours(kind).is_valid(doc) == expected, (kind, version)


# ---------------------------------------------------------------- 3. agreement property

# A config that sets every Linux field of runtime-spec v1.3.0, as a seed beside the
# official examples, so that mutations reach the fields those examples leave out.
EVERYTHING: dict[str, Any] = {
    "ociVersion": "1.3.0",
    "root": {"path": "/bundle/rootfs", "readonly": False},
    "hostname": "box",
    "domainname": "example.test",
    "annotations": {"org.example.k": "v", "org.example.empty": ""},
    "mounts": [
        {"destination": "/data", "type": "bind", "source": "/srv/data",
         "options": ["rbind", "ro"],
         "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
        {"destination": "/tmp"},
    ],
    "process": {
        "terminal": True,
        "consoleSize": {"height": 25, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [4, 27],
                 "username": "me"},
        "args": ["/bin/sh", "-c", "true"],
        "env": ["PATH=/bin", "HOME=/"],
        "cwd": "/",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                         "inheritable": [], "permitted": ["CAP_KILL"], "ambient": []},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
        "noNewPrivileges": True,
        "apparmorProfile": "unconfined",
        "selinuxLabel": "system_u:system_r:container_t:s0",
        "oomScoreAdj": -500,
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "scheduler": {"policy": "SCHED_DEADLINE", "nice": -5, "priority": 0,
                      "flags": ["SCHED_FLAG_RESET_ON_FORK"], "runtime": 10000000,
                      "deadline": 20000000, "period": 30000000},
        "execCPUAffinity": {"initial": "0-1,3", "final": "2"},
    },
    "hooks": {
        "prestart": [{"path": "/bin/true"}],
        "createRuntime": [{"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}],
        "createContainer": [{"path": "/bin/true"}],
        "startContainer": [{"path": "/bin/true"}],
        "poststart": [{"path": "/bin/true", "timeout": 1}],
        "poststop": [{"path": "/bin/true"}],
    },
    "linux": {
        "namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"},
                       {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "user"},
                       {"type": "cgroup"}, {"type": "time"}],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "timeOffsets": {"boottime": {"secs": -3600, "nanosecs": 5},
                        "monotonic": {"secs": 86400}},
        "devices": [
            {"type": "c", "path": "/dev/null", "major": 1, "minor": 3, "fileMode": 438,
             "uid": 0, "gid": 0},
            {"type": "p", "path": "/dev/fifo"},
        ],
        "netDevices": {"eth1": {"name": "net1"}, "eth2": {}},
        "cgroupsPath": "system.slice:pyrt:c1",
        "rootfsPropagation": "private",
        "resources": {
            "devices": [{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
            "memory": {"limit": 1 << 30, "reservation": 1 << 29, "swap": -1, "kernel": -1,
                       "kernelTCP": -1, "swappiness": 60, "disableOOMKiller": False,
                       "useHierarchy": True, "checkBeforeUpdate": True},
            "cpu": {"shares": 1024, "quota": 50000, "burst": 10000, "period": 100000,
                    "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "0-1", "mems": "0",
                    "idle": 0},
            "pids": {"limit": 100},
            "blockIO": {
                "weight": 500, "leafWeight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 100, "leafWeight": 50}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1 << 20}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 1 << 20}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}],
            "network": {"classID": 0x100001, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_0": {"hcaHandles": 2, "hcaObjects": 100}},
            "unified": {"memory.high": "max", "io.weight": "default 100"},
        },
        "intelRdt": {"closID": "guaranteed", "schemata": ["L3:0=ff"], "l3CacheSchema": "L3:0=ff",
                     "memBwSchema": "MB:0=70", "enableMonitoring": True},
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "listenerPath": "/run/seccomp.sock",
            "listenerMetadata": "meta",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                          {"index": 1, "value": 255, "valueTwo": 8,
                           "op": "SCMP_CMP_MASKED_EQ"}]},
            ],
        },
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "mountLabel": "system_u:object_r:container_file_t:s0",
        "personality": {"domain": "LINUX32", "flags": []},
        "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-1",
                         "flags": ["MPOL_F_STATIC_NODES"]},
    },
}

# Our two config rules that the official schema does not have.  A document breaking one
# of them is expected to fail ours even where the official accepts it:
# * ociVersion must be SemVer 2.0.0 (config.md says so; the official takes any string);
# * annotations, linux.sysctl and linux.resources.unified need non-empty keys and string
#   values (config.md: annotation keys MUST NOT be empty, values MUST be strings).  The
#   official matches keys with ".{1,}", so it lets through "" and "\n"-only keys with any
#   value.
STRING_MAPS = (("annotations",), ("linux", "sysctl"), ("linux", "resources", "unified"))


def pyrt_only_rejects(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    version = doc.get("ociVersion")
    if isinstance(version, str) and not is_semver(version):
        return True
    for path in STRING_MAPS:
        try:
            node = _get(doc, path)
        except (KeyError, TypeError, IndexError):
            continue
        if isinstance(node, dict) and any(
            key == "" or not isinstance(value, str) for key, value in node.items()
        ):
            return True
    return False


def _seeds() -> list[dict[str, Any]]:
    seeds = [EVERYTHING]
    if OCI is not None:
        good = OCI / "schema" / "test" / "config" / "good"
        for name in ("minimal.json", "minimal-for-start.json", "spec-example.json",
                     "linux-netdevice.json", "linux-rdma.json"):
            seeds.append(json.loads((good / name).read_text(encoding="utf-8")))
        bumped = copy.deepcopy(seeds[3])  # spec-example.json says 0.5.0-dev
        bumped["ociVersion"] = "1.3.0"
        seeds.append(bumped)
    return seeds


def _schema_vocabulary() -> tuple[list[str], list[str]]:
    """Property names and enum strings of our config schema and the official ones."""
    docs = [our_schema("config")]
    if OCI is not None:
        docs += [json.loads((OCI / "schema" / name).read_text(encoding="utf-8"))
                 for name in ("config-schema.json", "config-linux.json", "defs.json",
                              "defs-linux.json")]
    names: set[str] = set()
    enums: set[str] = set()
    for doc in docs:
        for path, node in _walk(doc):
            if path[-1:] == ("properties",) and isinstance(node, dict):
                names.update(node)
            elif path[-1:] == ("enum",):
                enums.update(v for v in node if isinstance(v, str))
    names -= set(OTHER_PLATFORMS)  # their sections are not described by ours
    return sorted(names), sorted(enums)


PROPERTY_NAMES, ENUM_VALUES = _schema_vocabulary()
NEAR_MISSES = sorted({v.lower() for v in ENUM_VALUES} | {v + "_X" for v in ENUM_VALUES}
                     | {v[:-1] for v in ENUM_VALUES})
PATTERNED = ["1.0.0", "1.3.0", "0.5.0-dev", "1.0", "2MB", "64kB", "1GB", "RLIMIT_CORE",
             "RLIMIT_nofile", "CAP_KILL", "0-3,7", "0-3;7", "MB:0=70", "MB:", "L3:0=ff",
             "/", "rootfs", "", "c", "b", "u", "p", "x", "cb"]
INT_EDGES = [0, 1, -1, 7, 255, 256, 511, 512, 2**16 - 1, 2**16, 2**31 - 1, 2**31,
             -(2**31), -(2**31) - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, -(2**63),
             -(2**63) - 1, 2**64 - 1, 2**64]

keys = st.sampled_from(PROPERTY_NAMES) | st.text(max_size=6).filter(
    lambda k: k not in OTHER_PLATFORMS
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 1000),
    st.sampled_from(INT_EDGES),
    # No integral floats: draft-04 (the official schemas) calls 1.0 a number but not an
    # integer, draft 2020-12 calls it an integer; that is a difference of drafts, not of
    # the schemas.
    st.integers(-(2**40), 2**40).map(lambda i: i + 0.5) | st.sampled_from([1e-9, -0.25, 1e-300]),
    st.text(max_size=8),
    st.sampled_from(PATTERNED + ENUM_VALUES),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)
enum_like = st.sampled_from(ENUM_VALUES + NEAR_MISSES + PATTERNED) | st.text(max_size=8)


def _mutate(data: st.DataObject, doc: dict[str, Any]) -> str:
    nodes = list(_walk(doc))
    inner = [path for path, _ in nodes[1:]]
    containers = [path for path, node in nodes if isinstance(node, (dict, list))]
    strings = [path for path, node in nodes if isinstance(node, str)]
    ints = [path for path, node in nodes if type(node) is int]
    ops = ["add"] + (["replace", "delete"] if inner else []) + (["enum"] if strings else [])
    ops += ["edge"] if ints else []
    op = data.draw(st.sampled_from(ops), label="op")
    if op == "add":
        path = data.draw(st.sampled_from(containers), label="add at")
        node = _get(doc, path)
        if isinstance(node, dict):
            node[data.draw(keys, label="key")] = data.draw(json_values, label="value")
        else:
            index = data.draw(st.integers(0, len(node)), label="index")
            node.insert(index, data.draw(json_values, label="value"))
    elif op == "edge":
        path = data.draw(st.sampled_from(ints), label="integer at")
        _get(doc, path[:-1])[path[-1]] = data.draw(st.sampled_from(INT_EDGES), label="edge")
    elif op == "enum":
        path = data.draw(st.sampled_from(strings), label="string at")
        _get(doc, path[:-1])[path[-1]] = data.draw(enum_like, label="new string")
    else:
        path = data.draw(st.sampled_from(inner), label=f"{op} at")
        parent = _get(doc, path[:-1])
        if op == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values, label="value")
    return op


@needs_oci
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_config_schema_agrees_with_official(data: st.DataObject) -> None:
    seeds = _seeds()
    doc = copy.deepcopy(data.draw(st.sampled_from(seeds), label="seed"))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        event(_mutate(data, doc))
    official_ok = official("config").is_valid(doc)
    expected = official_ok and not pyrt_only_rejects(doc)
    event(f"official {'valid' if official_ok else 'invalid'}")
    assert ours("config").is_valid(doc) == expected, (
        f"ours: {_why(ours('config'), doc)}; official: {_why(official('config'), doc)}"
    )


def _flat(value: Any) -> bool:
    return not isinstance(value, (dict, list)) or (
        isinstance(value, list) and not any(isinstance(i, (dict, list)) for i in value)
    )


def _focus(doc: Any, path: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
    """A copy of doc cut down to the branch that leads to path; returns it and path in it.

    Along the branch, siblings that are scalars or lists of scalars stay (every property
    either schema requires is one of those), complex siblings go: no rule of either schema
    ties an object to its complex siblings, so a (valid) sibling's absence changes no
    verdict, and the small document validates many times faster.
    """
    if not path:
        return copy.deepcopy(doc), ()
    head, rest = path[0], path[1:]
    sub, subpath = _focus(doc[head], rest)
    if isinstance(doc, dict):
        out = {k: copy.deepcopy(v) for k, v in doc.items() if k != head and _flat(v)}
        out[head] = sub
        return out, (head, *subpath)
    items: list[Any] = []
    index = 0
    for i, item in enumerate(doc):
        if i == head:
            index = len(items)
            items.append(sub)
        elif _flat(item):
            items.append(copy.deepcopy(item))
    return items, (index, *subpath)


DELETE = object()
WRONG_VALUES: list[Any] = [None, True, "x", "", 1.5, [], {}, ["x"], [{}], -1, 0]


def _probes(node: Any) -> list[Any]:
    values = [*WRONG_VALUES, DELETE]
    if isinstance(node, int) and not isinstance(node, bool):
        values += INT_EDGES
    elif isinstance(node, str) and node:
        values += [node.lower(), node + "_X", node[:-1]]
    elif isinstance(node, dict):
        values.append({**node, "x-unknown": 1})
    return values


@needs_oci
def test_config_schema_agrees_on_every_field() -> None:
    """Systematic companion of the property above: every node of EVERYTHING is deleted
    and replaced by values of each JSON type, every integer by the edges of the integer
    widths, every string by near-misses; ours must agree with the official each time."""
    disagreements = []
    for path, node in list(_walk(EVERYTHING))[1:]:
        assert official("config").is_valid(_focus(EVERYTHING, path)[0]), path
        for value in _probes(node):
            doc, fpath = _focus(EVERYTHING, path)
            parent = _get(doc, fpath[:-1])
            if value is DELETE:
                del parent[fpath[-1]]
            else:
                parent[fpath[-1]] = value
            expected = official("config").is_valid(doc) and not pyrt_only_rejects(doc)
            if ours("config").is_valid(doc) != expected:
                shown = "<deleted>" if value is DELETE else repr(value)
                disagreements.append(f"{'/'.join(map(str, path))} = {shown}: ours "
                                     f"{'accepts' if not expected else 'rejects'} it")
    assert not disagreements, "\n".join(disagreements[:20])


@needs_oci
def test_seeds_are_valid_everywhere() -> None:
    for seed in _seeds():
        assert official("config").is_valid(seed), _why(official("config"), seed)
        assert ours("config").is_valid(seed), _why(ours("config"), seed)
        assert not pyrt_only_rejects(seed)
