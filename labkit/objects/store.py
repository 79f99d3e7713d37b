"""The object store as the application server sees it: one bucket, presigned URLs, bytes.

`ObjectStore` wraps a `minio.Minio` client, the S3 SDK used everywhere in labkit,
whatever serves the endpoint (the embedded server, MinIO, any S3). Its methods
are blocking (the SDK is): async code calls them through `asyncio.to_thread`.

The endpoint is looked up again on each use (a read of the state file), so a
server that started before the object store, or outlived a restart of it on
another port, signs URLs for the address clients can reach now.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError as Urllib3Error

from labkit.objects.endpoint import S3Endpoint, s3_endpoint
from labkit.objects.errors import (
    ObjectNotFound,
    ObjectsError,
    ObjectStoreUnavailable,
    ObjectTooLarge,
)
from labkit.objects.presign import presign_sized_put
from labkit.settings import Settings

log = logging.getLogger("labkit.objects")

_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}
_BUCKET_TAKEN = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}
# Fail fast when the store is down (the SDK's default retries for ~6 s), and allow
# enough pooled connections for a server's concurrent handlers.
_CONNECT_TIMEOUT = 2.0
_READ_TIMEOUT = 30.0
_POOL_SIZE = 32


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD tells about an object."""

    key: str
    size: int
    content_type: str
    etag: str


class ObjectStore:
    """One bucket of an S3 endpoint: presign, read, write, stat, list keys, delete."""

    def __init__(
        self,
        locate: Callable[[], S3Endpoint],
        bucket: str,
        url_expiry: timedelta = timedelta(hours=2),
    ) -> None:
        self._locate = locate
        self.bucket = bucket
        self.url_expiry = url_expiry
        self._lock = threading.Lock()
        self._endpoint: S3Endpoint | None = None
        self._client: Minio | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ObjectStore:
        """The store the settings name: `LABKIT_S3_ENDPOINT`, else the stack's embedded one."""
        settings = settings or Settings()
        return cls(lambda: s3_endpoint(settings), settings.s3.bucket, settings.s3.url_expiry)

    @classmethod
    def at(
        cls, endpoint: S3Endpoint, bucket: str, url_expiry: timedelta = timedelta(hours=2)
    ) -> ObjectStore:
        """A store at a fixed endpoint (tests, scripts)."""
        return cls(lambda: endpoint, bucket, url_expiry)

    @property
    def endpoint(self) -> S3Endpoint:
        return self._locate()

    @property
    def client(self) -> Minio:
        """The SDK client for the current endpoint (the bucket is created on first use)."""
        endpoint = self._locate()
        with self._lock:
            if self._client is None or endpoint != self._endpoint:
                client = _make_client(endpoint)
                with _translated(f"the object store at {endpoint.url}"):
                    _create_bucket(client, self.bucket)
                self._client, self._endpoint = client, endpoint
            return self._client

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (idempotent, safe for concurrent servers)."""
        with _translated(f"bucket {self.bucket!r}"):
            _create_bucket(self.client, self.bucket)

    # presigned URLs: anyone holding one may do that one thing until it expires
    def presign_put(self, key: str, expires: timedelta | None = None) -> str:
        """A URL that accepts one HTTP PUT of `key`'s bytes until it expires."""
        return self._presign("PUT", key, expires)

    def presign_sized_put(
        self, key: str, size: int, expires: timedelta, signed_at: datetime | None = None
    ) -> str:
        """A URL that accepts one HTTP PUT of exactly `size` bytes of `key` until it expires
        (the store refuses any other size: see `labkit.objects.presign`)."""
        self.client  # noqa: B018  (the bucket exists before anyone uploads to it)
        return presign_sized_put(self.endpoint, self.bucket, key, size, expires, signed_at)

    def presign_get(self, key: str, expires: timedelta | None = None) -> str:
        """A URL that serves `key` over HTTP GET until it expires."""
        return self._presign("GET", key, expires)

    # objects
    def stat(self, key: str) -> ObjectInfo:
        """Size and type of `key`; ObjectNotFound when there is none."""
        with _translated(f"object {key!r}"):
            found = self.client.stat_object(self.bucket, key)
        return ObjectInfo(key, int(found.size or 0), found.content_type or "", found.etag or "")

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def read(self, key: str, max_bytes: int | None = None) -> bytes:
        """The bytes of `key`; ObjectTooLarge (before downloading) when over `max_bytes`."""
        if max_bytes is not None:
            size = self.stat(key).size
            if size > max_bytes:
                raise ObjectTooLarge(
                    f"{key!r} has {size:,} bytes; the limit is {max_bytes:,} "
                    "(LABKIT_S3_MAX_IMAGE_BYTES)"
                )
        with _translated(f"object {key!r}"):
            response = self.client.get_object(self.bucket, key)
            try:
                data = response.read(decode_content=True)
            finally:
                response.close()
                response.release_conn()
        if max_bytes is not None and len(data) > max_bytes:  # it grew since the stat
            raise ObjectTooLarge(f"{key!r} has more than {max_bytes:,} bytes")
        return bytes(data)

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store `data` under `key` (replacing what was there)."""
        with _translated(f"object {key!r}"):
            self.client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
            )

    def delete(self, key: str) -> None:
        with _translated(f"object {key!r}"):
            self.client.remove_object(self.bucket, key)

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every key under `prefix` (e.g. `alice/`), sorted."""
        with _translated(f"the objects under {prefix!r}"):
            found = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return sorted(item.object_name for item in found if item.object_name)

    def _presign(self, method: str, key: str, expires: timedelta | None) -> str:
        lifetime = expires if expires is not None else self.url_expiry
        with _translated(f"object {key!r}"):
            url: str = self.client.get_presigned_url(method, self.bucket, key, expires=lifetime)
        return url

    def presign_at(self, method: str, key: str, expires: timedelta, signed_at: datetime) -> str:
        """A URL signed as if at `signed_at` (tests of expiry without waiting)."""
        with _translated(f"object {key!r}"):
            url: str = self.client.get_presigned_url(
                method, self.bucket, key, expires=expires, request_date=signed_at
            )
        return url


