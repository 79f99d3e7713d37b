"""How the application server's store finds the object store and talks to it.

- The endpoint is cached until the state file or the keys file changes: a restart
  of the store on another port is followed at the next use, a stopped store is an
  error that says how to start it (the file lab's outage test follows a real one).
- Reads and writes are one signed request each on a kept-alive connection, against
  the real embedded store, on both paths (plain `http.client`, and urllib3 as for a
  TLS endpoint); a read over its limit is refused, and the store keeps serving after it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psutil
import pytest

from labkit.discovery import OBJECT_STORE
from labkit.objects.endpoint import EndpointCache, embedded_endpoint, read_or_create_keys
from labkit.objects.errors import ObjectNotFound, ObjectStoreUnavailable, ObjectTooLarge
from labkit.objects.store import ObjectStore
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.stack.state import load_records, save_records


def record_store_at(settings: Settings, endpoint: str | None) -> None:
    """Write the state file as the stack does: the store's record, or none."""
    path = settings.paths.state_file
    records = load_records(path)
    records.pop(OBJECT_STORE, None)
    if endpoint is not None:
        records[OBJECT_STORE] = {"endpoint": endpoint, "pid": os.getpid()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_records(path, settings.home, records)


def test_the_endpoint_is_read_again_only_when_its_files_change(settings: Settings) -> None:
    settings.paths.s3_keys_file.parent.mkdir(parents=True, exist_ok=True)
    keys = read_or_create_keys(settings.paths.s3_keys_file)
    record_store_at(settings, "127.0.0.1:41001")
    cache = EndpointCache(settings)
    first = cache.current()
    assert first.endpoint == "127.0.0.1:41001" and first.keys == keys
    assert cache.current() is first  # unchanged files: not parsed again

    record_store_at(settings, "127.0.0.1:41002")  # restarted on another port
    assert cache.current().endpoint == "127.0.0.1:41002"

    record_store_at(settings, None)  # stopped
    with pytest.raises(ObjectStoreUnavailable, match="python -m labkit up"):
        cache.current()
    record_store_at(settings, "127.0.0.1:41003")
    assert cache.current().endpoint == "127.0.0.1:41003"


@pytest.fixture(scope="module", params=["plain http", "urllib3"])
def store(running_stack: Stack, request: pytest.FixtureRequest) -> Iterator[ObjectStore]:
    """A store on a bucket of its own; `urllib3` is the path a TLS endpoint takes."""
    running_stack.ensure("objects")
    store = ObjectStore.at(
        embedded_endpoint(running_stack.settings),
        f"labkit-requests-{secrets.token_hex(4)}",
        plain_http=request.param == "plain http",
    )
    yield store
    for key in store.list_keys():
        store.delete(key)
    store.client.remove_bucket(store.bucket)


def connections_to(endpoint: str) -> int:
    """This process's open TCP connections to `host:port`."""
    port = int(endpoint.rpartition(":")[2])
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def test_reads_and_writes_share_kept_alive_connections(store: ObjectStore) -> None:
    for number in range(20):
        data = secrets.token_bytes(200 + number)
        store.write(f"alice/{number}.bin", data, "application/octet-stream")
        assert store.read(f"alice/{number}.bin", max_bytes=1024) == data
    # 40 requests one after another: one connection for them (and the SDK's own, used
    # for the bucket), not one each. A loaded machine may see the store drop an idle one
    # and the pool open another (seen once in CI: 3), so the bound leaves room for that.
    assert connections_to(store.endpoint.endpoint) <= 4


def test_a_read_over_its_limit_is_refused_and_the_store_keeps_serving(
    store: ObjectStore,
) -> None:
    data = secrets.token_bytes(5000)
    store.write("alice/big.bin", data)
    with pytest.raises(ObjectTooLarge, match="5,000 bytes; the limit is 4,999"):
        store.read("alice/big.bin", max_bytes=4999)
    assert store.read("alice/big.bin", max_bytes=5000) == data
    assert store.stat("alice/big.bin").size == 5000
    with pytest.raises(ObjectNotFound, match="does not exist"):
        store.read("alice/never-written.bin", max_bytes=10)
