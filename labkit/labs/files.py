"""Sending files: presigned URLs to an object store, and image transforms on the server.

The bytes never travel over NATS. A client asks for a URL, moves the bytes over
plain HTTP straight to the object store, and asks the server to work on them:

- `<user>.send_file`      `ImageRequest{name, size}` -> `ImageResponse{URL}`: a presigned
  PUT URL for the user's object `name` that takes exactly `size` bytes (at most
  `LABKIT_S3_MAX_IMAGE_BYTES`: the store itself refuses any other size) and works
  for `LABKIT_S3_UPLOAD_URL_EXPIRY` (5 minutes): ask for it right before uploading.
- `<user>.transform_file` `ImageConfirmation{name, transformation, crop, mode}` ->
  `ImageResponse{URL}`: the server reads the image, transforms it (see
  `labkit.objects.transforms`), stores the PNG next to it as
  `<stem>.<transformation>-<mode>.png` and answers a presigned GET URL for it
  (valid `LABKIT_S3_URL_EXPIRY`, 2 hours).

Transforms run on the lab's own bounded pool, at most a few per user (one more
gets a `busy` error reply) and within a budget of decoded pixels across all
users; presigning runs on the event loop once the store's endpoint is known (no IO),
else on a small pool of its own (`labkit.labs.image_work`).

Objects live at `<user>/<name>` in one bucket; the user comes from the subject,
which the NATS server vouches for, and a name is one safe path segment, so a
request reaches its own user's objects only. Bad input gets an error reply and
changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from nats.aio.client import Client
from PIL import Image

from labkit.client import request
from labkit.labs.image_work import ImageWork
from labkit.objects import transfer
from labkit.objects.errors import (
    InvalidUploadSize,
    ObjectNotFound,
    ObjectsError,
    ObjectStoreUnavailable,
    ObjectTooLarge,
)
from labkit.objects.names import derived_name, object_key, validate_object_name
from labkit.objects.store import ObjectStore
from labkit.objects.transforms import (
    Box,
    ImageLimits,
    Transformation,
    header_pixels,
    open_image,
    parse_transformation,
    transform_image_bytes,
)
from labkit.protocol import Crop, ImageConfirmation, ImageRequest, ImageResponse
from labkit.server.errors import HandlerError
from labkit.server.injection import CurrentUser, Delivery, register_dependency
from labkit.server.router import Router
from labkit.server.runner import Resource
from labkit.settings import S3Settings, Settings
from labkit.subjects import SEND_FILE, TRANSFORM_FILE, any_user, user_subject

RESULT_TYPE = "image/png"
log = logging.getLogger("labkit.labs.files")


def image_limits(s3: S3Settings) -> ImageLimits:
    """The limits the settings give (LABKIT_S3_MAX_IMAGE_PIXELS, LABKIT_S3_MAX_IMAGE_BYTES)."""
    return ImageLimits(max_pixels=s3.max_image_pixels, max_bytes=s3.max_image_bytes)


def _limits(delivery: Delivery) -> ImageLimits:
    # A server built without explicit limits uses the defaults rather than failing.
    limits = delivery.resources.get(ImageLimits)
    return limits if isinstance(limits, ImageLimits) else ImageLimits()


_DEFAULT_WORK: list[ImageWork] = []


def _work(delivery: Delivery) -> ImageWork:
    # A server built without one (tests of other labs) shares one default, so the
    # per-user limits still hold across its requests.
    work = delivery.resources.get(ImageWork)
    if isinstance(work, ImageWork):
        return work
    if not _DEFAULT_WORK:
        _DEFAULT_WORK.append(ImageWork())
    return _DEFAULT_WORK[0]


def _upload_expiry(delivery: Delivery) -> UploadExpiry:
    expiry = delivery.resources.get(UploadExpiry)
    return expiry if isinstance(expiry, UploadExpiry) else UploadExpiry()


@dataclass(frozen=True)
class UploadExpiry:
    """How long an upload URL works (LABKIT_S3_UPLOAD_URL_EXPIRY)."""

    lifetime: timedelta = timedelta(minutes=5)


register_dependency(ObjectStore)
register_dependency(ImageLimits, _limits)
register_dependency(ImageWork, _work)
register_dependency(UploadExpiry, _upload_expiry)

router = Router("files")


@contextmanager
def _as_error_replies() -> Iterator[None]:
    """Object and image errors become error replies with their code and a clear message."""
    try:
        yield
    except ObjectsError as exc:
        raise HandlerError(str(exc), code=exc.code, status=exc.status) from None


@router.subscribe(any_user(SEND_FILE))
async def send_file(
    image_request: ImageRequest,
    user: CurrentUser,
    store: ObjectStore,
    limits: ImageLimits,
    work: ImageWork,
    expiry: UploadExpiry,
) -> ImageResponse:
    """A presigned PUT URL for exactly `size` bytes of the user's object `name`."""
    with _as_error_replies():
        key = object_key(user, validate_object_name(image_request.name))
        size = check_upload_size(image_request.size, limits)
        url = await _presigned(work, store, store.presign_sized_put, key, size, expiry.lifetime)
    return ImageResponse(URL=url)


