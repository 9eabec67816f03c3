"""A busybox image built here from the host's busybox-static, for engines with no registry.

``build_archive(path)`` writes ONE tar that is at the same time an OCI image layout
(``oci-layout``, ``index.json``, ``blobs/sha256/...``) and a docker-archive
(``manifest.json`` pointing at the same blobs), so that ``podman load``,
``ctr images import`` and ``docker load`` all take it.  One uncompressed layer: the
rootfs (busybox, one symlink per applet, /etc/passwd and /etc/group).
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = "/bin/busybox"
IMAGE = "localhost/pyrt-busybox:latest"
# The same rootfs as a Kubernetes pod's "pause" (sandbox) image: pid 1 only waits.
PAUSE_IMAGE = "localhost/pyrt-pause:latest"
PAUSE_CMD = ["sleep", "2147483647"]
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TESTER_UID = 1000
TESTER_GID = 1000
_EPOCH = 1_700_000_000  # fixed mtime: the same input gives the same digests

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    f"tester:x:{TESTER_UID}:{TESTER_GID}:tester:/home/tester:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = f"root:x:0:\ntty:x:5:\ntester:x:{TESTER_GID}:\nnogroup:x:65534:\n"


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _add(tar: tarfile.TarFile, name: str, *, kind: bytes = tarfile.REGTYPE,
         data: bytes = b"", mode: int = 0o644, link: str = "") -> None:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = _EPOCH
    ti.linkname = link
    if kind == tarfile.REGTYPE:
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    else:
        tar.addfile(ti)


def rootfs_layer() -> bytes:
    """The rootfs as an uncompressed tar (the image's only layer)."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "proc", "sys", "root", "home", "home/tester",
                  "var", "run", "mnt"):
            _add(tar, d, kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "tmp", kind=tarfile.DIRTYPE, mode=0o1777)
        _add(tar, "bin/busybox", data=Path(BUSYBOX).read_bytes(), mode=0o755)
        for a in sorted(set(applets) | {"sh"}):
            if "/" not in a and a not in ("busybox", "[["):
                _add(tar, f"bin/{a}", kind=tarfile.SYMTYPE, mode=0o777, link="busybox")
        _add(tar, "etc/passwd", data=PASSWD.encode())
        _add(tar, "etc/group", data=GROUP.encode())
    return buf.getvalue()


def _blob(tar: tarfile.TarFile, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _add(tar, "blobs/sha256/" + digest.split(":")[1], data=data)
    return digest, len(data)


def _json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build_archive(path: Path, ref: str = IMAGE, cmd: tuple[str, ...] = ("sh",)) -> Path:
    """Write the image archive (OCI layout + docker-archive in one tar) to ``path``."""
    layer = rootfs_layer()
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = _json({
        "architecture": _arch(),
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Env": [PATH_ENV], "Cmd": list(cmd), "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "pyrt tests/engines"}],
    })
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "blobs", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "blobs/sha256", kind=tarfile.DIRTYPE, mode=0o755)
        cfg_digest, cfg_size = _blob(tar, config)
        _blob(tar, layer)
        manifest = _json({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cfg_digest, "size": cfg_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": len(layer)}],
        })
        man_digest, man_size = _blob(tar, manifest)
        _add(tar, "oci-layout", data=_json({"imageLayoutVersion": "1.0.0"}))
        _add(tar, "index.json", data=_json({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": man_digest, "size": man_size,
                "platform": {"architecture": _arch(), "os": "linux"},
                "annotations": {"io.containerd.image.name": ref,
                                "org.opencontainers.image.ref.name": ref},
            }],
        }))
        _add(tar, "manifest.json", data=_json([{
            "Config": "blobs/sha256/" + cfg_digest.split(":")[1],
            "RepoTags": [ref],
            "Layers": ["blobs/sha256/" + layer_digest.split(":")[1]],
        }]))
    return path
