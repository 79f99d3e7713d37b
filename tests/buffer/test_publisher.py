"""BufferedPublisher without a server: what it does while offline or when the file fails.

The connected path runs against the real server in test_flush.py and test_offline.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import nats.errors
import pytest
from nats.aio.client import Client

from labkit.buffer import Buffer, BufferedPublisher, BufferLocked

SUBJECT = "buffer-test.publisher"


class OfflineClient:
    """The little of nats-py's Client a BufferedPublisher looks at, never connected."""

    def __init__(self, *, closed: bool = False) -> None:
        self.is_connected = False
        self.is_closed = closed

    def jetstream(self) -> Any:
        return object()  # never used while offline


class LockedWhenFlushing(Buffer):
    """Saves fine, then finds the file locked when the flush reads it."""

    def _oldest(self, limit: int, after: int = 0) -> Any:
        raise BufferLocked("locked for the test")


def publisher_for(buffer: Buffer, *, closed: bool = False) -> BufferedPublisher:
    return BufferedPublisher(cast(Client, OfflineClient(closed=closed)), buffer)


def test_offline_sends_are_saved_in_order_and_raise_nothing(tmp_path: Path) -> None:
    publisher = publisher_for(Buffer(tmp_path / "o.db", SUBJECT))

    async def scenario() -> list[int]:
        return [await publisher.send(f"m{n}") for n in range(3)]

    ids = asyncio.run(scenario())
    assert publisher.pending == 3
    assert [m.id for m in publisher.buffer.get_all()] == ids
    assert publisher.last_flush is not None
    assert isinstance(publisher.last_flush.error, nats.errors.ConnectionReconnectingError)
    assert (publisher.last_flush.sent, publisher.last_flush.remaining) == (0, 3)


def test_a_closed_connection_is_reported_as_closed(tmp_path: Path) -> None:
    publisher = publisher_for(Buffer(tmp_path / "o.db", SUBJECT), closed=True)
    result = asyncio.run(publisher.flush())
    assert isinstance(result.error, nats.errors.ConnectionClosedError)


def test_send_does_not_raise_once_the_message_is_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = publisher_for(LockedWhenFlushing(tmp_path / "o.db", SUBJECT))
    publisher.nc.is_connected = True  # type: ignore[misc]

    message_id = asyncio.run(publisher.send(b"kept"))
    assert [m.id for m in publisher.buffer.get_all()] == [message_id]
    assert "could not flush" in caplog.text
    with pytest.raises(BufferLocked):  # an explicit flush does say so
        asyncio.run(publisher.flush())


def test_on_reconnect_never_raises_into_nats_py(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = publisher_for(LockedWhenFlushing(tmp_path / "o.db", SUBJECT))
    publisher.nc.is_connected = True  # type: ignore[misc]
    asyncio.run(publisher.on_reconnect())
    assert "flush after reconnect failed" in caplog.text


def test_a_failed_save_does_raise(tmp_path: Path) -> None:
    publisher = publisher_for(Buffer(tmp_path / "o.db", SUBJECT))
    with pytest.raises(TypeError):
        asyncio.run(publisher.send(42))  # type: ignore[arg-type]
    assert publisher.pending == 0
