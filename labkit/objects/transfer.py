"""Plain HTTP to presigned URLs: upload with a progress bar, download within a limit.

A presigned URL carries its own signature, so no keys and no S3 SDK are needed
here: any HTTP client may use it, until it expires. These functions block;
async code calls them through `asyncio.to_thread`.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, BinaryIO

import requests

from labkit.objects.errors import ObjectStoreUnavailable, ObjectTooLarge, TransferRefused

# Files from this size on get a progress bar unless told otherwise.
PROGRESS_MIN_BYTES = 4 * 1024**2
CHUNK_BYTES = 256 * 1024
TIMEOUT = (5.0, 60.0)  # connect, read (seconds)
_S3_CODE = re.compile(rb"<Code>([^<]+)</Code>")
_S3_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")


class _ProgressReader:
    """A file-like body that reports each chunk sent; its length makes requests send
    Content-Length, which S3 needs (it refuses chunked uploads)."""

    def __init__(self, source: BinaryIO, size: int, bar: Any) -> None:
        self._source = source
        self._size = size
        self._bar = bar

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int = -1) -> bytes:
        chunk = self._source.read(CHUNK_BYTES if amount is None or amount < 0 else amount)
        if self._bar is not None:
            self._bar.update(len(chunk))
        return chunk


def put_to_url(
    url: str,
    source: bytes | Path,
    *,
    content_type: str = "application/octet-stream",
    progress: bool | None = None,
    session: requests.Session | None = None,
) -> int:
    """Upload `source` with one HTTP PUT to a presigned URL; returns the bytes sent.

    `progress=None` shows a bar for files of PROGRESS_MIN_BYTES or more.
    """
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    show = progress if progress is not None else size >= PROGRESS_MIN_BYTES
    bar = _progress_bar(size, "upload") if show else None
    http = session or requests
    try:
        with open(source, "rb") if isinstance(source, Path) else io.BytesIO(source) as stream:
            body: Any = _ProgressReader(stream, size, bar)
            if bar is None and isinstance(source, bytes):
                body = source  # nothing to report: send the bytes as they are
            try:
                response = http.put(
                    url, data=body, headers={"Content-Type": content_type}, timeout=TIMEOUT
                )
            except requests.RequestException as exc:
                raise _unreachable(url, exc) from exc
    finally:
        if bar is not None:
            bar.close()
    _raise_for_refusal(response, "upload")
    return size


def get_from_url(
    url: str, *, max_bytes: int | None = None, session: requests.Session | None = None
) -> bytes:
    """Download what a presigned GET URL serves; ObjectTooLarge past `max_bytes`."""
    http = session or requests
    try:
        with http.get(url, stream=True, timeout=TIMEOUT) as response:
            _raise_for_refusal(response, "download")
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_content(CHUNK_BYTES):
                received += len(chunk)
                if max_bytes is not None and received > max_bytes:
                    raise ObjectTooLarge(f"the download exceeds {max_bytes:,} bytes")
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise _unreachable(url, exc) from exc
    return b"".join(chunks)


def s3_error(body: bytes) -> tuple[str, str]:
    """The (Code, Message) of an S3 XML error body; ("", "") when it is not one."""
    code = _S3_CODE.search(body)
    message = _S3_MESSAGE.search(body)
    return (
        code.group(1).decode(errors="replace") if code else "",
        message.group(1).decode(errors="replace") if message else "",
    )


def _raise_for_refusal(response: requests.Response, what: str) -> None:
    if response.ok:
        return
    code, message = s3_error(response.content)
    detail = f"{code}: {message}" if code else response.text[:200]
    hint = ""
    if response.status_code == 403:
        hint = "; presigned URLs expire and break if any part of them is changed: ask for a new one"
    raise TransferRefused(
        f"the object store refused the {what} (HTTP {response.status_code} {detail}){hint}"
    )


def _unreachable(url: str, exc: Exception) -> ObjectStoreUnavailable:
    host = url.split("/")[2] if url.count("/") >= 2 else url
    return ObjectStoreUnavailable(
        f"the object store at {host} does not answer ({type(exc).__name__}); is it running?"
    )


def _progress_bar(total: int, label: str) -> Any:
    from tqdm.auto import tqdm  # a widget in notebooks, text in a terminal

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label)
