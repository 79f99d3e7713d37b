"""Flushing to a real JetStream stream: order, Nats-Msg-Id, resends after a crash, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from nats.aio.client import Client
from nats.js.client import JetStreamContext

from labkit.buffer import Buffer, BufferedPublisher, FlushResult
from labkit.client import connect_as
from tests.buffer.streams import STREAM, USER, stored_messages

T = TypeVar("T")


class SimulatedCrash(Exception):
    """Raised where a real client would have died."""


class CrashAfterAck(Buffer):
    """A buffer whose process dies before it deletes any acknowledged message."""

    def _delete_sent(self, message_ids: list[int]) -> None:
        if message_ids:
            raise SimulatedCrash(message_ids)


class DiesAfterPublishes:
    """A JetStream context whose process dies after `count` acknowledged publishes."""

    def __init__(self, js: JetStreamContext, count: int) -> None:
        self._js = js
        self._left = count

    async def publish(self, *args: Any, **kwargs: Any) -> Any:
        if self._left == 0:
            raise SimulatedCrash("died before this publish")
        self._left -= 1
        return await self._js.publish(*args, **kwargs)


def with_jetstream(creds: str, url: str, body: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    async def scenario() -> T:
        nc = await connect_as(creds, servers=url, allow_reconnect=False)
        try:
            return await body(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(scenario())


def payloads_on(js: JetStreamContext, subject: str) -> Awaitable[list[bytes]]:
    async def read() -> list[bytes]:
        return [m.data for m in await stored_messages(js, subject)]

    return read()


def test_flush_of_an_empty_outbox_sends_nothing(
    tmp_path: Path, buffer_creds: str, nats_url: str
) -> None:
    with Buffer(tmp_path / "o.db", f"{USER}.flush.empty") as buffer:
        result = with_jetstream(buffer_creds, nats_url, buffer.flush)
    assert result == FlushResult(sent=0, duplicates=0, remaining=0, error=None)
    assert result.ok


def test_flush_publishes_oldest_first_with_the_buffer_msg_id(
    tmp_path: Path, buffer_creds: str, nats_url: str
) -> None:
    subject = f"{USER}.flush.order"
    with Buffer(tmp_path / "o.db", subject) as buffer:
        ids = [buffer.save(f"m{n}") for n in range(250)]  # more than one read batch

        async def body(js: JetStreamContext) -> tuple[FlushResult, list[tuple[bytes, str]]]:
            result = await buffer.flush(js)
            stored = await stored_messages(js, subject)
            return result, [(m.data, (m.headers or {}).get("Nats-Msg-Id", "")) for m in stored]

        result, stored = with_jetstream(buffer_creds, nats_url, body)
        assert result == FlushResult(sent=250, duplicates=0, remaining=0, error=None)
        assert stored == [(f"m{n}".encode(), buffer.message_id(ids[n])) for n in range(250)]
        assert buffer.pending() == 0


def test_each_message_goes_to_its_own_subject(
    tmp_path: Path, buffer_creds: str, nats_url: str
) -> None:
    default, other = f"{USER}.flush.default", f"{USER}.flush.other"
    with Buffer(tmp_path / "o.db", default) as buffer:
        buffer.save(b"1")
        buffer.save(b"2", subject=other)
        buffer.save(b"3")

        async def body(js: JetStreamContext) -> tuple[list[bytes], list[bytes]]:
            await buffer.flush(js)
            return await payloads_on(js, default), await payloads_on(js, other)

        assert with_jetstream(buffer_creds, nats_url, body) == ([b"1", b"3"], [b"2"])


def test_a_resend_after_a_crash_between_ack_and_delete_is_stored_once(
    tmp_path: Path, buffer_creds: str, nats_url: str
) -> None:
    subject = f"{USER}.flush.crash"
    path = tmp_path / "o.db"
    with CrashAfterAck(path, subject) as crashing:
        for n in range(10):
            crashing.save(str(n))

        async def crash(js: JetStreamContext) -> None:
            # Published and acknowledged 0..3, died before deleting any of them.
            with pytest.raises(SimulatedCrash):
                await crashing.flush(cast(JetStreamContext, DiesAfterPublishes(js, 4)))

        with_jetstream(buffer_creds, nats_url, crash)
    with Buffer(path, subject) as after_crash:
        oldest = after_crash.get()
    assert oldest is not None and oldest.payload == b"0"

    # The restarted client opens the same file and flushes again.
    with Buffer(path, subject) as restarted:

        async def body(js: JetStreamContext) -> tuple[FlushResult, list[bytes], int]:
            result = await restarted.flush(js)
            info = await js.stream_info(STREAM, subjects_filter=subject)
            count = (info.state.subjects or {}).get(subject, 0)
            return result, await payloads_on(js, subject), count

        result, stored, count = with_jetstream(buffer_creds, nats_url, body)
    assert result == FlushResult(sent=10, duplicates=4, remaining=0, error=None)
    assert count == 10
    assert stored == [str(n).encode() for n in range(10)]


def test_flush_stops_at_the_first_failure_and_keeps_the_rest(
    tmp_path: Path, buffer_creds: str, nats_url: str
) -> None:
    subject = f"{USER}.flush.failure"
    with Buffer(tmp_path / "o.db", subject) as buffer:
        buffer.save(b"before")
        # The user may not publish here: the server refuses, no ack ever comes.
        refused = buffer.save(b"refused", subject="not-mine.subject")
        buffer.save(b"after")

        async def first(js: JetStreamContext) -> tuple[FlushResult, list[bytes]]:
            result = await buffer.flush(js, timeout=0.5)
            return result, await payloads_on(js, subject)

        result, stored = with_jetstream(buffer_creds, nats_url, first)
        assert (result.sent, result.remaining) == (1, 2)
        assert isinstance(result.error, TimeoutError)
        assert not result.ok
        assert stored == [b"before"]
        assert [m.payload for m in buffer.get_all()] == [b"refused", b"after"]

        # Once the blocking message is dealt with, the rest goes out.
        buffer.delete(refused)

        async def second(js: JetStreamContext) -> tuple[FlushResult, list[bytes]]:
            result = await buffer.flush(js)
            return result, await payloads_on(js, subject)

        result, stored = with_jetstream(buffer_creds, nats_url, second)
        assert result == FlushResult(sent=1, duplicates=0, remaining=0, error=None)
        assert stored == [b"before", b"after"]


def test_a_removed_and_recreated_outbox_never_repeats_a_msg_id(
    tmp_path: Path, buffer_creds: str, nats_url: str
) -> None:
    subject = f"{USER}.flush.recreated"
    with Buffer(tmp_path / "o.db", subject) as buffer:
        first_id = buffer.save(b"first life")
        first_msg_id = buffer.message_id(first_id)
        with_jetstream(buffer_creds, nats_url, buffer.flush)
        buffer.remove()
        second_id = buffer.save(b"second life")
        assert second_id == first_id  # a fresh file counts from 1 again...
        assert buffer.message_id(second_id) != first_msg_id  # ...under a new uid

        async def body(js: JetStreamContext) -> tuple[FlushResult, list[bytes]]:
            result = await buffer.flush(js)
            return result, await payloads_on(js, subject)

        result, stored = with_jetstream(buffer_creds, nats_url, body)
    assert result.duplicates == 0
    assert stored == [b"first life", b"second life"]


def test_buffered_publisher_sends_at_once_while_connected(
    tmp_path: Path, buffer_creds: str, nats_url: str
) -> None:
    subject = f"{USER}.flush.publisher"

    async def scenario() -> tuple[list[int], list[bytes]]:
        nc: Client = await connect_as(buffer_creds, servers=nats_url, allow_reconnect=False)
        try:
            publisher = BufferedPublisher(nc, Buffer(tmp_path / "o.db", subject))
            pending = []
            for n in range(5):
                await publisher.send(f"p{n}")
                pending.append(publisher.pending)
            assert publisher.last_flush is not None and publisher.last_flush.ok
            return pending, await payloads_on(nc.jetstream(), subject)
        finally:
            await nc.close()

    pending, stored = asyncio.run(scenario())
    assert pending == [0] * 5
    assert stored == [f"p{n}".encode() for n in range(5)]
