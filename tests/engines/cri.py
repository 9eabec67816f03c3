"""A tiny CRI (Kubernetes Container Runtime Interface, runtime.v1) client: what a kubelet
asks containerd's CRI plugin for a pod, with the RuntimeClass handler naming pyrt.

Only the calls and fields the test needs, encoded by hand in protobuf's wire format
(field numbers of k8s.io/cri-api runtime/v1 api.proto), sent with grpcio.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SERVICE = "/runtime.v1.RuntimeService/"
NODE = 2  # NamespaceMode.NODE: the host's network namespace, so no CNI plugin is needed

# ------------------------------------------------------------------ protobuf wire format


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def msg(*fields: tuple[int, Any]) -> bytes:
    """Encode (field number, value) pairs: int -> varint, str/bytes -> length-delimited
    (nested messages are bytes from ``msg``); None is skipped, lists repeat the field."""
    out = bytearray()
    for num, value in fields:
        values: Iterable[Any] = value if isinstance(value, list) else [value]
        for v in values:
            if v is None:
                continue
            if isinstance(v, bool | int):
                out += _key(num, 0) + _varint(int(v))
            else:
                data = v.encode() if isinstance(v, str) else bytes(v)
                out += _key(num, 2) + _varint(len(data)) + data
    return bytes(out)


def decode(data: bytes) -> dict[int, list[Any]]:
    """field number -> values (ints for varints, bytes for length-delimited)."""
    out: dict[int, list[Any]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = n = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(data):
        key = varint()
        num, wire = key >> 3, key & 7
        if wire == 0:
            value: Any = varint()
        elif wire == 2:
            size = varint()
            value = data[i:i + size]
            i += size
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        out.setdefault(num, []).append(value)
    return out


def _map(entries: dict[str, str]) -> list[bytes]:
    return [msg((1, k), (2, v)) for k, v in entries.items()]


# ------------------------------------------------------------------ messages


def pod_config(name: str, uid: str, cgroup_parent: str, log_dir: str) -> bytes:
    """PodSandboxConfig: metadata, log_directory, labels, linux (cgroup_parent, host
    network; so no hostname: the pod shares the host's UTS namespace too)."""
    metadata = msg((1, name), (2, uid), (3, "pyrt-tests"), (4, 0))
    namespaces = msg((1, NODE))
    security = msg((1, namespaces))
    linux = msg((1, cgroup_parent), (2, security))
    return msg((1, metadata), (3, log_dir), (6, _map({"test": "pyrt"})), (8, linux))


def container_config(name: str, image: str, command: list[str], log_path: str) -> bytes:
    """ContainerConfig: metadata, image, command, log_path."""
    return msg((1, msg((1, name), (2, 0))), (2, msg((1, image))), (3, command), (11, log_path))


class Client:
    def __init__(self, socket_path: str):
        import grpc

        self.grpc = grpc
        self.channel = grpc.insecure_channel(f"unix://{socket_path}")

    def call(self, method: str, request: bytes, timeout: float = 60) -> dict[int, list[Any]]:
        stub = self.channel.unary_unary(SERVICE + method, request_serializer=None,
                                        response_deserializer=None)
        return decode(stub(request, timeout=timeout))

    def version(self) -> str:
        r = self.call("Version", msg((1, "v1")))
        return r[2][0].decode()  # runtime_name

    def run_pod(self, config: bytes, handler: str) -> str:
        return self.call("RunPodSandbox", msg((1, config), (2, handler)))[1][0].decode()

    def create_container(self, pod_id: str, config: bytes, pod_config: bytes) -> str:
        r = self.call("CreateContainer", msg((1, pod_id), (2, config), (3, pod_config)))
        return r[1][0].decode()

    def start_container(self, cid: str) -> None:
        self.call("StartContainer", msg((1, cid)))

    def exec_sync(self, cid: str, cmd: list[str], timeout: int = 30) -> tuple[int, str, str]:
        r = self.call("ExecSync", msg((1, cid), (2, cmd), (3, timeout)), timeout=timeout + 30)
        code = r.get(3, [0])[0]
        return code, b"".join(r.get(1, [])).decode(), b"".join(r.get(2, [])).decode()

    def container_state(self, cid: str) -> int:
        """ContainerStatus.state: 0 created, 1 running, 2 exited, 3 unknown."""
        status = decode(self.call("ContainerStatus", msg((1, cid)))[1][0])
        return status.get(3, [0])[0]

    def stop_container(self, cid: str, timeout: int = 0) -> None:
        self.call("StopContainer", msg((1, cid), (2, timeout)))

    def remove_container(self, cid: str) -> None:
        self.call("RemoveContainer", msg((1, cid)))

    def stop_pod(self, pod_id: str) -> None:
        self.call("StopPodSandbox", msg((1, pod_id)))

    def remove_pod(self, pod_id: str) -> None:
        self.call("RemovePodSandbox", msg((1, pod_id)))

    def close(self) -> None:
        self.channel.close()