async def _presigned(
    work: ImageWork, store: ObjectStore, sign: Callable[..., str], *args: object
) -> str:
    """A presigned URL: on the event loop when the store is ready (a tenth of a millisecond
    of HMAC, cheaper than a thread's round trip), else on the presign pool (the first
    use checks the bucket over the network)."""
    if store.ready:
        return sign(*args)
    return await work.on_presign_pool(sign, *args)


def check_upload_size(size: int, limits: ImageLimits) -> int:
    """The size an upload URL is signed for; InvalidUploadSize/ObjectTooLarge if it cannot be."""
    if size <= 0:
        raise InvalidUploadSize(
            "say how many bytes you will upload (ImageRequest.size, more than 0): "
            "the upload URL accepts exactly that many"
        )
    if size > limits.max_bytes:
        raise ObjectTooLarge(
            f"the file has {size:,} bytes; the limit is {limits.max_bytes:,} "
            "(LABKIT_S3_MAX_IMAGE_BYTES): send a smaller image"
        )
    return size


@router.subscribe(any_user(TRANSFORM_FILE))
async def transform_file(
    confirmation: ImageConfirmation,
    user: CurrentUser,
    store: ObjectStore,
    limits: ImageLimits,
    work: ImageWork,
) -> ImageResponse:
    """Transform the user's image; a presigned GET URL for the result stored next to it."""
    with _as_error_replies():
        # Everything that can be checked without the image is, before any IO.
        name = validate_object_name(confirmation.name)
        box = _box(confirmation.crop) if confirmation.HasField("crop") else None
        transformation = parse_transformation(confirmation.transformation, confirmation.mode, box)
        result_key = object_key(user, derived_name(name, transformation.label))
        async with work.transform_slot(user):  # TransformsBusy: a `busy` reply, at once
            try:
                data = await work.on_image_pool(
                    store.read, object_key(user, name), limits.max_bytes
                )
            except ObjectNotFound:
                raise ObjectNotFound(not_found_message(user, name)) from None
            # The header says how many pixels decoding will hold: wait until they fit.
            async with work.pixels(header_pixels(data)):
                await work.on_image_pool(
                    _transform_and_store, store, result_key, data, transformation, limits
                )
            url = await _presigned(work, store, store.presign_get, result_key)
    return ImageResponse(URL=url)


def _transform_and_store(
    store: ObjectStore, key: str, data: bytes, transformation: Transformation, limits: ImageLimits
) -> int:
    # One job on the image pool: Pillow, then the write, so the PNG is freed with it.
    png = transform_image_bytes(data, transformation, limits)
    store.write(key, png, RESULT_TYPE)
    return len(png)


def not_found_message(user: str, name: str) -> str:
    """The error a transform of an object never uploaded gets: what to do, on which subject."""
    return (
        f"no object {name!r} for you yet: upload it first "
        f"(request a URL on {user_subject(user, SEND_FILE)})"
    )


def _box(crop: Crop) -> Box:
    return Box(crop.left, crop.top, crop.right, crop.bottom)


