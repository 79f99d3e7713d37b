"""Where the object store is and how to sign for it: settings first, then the stack.

`LABKIT_S3_ENDPOINT` (with `LABKIT_S3_ACCESS_KEY` / `LABKIT_S3_SECRET_KEY`) names
any S3 endpoint, MinIO first among them. Without it, clients use the stack's
embedded server: its address from the state file, its keys from
`<home>/secrets/s3-keys.json`, generated on its first start and readable by the
owner only.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path

from labkit.discovery import OBJECT_STORE, object_store_address
from labkit.errors import LabkitError
from labkit.files import write_private
from labkit.objects.errors import ObjectStoreUnavailable
from labkit.settings import Settings

COMPONENT = OBJECT_STORE
_ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class S3Keys:
    """An access key and its secret (the secret never shows in a repr)."""

    access_key: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class S3Endpoint:
    """An S3 endpoint as the minio SDK wants it: `host:port`, keys, region, TLS or not."""

    endpoint: str
    keys: S3Keys
    region: str = "us-east-1"
    secure: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"


def generate_keys() -> S3Keys:
    """Fresh keys in the usual S3 shapes: a 20-character access key, a 40-character secret."""
    access = "LK" + "".join(secrets.choice(_ACCESS_KEY_ALPHABET) for _ in range(18))
    return S3Keys(access, secrets.token_urlsafe(30))


def read_or_create_keys(path: Path) -> S3Keys:
    """The keys kept in `path` (JSON, mode 0600), generated on first use."""
    try:
        return _read_keys(path)
    except FileNotFoundError:
        pass
    keys = generate_keys()
    text = json.dumps({"access_key": keys.access_key, "secret_key": keys.secret_key})
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    write_private(tmp, text)
    try:
        os.link(tmp, path)  # atomic and exclusive: readers never see half a file
    except FileExistsError:  # another process won the race: use its keys
        return _read_keys(path)
    finally:
        tmp.unlink()
    return keys


def embedded_keys(settings: Settings, *, create: bool = False) -> S3Keys:
    """The embedded server's keys: both from settings when given, else the generated ones.

    Only the component that starts the server creates them (`create=True`); a client
    that found none would otherwise sign with keys the running server does not know.
    """
    s3 = settings.s3
    if s3.access_key and s3.secret_key:
        return S3Keys(s3.access_key, s3.secret_key)
    path = settings.paths.s3_keys_file
    if create:
        return read_or_create_keys(path)
    try:
        return _read_keys(path)
    except FileNotFoundError:
        raise ObjectStoreUnavailable(
            f"the object store's keys are missing ({path}); restart it with "
            "`python -m labkit down objects && python -m labkit up objects`"
        ) from None


def embedded_endpoint(settings: Settings) -> S3Endpoint:
    """The stack's own object store, as recorded in the state file."""
    try:
        address = object_store_address(settings)
    except LabkitError as exc:
        raise ObjectStoreUnavailable(str(exc)) from None
    return S3Endpoint(
        endpoint=address,
        keys=embedded_keys(settings),
        region=settings.s3.region,
        secure=False,
    )


def s3_endpoint(settings: Settings | None = None) -> S3Endpoint:
    """The object store clients should use: `LABKIT_S3_ENDPOINT` if set, else the stack's."""
    settings = settings or Settings()
    s3 = settings.s3
    if not s3.endpoint:
        return embedded_endpoint(settings)
    if not (s3.access_key and s3.secret_key):
        raise ObjectStoreUnavailable(
            f"LABKIT_S3_ENDPOINT is {s3.endpoint!r} but its keys are missing: set "
            "LABKIT_S3_ACCESS_KEY and LABKIT_S3_SECRET_KEY"
        )
    endpoint = s3.endpoint.removeprefix("http://").removeprefix("https://").rstrip("/")
    secure = s3.secure or s3.endpoint.startswith("https://")
    return S3Endpoint(endpoint, S3Keys(s3.access_key, s3.secret_key), s3.region, secure)


class EndpointCache:
    """`s3_endpoint(settings)`, read again only when the files it comes from changed.

    A server presigns and reads objects many times a second: a look at the state
    file's and the keys file's identity (`os.stat`: inode, size, change time) costs
    a few microseconds where parsing them costs tens. Every write of either file
    replaces it (a rename: a new inode), so a store restarted on another port is
    followed at its first use after the restart, as without the cache. An endpoint
    from the settings (`LABKIT_S3_ENDPOINT`) never changes while the process runs.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._seen: tuple[tuple[int, ...], ...] | None = None
        self._endpoint: S3Endpoint | None = None

    def current(self) -> S3Endpoint:
        """The endpoint clients should use now (ObjectStoreUnavailable, as `s3_endpoint`)."""
        if self.settings.s3.endpoint:
            seen: tuple[tuple[int, ...], ...] = ()
        else:
            paths = self.settings.paths
            seen = (_identity(paths.state_file), _identity(paths.s3_keys_file))
        with self._lock:
            if self._endpoint is not None and seen == self._seen:
                return self._endpoint
        endpoint = s3_endpoint(self.settings)  # raises when there is none: nothing cached
        with self._lock:
            self._seen, self._endpoint = seen, endpoint
        return endpoint


def _identity(path: Path) -> tuple[int, ...]:
    """What changes whenever `path` is written or replaced (() when there is none)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return ()
    return (found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def _read_keys(path: Path) -> S3Keys:
    data = json.loads(path.read_text(encoding="utf-8"))
    return S3Keys(str(data["access_key"]), str(data["secret_key"]))
