"""`update`: new linux.resources merged over a container's current ones.

As runc: values given replace the current ones, device lists are upserted by major:minor,
and what is not given stays. Sections runc cannot change in a running container (devices,
hugepageLimits, network, rdma) must not change here either; an update that tries is an
error rather than silently ignored.
"""

from __future__ import annotations

import copy

from pyrt.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

UPDATABLE = ("memory", "cpu", "pids", "blockIO", "unified")
DEVICE_LISTS = ("weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice",
                "throttleReadIOPSDevice", "throttleWriteIOPSDevice")


def merge(current: dict[str, Any], changes: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The merged resources, and the sections whose files must be written again."""
    merged = copy.deepcopy(current)
    touched = []
    for key, value in changes.items():
        if value is None or value == {} or value == []:
            continue
        if key not in UPDATABLE:
            if value != current.get(key):
                raise ConfigError(f"/linux/resources/{key}",
                                  "cannot be changed in a running container")
            continue
        section = merged.setdefault(key, {})
        for name, item in value.items():
            if item is None:
                continue
            if key == "blockIO" and name in DEVICE_LISTS:
                section[name] = _upsert(section.get(name) or [], item)
            else:
                section[name] = item
        touched.append(key)
    memory = changes.get("memory") or {}
    if memory.get("limit") == -1 and memory.get("swap") is None:
        merged["memory"].pop("swap", None)  # as runc: unlimited memory, unlimited swap
    return merged, touched


def _upsert(entries: list[dict[str, Any]], updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = [dict(entry) for entry in entries]
    for update in updates:
        for entry in result:
            if (entry.get("major"), entry.get("minor")) == (update.get("major"),
                                                             update.get("minor")):
                entry.update({k: v for k, v in update.items() if v is not None})
                break
        else:
            result.append(dict(update))
    return result

