"""The object store as the application server sees it: one bucket, presigned URLs, bytes.

`ObjectStore` wraps a `minio.Minio` client, the S3 SDK used everywhere in labkit,
whatever serves the endpoint (the embedded server, MinIO, any S3). Its methods
are blocking (the SDK is): async code calls them through `asyncio.to_thread`.

The file lab's hot path, `read` and `write`, skips the SDK: it signs a URL itself
(as it signs upload URLs for learners) and sends one plain HTTP request on the
client's own connection pool, as a learner's download and upload do. The SDK
costs about a millisecond of CPU more per request, and `read` no longer needs a
HEAD first: the size limit is checked on the GET's Content-Length, before the body
is read (`bench/bench_file_cpu.py` measures what a round trip costs the server).

The endpoint is looked up on each use, so a server that started before the object
store, or outlived a restart of it on another port, signs URLs for the address
clients can reach now; the look-up re-reads the state file only when it changed
(`labkit.objects.endpoint.EndpointCache`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError as Urllib3Error

from labkit.objects.endpoint import EndpointCache, S3Endpoint
from labkit.objects.errors import (
    ObjectNotFound,
    ObjectsError,
    ObjectStoreUnavailable,
    ObjectTooLarge,
)
from labkit.objects.plain_http import Answer, AnswerTooLarge, ConnectionPool
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
# The URLs the store signs for its own reads and writes are used at once.
_OWN_URL_EXPIRY = timedelta(minutes=5)
_ERROR_FIELD = re.compile(rb"<(Code|Message)>([^<]*)</\1>")


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
        plain_http: bool = True,
    ) -> None:
        self._locate = locate
        self.bucket = bucket
        self.url_expiry = url_expiry
        # False: reads and writes go through urllib3 as on a TLS endpoint (tests use it
        # to hold that path to the same behaviour on the embedded store).
        self.plain_http = plain_http
        self._lock = threading.Lock()
        self._endpoint: S3Endpoint | None = None
        self._client: Minio | None = None
        self._http: urllib3.PoolManager | None = None
        self._plain: ConnectionPool | None = None  # plain HTTP endpoints: the hot path

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ObjectStore:
        """The store the settings name: `LABKIT_S3_ENDPOINT`, else the stack's embedded one."""
        settings = settings or Settings()
        return cls(EndpointCache(settings).current, settings.s3.bucket, settings.s3.url_expiry)

    @classmethod
    def at(
        cls,
        endpoint: S3Endpoint,
        bucket: str,
        url_expiry: timedelta = timedelta(hours=2),
        plain_http: bool = True,
    ) -> ObjectStore:
        """A store at a fixed endpoint (tests, scripts)."""
        return cls(lambda: endpoint, bucket, url_expiry, plain_http)

    @property
    def endpoint(self) -> S3Endpoint:
        return self._locate()

    @property
    def client(self) -> Minio:
        """The SDK client for the current endpoint (the bucket is created on first use)."""
        return self._connection()[1]

    def _connection(self) -> tuple[S3Endpoint, Minio, urllib3.PoolManager]:
        """The current endpoint, its SDK client and their connection pool (made on first
        use and again when the endpoint moves; the bucket is created then)."""
        endpoint = self._locate()
        with self._lock:
            if self._client is None or self._http is None or endpoint != self._endpoint:
                http = _make_pool()
                client = _make_client(endpoint, http)
                with _translated(f"the object store at {endpoint.url}"):
                    _create_bucket(client, self.bucket)
                if self._plain is not None:
                    self._plain.close()
                plain = self.plain_http and not endpoint.secure
                self._plain = _plain_pool(endpoint) if plain else None
                self._client, self._http, self._endpoint = client, http, endpoint
            return endpoint, self._client, self._http

    @property
    def ready(self) -> bool:
        """True when the endpoint is known and its bucket checked: presigning needs no IO
        but a look at the state file (the file lab then presigns without a thread)."""
        try:
            endpoint = self._locate()
        except ObjectsError:
            return False
        return self._client is not None and endpoint == self._endpoint

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
        endpoint = self._connection()[0]  # the bucket exists before anyone uploads to it
        return presign_sized_put(endpoint, self.bucket, key, size, expires, signed_at)

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
        """The bytes of `key`; ObjectTooLarge (before downloading) when over `max_bytes`.

        One GET on a URL signed here: its Content-Length is checked against the limit
        before the body is read, and no more than the limit is ever read.
        """
        what = f"object {key!r}"
        with _translated(what):
            _endpoint, client, _http = self._connection()
            url = client.get_presigned_url("GET", self.bucket, key, expires=_OWN_URL_EXPIRY)
            try:
                answer = self._send("GET", url, max_body=max_bytes)
            except AnswerTooLarge as exc:
                raise ObjectTooLarge(
                    f"{key!r} has {exc.length:,} bytes; the limit is {max_bytes:,} "
                    "(LABKIT_S3_MAX_IMAGE_BYTES)"
                ) from None
            _check_status(answer, what)
        if max_bytes is not None and len(answer.body) > max_bytes:  # no Content-Length
            raise ObjectTooLarge(f"{key!r} has more than {max_bytes:,} bytes")
        return answer.body

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store `data` under `key` (replacing what was there): one PUT on a URL signed here
        for exactly `len(data)` bytes, as a learner's upload."""
        what = f"object {key!r}"
        with _translated(what):
            endpoint, _client, _http = self._connection()
            url = presign_sized_put(endpoint, self.bucket, key, len(data), _OWN_URL_EXPIRY)
            answer = self._send("PUT", url, body=data, headers={"Content-Type": content_type})
            _check_status(answer, what)

    def _send(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        max_body: int | None = None,
    ) -> Answer:
        """One request on a signed URL: plain `http.client` for an http:// endpoint,
        urllib3 for TLS (AnswerTooLarge when the body's announced length is over
        `max_body`; no more than `max_body + 1` bytes are read)."""
        plain, http = self._plain, self._http
        if plain is not None:
            target = "/" + url.split("/", 3)[3]  # http://host:port/bucket/key?query
            return plain.request(method, target, body, headers, max_body)
        assert http is not None  # _connection made it
        response = http.request(method, url, body=body, headers=headers, preload_content=False)
        whole = False
        try:
            length = response.headers.get("Content-Length")
            if (
                max_body is not None
                and 200 <= response.status < 300
                and length is not None
                and int(length) > max_body
            ):
                raise AnswerTooLarge(int(length))
            data = response.read(None if max_body is None else max_body + 1)
            whole = max_body is None or len(data) <= max_body
        finally:
            if not whole:
                response.close()  # a body left unread: the connection is not reused
            response.release_conn()
        return Answer(response.status, response.reason or "", bytes(data), whole)

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


