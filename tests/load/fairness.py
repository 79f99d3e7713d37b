"""Shared pieces of the fair-share tests: a router of their own and a user's burst."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.aio.msg import Msg

from labkit.error_replies import LABKIT_CODE_HEADER, RETRY_AFTER_HEADER
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Router

# Subjects no other server of the test run serves (the server's creds read `*.echo.>`).
ECHO = "*.echo.fair"
HELD = "*.echo.fairheld"  # waits until someone publishes on OPEN
OPEN = "*.echo.fairopen"
NAME = "fairtest"  # the service name: `$SRV.STATS.fairtest` reaches this server only
READS = "*.echo.fairreads"  # answers how many messages the server had read when it ran


def fair_router(read_count: Callable[[], int] = lambda: 0) -> Router:
    """Echo answers `<n> <message>`: n counts the requests served, in the server's order."""
    router = Router("fair")
    served = itertools.count()
    gate = asyncio.Event()

    @router.subscribe(ECHO)
    async def echo(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=f"{next(served)} {request.message}")

    @router.subscribe(HELD)
    async def held(request: EchoRequest) -> EchoResponse:
        await gate.wait()
        return EchoResponse(message=f"held {request.message}")

    @router.subscribe(READS)
    async def reads(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=str(read_count()))

    @router.subscribe(OPEN)
    async def open_gate(request: EchoRequest) -> EchoResponse:
        gate.set()
        return EchoResponse(message="open")

    return router


@dataclass
class Burst:
    """`count` requests published at once on one inbox subscription; answers counted."""

    count: int
    served: int = 0
    busy: int = 0
    other: list[str] = field(default_factory=list)
    retry_hints: set[str] = field(default_factory=set)

    @property
    def answered(self) -> int:
        return self.served + self.busy + len(self.other)

    async def fire(self, nc: Client, subject: str, count: int | None = None) -> None:
        """Publish `count` (default: all) requests on `subject`; answers arrive later."""
        inbox = f"{nc.new_inbox()}.burst"

        async def on_answer(msg: Msg) -> None:
            headers = msg.headers or {}
            code = headers.get(LABKIT_CODE_HEADER)
            if code is None:
                self.served += 1
            elif code == "busy":
                self.busy += 1
                self.retry_hints.add(headers.get(RETRY_AFTER_HEADER, ""))
            else:
                self.other.append(code)

        await nc.subscribe(f"{inbox}.*", cb=on_answer, pending_msgs_limit=10 * self.count)
        payload = EchoRequest(message="burst").SerializeToString()
        for n in range(self.count if count is None else count):
            await nc.publish(subject, payload, reply=f"{inbox}.{n}")
        await nc.flush()