def _make_client(endpoint: S3Endpoint) -> Minio:
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=_CONNECT_TIMEOUT, read=_READ_TIMEOUT),
        maxsize=_POOL_SIZE,
        retries=urllib3.Retry(
            total=2, connect=1, backoff_factor=0.1, status_forcelist=[500, 502, 503, 504]
        ),
    )
    return Minio(
        endpoint.endpoint,
        access_key=endpoint.keys.access_key,
        secret_key=endpoint.keys.secret_key,
        secure=endpoint.secure,
        # Given, the region spares a GetBucketLocation round trip before each presign.
        region=endpoint.region,
        http_client=http,
    )


def _create_bucket(client: Minio, bucket: str) -> None:
    if client.bucket_exists(bucket):
        return
    try:
        client.make_bucket(bucket)
        log.info("created bucket %s", bucket)
    except S3Error as exc:
        if exc.code not in _BUCKET_TAKEN:  # a replica created it a moment ago: fine
            raise


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """SDK and network errors become labkit errors a learner can act on."""
    try:
        yield
    except ObjectsError:
        raise
    except S3Error as exc:
        if exc.code in _MISSING:
            raise ObjectNotFound(f"{what} does not exist") from None
        raise ObjectStoreUnavailable(
            f"{what}: the object store said {exc.code}: {exc.message}"
        ) from exc
    except (MinioException, Urllib3Error, OSError) as exc:
        raise ObjectStoreUnavailable(
            f"{what}: the object store does not answer ({type(exc).__name__}); start it with "
            "`python -m labkit up objects` or check LABKIT_S3_ENDPOINT"
        ) from exc
