"""`spec`, `features`, `validate`, and create's refusal of bad configs (issue "config")."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import rthelpers as h
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rthelpers import assert_ok, describe

OFFICIAL = next((p for p in (Path(__file__).resolve().parents[3] / "shared/oci-runtime-spec",
                             Path("/work/shared/oci-runtime-spec")) if p.is_dir()), None)


def official_validator(name: str) -> Any:
    """The official v1.3.0 schema `name` (e.g. config-schema.json), as an oracle."""
    if OFFICIAL is None:
        pytest.skip("the official runtime-spec schemas are not here")
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    schema_dir = OFFICIAL / "schema"

    def retrieve(uri: str) -> Any:
        text = (schema_dir / uri.rsplit("/", 1)[-1]).read_text()
        return referencing.Resource.from_contents(json.loads(text),
                                                  default_specification=referencing.jsonschema.DRAFT4)

    schema = json.loads((schema_dir / name).read_text())
    registry = referencing.Registry(retrieve=retrieve)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=registry)


def test_spec_writes_config_and_refuses_to_overwrite(rt, tmp_path):
    assert_ok(rt("spec", "--bundle", str(tmp_path)))
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["root"]["path"] == "rootfs" and doc["process"]["args"], doc
    before = (tmp_path / "config.json").read_text()
    res = rt("spec", "--bundle", str(tmp_path))
    assert res.returncode == 1 and res.stderr.strip(), describe(res)
    assert (tmp_path / "config.json").read_text() == before


def test_spec_is_valid_for_the_official_schema(rt, tmp_path):
    validator = official_validator("config-schema.json")
    for flags, sub in (((), "plain"), (("--rootless",), "rootless")):
        (tmp_path / sub).mkdir()
        assert_ok(rt("spec", "--bundle", str(tmp_path / sub), *flags))
        doc = json.loads((tmp_path / sub / "config.json").read_text())
        errors = [e.message for e in validator.iter_errors(doc)]
        assert not errors, f"{sub}: {errors}"


def test_spec_rootless_maps_only_the_caller(rt, tmp_path):
    assert_ok(rt("spec", "--rootless", "--bundle", str(tmp_path)))
    linux = json.loads((tmp_path / "config.json").read_text())["linux"]
    assert {"type": "user"} in linux["namespaces"]
    assert "network" not in [ns["type"] for ns in linux["namespaces"]]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 0, "size": 1}]


def test_spec_runs_as_is_with_the_demo_rootfs(rt, make_bundle):
    """`spec`'s config (terminal, sh) runs in the foreground; we type into its shell."""
    b = make_bundle(write=False)
    b.config_path.unlink(missing_ok=True)
    assert_ok(rt("spec", "--bundle", str(b.path)))
    doc = json.loads(b.config_path.read_text())
    doc["linux"]["cgroupsPath"] = b.cgroup_path  # ours, not the caller's own cgroup
    b.config_path.write_text(json.dumps(doc))
    cmd = " ".join(rt.argv("run", "--bundle", str(b.path), b.id))
    # typed once the shell is up (busybox's line editor eats early input as its reply
    # to a cursor position query)
    typing = "sleep 1.5; printf 'echo in-spec-$((6*7))\\nexit 3\\n'; sleep 3"
    res = subprocess.run(["sh", "-c", f'({typing}) | script -qec "{cmd}" /dev/null'],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 3, describe(res)
    assert "in-spec-42" in res.stdout, describe(res)


def test_features_is_valid_for_the_official_schema(rt):
    validator = official_validator("features-schema.json")
    res = assert_ok(rt("features", global_args=[]))
    doc = json.loads(res.stdout)
    errors = [e.message for e in validator.iter_errors(doc)]
    assert not errors, errors
    assert set(doc["linux"]["namespaces"]) >= {"pid", "network", "ipc", "uts", "mount"}


@pytest.mark.pyrt_only
def test_state_is_valid_for_the_official_schema(rt, bundle):
    # pyrt-only: runc 1.1.5 reports status "paused"-capable states too, and its
    # ociVersion "1.0.2-dev" is its own; pyrt's state must match the v1.3.0 schema.
    validator = official_validator("state-schema.json")
    assert_ok(rt.create(bundle))
    doc = rt.state(bundle.id)
    errors = [e.message for e in validator.iter_errors(doc)]
    assert not errors, errors


# ---------------------------------------------------------------- pyrt validate

@pytest.mark.pyrt_only
def test_validate_valid_bundle(rt, bundle):
    res = rt("validate", "--bundle", str(bundle.path))
    assert res.returncode == 0, describe(res)
    res = rt("validate", "--bundle", str(bundle.path), "--format", "json")
    assert json.loads(res.stdout) == {"valid": True, "problems": []}, describe(res)


@pytest.mark.pyrt_only
def test_validate_lists_every_problem_with_its_pointer(rt, make_bundle):
    b = make_bundle(write=False)
    b.config["process"]["args"] = "sh"
    b.config["linux"]["namespaces"].append({"type": "bogus"})
    b.write()
    res = rt("validate", "--bundle", str(b.path))
    assert res.returncode == 1, describe(res)
    pointers = [line.split(":", 1)[0] for line in res.stdout.splitlines()]
    assert "/process/args" in pointers and "/linux/namespaces/6/type" in pointers, describe(res)
    res = rt("validate", "--bundle", str(b.path), "--format", "json")
    doc = json.loads(res.stdout)
    assert not doc["valid"] and {p["pointer"] for p in doc["problems"]} >= {"/process/args"}


@pytest.mark.pyrt_only
def test_validate_semantic_problems(rt, make_bundle):
    b = make_bundle(write=False)
    b.config["linux"]["namespaces"].append({"type": "pid"})
    b.config["linux"]["sysctl"] = {"vm.swappiness": "10"}
    b.write()
    res = rt("validate", "--bundle", str(b.path))
    assert res.returncode == 1, describe(res)
    assert "/linux/namespaces/6/type" in res.stdout and "/linux/sysctl/vm.swappiness" in res.stdout


@pytest.mark.pyrt_only
def test_create_refuses_unsupported_settings(rt, make_bundle):
    """A setting pyrt cannot apply yet (Intel RDT) is refused, never skipped."""
    b = make_bundle(write=False)
    b.config["linux"]["intelRdt"] = {"closID": "pyrt-test"}
    b.write()
    res = rt.create(b)
    assert res.returncode == 1 and "/linux/intelRdt" in res.stderr, describe(res)
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)


# ---------------------------------------------------------------- bad configs, generated

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_configs(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return doc


@pytest.mark.pyrt_only
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_configs_give_one_clear_line_and_leave_nothing(rt, make_bundle, data):
    """validate and create end in exit 0 or one `pyrt: ...` line; nothing is left behind."""
    b = make_bundle(("true",), write=False)
    doc = data.draw(mutated_configs(b.config))
    b.config_path.write_text(json.dumps(doc))
    res = rt("validate", "--bundle", str(b.path))
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, describe(res)
    res = rt.create(b)
    assert "Traceback" not in res.stderr, describe(res)
    if res.returncode == 0:
        assert_ok(rt.delete(b.id, force=True))
    else:
        assert res.returncode == 1, describe(res)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pyrt: "), describe(res)
    h.reap_zombies()
    h.assert_no_leftovers(b.id, rt.root, b.cgroup_path, b.path)
