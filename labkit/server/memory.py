"""An in-memory bus that runs routers through the very same `dispatch` as the server.

    bus = MemoryBus(router)
    answer = await bus.request("alice.echo", EchoRequest(message="hi"), EchoResponse)

No NATS server, no network: for unit tests of routers and for quick experiments.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message

from labkit.error_replies import raise_for_error
from labkit.server.dispatch import Outcome, dispatch
from labkit.server.injection import Headers
from labkit.server.router import Router
from labkit.subjects import first_token, inbox_prefix, matches, persisted_reply

Response = TypeVar("Response", bound=Message)


@dataclass
class Received:
    """A message a subscriber got from the bus."""

    subject: str
    data: bytes
    headers: Headers | None = None


@dataclass
class _Subscriber:
    pattern: str
    callback: Callable[[Received], Awaitable[None]]


@dataclass
class MemoryBus:
    """Publish, subscribe and request through routers, in this process."""

    router: Router
    resources: dict[type, Any] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    _subscribers: list[_Subscriber] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def publish(self, subject: str, data: bytes, headers: Headers | None = None) -> None:
        await self._deliver(subject, data, None, headers)

    async def request(
        self,
        subject: str,
        message: Message | bytes,
        response_type: type[Response],
        timeout: float = 2.0,
    ) -> Response:
        """Send a request; raise RemoteError on an error reply, TimeoutError without one."""
        data = message if isinstance(message, bytes) else message.SerializeToString()
        # The requester's own inbox, as a real client's: the server answers nowhere else.
        inbox = f"{inbox_prefix(first_token(subject))}.{next(self._ids)}"
        answer: asyncio.Future[Received] = asyncio.get_running_loop().create_future()

        async def on_reply(received: Received) -> None:
            if not answer.done():
                answer.set_result(received)

        subscriber = _Subscriber(inbox, on_reply)
        self._subscribers.append(subscriber)
        try:
            await self._deliver(subject, data, inbox, None)
            received = await asyncio.wait_for(answer, timeout)
        finally:
            self._subscribers.remove(subscriber)
        raise_for_error(received.headers, received.data)
        return response_type.FromString(received.data)

    def subscribe(self, pattern: str) -> asyncio.Queue[Received]:
        """A queue that receives every message published on `pattern`."""
        queue: asyncio.Queue[Received] = asyncio.Queue()

        async def put(received: Received) -> None:
            queue.put_nowait(received)

        self._subscribers.append(_Subscriber(pattern, put))
        return queue

    async def _deliver(
        self, subject: str, data: bytes, reply: str | None, headers: Headers | None
    ) -> None:
        for subscriber in list(self._subscribers):
            if matches(subscriber.pattern, subject):
                await subscriber.callback(Received(subject, data, headers))
        # Like a queue group: each route serves a message once.
        for route in self.router.routes:
            if matches(route.pattern, subject):
                # A persisted route's reply goes to `<subject>.reply`, as on the server.
                answer_to = persisted_reply(subject) if route.consumer else reply
                outcome = await dispatch(
                    route, subject, data, answer_to, headers, self._send, self.resources
                )
                self.outcomes.append(outcome)

    async def _send(self, subject: str, data: bytes, headers: Headers | None) -> None:
        await self._deliver(subject, data, None, headers)
