"""Persisted routes: requests read from a durable JetStream consumer, replies stored too.

The stream holds them under `persist.<subject>` (an account subject mapping; see
labkit.subjects.stored), and handlers see the subject the user published on.

A request is acknowledged only after its reply is stored in the stream. Each reply
goes to a subject of its own request's, `<reply subject>.<slot>` (the slot from the
request's Nats-Msg-Id, else its sequence), stored only if that subject is empty: a
redelivery after a crash, or the same request resent long after the stream's
duplicate window, finds its slot taken and is acknowledged without a second answer.
The client sees exactly one reply per request.

Failing to store a reply is not the handler's failure (a leader election, a lost
connection): the request is delivered again later, and nothing is stored in its
reply's slot meanwhile, since whatever is stored first under that Nats-Msg-Id is
what the client gets. Only final answers take the slot: the reply, a handler's error
reply, `too_large` (a reply the bus or stream will never take), or, after
`max_deliveries` failed deliveries, `undeliverable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from nats.errors import MaxPayloadError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, BadRequestError

from labkit.error_replies import JS_MESSAGE_TOO_LARGE, JS_WRONG_LAST_SEQUENCE, UNDELIVERABLE
from labkit.server.dispatch import Outcome, answer_error, dispatch
from labkit.server.errors import ReplyNotSent, ReplyTooLarge
from labkit.server.injection import Headers, Send
from labkit.server.jetstream import when_available
from labkit.server.router import Route
from labkit.subjects import persisted_reply, slot_token, stored, unstored

log = logging.getLogger("labkit.server")

FETCH_BATCH = 32
# How long one fetch waits for requests; also how quickly a stop is noticed.
FETCH_WAIT = 0.5
STREAM_IN_USE = 10058  # JetStream: "stream name already in use with a different configuration"
# The longest wait before a request whose reply could not be stored is tried again.
MAX_REDELIVERY_DELAY = 30.0


def redelivery_delay(deliveries: int) -> float:
    """Seconds before delivery number `deliveries + 1`: 1, 2, 4, ... at most 30.

    Short at first (a stream leader election here takes 4-8 s), then sparse, so a
    request that keeps failing costs little while it waits for `max_deliveries`.
    """
    return min(2.0 ** max(deliveries - 1, 0), MAX_REDELIVERY_DELAY)


Spawn = Callable[["RouteConsumer", Any], None]


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an existing one to `config` (idempotent).

    On a cluster that is still settling, it waits for JetStream (see when_available).
    """

    async def create_or_update() -> None:
        try:
            await js.add_stream(config)
        except BadRequestError as exc:
            if exc.err_code != STREAM_IN_USE:
                raise
            await js.update_stream(config)

    await when_available(create_or_update, f"creating stream {config.name}")


