"""Stream echo on the real server: round trip, per-user isolation, a server that was down.

Every refusal is tried against the real NATS server with alice's credentials: the
server must report a permissions violation to her `error_cb`, the attempt must not
succeed, and the stream must look exactly as before (bob's reply still unread by
anyone, no consumer made for alice, no message added or removed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from labkit.labs.stream_echo import (
    publish_request,
    reply_consumer,
    reply_subject,
    request_subject,
)
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import ECHO_STREAM_NAME, matches, stored
from tests.labs.streams import (
    Stored,
    open_client,
    read_replies,
    replies_before_a_sentinel,
    replies_left,
    running_lab_server,
    server_connection,
    stored_for,
    unique_user,
    user_connection,
)
from tests.nats_helpers import sentinel_through

ALICE = unique_user("alice")
BOB = unique_user("bob")
BOBS_TEXT = "for bob's eyes only"
# A refused JetStream API call gets no answer: wait this long before calling it failed.
REFUSED_TIMEOUT = 0.25
STREAM = ECHO_STREAM_NAME
_VIOLATION = re.compile(r'permissions violation for (publish|subscription) to "([^"]+)"')


@pytest.fixture(scope="module")
def stack_settings(running_stack: Stack) -> Settings:
    return running_stack.settings


def test_twenty_requests_get_twenty_replies_in_order(
    stack_settings: Settings, tmp_path: Path
) -> None:
    user = unique_user("echo")

    async def scenario() -> tuple[list[str], list[str], int]:
        async with running_lab_server(stack_settings):
            nc = await user_connection(stack_settings, user)
            try:
                client = await open_client(nc, user, tmp_path / "outbox.db")
                for n in range(20):
                    await client.send(f"hello {n}")
                pending = client.pending
                replies = await read_replies(client, 20)
                extra = await replies_before_a_sentinel(client, user)
                await client.close()
                return replies, extra, pending
            finally:
                await nc.close()

    replies, extra, pending = asyncio.run(scenario())
    assert pending == 0  # every send was acknowledged by JetStream
    assert replies == [f"echo hello {n} from {user}" for n in range(20)]
    assert extra == []


def test_a_request_sent_while_the_server_is_down_is_answered_when_it_is_back(
    stack_settings: Settings, tmp_path: Path
) -> None:
    user = unique_user("down")

    async def scenario() -> tuple[list[str], int, int, list[str]]:
        nc = await user_connection(stack_settings, user)
        try:
            async with running_lab_server(stack_settings):
                client = await open_client(nc, user, tmp_path / "outbox.db")
                before = await read_replies(client, 0)
            # No application server now; NATS and the stream are up.
            await client.send("while you were out")
            pending = client.pending
            unanswered = await replies_left(nc, user)  # no server runs: none can come
            async with running_lab_server(stack_settings):
                after = await read_replies(client, 1)
            await client.close()
            return before, pending, unanswered, after
        finally:
            await nc.close()

    before, pending, unanswered, after = asyncio.run(scenario())
    assert before == []
    assert pending == 0  # stored in the stream, not waiting in the outbox
    assert unanswered == 0
    assert after == [f"echo while you were out from {user}"]


# Isolation: alice against bob's reply, which waits unread in bob's consumer.


@pytest.fixture(scope="module")
def bobs_unread_reply(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Bob asked once and has his reply waiting, unread, in his durable consumer."""
    outbox = tmp_path_factory.mktemp("bob") / "outbox.db"

    async def setup() -> None:
        nc = await user_connection(stack_settings, BOB)
        server_nc = await server_connection(stack_settings)
        try:
            async with running_lab_server(stack_settings):
                client = await open_client(nc, BOB, outbox)
                await client.send(BOBS_TEXT)
                async with asyncio.timeout(5):
                    while (await stored_for(server_nc, BOB)).replies < 1:
                        await asyncio.sleep(0.02)
                await client.close()
        finally:
            await server_nc.close()
            await nc.close()

    asyncio.run(setup())


@dataclass(frozen=True)
class StreamView:
    """What the server sees of the stream, for a before/after comparison."""

    messages: int
    bob: Stored
    alice: Stored
    bob_delivered: int  # messages bob's consumer ever handed out (to anyone)
    bob_pending: int
    alice_has_consumer: bool


