"""linux.resources.devices on cgroup v2 (an eBPF program): denied devices give EPERM."""

from __future__ import annotations

import rthelpers as h

SCRIPT = (
    "echo hi >/dev/kmsg && echo kmsg-written;"
    " echo >/dev/null && echo null-written;"
    " echo >/dev/nodev12 || echo nodev12-refused"
)


def test_allowed_default_and_denied(rt, make_bundle):
    b = make_bundle(("sh", "-c", SCRIPT), write=False)
    # Neither 1:11 (/dev/kmsg) nor 1:12 (no driver: ENXIO once allowed) is among the
    # runtime's default devices; the config allows writing the first only.
    b.config["linux"]["devices"] = [
        {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666},
        {"path": "/dev/nodev12", "type": "c", "major": 1, "minor": 12, "fileMode": 0o666},
    ]
    b.config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"})
    b.write()
    res = h.assert_ok(rt.run(b, timeout=60))
    want = ["kmsg-written", "null-written", "nodev12-refused"]
    assert res.stdout.split() == want, h.describe(res)
    assert "Operation not permitted" in res.stderr, h.describe(res)
