"""The application server: connects with its own credentials and serves a Router.

Every route is subscribed in one queue group, so N replicas share the load.
Handlers run concurrently up to a bound; SIGTERM/SIGINT drain gracefully: no new
messages are taken, the ones already received are served, then it disconnects.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client, RawCredentials
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.errors import MaxPayloadError
from nats.js.api import StreamConfig

from labkit import __version__
from labkit.files import write_atomic
from labkit.nsc.creds import user_of
from labkit.server import services
from labkit.server.consumers import RouteConsumer, ensure_stream
from labkit.server.dispatch import dispatch
from labkit.server.errors import ReplyNotSent, ReplyTooLarge
from labkit.server.injection import Headers
from labkit.server.router import Route, Router
from labkit.server.services import EndpointStats, ServiceIdentity
from labkit.settings import Settings
from labkit.subjects import INBOX_PREFIX

log = logging.getLogger("labkit.server")

Resource = Callable[[Client], Awaitable[tuple[type, Any]]]


class Server:
    """Serve `router` on NATS until stopped."""

    def __init__(
        self,
        router: Router,
        *,
        creds: str | None = None,
        servers: str | list[str] | None = None,
        settings: Settings | None = None,
        queue: str = "labkit",
        max_in_flight: int | None = None,
        name: str = "labkit",
        resources: dict[type, Any] | None = None,
        resource_factories: list[Resource] | None = None,
        streams: Sequence[StreamConfig] = (),
    ) -> None:
        self.router = router
        self.settings = settings or Settings()
        self._creds = creds
        self._servers = servers
        self.queue = queue
        self.identity = ServiceIdentity(name=name, version=__version__, description=router.name)
        self.resources: dict[type, Any] = dict(resources or {})
        self._factories = list(resource_factories or [])
        self._streams = list(streams)
        self._consumers: list[RouteConsumer] = []
        # LABKIT_SERVER_MAX_IN_FLIGHT unless the caller gives a bound of its own.
        bound = self.settings.server.max_in_flight if max_in_flight is None else max_in_flight
        self._limit = asyncio.Semaphore(bound)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._subscriptions: list[Subscription] = []
        self.stats = {
            route.name: EndpointStats(route.name, route.pattern, queue) for route in router.routes
        }
        self.nc: Client | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Connect, create resources, subscribe every route and the discovery subjects."""
        creds = self._creds or _server_creds(self.settings)
        servers = self._servers or _nats_urls(self.settings)
        self.nc = await nats.connect(
            servers,
            user_credentials=RawCredentials(creds),
            inbox_prefix=f"_INBOX.{user_of(creds)}",
            name=f"{self.identity.name}-{self.identity.id}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            # Never hear our own messages: a relayed line or a reply the server published
            # must not come back to it as a request from someone else.
            no_echo=True,
        )
        for factory in self._factories:
            kind, resource = await factory(self.nc)
            self.resources[kind] = resource
        js = self.nc.jetstream()
        for config in self._streams:
            await ensure_stream(js, config)
        for route in self.router.routes:
            if route.consumer is not None:
                consumer = RouteConsumer(
                    route,
                    js,
                    self.settings.stream.ack_wait,
                    self.settings.stream.max_deliveries,
                )
                await consumer.start(self._spawn_persisted)
                self._consumers.append(consumer)
                continue
            sub = await self.nc.subscribe(route.pattern, queue=self.queue, cb=self._receiver(route))
            self._subscriptions.append(sub)
        for subject in services.discovery_subjects(self.identity):
            self._subscriptions.append(await self.nc.subscribe(subject, cb=self._discovery))
        await self.nc.flush()
        log.info("serving %d routes as %s", len(self.router.routes), self.identity.id)

    async def stop(self) -> None:
        """Drain: stop taking messages, finish the ones in hand, then disconnect."""
        if self.nc is None or self.nc.is_closed:
            return
        for consumer in self._consumers:
            await consumer.stop()
        for sub in self._subscriptions:
            try:
                await sub.drain()  # type: ignore[no-untyped-call]
            except Exception as exc:  # a connection lost while draining: finish what we can
                log.warning("draining %s: %s", sub.subject, exc)
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)
        await self.nc.drain()
        self._stopped.set()

    async def serve_until_signalled(self, ready_file: Path | None = None) -> None:
        """Start, then serve until SIGTERM or SIGINT, then drain (for `python -m`).

        `ready_file` gets this process's pid once every route is subscribed.
        """
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        if ready_file is not None:
            write_atomic(ready_file, str(os.getpid()))
        try:
            await stop.wait()
            # A draining server takes no new work: the stack must not reuse it as healthy
            # (its NATS may be gone too, when both were stopped with a killed kernel).
            if ready_file is not None:
                ready_file.unlink(missing_ok=True)
            log.info("signal received: draining")
            await self.stop()
        finally:
            if ready_file is not None:
                ready_file.unlink(missing_ok=True)

    def _receiver(self, route: Route) -> Callable[[Msg], Awaitable[None]]:
        async def receive(msg: Msg) -> None:
            # Waiting here, not in the task, holds back this subscription: back-pressure.
            await self._limit.acquire()
            task = asyncio.create_task(self._serve(route, msg))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

        return receive

    def _spawn_persisted(self, consumer: RouteConsumer, message: Any) -> None:
        async def serve() -> None:
            async with self._limit:
                outcome = await consumer.serve(message, self.resources)
            self.stats[consumer.route.name].record(outcome.seconds, outcome.error, outcome.refused)

        task = asyncio.create_task(serve())
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _serve(self, route: Route, msg: Msg) -> None:
        try:
            outcome = await dispatch(
                route,
                msg.subject,
                msg.data,
                msg.reply or None,
                msg.headers,
                self._send,
                self.resources,
            )
            self.stats[route.name].record(outcome.seconds, outcome.error, outcome.refused)
        finally:
            self._limit.release()

    async def _send(self, subject: str, data: bytes, headers: Headers | None) -> None:
        assert self.nc is not None
        try:
            await self.nc.publish(subject, data, headers=headers)
        except MaxPayloadError as exc:
            raise ReplyTooLarge(
                f"the reply is {len(data)} bytes, more than this NATS server carries "
                f"({self.nc.max_payload} bytes): ask for less"
            ) from exc
        except NatsError as exc:
            raise ReplyNotSent(f"publishing on {subject}: {type(exc).__name__}: {exc}") from exc

    async def _discovery(self, msg: Msg) -> None:
        verb = services.verb_of(msg.subject)
        # Discovery answers go to an inbox only, never to a subject the asker picked.
        if msg.reply and msg.reply.startswith(f"{INBOX_PREFIX}."):
            await msg.respond(services.answer(verb, self.identity, list(self.stats.values())))
        elif msg.reply:
            log.warning("refused a %s request: its reply subject %r is no inbox", verb, msg.reply)


def _server_creds(settings: Settings) -> str:
    from labkit.nsc.wrapper import Nsc

    return Nsc.from_settings(settings).server_creds()


def _nats_urls(settings: Settings) -> list[str]:
    from labkit.discovery import nats_urls

    return nats_urls(settings)