async def stream_view(settings: Settings) -> StreamView:
    nc = await server_connection(settings)
    try:
        js = nc.jetstream()
        info = await js.stream_info(STREAM)
        bobs = await js.consumer_info(STREAM, reply_consumer(BOB))
        try:
            await js.consumer_info(STREAM, reply_consumer(ALICE))
            alice_has_consumer = True
        except NotFoundError:
            alice_has_consumer = False
        return StreamView(
            messages=info.state.messages,
            bob=await stored_for(nc, BOB),
            alice=await stored_for(nc, ALICE),
            bob_delivered=bobs.delivered.consumer_seq,
            bob_pending=bobs.num_pending or 0,
            alice_has_consumer=alice_has_consumer,
        )
    finally:
        await nc.close()


@dataclass
class Attempt:
    """What happened when alice tried: the error_cb reports, and the outcome of the call."""

    errors: list[str]
    result: object = None
    raised: BaseException | None = None

    def violations(self) -> list[tuple[str, str]]:
        """(publish|subscription, subject) for every permissions violation reported."""
        found = [_VIOLATION.search(error) for error in self.errors]
        return [(m.group(1), m.group(2)) for m in found if m is not None]

    def refused(self, kind: str, pattern: str) -> bool:
        # nats-py reports the server's error in lower case.
        return any(
            k == kind and matches(pattern.lower(), subject) for k, subject in self.violations()
        )


async def as_alice(
    settings: Settings, attempt: Callable[[Client], Awaitable[object]], *, settle: float = 2.0
) -> Attempt:
    """Run `attempt` on a connection of alice's, collecting what her error_cb is told.

    Waits up to `settle` seconds for a permissions violation: the server's -ERR can
    arrive after the PONG of a flush, so a flush alone does not prove there was none.
    """
    errors: list[str] = []
    violation = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())
        if _VIOLATION.search(errors[-1]):
            violation.set()

    nc = await user_connection(settings, ALICE, error_cb=on_error, allow_reconnect=False)
    outcome = Attempt(errors)
    try:
        try:
            outcome.result = await attempt(nc)
        except Exception as exc:
            outcome.raised = exc
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(violation.wait(), settle)
        assert nc.is_connected  # a refusal is reported, it does not cut the connection
    finally:
        await nc.close()
    return outcome


def _js(nc: Client) -> JetStreamContext:
    return nc.jetstream(timeout=REFUSED_TIMEOUT)


async def _api(nc: Client, subject: str, body: dict[str, object]) -> Msg:
    return await nc.request(subject, json.dumps(body).encode(), timeout=REFUSED_TIMEOUT)


BOB_REPLIES = stored(reply_subject(BOB))


def _bobs_consumer(*, named: bool) -> ConsumerConfig:
    # With a name nats-py uses CONSUMER.CREATE.<stream>.<name>.<filter>; without, the
    # older CONSUMER.DURABLE.CREATE.<stream>.<durable> (filter only in the body).
    durable = reply_consumer(BOB)
    return ConsumerConfig(
        name=durable if named else None,
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        filter_subject=BOB_REPLIES,
    )


