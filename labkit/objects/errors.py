"""What can go wrong with objects and images, each with a code the file lab replies with."""

from __future__ import annotations

from typing import ClassVar

from labkit.errors import LabkitError


class ObjectsError(LabkitError):
    """Base of the object-store and image errors; `code` and `status` go in error replies."""

    code: ClassVar[str] = "objects_error"
    status: ClassVar[int] = 400


class InvalidObjectName(ObjectsError, ValueError):
    """A name that is not one safe path segment (a slash, `..`, control characters...)."""

    code = "invalid_name"


class ObjectNotFound(ObjectsError, LookupError):
    """No object under that name (upload it first through the presigned PUT URL)."""

    code = "not_found"
    status = 404


class ObjectTooLarge(ObjectsError):
    """An object over the byte limit, or an image over the pixel limit."""

    code = "too_large"
    status = 413


class NotAnImage(ObjectsError):
    """Bytes Pillow cannot read as an image (or a damaged one)."""

    code = "not_an_image"
    status = 415


class InvalidTransformation(ObjectsError, ValueError):
    """An unknown transformation or mode, or a crop box that does not fit the image."""

    code = "invalid_transformation"


class ObjectStoreUnavailable(ObjectsError):
    """The S3 endpoint is not running or does not answer."""

    code = "objects_unavailable"
    status = 503


class TransferRefused(ObjectsError):
    """The object store refused an HTTP transfer (an expired or tampered URL...)."""

    code = "transfer_refused"
    status = 403


class InvalidUploadSize(ObjectsError, ValueError):
    """An upload URL asked for without the file's size (the URL is signed for it)."""

    code = "invalid_size"


class TransformsBusy(ObjectsError):
    """A user already has as many transforms running as one user may."""

    code = "busy"
    status = 429
