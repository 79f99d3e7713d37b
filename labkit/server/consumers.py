"""Persisted routes: requests read from a durable JetStream consumer, replies stored too.

The stream holds them under `persist.<subject>` (an account subject mapping; see
labkit.subjects.stored), and handlers see the subject the user published on.

A request is acknowledged only after its reply is stored in the stream. A crash
before that means a redelivery, and the reply's `Nats-Msg-Id` (derived from the
request's stream sequence) makes the stream drop a second copy: the client sees
exactly one reply per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError

from labkit.server.dispatch import Outcome, dispatch
from labkit.server.injection import Headers
from labkit.server.jetstream import when_available
from labkit.server.router import Route
from labkit.subjects import REPLY_SUFFIX, stored, unstored

log = logging.getLogger("labkit.server")

FETCH_BATCH = 32
# How long one fetch waits for requests; also how quickly a stop is noticed.
FETCH_WAIT = 0.5
STREAM_IN_USE = 10058  # JetStream: "stream name already in use with a different configuration"

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

    def __init__(self, route: Route, js: JetStreamContext, ack_wait: timedelta) -> None:
        assert route.consumer is not None
        self.route = route
        self.consumer = route.consumer
        self._js = js
        self._ack_wait = ack_wait
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
        """Run the handler; store its reply; ack the request only once the reply is stored."""
        sequence = message.metadata.sequence.stream
        stored = True

        async def store_reply(subject: str, data: bytes, headers: Headers | None) -> None:
            nonlocal stored
            persisted = {**(headers or {}), "Nats-Msg-Id": f"{self.consumer.stream}-{sequence}"}
            try:
                await self._js.publish(subject, data, headers=persisted)
            except Exception:
                stored = False
                raise

        # Handlers see the subject the user published on, which names the user first.
        subject = unstored(message.subject)
        outcome = await dispatch(
            self.route,
            subject,
            message.data,
            f"{subject}.{REPLY_SUFFIX}",
            message.headers,
            store_reply,
            resources,
        )
        if stored:
            await message.ack()
        else:  # redeliver later rather than lose the reply
            await message.nak(delay=1.0)
        return outcome