# (what alice tries, the subject the server refuses, whether the call itself fails)
JETSTREAM_REFUSALS = [
    pytest.param(
        lambda nc: _js(nc).pull_subscribe(BOB_REPLIES, durable=reply_consumer(BOB), stream=STREAM),
        f"$JS.API.CONSUMER.INFO.{STREAM}.{reply_consumer(BOB)}",
        id="bind-to-bobs-reply-consumer",
    ),
    pytest.param(
        lambda nc: _js(nc).add_consumer(STREAM, _bobs_consumer(named=True)),
        f"$JS.API.CONSUMER.CREATE.{STREAM}.{reply_consumer(BOB)}.{BOB_REPLIES}",
        id="create-bobs-reply-consumer",
    ),
    pytest.param(
        lambda nc: _js(nc).add_consumer(STREAM, _bobs_consumer(named=False)),
        f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{reply_consumer(BOB)}",
        id="create-bobs-reply-consumer-older-api",
    ),
    pytest.param(
        lambda nc: _js(nc).pull_subscribe(
            BOB_REPLIES, durable=reply_consumer(ALICE), stream=STREAM
        ),
        f"$JS.API.CONSUMER.CREATE.{STREAM}.{reply_consumer(ALICE)}.{BOB_REPLIES}",
        id="her-own-consumer-on-bobs-replies",
    ),
    pytest.param(
        lambda nc: _js(nc).pull_subscribe(BOB_REPLIES, stream=STREAM),
        f"$JS.API.CONSUMER.CREATE.{STREAM}.*.{BOB_REPLIES}",
        id="ephemeral-consumer-on-bobs-replies",
    ),
    pytest.param(
        lambda nc: _js(nc).consumer_info(STREAM, reply_consumer(BOB)),
        f"$JS.API.CONSUMER.INFO.{STREAM}.{reply_consumer(BOB)}",
        id="info-of-bobs-consumer",
    ),
    pytest.param(
        lambda nc: _api(
            nc, f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{reply_consumer(BOB)}", {"batch": 1}
        ),
        f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{reply_consumer(BOB)}",
        id="fetch-from-bobs-consumer",
    ),
    pytest.param(
        lambda nc: _api(nc, f"$JS.API.CONSUMER.NAMES.{STREAM}", {}),
        f"$JS.API.CONSUMER.NAMES.{STREAM}",
        id="list-the-consumers",
    ),
    pytest.param(
        lambda nc: _js(nc).delete_stream(STREAM),
        f"$JS.API.STREAM.DELETE.{STREAM}",
        id="delete-the-stream",
    ),
    pytest.param(
        lambda nc: _js(nc).purge_stream(STREAM),
        f"$JS.API.STREAM.PURGE.{STREAM}",
        id="purge-the-stream",
    ),
    pytest.param(
        lambda nc: _js(nc).stream_info(STREAM),
        f"$JS.API.STREAM.INFO.{STREAM}",
        id="stream-info",
    ),
    pytest.param(
        lambda nc: _api(nc, "$JS.API.STREAM.NAMES", {}),
        "$JS.API.STREAM.NAMES",
        id="list-the-streams",
    ),
    pytest.param(
        lambda nc: _api(nc, f"$JS.API.DIRECT.GET.{STREAM}", {"last_by_subj": BOB_REPLIES}),
        f"$JS.API.DIRECT.GET.{STREAM}",
        id="direct-get",
    ),
    pytest.param(
        lambda nc: _api(nc, f"$JS.API.DIRECT.GET.{STREAM}.{BOB_REPLIES}", {}),
        f"$JS.API.DIRECT.GET.{STREAM}.{BOB_REPLIES}",
        id="direct-get-by-subject",
    ),
    pytest.param(
        lambda nc: _api(nc, f"$JS.API.STREAM.MSG.GET.{STREAM}", {"last_by_subj": BOB_REPLIES}),
        f"$JS.API.STREAM.MSG.GET.{STREAM}",
        id="stream-msg-get",
    ),
    pytest.param(
        lambda nc: _js(nc).publish(request_subject(BOB), b"sent in bob's name"),
        stored(request_subject(BOB)),
        id="jetstream-publish-as-bob",
    ),
]


@pytest.mark.usefixtures("bobs_unread_reply")
@pytest.mark.parametrize(("attempt", "refused_subject"), JETSTREAM_REFUSALS)
def test_alice_is_refused_by_the_nats_server(
    stack_settings: Settings,
    attempt: Callable[[Client], Awaitable[object]],
    refused_subject: str,
) -> None:
    async def scenario() -> tuple[StreamView, Attempt, StreamView]:
        before = await stream_view(stack_settings)
        tried = await as_alice(stack_settings, attempt)
        return before, tried, await stream_view(stack_settings)

    before, tried, after = asyncio.run(scenario())
    assert tried.refused("publish", refused_subject), tried.errors
    # No success: no answer came back, and nothing changed on the server.
    assert isinstance(tried.raised, nats.errors.TimeoutError), (tried.raised, tried.result)
    assert after == before
    assert before.bob_delivered == 0 and before.bob_pending >= 1
    assert not after.alice_has_consumer


PLAIN_PUBLISH_REFUSALS = [
    pytest.param(stored(request_subject(BOB)), stored(request_subject(BOB)), id="persist-as-bob"),
    pytest.param(request_subject(BOB), stored(request_subject(BOB)), id="bobs-request-subject"),
    pytest.param(
        f"$JS.ACK.{STREAM}.{reply_consumer(BOB)}.1.1.1.0.0",
        f"$JS.ACK.{STREAM}.{reply_consumer(BOB)}.1.1.1.0.0",
        id="ack-bobs-reply",
    ),
    # Even her own reply subject is the server's to write: she could not fake an answer.
    pytest.param(reply_subject(ALICE), stored(reply_subject(ALICE)), id="forge-her-own-reply"),
]


