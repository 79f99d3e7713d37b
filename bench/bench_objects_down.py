"""How long does a file request wait before `objects_unavailable` when the store is down?

The test (tests/objects/test_component.py) holds the behaviour: three attempts, then
the error. This measures the wait a learner sees, against the minio SDK's own retry
policy on the same endpoint in the same run (the baseline labkit's client replaces).
Two endpoints: a port nothing listens on (connection refused) and one that accepts
and hangs up at once.

    .venv/bin/python bench/bench_objects_down.py [--runs 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from collections.abc import Callable

from minio import Minio
from urllib3.exceptions import MaxRetryError

from labkit.objects.endpoint import S3Endpoint, generate_keys
from labkit.objects.errors import ObjectStoreUnavailable
from labkit.objects.store import ObjectStore
from labkit.stack.ports import free_port

BUCKET, KEY = "labkit-files", "alice/cat.png"


def hanging_up_port() -> tuple[int, socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], listener


def seconds_to_fail(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    try:
        call()
    except (ObjectStoreUnavailable, MaxRetryError):  # the point: how long until it gives up
        return time.perf_counter() - began
    raise AssertionError("the call succeeded against a store that is down")


def labkit_read(port: int) -> Callable[[], object]:
    store = ObjectStore.at(S3Endpoint(f"127.0.0.1:{port}", generate_keys()), BUCKET)
    return lambda: store.read(KEY)


def sdk_read(port: int) -> Callable[[], object]:
    keys = generate_keys()
    client = Minio(
        f"127.0.0.1:{port}",
        access_key=keys.access_key,
        secret_key=keys.secret_key,
        secure=False,
        region="us-east-1",
    )
    return lambda: client.get_object(BUCKET, KEY)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    hang_port, listener = hanging_up_port()
    endpoints = {"refused": free_port("127.0.0.1"), "accepts and hangs up": hang_port}
    print("| endpoint | labkit's client, median ms | minio SDK default, median ms | ratio |")
    print("|---|---:|---:|---:|")
    for label, port in endpoints.items():
        ours = statistics.median(seconds_to_fail(labkit_read(port)) for _ in range(runs))
        sdk = statistics.median(seconds_to_fail(sdk_read(port)) for _ in range(runs))
        print(f"| {label} | {ours * 1000:,.0f} | {sdk * 1000:,.0f} | {ours / sdk:.3f} |")
    listener.close()


if __name__ == "__main__":
    main()
