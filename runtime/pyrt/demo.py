"""The demo bundle: a busybox-static rootfs and the default config, built on the spot.

`python -m pyrt.demo DIR [ARGS...]` writes DIR/rootfs and DIR/config.json; by default
the container prints its hostname, that it is pid 1, and its mounts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from pyrt import defaults, jsonio
from pyrt.errors import PyrtError

BUSYBOX = "/bin/busybox"
DEMO_SCRIPT = (
    'echo "hostname: $(hostname)"; echo "my pid: $$"; echo "mounts:"; '
    "cat /proc/self/mounts"
)


def build_rootfs(rootfs: str, busybox: str = BUSYBOX) -> None:
    """A minimal rootfs: static busybox, its applets as symlinks, /etc basics."""
    if not os.path.exists(busybox):
        raise PyrtError(busybox, "not found: install busybox-static")
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "root", "run"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy2(busybox, os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        link = os.path.join(rootfs, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        "etc/group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
        "etc/hostname": "pyrt\n",
    }
    for name, text in files.items():
        with open(os.path.join(rootfs, name), "w", encoding="utf-8") as f:
            f.write(text)


def build(bundle: str, args: list[str] | None = None, cgroups_path: str = "/pyrt/demo") -> None:
    build_rootfs(os.path.join(bundle, "rootfs"))
    config = defaults.config(args or ["sh", "-c", DEMO_SCRIPT], terminal=False,
                             cgroups_path=cgroups_path)
    with open(os.path.join(bundle, "config.json"), "w", encoding="utf-8") as f:
        f.write(jsonio.dumps_indented(config) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m pyrt.demo BUNDLE_DIR [ARGS...]")
    build(sys.argv[1], sys.argv[2:] or None)