@pytest.mark.usefixtures("bobs_unread_reply")
@pytest.mark.parametrize(("subject", "refused_subject"), PLAIN_PUBLISH_REFUSALS)
def test_alice_cannot_publish_where_she_has_no_right(
    stack_settings: Settings, subject: str, refused_subject: str
) -> None:
    async def publish(nc: Client) -> None:
        await nc.publish(subject, b"not yours")

    async def scenario() -> tuple[StreamView, Attempt, StreamView]:
        before = await stream_view(stack_settings)
        tried = await as_alice(stack_settings, publish)
        return before, tried, await stream_view(stack_settings)

    before, tried, after = asyncio.run(scenario())
    assert tried.refused("publish", refused_subject), tried.errors
    assert after == before  # nothing stored, nothing acknowledged


@pytest.mark.usefixtures("bobs_unread_reply")
def test_alice_cannot_subscribe_to_bobs_stored_subjects(stack_settings: Settings) -> None:
    delivered: list[int] = []

    async def subscribe(nc: Client) -> None:
        refused = await nc.subscribe(stored(f"{BOB}.>"))
        await nc.flush()
        # Bob sends a request now: it flows on persist.<bob>.echo.stream.
        bob = await user_connection(stack_settings, BOB)
        try:
            await publish_request(bob, BOB, "do you read me, alice?")
            # Alice's sentinel follows bob's request: had it reached her, it is here now.
            await sentinel_through(nc, f"{ALICE}.sentinel", after=[bob])
        finally:
            await bob.close()
        delivered.append(refused.pending_msgs)

    tried = asyncio.run(as_alice(stack_settings, subscribe))
    assert tried.refused("subscription", stored(f"{BOB}.>")), tried.errors
    assert tried.raised is None, tried.raised
    assert delivered == [0]


# Her own consumer's create subject with another filter in the body: she has no create
# right at all any more (the server makes her consumer), so the NATS server refuses it.
BODY_FILTER_TRICKS = [
    pytest.param({"filter_subject": BOB_REPLIES}, id="filter-subject"),
    pytest.param({"filter_subjects": [BOB_REPLIES]}, id="filter-subjects"),
]


@pytest.mark.usefixtures("bobs_unread_reply")
@pytest.mark.parametrize("filters", BODY_FILTER_TRICKS)
def test_her_own_consumer_subject_with_bobs_filter_in_the_body_is_refused(
    stack_settings: Settings, filters: dict[str, object]
) -> None:
    consumer = reply_consumer(ALICE)
    subject = f"$JS.API.CONSUMER.CREATE.{STREAM}.{consumer}.{stored(reply_subject(ALICE))}"
    config = {"durable_name": consumer, "name": consumer, "ack_policy": "explicit", **filters}

    async def create(nc: Client) -> Msg:
        return await _api(nc, subject, {"stream_name": STREAM, "config": config})

    async def scenario() -> tuple[StreamView, Attempt, StreamView]:
        before = await stream_view(stack_settings)
        tried = await as_alice(stack_settings, create)
        return before, tried, await stream_view(stack_settings)

    before, tried, after = asyncio.run(scenario())
    assert tried.refused("publish", subject), tried.errors
    assert isinstance(tried.raised, nats.errors.TimeoutError), (tried.raised, tried.result)
    assert after == before and not after.alice_has_consumer


@pytest.mark.usefixtures("bobs_unread_reply")
def test_after_all_that_bob_reads_his_reply_once(stack_settings: Settings, tmp_path: Path) -> None:
    async def scenario() -> tuple[list[str], int]:
        nc = await user_connection(stack_settings, BOB)
        try:
            client = await open_client(nc, BOB, tmp_path / "outbox.db")
            replies = await read_replies(client, 1)
            extra = await replies_left(nc, BOB)  # no server runs now: none can come
            await client.close()
            return replies, extra
        finally:
            await nc.close()

    replies, extra = asyncio.run(scenario())
    assert replies == [f"echo {BOBS_TEXT} from {BOB}"]
    # His later request ("do you read me") is stored but no server ran to answer it.
    assert extra == 0