class RouteConsumer:
    """Fetches one persisted route's requests and hands each to the server to serve."""

    def __init__(
        self,
        route: Route,
        js: JetStreamContext,
        ack_wait: timedelta,
        max_deliveries: int = 8,
    ) -> None:
        assert route.consumer is not None
        self.route = route
        self.consumer = route.consumer
        self._js = js
        self._ack_wait = ack_wait
        self._max_deliveries = max_deliveries
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._waiting = False

    async def start(self, serve: Spawn) -> None:
        config = ConsumerConfig(
            durable_name=self.consumer.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait.total_seconds(),
            max_ack_pending=1000,
            filter_subject=stored(self.route.pattern),
        )
        subscription = await when_available(
            lambda: self._js.pull_subscribe(
                stored(self.route.pattern),
                durable=self.consumer.durable,
                stream=self.consumer.stream,
                config=config,
            ),
            f"creating consumer {self.consumer.durable}",
        )
        self._task = asyncio.create_task(self._fetch_loop(subscription, serve))

    async def stop(self) -> None:
        """Stop fetching; requests already handed over are served by the server.

        A fetch still waiting is cancelled: anything it would have received stays
        unacknowledged in the stream and is redelivered (at-least-once, and the
        reply's Nats-Msg-Id keeps the replies exactly-once).
        """
        self._stopping.set()
        if self._task is None:
            return
        if self._waiting:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _fetch_loop(self, subscription: Any, serve: Spawn) -> None:
        try:
            while not self._stopping.is_set():
                self._waiting = True
                try:
                    messages = await subscription.fetch(FETCH_BATCH, timeout=FETCH_WAIT)
                except (TimeoutError, NatsTimeoutError):
                    continue
                except Exception as exc:  # a reconnect in progress: try again shortly
                    log.warning("fetching %s: %s", self.route.name, exc)
                    await asyncio.sleep(FETCH_WAIT)
                    continue
                finally:
                    self._waiting = False
                for message in messages:
                    serve(self, message)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def serve(self, message: Any, resources: dict[type, Any]) -> Outcome:
        """Answer one request; ack it once its answer is stored, else deliver it again later."""
        metadata = message.metadata
        deliveries = int(metadata.num_delivered or 1)
        # Handlers see the subject the user published on, which names the user first.
        subject = unstored(message.subject)
        reply = persisted_reply(subject)
        sequence = int(metadata.sequence.stream)
        msg_id = (message.headers or {}).get("Nats-Msg-Id")
        store = self._store_in_slot(sequence, slot_token(msg_id, sequence))
        if deliveries > self._max_deliveries:
            outcome = await self._give_up(store, subject, reply, deliveries)
        else:
            outcome = await dispatch(
                self.route, subject, message.data, reply, message.headers, store, resources
            )
        await self._settle(message, outcome, deliveries)
        return outcome

    def _store_in_slot(self, sequence: int, token: str) -> Send:
        """A Send that stores a reply in the request's own slot, only if it is empty.

        The slot is the subject `persist.<user>.echo.stream.reply.<token>`, one per
        request id; "expected last subject sequence 0" makes the stream refuse a second
        reply there, however late, atomically with the store: the reply is its own claim.
        """
        msg_id = f"{self.consumer.stream}-{sequence}"

        async def store(subject: str, data: bytes, headers: Headers | None) -> None:
            slot = f"{stored(subject)}.{token}"
            persisted = {
                **(headers or {}),
                "Nats-Msg-Id": msg_id,
                "Nats-Expected-Last-Subject-Sequence": "0",
            }
            try:
                await self._js.publish(slot, data, headers=persisted)
            except MaxPayloadError as exc:
                raise ReplyTooLarge(
                    f"the reply is {len(data)} bytes, more than NATS carries: ask for less"
                ) from exc
            except APIError as exc:
                if exc.err_code == JS_WRONG_LAST_SEQUENCE:
                    # Answered before: a redelivery, or a resend after the duplicate window.
                    log.info("%s: %s holds its answer already; not answered again", msg_id, slot)
                    return
                if exc.err_code == JS_MESSAGE_TOO_LARGE:
                    raise ReplyTooLarge(
                        f"the reply is {len(data)} bytes, more than the stream "
                        f"{self.consumer.stream} stores per message: ask for less"
                    ) from exc
                raise ReplyNotSent(f"storing the reply on {slot}: {exc}") from exc
            except Exception as exc:  # a timeout, no responders, a connection lost
                raise ReplyNotSent(
                    f"storing the reply on {slot}: {type(exc).__name__}: {exc}"
                ) from exc

        return store

    async def _give_up(self, store: Send, subject: str, reply: str, deliveries: int) -> Outcome:
        text = (
            f"the request was delivered {deliveries - 1} times and its answer could not be "
            "stored; it will not be tried again: send it again later"
        )
        log.warning("%s on %s: %s", self.route.name, subject, text)
        sent = await answer_error(store, reply, subject, UNDELIVERABLE, text, 503)
        return Outcome(self.route.name, False, 0.0, text, retry=not sent)

    async def _settle(self, message: Any, outcome: Outcome, deliveries: int) -> None:
        try:
            if outcome.retry:  # redeliver later rather than lose the reply
                await message.nak(delay=redelivery_delay(deliveries))
            else:
                await message.ack()
        except Exception as exc:  # lost with the connection: redelivered after ack_wait
            log.warning("settling %s (delivery %d): %s", self.route.name, deliveries, exc)
