"""Send through an outbox: save first (durable), then publish while NATS is reachable."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import nats.errors

from labkit.buffer.outbox import (  # BufferError: ours, not the builtin
    DEFAULT_PUBLISH_TIMEOUT,
    Buffer,
    BufferError,
    FlushResult,
    Payload,
)

if TYPE_CHECKING:
    from nats.aio.client import Client

log = logging.getLogger("labkit.buffer")


class BufferedPublisher:
    """Send through a Buffer: save first (durable), then publish while NATS is reachable.

    Offline, `send()` only saves; `on_reconnect()` publishes the backlog. Give it to
    nats-py as the reconnect callback (the closure finds `publisher` when called)::

        async def flush_on_reconnect() -> None:
            await publisher.on_reconnect()

        nc = await connect_as(creds, reconnected_cb=flush_on_reconnect,
                              max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        publisher = BufferedPublisher(nc, Buffer.from_settings(settings, "alice.readings"))
        await publisher.send(b"21.5")

    nats-py awaits the callback before it finishes reconnecting, so a large backlog
    delays that step by its flush time (about 3,000 messages a second on loopback).
    """

    def __init__(
        self, nc: Client, buffer: Buffer, *, timeout: float = DEFAULT_PUBLISH_TIMEOUT
    ) -> None:
        self.nc = nc
        self.buffer = buffer
        self.timeout = timeout
        self.last_flush: FlushResult | None = None
        self._js = nc.jetstream()
        # One flush at a time, so messages leave in the order they were saved.
        self._flushing = asyncio.Lock()

    @property
    def pending(self) -> int:
        """How many messages wait in the buffer."""
        return self.buffer.pending()

    async def send(self, payload: Payload, subject: str | None = None) -> int:
        """Save `payload` (durable when this returns), then try to publish the backlog.

        Raises `BufferError` only when the save fails. After it, a failed or skipped
        publish is no error: the message stays buffered, `last_flush` says what
        happened, and the next send or reconnect tries again.
        """
        message_id = self.buffer.save(payload, subject)
        try:
            await self.flush()
        except BufferError as exc:
            # Raising now would invite the caller to send a second copy.
            log.warning("outbox saved message %d but could not flush: %s", message_id, exc)
        return message_id

    async def flush(self) -> FlushResult:
        """Publish the backlog now; with the connection down, only count it."""
        async with self._flushing:
            if self.nc.is_connected:
                result = await self.buffer.flush(self._js, timeout=self.timeout)
            else:
                offline = (
                    nats.errors.ConnectionClosedError()
                    if self.nc.is_closed
                    else nats.errors.ConnectionReconnectingError()
                )
                result = FlushResult(0, 0, self.buffer.pending(), offline)
            self.last_flush = result
            return result

    async def on_reconnect(self) -> None:
        """Flush after nats-py reconnected; never raises into nats-py's reconnect loop."""
        try:
            result = await self.flush()
        except BufferError as exc:
            log.error("outbox flush after reconnect failed: %s", exc)
            return
        if result.error is not None:
            log.warning(
                "outbox flush after reconnect stopped, %d messages wait: %r",
                result.remaining,
                result.error,
            )
