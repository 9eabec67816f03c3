"""Capabilities: the five sets of process.capabilities, through python-prctl."""

from __future__ import annotations

from pyrt.config import CAP_SETS, CAPABILITIES
from pyrt.linux import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrt.config import Capabilities

NAMES = CAPABILITIES
NUMBERS = {name: i for i, name in enumerate(NAMES)}
SETS = CAP_SETS


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap", encoding="utf-8") as f:
        return int(f.read())


def preload() -> None:
    """Load python-prctl (and libcap) in the init, before it joins the memory cgroup, so
    the container is not charged for it; `pyrt create` itself never needs it."""
    import _prctl  # noqa: F401


class CapPlan:
    """process.capabilities resolved to numbers (the names were checked with the config:
    config.process_problems)."""

    def __init__(self, caps: Capabilities | None) -> None:
        self.present = caps is not None
        self.sets: dict[str, list[int]] = {}
        top = last_cap()
        for name in SETS:
            numbers = (NUMBERS[cap.upper()] for cap in (getattr(caps, name) if caps else []))
            # as runc: a capability the kernel lacks is skipped
            self.sets[name] = [num for num in numbers if num <= top]
        self.all = list(range(top + 1))

    def drop_bounding(self) -> None:
        """Drop the bounding set first, while we still hold CAP_SETPCAP."""
        if not self.present:
            return
        import _prctl

        keep = set(self.sets["bounding"])
        for cap in self.all:
            if cap not in keep:
                _prctl.prctl(_prctl.PR_CAPBSET_DROP, cap)

    def apply(self) -> None:
        """Set effective, permitted and inheritable exactly, then raise the ambient set."""
        if not self.present:
            return
        import _prctl

        eff, perm, inh = (set(self.sets[n]) for n in ("effective", "permitted", "inheritable"))
        _prctl.set_caps(
            sorted(eff), sorted(perm), sorted(inh),
            [c for c in self.all if c not in eff],
            [c for c in self.all if c not in perm],
            [c for c in self.all if c not in inh],
        )
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
        for cap in self.sets["ambient"]:
            try:
                sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, cap)
            except PermissionError:
                pass  # as runc: not in permitted+inheritable, so it cannot be ambient
