"""The application server: connects with its own credentials and serves a Router.

Every route is subscribed in one queue group, so N replicas share the load.
What arrives is only sorted by user on receipt (a route's lane, labkit.server.wire:
from nats-py's parser straight to the scheduler); a fair scheduler
(labkit.server.fair) runs it, users in turn, within a global and a per-user bound,
and a user whose queue is full is answered `busy` (labkit.server.busy).
With LABKIT_SERVER_READERS > 0 (the default) each user's route subjects are read on
one of that many more connections (labkit.server.readers, kept current by
labkit.server.reading, and told of a new learner by labkit.server.announcements),
so one user's burst does not sit in the socket in front of everyone else's
requests; answers leave on the connection that read the request.
SIGTERM/SIGINT drain gracefully: no new messages are taken, the ones already
received are served, then it disconnects; whatever state NATS is in, within the
drain timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from nats.aio.client import Client, RawCredentials
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.errors import MaxPayloadError
from nats.js.api import StreamConfig

from labkit import __version__
from labkit.files import write_atomic
from labkit.nsc.creds import user_of
from labkit.nsc.names import stack_user_names
from labkit.server import services
from labkit.server.announcements import hear_announcements
from labkit.server.busy import BusyAnswer
from labkit.server.collector import freeze_startup_objects
from labkit.server.consumers import RouteConsumer, ensure_stream
from labkit.server.dispatch import dispatch, reply_allowed
from labkit.server.errors import ReplyNotSent, ReplyTooLarge
from labkit.server.fair import FairScheduler
from labkit.server.injection import Headers, Send
from labkit.server.readers import UserReaders, UserRoute, drain, per_user_suffix
from labkit.server.reading import ReaderSwitch, Users, nsc_users
from labkit.server.router import Route, Router
from labkit.server.services import EndpointStats, ServiceIdentity
from labkit.server.wire import Lane, LaneClient
from labkit.settings import Settings
from labkit.subjects import INBOX_PREFIX, first_token, unstored

log = logging.getLogger("labkit.server")

Resource = Callable[[Client], Awaitable[tuple[type, Any]]]
# A request's headers: parsed (nats-py's Msg), or the raw block a lane passes on.
AnyHeaders = Headers | bytes | None


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
        users: Users | None = None,
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
        bounds = self.settings.server
        workers = bounds.max_in_flight if max_in_flight is None else max_in_flight
        self.scheduler = FairScheduler(
            workers,
            min(bounds.user_max_in_flight, workers),
            bounds.user_max_queued,
            bounds.busy_backlog,
            # Reading first: a burst waiting on the connection shortens the workers' turns.
            unread=self._unread_bytes,
        )
        self._retry_after = bounds.busy_retry_after.total_seconds()
        self._busy = BusyAnswer(self._retry_after)
        self._subscriptions: list[Subscription] = []
        # Reader connections (labkit.server.readers), with LABKIT_SERVER_READERS > 0:
        # who the users are, and the route catch-alls they stand in for.
        self._users = users
        self.readers: UserReaders | None = None
        self._switch: ReaderSwitch | None = None
        self.stats = {
            route.name: EndpointStats(route.name, route.pattern, queue) for route in router.routes
        }
        self.nc: LaneClient | None = None
        self._answering: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Connect, create resources, subscribe every route and the discovery subjects."""
        creds = self._creds or _server_creds(self.settings)
        servers = self._servers or _nats_urls(self.settings)
        self.nc = await _connect(servers, creds, f"{self.identity.name}-{self.identity.id}")
        self.scheduler.start()
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
            if self.settings.server.readers and per_user_suffix(route.pattern) is not None:
                continue  # read per user (below), or by a catch-all when that is not possible
            self._subscriptions.append(await self._subscribe_route(route))
        await self._start_readers(servers, creds)
        for subject in services.discovery_subjects(self.identity):
            self._subscriptions.append(await self.nc.subscribe(subject, cb=self._discovery))
        await self.nc.flush()
        log.info("serving %d routes as %s", len(self.router.routes), self.identity.id)

    async def stop(self) -> None:
        """Drain: stop taking messages, finish the ones in hand, then disconnect.

        Never raises and never takes longer than the drain timeout, whatever state
        NATS is in (gone, reconnecting, frozen): past it, what is left is dropped.
        """
        if self.nc is None or self.nc.is_closed:
            return
        timeout = self.settings.server.drain_timeout.total_seconds()
        try:
            # Most of the time for draining; the rest to close the connection.
            await asyncio.wait_for(self._drain(), timeout * 0.8)
        except TimeoutError:
            log.warning(
                "draining took longer than %.1f s (NATS unreachable?): %d requests dropped",
                timeout * 0.8,
                self.scheduler.busy,
            )
        except Exception as exc:
            log.warning("draining failed (%s: %s): closing", type(exc).__name__, exc)
        await self.scheduler.close()
        if self.readers is not None:
            await self.readers.close(timeout * 0.1)
        try:
            await asyncio.wait_for(self.nc.close(), timeout * 0.2)
        except Exception as exc:
            log.warning("closing the connection: %s: %s", type(exc).__name__, exc)
        self._stopped.set()
        log.info("stopped")

    async def _drain(self) -> None:
        assert self.nc is not None
        for consumer in self._consumers:
            await consumer.stop()
        for sub in self._subscriptions:
            await drain(self.nc, sub)
        if self._switch is not None:
            await self._switch.drain()
        await self.scheduler.wait_empty()
        if self.nc.is_connected:
            await self.nc.drain()

    async def serve_until_signalled(self, ready_file: Path | None = None) -> None:
        """Start, then serve until SIGTERM or SIGINT, then drain (for `python -m`).

        `ready_file` gets this process's pid once every route is subscribed.
        """
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        # A process of its own: what start-up made lives as long as it does.
        frozen = freeze_startup_objects()
        log.debug("%d start-up objects frozen out of the garbage collector's walks", frozen)
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

    def _receivers(
        self, route: Route, nc: LaneClient
    ) -> tuple[Callable[[Msg], Awaitable[None]], Lane]:
        """`route`'s receive path on `nc`: its lane, and the subscription callback behind it.

        Answers leave on `nc` too: the NATS server lets a connection answer only the
        requests it received (the server user's response permission).
        """
        stats = self.stats[route.name]
        submit = self.scheduler.submit
        serve = partial(self._serve, nc, partial(_send, nc))  # (bound once, not per request)

        busy = self._busy

        async def refuse(user: str, subject: str, reply: str | None) -> None:
            # dispatch.answer_busy's answer, from bytes made once (labkit.server.busy).
            started = time.perf_counter()
            refused = reply is not None and not reply_allowed(route, subject, reply)
            if reply is not None and not refused:
                try:
                    await nc.publish_encoded(reply, busy.header_block, busy.body(subject))
                except Exception as exc:  # the requester may be gone: as answer_error
                    log.warning(
                        "could not send the busy reply for %s to %s: %s", subject, reply, exc
                    )
            stats.record_busy(user, time.perf_counter() - started, refused)

        def sort(subject: str, reply: str | None, data: bytes, headers: AnyHeaders) -> None:
            # Only sort here: this runs for every user's message in turn, so anything
            # slow in it would hold everyone behind one user's burst.
            user = subject.partition(".")[0]
            if not submit(
                user,
                partial(serve, route, subject, reply, data, headers),
                # Keeps the subjects only: a refused payload is not held in memory.
                partial(refuse, user, subject, reply),
            ):
                self._answer_soon(refuse(user, subject, reply))

        def lane(subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
            sort(subject.decode(), reply.decode() or None, data, headers)

        async def receive(msg: Msg) -> None:
            sort(msg.subject, msg.reply or None, msg.data, msg.headers)

        return receive, lane

    def _answer_soon(self, answer: Coroutine[Any, Any, None]) -> None:
        """Send a `busy` answer the scheduler had no room for, without holding up reading."""
        task = asyncio.create_task(answer)
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    def _spawn_persisted(self, consumer: RouteConsumer, message: Any) -> None:
        async def serve() -> None:
            outcome = await consumer.serve(message, self.resources)
            self.stats[consumer.route.name].record(
                outcome.seconds, outcome.error, outcome.refused, user
            )

        # A consumer's fetches already bound what it hands over (its batch, and
        # max_ack_pending in the stream): queued past the user bound, never `busy`.
        user = first_token(unstored(message.subject))
        self.scheduler.submit(user, serve)

    async def _serve(
        self,
        nc: LaneClient,
        send: Send,
        route: Route,
        subject: str,
        reply: str | None,
        data: bytes,
        headers: AnyHeaders,
    ) -> None:
        if isinstance(headers, bytes):  # from a lane: parsed only when served
            headers = await nc.parse_headers(headers)
        outcome = await dispatch(route, subject, data, reply, headers, send, self.resources)
        self.stats[route.name].record(
            outcome.seconds, outcome.error, outcome.refused, first_token(subject)
        )

    def _unread_bytes(self) -> int:
        unread = self.nc.unread_bytes() if self.nc is not None else 0
        return unread + (self.readers.unread_bytes() if self.readers is not None else 0)

    async def _subscribe_route(self, route: Route) -> Subscription:
        """`route`'s catch-all subscription (`*.echo`), in the queue group, with its lane."""
        assert self.nc is not None
        receive, lane = self._receivers(route, self.nc)
        sub = await self.nc.subscribe(
            route.pattern,
            queue=self.queue,
            cb=receive,
            # The receive path only sorts, so this backlog empties fast; a burst must
            # reach the scheduler (which answers `busy`), not be dropped unanswered.
            pending_msgs_limit=self.settings.server.receive_pending_msgs,
            pending_bytes_limit=self.settings.server.receive_pending_bytes,
        )
        self.nc.add_lane(sub, lane)
        return sub

    def _per_user_routes(self) -> list[Route]:
        return [
            route
            for route in self.router.routes
            if route.consumer is None and per_user_suffix(route.pattern) is not None
        ]

    async def _start_readers(self, servers: str | list[str], creds: str) -> None:
        """Each user's routes on a reader connection of their own (labkit.server.readers)."""
        assert self.nc is not None
        bounds = self.settings.server
        routes = self._per_user_routes()
        if not bounds.readers or not routes:
            return

        def user_routes(nc: LaneClient) -> list[UserRoute]:
            # A reader's receivers answer on that reader (the response permission).
            made = []
            for route in routes:
                suffix = per_user_suffix(route.pattern)
                assert suffix is not None
                made.append(UserRoute(suffix, self._receivers(route, nc)[1]))
            return made

        self.readers = UserReaders(user_routes, self.queue)
        name = f"{self.identity.name}-{self.identity.id}"
        await self.readers.connect(
            bounds.readers,
            lambda number: _connect(servers, creds, f"{name}-reader{number}", reader=True),
        )
        self._switch = ReaderSwitch(
            self.readers,
            self._users if self._users is not None else nsc_users(self.settings),
            self.nc,
            lambda: asyncio.gather(*(self._subscribe_route(r) for r in routes)),
            max_users=bounds.reader_max_users,
            refresh_seconds=bounds.reader_refresh.total_seconds(),
        )
        # Heard before the first listing: a learner created after it began is announced
        # to this server (and read before their creds are handed out), one created
        # before it is listed.
        announcements = await hear_announcements(
            self.nc, self._switch, stack_user_names(self.settings.nsc)
        )
        self._subscriptions.append(announcements)
        await self.nc.flush()
        await self._switch.start()
        log.info(
            "%d users read on %d reader connections",
            len(self.readers.users),
            bounds.readers,
        )

    async def refresh_readers(self) -> None:
        """Subscribe users new in the NSC store, release those gone (labkit.server.reading).

        Done every LABKIT_SERVER_READER_REFRESH; tests call it at moments they pick.
        """
        if self._switch is not None:
            await self._switch.refresh()

    async def _discovery(self, msg: Msg) -> None:
        verb = services.verb_of(msg.subject)
        # Discovery answers go to an inbox only, never to a subject the asker picked.
        if msg.reply and msg.reply.startswith(f"{INBOX_PREFIX}."):
            fair_share = services.fair_share_stats(self.scheduler)
            answer = services.answer(verb, self.identity, list(self.stats.values()), fair_share)
            await msg.respond(answer)
        elif msg.reply:
            log.warning("refused a %s request: its reply subject %r is no inbox", verb, msg.reply)


async def _send(nc: Client, subject: str, data: bytes, headers: Headers | None) -> None:
    try:
        await nc.publish(subject, data, headers=headers)
    except MaxPayloadError as exc:
        raise ReplyTooLarge(
            f"the reply is {len(data)} bytes, more than this NATS server carries "
            f"({nc.max_payload} bytes): ask for less"
        ) from exc
    except NatsError as exc:
        raise ReplyNotSent(f"publishing on {subject}: {type(exc).__name__}: {exc}") from exc


async def _connect(
    servers: str | list[str], creds: str, name: str, *, reader: bool = False
) -> LaneClient:
    nc = LaneClient(turn_per_read=reader)
    await nc.connect(
        servers,
        user_credentials=RawCredentials(creds),
        inbox_prefix=f"_INBOX.{user_of(creds)}",
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # nats-py sleeps it: a float works
        # Never hear our own messages: a relayed line or a reply the server published
        # must not come back to it as a request from someone else.
        no_echo=True,
        # One line per connection problem, not nats-py's default traceback.
        error_cb=_log_connection_error,
    )
    return nc


async def _log_connection_error(exc: Exception) -> None:
    log.warning("NATS connection: %s: %s", type(exc).__name__, exc)


def _server_creds(settings: Settings) -> str:
    from labkit.nsc.wrapper import Nsc

    return Nsc.from_settings(settings).server_creds()


def _nats_urls(settings: Settings) -> list[str]:
    from labkit.discovery import nats_urls

    return nats_urls(settings)
