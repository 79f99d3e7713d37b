"""What the file lab relies on from an S3 endpoint, checked against each one we may run on.

- `embedded`: the stack's own object store (nanio, pinned in requirements.txt).
- `external`: the endpoint `LABKIT_S3_ENDPOINT` names (with LABKIT_S3_ACCESS_KEY and
  LABKIT_S3_SECRET_KEY; `secure`/TLS from LABKIT_S3_SECURE or an https:// prefix),
  e.g. the MinIO in docker/. Skipped when the variable is not set.

Each run works in a bucket of its own and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from labkit.objects import transfer
from labkit.objects.endpoint import S3Endpoint, embedded_endpoint, s3_endpoint
from labkit.objects.errors import ObjectNotFound, TransferRefused
from labkit.objects.store import ObjectStore
from labkit.settings import Settings
from labkit.stack import Stack
from tests.conftest import make_settings

ENDPOINTS = ["embedded", "external"]


@dataclass
class Target:
    """The endpoint under test, a store on a fresh bucket of it, and how it was reached."""

    kind: str
    endpoint: S3Endpoint
    store: ObjectStore


@pytest.fixture(scope="module", params=ENDPOINTS)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "external":
        if not os.environ.get("LABKIT_S3_ENDPOINT"):
            pytest.skip("LABKIT_S3_ENDPOINT is not set: no external S3 endpoint to check")
        endpoint = s3_endpoint(Settings())
    else:
        stack: Stack = request.getfixturevalue("running_stack")
        stack.ensure("objects")
        endpoint = embedded_endpoint(stack.settings)
    store = ObjectStore.at(endpoint, f"labkit-conformance-{secrets.token_hex(4)}")
    yield Target(request.param, endpoint, store)
    for key in store.list_keys():
        store.delete(key)
    store.client.remove_bucket(store.bucket)


def _key() -> str:
    return f"alice/{secrets.token_hex(4)}.bin"


def test_bucket_create_is_idempotent_and_exists_tells(target: Target) -> None:
    client = target.store.client  # first use creates the store's bucket
    assert client.bucket_exists(target.store.bucket)
    other = ObjectStore.at(target.endpoint, f"labkit-conformance-{secrets.token_hex(4)}")
    try:
        assert not client.bucket_exists(other.bucket)
        other.ensure_bucket()
        other.ensure_bucket()  # again: no error
        assert client.bucket_exists(other.bucket)
    finally:
        client.remove_bucket(other.bucket)
    assert not client.bucket_exists(other.bucket)


def test_put_get_stat_and_missing_objects(target: Target) -> None:
    store, key = target.store, _key()
    store.write(key, b"hello", "text/plain")
    assert store.read(key) == b"hello"
    info = store.stat(key)
    assert (info.size, info.content_type) == (5, "text/plain")
    assert store.exists(key) and key in store.list_keys("alice/")
    missing = _key()
    assert not store.exists(missing)
    with pytest.raises(ObjectNotFound):
        store.stat(missing)
    with pytest.raises(ObjectNotFound):
        store.read(missing)


def test_presigned_put_then_get_over_plain_http(target: Target) -> None:
    store, key = target.store, _key()
    body = secrets.token_bytes(300_000)
    put_url = store.presign_put(key)
    assert put_url.startswith(target.endpoint.url + "/")
    assert "X-Amz-Signature=" in put_url and "X-Amz-Expires=7200" in put_url
    assert transfer.put_to_url(put_url, body, content_type="image/png", progress=True) == len(body)
    assert store.stat(key).size == len(body)
    get_url = store.presign_get(key)
    plain = requests.get(get_url, timeout=10)  # no SDK, no keys: the URL is enough
    assert plain.status_code == 200 and plain.content == body
    assert transfer.get_from_url(get_url) == body


def test_a_file_path_uploads_with_its_length(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(secrets.token_bytes(1_500_000))
    key = _key()
    transfer.put_to_url(target.store.presign_put(key), path, progress=False)
    assert target.store.read(key) == path.read_bytes()


def test_an_expired_url_is_refused(target: Target) -> None:
    store, key = target.store, _key()
    store.write(key, b"original")
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    expired_get = store.presign_at("GET", key, timedelta(seconds=60), long_ago)
    expired_put = store.presign_at("PUT", key, timedelta(seconds=60), long_ago)
    assert requests.get(expired_get, timeout=10).status_code == 403
    with pytest.raises(TransferRefused, match="HTTP 403"):
        transfer.put_to_url(expired_put, b"overwritten")
    assert store.read(key) == b"original"
    # Signed a little while ago but still within its lifetime: accepted.
    recent = store.presign_at(
        "GET", key, timedelta(seconds=60), datetime.now(UTC) - timedelta(seconds=20)
    )
    assert requests.get(recent, timeout=10).content == b"original"


def test_expiry_is_honoured_in_real_time(target: Target) -> None:
    store, key = target.store, _key()
    store.write(key, b"soon gone")
    url = store.presign_get(key, expires=timedelta(seconds=1))
    assert requests.get(url, timeout=10).status_code == 200
    time.sleep(2.1)  # X-Amz-Date has a one-second resolution
    assert requests.get(url, timeout=10).status_code == 403


def _tampered(url: str, how: str, other_key: str) -> tuple[str, str]:
    """(method, url) after changing one thing the signature covers."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if how == "signature":
        signature = query["X-Amz-Signature"]
        query["X-Amz-Signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    elif how == "expiry":
        query["X-Amz-Expires"] = "604800"
    elif how == "credential":
        query["X-Amz-Credential"] = "SOMEONEELSE" + query["X-Amz-Credential"][11:]
    elif how == "key":
        bucket = parts.path.split("/")[1]
        return "GET", urlunsplit(parts._replace(path=f"/{bucket}/{other_key}"))
    elif how == "method":
        return "PUT", url
    elif how == "unsigned":
        query = {k: v for k, v in query.items() if not k.startswith("X-Amz-")}
    return "GET", urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize("how", ["signature", "expiry", "credential", "key", "method", "unsigned"])
def test_a_tampered_url_is_refused_and_changes_nothing(target: Target, how: str) -> None:
    store, key, other = target.store, _key(), _key()
    store.write(key, b"mine")
    store.write(other, b"someone else's")
    method, url = _tampered(store.presign_get(key), how, other)
    response = requests.request(
        method, url, data=b"tampered" if method == "PUT" else None, timeout=10
    )
    assert response.status_code == 403, response.text
    assert transfer.s3_error(response.content)[0]  # an S3 XML error names the reason
    assert store.read(key) == b"mine" and store.read(other) == b"someone else's"


def test_objects_persist_across_a_restart_of_the_store(target: Target, tmp_path: Path) -> None:
    if target.kind != "embedded":
        pytest.skip("an external endpoint cannot be restarted from here")
    settings = make_settings(tmp_path / "home", s3={"port": 0})
    with Stack(settings) as stack:
        first = stack.ensure("objects")["objects"].pid
        store = ObjectStore.from_settings(settings)
        store.write("alice/kept.txt", b"still here", "text/plain")
        stack.down("objects")
        second = stack.ensure("objects")["objects"].pid
        assert second != first
        assert store.read("alice/kept.txt") == b"still here"
        assert store.stat("alice/kept.txt").content_type == "text/plain"


def test_a_sized_upload_url_takes_exactly_its_size(target: Target) -> None:
    # The store itself caps an upload: the URL signs its Content-Length.
    store, key = target.store, _key()
    body = secrets.token_bytes(1_000)
    url = store.presign_sized_put(key, len(body), timedelta(minutes=1))
    assert "X-Amz-SignedHeaders=content-length%3Bhost" in url
    for wrong in (body + b"more", body[:-1]):
        with pytest.raises(TransferRefused, match="HTTP 403"):
            transfer.put_to_url(url, wrong)
    assert not store.exists(key)
    assert transfer.put_to_url(url, body, content_type="image/png") == len(body)
    assert store.read(key) == body and store.stat(key).content_type == "image/png"


def test_a_sized_upload_url_lying_about_its_length_stores_no_more(target: Target) -> None:
    # A client that sends the signed Content-Length with a longer body: the HTTP server
    # reads only what the header says, so nothing past it reaches the object.
    store, key = target.store, _key()
    url = store.presign_sized_put(key, 10, timedelta(minutes=1))
    # the store may close the connection on the excess bytes
    with contextlib.suppress(requests.RequestException):
        requests.put(url, data=b"0123456789" + b"x" * 100_000, headers={"Content-Length": "10"})
    if store.exists(key):
        assert store.read(key) == b"0123456789"


def test_an_expired_sized_upload_url_is_refused(target: Target) -> None:
    store, key = target.store, _key()
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    url = store.presign_sized_put(key, 3, timedelta(seconds=60), signed_at=long_ago)
    with pytest.raises(TransferRefused, match="HTTP 403"):
        transfer.put_to_url(url, b"abc")
    assert not store.exists(key)
