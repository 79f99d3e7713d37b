"""Where the file lab's work runs, so one heavy user never slows or starves the others.

- Pillow (and the object reads and writes around it) runs on a bounded pool of its
  own (`LABKIT_S3_IMAGE_WORKERS`), never on the default executor other code shares.
- A user may have `LABKIT_S3_TRANSFORMS_PER_USER` transforms running; one more is
  refused at once with a `busy` error reply saying when to retry (no queue: a burst
  costs nothing while it waits). The limit is below the worker count, so one user
  never holds every worker.
- At most `LABKIT_S3_MAX_PIXELS_IN_FLIGHT` decoded pixels are in memory at once,
  across all users (an image over it alone still runs, by itself): the pixel count
  comes from the image's header, before it is decoded.
- Presigning (a tenth of a millisecond of HMAC) runs on the event loop once the
  store is ready; until then (its first use checks the bucket over the network) on
  a small pool of its own, so an upload URL is never waiting behind Pillow.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from labkit.objects.errors import TransformsBusy
from labkit.settings import S3Settings

Result = TypeVar("Result")
PRESIGN_WORKERS = 2


@dataclass
class ImageWork:
    """The file lab's executors and limits, shared by every request of one server."""

    image_workers: int = 3
    transforms_per_user: int = 2
    max_pixels_in_flight: int = 25_000_000
    _image_pool: ThreadPoolExecutor = field(init=False)
    _presign_pool: ThreadPoolExecutor = field(init=False)
    _running: dict[str, int] = field(default_factory=dict, init=False)
    pixels_in_flight: int = field(default=0, init=False)
    waiting_for_pixels: int = field(default=0, init=False)
    _pixels_freed: asyncio.Condition | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._image_pool = ThreadPoolExecutor(self.image_workers, "labkit-image")
        self._presign_pool = ThreadPoolExecutor(PRESIGN_WORKERS, "labkit-presign")

    @classmethod
    def from_settings(cls, s3: S3Settings) -> ImageWork:
        return cls(s3.image_workers, s3.transforms_per_user, s3.max_pixels_in_flight)

    def running(self, user: str) -> int:
        """How many transforms `user` has running now."""
        return self._running.get(user, 0)

    @asynccontextmanager
    async def transform_slot(self, user: str) -> AsyncIterator[None]:
        """One of `user`'s transform slots for the block; TransformsBusy if none is free."""
        if self.running(user) >= self.transforms_per_user:
            raise TransformsBusy(
                f"you already have {self.transforms_per_user} transforms running, the most "
                "one user may (LABKIT_S3_TRANSFORMS_PER_USER): retry when one has answered"
            )
        self._running[user] = self.running(user) + 1
        try:
            yield
        finally:
            self._running[user] -= 1
            if not self._running[user]:
                del self._running[user]

    @asynccontextmanager
    async def pixels(self, count: int) -> AsyncIterator[None]:
        """Wait until `count` more decoded pixels fit in memory; hold them for the block."""
        if self._pixels_freed is None:
            self._pixels_freed = asyncio.Condition()
        freed = self._pixels_freed
        async with freed:
            self.waiting_for_pixels += 1
            try:
                await freed.wait_for(
                    lambda: (
                        self.pixels_in_flight == 0
                        or self.pixels_in_flight + count <= self.max_pixels_in_flight
                    )
                )
            finally:
                self.waiting_for_pixels -= 1
            self.pixels_in_flight += count
        try:
            yield
        finally:
            async with freed:
                self.pixels_in_flight -= count
                freed.notify_all()

    async def on_image_pool(self, work: Callable[..., Result], *args: object) -> Result:
        """Run blocking image work (Pillow, object reads and writes) on the image pool."""
        return await asyncio.get_running_loop().run_in_executor(self._image_pool, work, *args)

    async def on_presign_pool(self, work: Callable[..., Result], *args: object) -> Result:
        """Run a presign on its own small pool (never behind Pillow)."""
        return await asyncio.get_running_loop().run_in_executor(self._presign_pool, work, *args)

    def close(self) -> None:
        self._image_pool.shutdown(wait=False, cancel_futures=True)
        self._presign_pool.shutdown(wait=False, cancel_futures=True)
