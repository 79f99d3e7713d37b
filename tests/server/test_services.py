"""The NATS services API on the real server: discovery answers and per-endpoint stats."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nats.aio.client import Client

from labkit.client import connect_as
from labkit.labs import lab_router, lab_server
from labkit.labs.echo import send_echo
from labkit.nsc.claims import Permissions
from labkit.nsc.wrapper import Nsc
from labkit.server.dispatch import error_from
from labkit.stack import Stack

OPS = "srv-ops"
USER = "srv-alice"


async def ask(nc: Client, subject: str, instance: str, timeout: float = 2.0) -> dict[str, Any]:
    """The answer of one server instance (others on the bus may answer a broadcast too)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        await nc.publish(subject, b"", reply=inbox)
        async with asyncio.timeout(timeout):
            while True:
                answer = json.loads((await sub.next_msg(timeout=timeout)).data)
                if answer["id"] == instance:
                    return answer  # type: ignore[no-any-return]
    finally:
        await sub.unsubscribe()


def test_discovery_and_stats(running_stack: Stack) -> None:
    nsc = Nsc.from_settings(running_stack.settings)
    ops_creds = nsc.create_user(
        OPS, permissions=Permissions(publish=("$SRV.>",), subscribe=(f"_INBOX.{OPS}.>",))
    ).creds
    user_creds = nsc.create_user(USER).creds
    requests = 7

    async def scenario() -> tuple[str, dict[str, dict[str, Any]]]:
        server = lab_server(running_stack.settings)
        await server.start()
        ops = user = None
        try:
            ops = await connect_as(ops_creds, settings=running_stack.settings)
            user = await connect_as(user_creds, settings=running_stack.settings)
            instance = server.identity.id
            answers = {
                "ping": await ask(ops, "$SRV.PING", instance),
                "ping by name": await ask(ops, "$SRV.PING.labkit", instance),
                "info": await ask(ops, "$SRV.INFO.labkit", instance),
                "before": await ask(ops, "$SRV.STATS", instance),
            }
            for n in range(requests):
                assert await send_echo(user, USER, str(n)) == f"echo {n}"
            reply = await user.request(f"{USER}.echo", b"\xff", timeout=2)
            error = error_from(reply.headers, reply.data)
            assert error is not None and error.code == "invalid_payload"
            answers["after"] = await ask(ops, f"$SRV.STATS.labkit.{instance}", instance)
            return instance, answers
        finally:
            for nc in (ops, user):
                if nc is not None:
                    await nc.close()
            await server.stop()

    instance, answers = asyncio.run(scenario())
    for key, kind in [
        ("ping", "ping"),
        ("ping by name", "ping"),
        ("info", "info"),
        ("before", "stats"),
        ("after", "stats"),
    ]:
        answer = answers[key]
        assert answer["type"] == f"io.nats.micro.v1.{kind}_response"
        assert (answer["name"], answer["id"]) == ("labkit", instance)
        assert answer["version"]

    endpoints = {e["name"]: e for e in answers["info"]["endpoints"]}
    assert set(endpoints) == {route.name for route in lab_router().routes}
    assert endpoints["echo"]["subject"] == "*.echo"
    assert endpoints["echo"]["queue_group"] == running_stack.settings.server.queue

    before = {e["name"]: e for e in answers["before"]["endpoints"]}
    assert before["echo"]["num_requests"] == 0
    assert answers["after"]["started"].endswith("Z")
    after = {e["name"]: e for e in answers["after"]["endpoints"]}
    echo = after["echo"]
    assert echo["num_requests"] == requests + 1
    assert echo["num_errors"] == 1
    assert "EchoRequest" in echo["last_error"]
    assert echo["processing_time"] > 0
    assert echo["average_processing_time"] == echo["processing_time"] // (requests + 1)
    assert after["relay"]["num_requests"] == 0
    # Per user, for the instructor's dashboard: who sent how much, who got errors.
    assert echo["data"]["requests_by_user"] == {USER: requests + 1}
    assert echo["data"]["errors_by_user"] == {USER: 1}
    assert after["relay"]["data"]["requests_by_user"] == {}
