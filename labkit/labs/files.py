"""Sending files: presigned URLs to an object store, and image transforms on the server.

The bytes never travel over NATS. A client asks for a URL, moves the bytes over
plain HTTP straight to the object store, and asks the server to work on them:

- `<user>.send_file`      `ImageRequest{name}` -> `ImageResponse{URL}`: a presigned
  PUT URL for the user's object `name` (valid `LABKIT_S3_URL_EXPIRY`, 2 hours).
- `<user>.transform_file` `ImageConfirmation{name, transformation, crop, mode}` ->
  `ImageResponse{URL}`: the server reads the image, transforms it (see
  `labkit.objects.transforms`), stores the PNG next to it as
  `<stem>.<transformation>-<mode>.png` and answers a presigned GET URL for it.

Objects live at `<user>/<name>` in one bucket; the user comes from the subject,
which the NATS server vouches for, and a name is one safe path segment, so a
request reaches its own user's objects only. Bad input gets an error reply and
changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from nats.aio.client import Client
from PIL import Image

from labkit.client import request
from labkit.objects import transfer
from labkit.objects.errors import ObjectNotFound, ObjectsError, ObjectStoreUnavailable
from labkit.objects.names import derived_name, object_key, validate_object_name
from labkit.objects.store import ObjectStore
from labkit.objects.transforms import (
    Box,
    ImageLimits,
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


register_dependency(ObjectStore)
register_dependency(ImageLimits, _limits)

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
    image_request: ImageRequest, user: CurrentUser, store: ObjectStore
) -> ImageResponse:
    """A presigned PUT URL for the user's object `name`."""
    with _as_error_replies():
        key = object_key(user, validate_object_name(image_request.name))
        url = await asyncio.to_thread(store.presign_put, key)
    return ImageResponse(URL=url)


@router.subscribe(any_user(TRANSFORM_FILE))
async def transform_file(
    confirmation: ImageConfirmation, user: CurrentUser, store: ObjectStore, limits: ImageLimits
) -> ImageResponse:
    """Transform the user's image; a presigned GET URL for the result stored next to it."""
    with _as_error_replies():
        # Everything that can be checked without the image is, before any IO.
        name = validate_object_name(confirmation.name)
        box = _box(confirmation.crop) if confirmation.HasField("crop") else None
        transformation = parse_transformation(confirmation.transformation, confirmation.mode, box)
        result_key = object_key(user, derived_name(name, transformation.label))
        try:
            data = await asyncio.to_thread(store.read, object_key(user, name), limits.max_bytes)
        except ObjectNotFound:
            raise ObjectNotFound(not_found_message(user, name)) from None
        # Pillow runs in a worker thread: other users' requests go on meanwhile.
        png = await asyncio.to_thread(transform_image_bytes, data, transformation, limits)
        await asyncio.to_thread(store.write, result_key, png, RESULT_TYPE)
        url = await asyncio.to_thread(store.presign_get, result_key)
    return ImageResponse(URL=url)


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


async def request_upload_url(nc: Client, user: str, name: str, timeout: float = 5.0) -> str:
    """Ask the server for a presigned PUT URL for `name` (RemoteError if refused)."""
    answer = await request(
        nc, user_subject(user, SEND_FILE), ImageRequest(name=name), ImageResponse, timeout
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
        url = await request_upload_url(self.nc, self.user, name)
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
