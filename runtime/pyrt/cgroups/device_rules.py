"""linux.resources.devices as rules, shared by the v1 (devices.allow/deny) and v2 (eBPF)
drivers."""

from __future__ import annotations

from pyrt.errors import ConfigError
from pyrt.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


@record
class DeviceRule:
    """One cgroup device rule; None for major or minor is the wildcard `*`."""

    allow: bool
    type: str  # "a" (all), "c" or "b"
    major: int | None
    minor: int | None
    access: str  # a subset of "rwm"

    def v1_text(self) -> str:
        """The line written to devices.allow or devices.deny."""
        if self.type == "a" and self.major is None and self.minor is None:
            return "a"
        major = "*" if self.major is None else self.major
        minor = "*" if self.minor is None else self.minor
        return f"{self.type} {major}:{minor} {self.access}"


def _allowed(type_: str, major: int | None, minor: int | None, access: str = "rwm") -> DeviceRule:
    return DeviceRule(allow=True, type=type_, major=major, minor=minor, access=access)


# runc's defaults, appended after the config's own rules: mknod of any device, and the
# devices every container gets (null, zero, full, random, urandom, tty, console, pts,
# ptmx, tun).
DEFAULT_RULES = (
    _allowed("c", None, None, "m"), _allowed("b", None, None, "m"),
    _allowed("c", 1, 3), _allowed("c", 1, 8), _allowed("c", 1, 7), _allowed("c", 5, 0),
    _allowed("c", 1, 5), _allowed("c", 1, 9), _allowed("c", 5, 1), _allowed("c", 136, None),
    _allowed("c", 5, 2), _allowed("c", 10, 200),
)


def parse(rules: list[dict[str, Any]], ptr: str) -> list[DeviceRule]:
    """The config's rules (each checked) followed by runc's defaults."""
    parsed = []
    for i, rule in enumerate(rules):
        kind = rule.get("type") or "a"
        if kind not in ("a", "c", "b"):
            raise ConfigError(f"{ptr}/{i}/type", f"unknown device type {kind!r}")
        access = rule.get("access") or "rwm"
        if not set(access) <= set("rwm"):
            raise ConfigError(f"{ptr}/{i}/access", f"invalid access {access!r}")
        parsed.append(DeviceRule(allow=bool(rule.get("allow")), type=kind,
                                 major=rule.get("major"), minor=rule.get("minor"), access=access))
    return parsed + list(DEFAULT_RULES)
