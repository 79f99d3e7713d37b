"""Stream echo across restarts: the NATS server, and an application server killed mid-work.

Each test has a stack of its own: one stops its NATS server (pinned to one port, so
clients reconnect to the restarted one), the other needs the server's durable
consumer created fresh with a one-second ack wait.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.js.api import ConsumerInfo

from labkit.labs.stream_echo import (
    SERVER_CONSUMER,
    StreamEchoClient,
    publish_request,
    reply_consumer,
)
from labkit.stack import Stack
from labkit.stack.ports import free_port
from labkit.subjects import ECHO_STREAM_NAME
from tests.conftest import make_settings
from tests.labs.streams import (
    Stored,
    no_more_replies,
    open_client,
    read_replies,
    running_lab_server,
    server_connection,
    stored_for,
    unique_user,
    user_connection,
)
from tests.server.test_replicas import start_replica_process, wait_until_ready


@pytest.fixture
def pinned_stack(tmp_path: Path) -> Iterator[Stack]:
    """NATS on a port of its own that it keeps across restarts (same store dir too)."""
    port = free_port("127.0.0.1")
    # A short ack wait: an ack lost in the restart costs two seconds, not thirty.
    settings = make_settings(
        tmp_path / "home", nats={"port": port, "monitor_port": 0}, stream={"ack_wait": 2}
    )
    stack = Stack(settings)
    try:
        stack.ensure("nats")
        assert stack.url("nats").endswith(f":{port}")
        yield stack
    finally:
        stack.down()


@dataclass
class AfterRestart:
    first: list[str]
    offline_pending: int
    pending_after_reconnect: int
    rest: list[str]
    extra: list[str]
    stored: Stored
    stream_messages: int
    reply_consumer: ConsumerInfo
    server_consumer: ConsumerInfo


def test_nats_restart_keeps_the_stream_and_consumer_positions_and_flushes_the_outbox(
    pinned_stack: Stack, tmp_path: Path
) -> None:
    settings = pinned_stack.settings
    url = pinned_stack.url("nats")
    user = unique_user("restart")

    async def scenario() -> AfterRestart:
        client: StreamEchoClient
        disconnected, reconnected = asyncio.Event(), asyncio.Event()

        async def on_disconnect() -> None:
            disconnected.set()

        async def on_reconnect() -> None:
            await client.on_reconnect()  # flushes the outbox
            reconnected.set()

        nc = await user_connection(
            settings,
            user,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.1,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
        )
        try:
            # The lab server reconnects by itself (it retries forever).
            async with running_lab_server(settings):
                client = await open_client(nc, user, tmp_path / "outbox.db")
                for n in range(5):
                    await client.send(f"m{n}")
                first = await read_replies(client, 3)
                await nc.flush()  # their acks are at the server before it stops

                await asyncio.to_thread(pinned_stack.down, "nats")
                await asyncio.wait_for(disconnected.wait(), 10)
                for n in range(5, 9):
                    await client.send(f"m{n}")  # offline: saved in the outbox only
                offline_pending = client.pending

                await asyncio.to_thread(pinned_stack.ensure, "nats")
                assert pinned_stack.url("nats") == url
                await asyncio.wait_for(reconnected.wait(), 15)
                pending_after_reconnect = client.pending
                rest = await read_replies(client, 6, timeout=15)
                extra = await no_more_replies(client)
                await client.close()

            server_nc = await server_connection(settings)
            try:
                js = server_nc.jetstream()
                info = await js.stream_info(ECHO_STREAM_NAME)
                return AfterRestart(
                    first,
                    offline_pending,
                    pending_after_reconnect,
                    rest,
                    extra,
                    await stored_for(server_nc, user),
                    info.state.messages,
                    await js.consumer_info(ECHO_STREAM_NAME, reply_consumer(user)),
                    await js.consumer_info(ECHO_STREAM_NAME, SERVER_CONSUMER),
                )
            finally:
                await server_nc.close()
        finally:
            await nc.close()

    seen = asyncio.run(scenario())
    echo = [f"echo m{n} from {user}" for n in range(9)]
    assert seen.first == echo[:3]
    assert seen.offline_pending == 4
    assert seen.pending_after_reconnect == 0  # the reconnect callback flushed them
    # The reply consumer resumed after m2: its position survived the restart.
    assert seen.rest == echo[3:]
    assert seen.extra == []
    # Every request and every reply is in the stream exactly once.
    assert seen.stored == Stored(requests=9, replies=9)
    assert seen.stream_messages == 18
    for consumer in (seen.reply_consumer, seen.server_consumer):
        assert (consumer.num_pending, consumer.num_ack_pending) == (0, 0), consumer


TOTAL = 300
KILL_AFTER = 50  # replies the client has read when the server is killed
IN_FLIGHT = 100


@dataclass
class AfterKill:
    replies: list[str]
    extra: list[str]
    ack_pending_at_kill: int
    stored: Stored


def test_a_killed_app_server_s_requests_are_redelivered_and_answered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server process reads this; its durable consumer is created with it (fresh stack).
    monkeypatch.setenv("LABKIT_STREAM_ACK_WAIT", "1")
    settings = make_settings(tmp_path / "home")
    user = unique_user("kill")
    replicas: list[subprocess.Popen[bytes]] = []

    async def start_replica(name: str) -> None:
        ready, log = tmp_path / f"{name}.ready", tmp_path / f"{name}.log"
        replicas.append(start_replica_process(settings, ready, log))
        await wait_until_ready(replicas[-1], ready, log)

    async def scenario() -> AfterKill:
        await start_replica("first")  # it creates the stream
        nc = await user_connection(settings, user)
        server_nc = await server_connection(settings)
        try:
            client = await open_client(nc, user, tmp_path / "outbox.db")
            window = asyncio.Semaphore(IN_FLIGHT)

            async def send(n: int) -> None:
                async with window:
                    await publish_request(nc, user, f"m{n}", msg_id=f"{user}-{n}")

            sending = asyncio.gather(*(send(n) for n in range(TOTAL)))
            replies: list[str] = []
            async with asyncio.timeout(10):
                while len(replies) < KILL_AFTER:
                    replies.extend(await client.read_replies(most=TOTAL, timeout=1.0))
            replicas[0].send_signal(signal.SIGKILL)  # no drain, no goodbye
            await asyncio.to_thread(replicas[0].wait)
            await sending
            at_kill = await server_nc.jetstream().consumer_info(ECHO_STREAM_NAME, SERVER_CONSUMER)

            await start_replica("second")
            replies.extend(await read_replies(client, TOTAL - len(replies), timeout=20))
            extra = await no_more_replies(client, 1.5)  # past one ack wait: no late copy
            await client.close()
            return AfterKill(
                replies, extra, at_kill.num_ack_pending, await stored_for(server_nc, user)
            )
        finally:
            await server_nc.close()
            await nc.close()

    stack = Stack(settings)
    try:
        stack.ensure("nats")
        seen = asyncio.run(scenario())
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
            replica.wait(timeout=10)
        stack.down()

    # Killed while handling: requests were handed out and not yet acknowledged.
    assert seen.ack_pending_at_kill > 0
    counts = Counter(seen.replies)
    assert set(counts) == {f"echo m{n} from {user}" for n in range(TOTAL)}
    assert max(counts.values()) == 1, [reply for reply, n in counts.items() if n > 1]
    assert seen.extra == []
    assert seen.stored == Stored(requests=TOTAL, replies=TOTAL)
