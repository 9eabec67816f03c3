"""`pyrt validate`: full JSON-Schema validation (specs/) plus the semantic checks.

`create` does not come here: its typed parse (config.py) checks every field it uses
and costs no jsonschema import (~80 ms). This module is for a user who wants every
problem of a config listed, each with its JSON pointer.
"""

from __future__ import annotations

import os

from pyrt import jsonio
from pyrt.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SPECS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "specs")


def load_schema(name: str) -> dict[str, Any]:
    """One of the project's schemas: "config", "state" or "features"."""
    with open(os.path.join(SPECS, f"{name}-schema.json"), encoding="utf-8") as f:
        schema: dict[str, Any] = jsonio.loads(f.read())
    return schema


def pointer(path: Any) -> str:
    from pyrt.config import key

    return "".join(f"/{key(str(p))}" for p in path)


def schema_problems(doc: Any, name: str = "config") -> list[tuple[str, str]]:
    """(pointer, message) for every place `doc` breaks the schema, in document order."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(name))
    found = []
    for error in validator.iter_errors(doc):
        best = jsonschema.exceptions.best_match([error])
        found.append((pointer(best.absolute_path), best.message))
    return sorted(set(found))


def validate_bundle(bundle: str) -> list[tuple[str, str]]:
    """Every problem of `<bundle>/config.json`: unreadable, schema, then semantic."""
    from pyrt import config

    text = config.read_text(bundle)
    try:
        doc = jsonio.loads(text)
    except jsonio.JSONError as e:
        return [("", str(e))]
    found = schema_problems(doc)
    if found:
        return found
    try:
        parsed = config.parse_types(doc)
    except ConfigError as e:
        return [(e.what, e.why)]
    found = [(p.what, p.why) for p in config.problems(parsed)]
    found += [(ptr, "not supported by pyrt yet") for ptr in parsed.unsupported]
    found += _host_problems(parsed)
    return found


def _host_problems(parsed: Any) -> list[tuple[str, str]]:
    """Cgroup settings this host (or pyrt's driver for it) cannot honour, and a seccomp
    filter that libseccomp or this kernel refuses."""
    from pyrt import cgroups
    from pyrt.config import seccomp_problems

    found = []
    try:
        cgroups.open_cgroup(parsed.linux.cgroupsPath, "validate").check(parsed.linux.resources)
    except ConfigError as e:
        found.append((e.what, e.why))
    sec = parsed.linux.seccomp
    if sec is not None and next(seccomp_problems(sec), None) is None:
        from pyrt.linux import seccomp

        try:
            seccomp.build(sec)
        except ConfigError as e:
            found.append((e.what, e.why))
    return found
