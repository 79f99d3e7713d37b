"""LABKIT_SERVER_MAX_IN_FLIGHT bounds the handlers one server runs at once (real NATS).

Handlers block until the test releases them and count how many are inside at
once. More requests than the bound are sent; once exactly the bound are inside,
a sentinel ($SRV.PING, which the server answers outside the bound) is sent on
the same connection: when its answer is back, the server has been handed every
request before it, so one more handler would be inside by then if the bound let it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest

import labkit.labs
from labkit.client import connect_as
from labkit.labs import lab_server
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Router, Server
from labkit.settings import Settings
from labkit.stack import Stack
from tests.conftest import make_settings
from tests.nats_helpers import wait_until

BOUND = 3
REQUESTS = 3 * BOUND
USER = "inflight-admin"  # may publish the requests and the $SRV.PING sentinel alike
HOLD = "*.echo.held"  # a subject no other server of the test run serves


@dataclass
class Gate:
    """Handlers wait here until released; counts who is inside."""

    release: asyncio.Event
    inside: int = 0
    most_inside: int = 0
    entered: int = 0

    def router(self) -> Router:
        router = Router("held")

        @router.subscribe(HOLD)
        async def held(request: EchoRequest) -> EchoResponse:
            self.inside += 1
            self.entered += 1
            self.most_inside = max(self.most_inside, self.inside)
            try:
                await self.release.wait()
            finally:
                self.inside -= 1
            return EchoResponse(message=f"held {request.message}")

        return router


def plain_server(router: Router, settings: Settings) -> Server:
    return Server(router, settings=settings, queue="inflight-test")


def the_lab_server(router: Router, settings: Settings) -> Server:
    # The server the stack runs, with the held route added to every lab's routes.
    with pytest.MonkeyPatch.context() as patch:
        labs = labkit.labs.lab_router()
        labs.include_router(router)
        patch.setattr(labkit.labs, "lab_router", lambda: labs)
        return lab_server(settings, queue="inflight-test")


@pytest.mark.parametrize("build", [plain_server, the_lab_server], ids=["Server", "lab_server"])
def test_the_setting_bounds_the_handlers_running_at_once(
    running_stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    build: Callable[[Router, Settings], Server],
) -> None:
    monkeypatch.setenv("LABKIT_SERVER_MAX_IN_FLIGHT", str(BOUND))
    settings = make_settings(running_stack.settings.home)
    assert settings.server.max_in_flight == BOUND
    permissions = permissions_from_templates(USER, [">"], [">"])
    creds = Nsc.from_settings(settings).create_user(USER, permissions=permissions).creds

    async def scenario() -> tuple[int, int, list[str], Gate]:
        gate = Gate(asyncio.Event())
        server = build(gate.router(), settings)
        await server.start()
        nc = await connect_as(creds, settings=settings)
        try:
            calls = [
                asyncio.create_task(
                    nc.request(
                        f"{USER}.echo.held", EchoRequest(message=str(n)).SerializeToString(), 20
                    )
                )
                for n in range(REQUESTS)
            ]
            await wait_until(lambda: gate.inside >= BOUND, f"{BOUND} handlers inside")
            identity = server.identity
            await nc.request(f"$SRV.PING.{identity.name}.{identity.id}", b"", timeout=10)
            inside_after_sentinel = gate.inside
            gate.release.set()
            replies = await asyncio.gather(*calls)
            answers = [EchoResponse.FromString(reply.data).message for reply in replies]
            return inside_after_sentinel, gate.most_inside, answers, gate
        finally:
            gate.release.set()
            await nc.close()
            await server.stop()

    inside, most_inside, answers, gate = asyncio.run(scenario())
    assert inside == BOUND  # exactly the bound inside while more requests waited
    assert most_inside == BOUND
    assert answers == [f"held {n}" for n in range(REQUESTS)]  # the rest waited, none lost
    assert gate.entered == REQUESTS