def object_store_resource(settings: Settings) -> Resource:
    """The lab server's ObjectStore, its bucket created at start when the store runs.

    A store that is not running yet is not fatal: the other labs serve, and file
    requests get an `objects_unavailable` error reply until it does.
    """

    async def create(_nc: Client) -> tuple[type, Any]:
        store = ObjectStore.from_settings(settings)
        try:
            await asyncio.to_thread(store.ensure_bucket)
        except ObjectStoreUnavailable as exc:
            log.warning("file lab: %s; file requests fail until the object store runs", exc)
        return ObjectStore, store

    return create


# --- the client side ----------------------------------------------------------


async def request_upload_url(
    nc: Client, user: str, name: str, size: int, timeout: float = 5.0
) -> str:
    """A presigned PUT URL for exactly `size` bytes of `name` (RemoteError if refused)."""
    answer = await request(
        nc,
        user_subject(user, SEND_FILE),
        ImageRequest(name=name, size=size),
        ImageResponse,
        timeout,
    )
    return answer.URL


async def request_transform(
    nc: Client,
    user: str,
    name: str,
    transformation: str,
    mode: str = "",
    crop: tuple[int, int, int, int] | None = None,
    timeout: float = 30.0,
) -> str:
    """Ask the server to transform `name`; the presigned GET URL of the result.

    `crop` is (left, top, right, bottom) in pixels, for `transformation="crop"`.
    """
    confirmation = ImageConfirmation(name=name, transformation=transformation, mode=mode)
    if crop is not None:
        left, top, right, bottom = crop
        confirmation.crop.CopyFrom(Crop(left=left, top=top, right=right, bottom=bottom))
    answer = await request(
        nc, user_subject(user, TRANSFORM_FILE), confirmation, ImageResponse, timeout
    )
    return answer.URL


@dataclass
class FileClient:
    """One user's side of the file lab: upload, transform, download.

    HTTP transfers run in a thread, so a notebook's event loop (and the NATS
    connection on it) keeps running while bytes move.
    """

    nc: Client
    user: str
    limits: ImageLimits = field(default_factory=ImageLimits)
    session: requests.Session = field(default_factory=requests.Session)

    async def upload(
        self,
        source: bytes | Path | str,
        name: str | None = None,
        *,
        progress: bool | None = None,
        content_type: str | None = None,
    ) -> str:
        """Upload a file path or bytes as `name` (default: the file's name); returns the name.

        Large files show a progress bar (`progress=True/False` forces it on or off).
        """
        if isinstance(source, str):
            source = Path(source)
        if name is None:
            if not isinstance(source, Path):
                raise ValueError("give a name when uploading bytes, e.g. name='cat.png'")
            name = source.name
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        size = source.stat().st_size if isinstance(source, Path) else len(source)
        url = await request_upload_url(self.nc, self.user, name, size)
        await asyncio.to_thread(
            transfer.put_to_url,
            url,
            source,
            content_type=content_type,
            progress=progress,
            session=self.session,
        )
        return name

    async def transform(
        self,
        name: str,
        transformation: str,
        mode: str = "",
        crop: tuple[int, int, int, int] | None = None,
    ) -> str:
        """Ask for a transformation of `name`; the presigned GET URL of the result."""
        return await request_transform(self.nc, self.user, name, transformation, mode, crop)

    async def download_bytes(self, url: str) -> bytes:
        return await asyncio.to_thread(
            transfer.get_from_url, url, max_bytes=self.limits.max_bytes, session=self.session
        )

    async def download(self, url: str) -> Image.Image:
        """The image a presigned GET URL serves, as a PIL image (within the limits)."""
        data = await self.download_bytes(url)
        return await asyncio.to_thread(open_image, data, self.limits)

    async def transformed(
        self,
        name: str,
        transformation: str,
        mode: str = "",
        crop: tuple[int, int, int, int] | None = None,
    ) -> Image.Image:
        """Transform `name` and download the result: the whole round trip."""
        return await self.download(await self.transform(name, transformation, mode, crop))

    def close(self) -> None:
        self.session.close()