def _make_pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=_CONNECT_TIMEOUT, read=_READ_TIMEOUT),
        maxsize=_POOL_SIZE,
        retries=urllib3.Retry(
            total=2, connect=1, backoff_factor=0.1, status_forcelist=[500, 502, 503, 504]
        ),
    )


def _make_client(endpoint: S3Endpoint, http: urllib3.PoolManager) -> Minio:
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


def _check_status(answer: Answer, what: str) -> None:
    """An S3 error answer becomes the labkit error the SDK's would (see `_translated`)."""
    if 200 <= answer.status < 300:
        return
    fields = {
        name.decode(): value.decode(errors="replace")
        for name, value in _ERROR_FIELD.findall(answer.body)
    }
    code = fields.get("Code") or f"HTTP {answer.status}"
    if code in _MISSING or (answer.status == 404 and "Code" not in fields):
        raise ObjectNotFound(f"{what} does not exist")
    raise ObjectStoreUnavailable(
        f"{what}: the object store said {code}: {fields.get('Message', answer.reason)}"
    )


def _plain_pool(endpoint: S3Endpoint) -> ConnectionPool:
    host, _, port = endpoint.endpoint.rpartition(":")
    if not port.isdecimal():  # no port given: the scheme's
        host, port = endpoint.endpoint, "80"
    host = host.removeprefix("[").removesuffix("]")  # an IPv6 address: [::1]:9000
    return ConnectionPool(host, int(port), _CONNECT_TIMEOUT, _READ_TIMEOUT, _POOL_SIZE)


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
