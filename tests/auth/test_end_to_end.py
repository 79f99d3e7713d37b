"""Register, log in, connect: the real nats-server enforces each user's subjects."""

from __future__ import annotations

import asyncio
import uuid

from labkit.auth.client import Login
from labkit.nsc.wrapper import Nsc
from tests.auth.conftest import PASSWORD, AuthServer
from tests.nats_helpers import observed_connection, sentinel_through, wait_until


def _learner(auth: AuthServer, name: str) -> Login:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    auth.client.register(email, PASSWORD)
    return auth.client.login(email, PASSWORD)


async def _violations(creds: str, servers: list[str], action: str, subject: str) -> list[str]:
    nc, seen = await observed_connection(creds, servers[0])
    if action == "publish":
        await nc.publish(subject, b"hello")
    else:
        await nc.subscribe(subject)
    await nc.flush()
    await wait_until(lambda: bool(seen.errors), f"the permissions violation for {subject}")
    await nc.close()
    return seen.errors


def test_own_subject_works_and_others_are_refused(auth: AuthServer) -> None:
    alice, bob = _learner(auth, "alice"), _learner(auth, "bob")

    async def own_subject() -> bytes:
        nc = await alice.connect()
        sub = await nc.subscribe(f"{alice.user_id}.echo")
        await nc.publish(f"{alice.user_id}.echo", b"mine")
        msg = await sub.next_msg(timeout=2)
        await nc.close()
        return bytes(msg.data)

    assert asyncio.run(own_subject()) == b"mine"
    creds, servers = alice.nats.creds, alice.nats.servers
    refusals = {
        ("publish", f"{bob.user_id}.echo"): "publish",
        ("subscribe", f"{bob.user_id}.echo"): "subscription",
        ("subscribe", f"_INBOX.{bob.user_id}.>"): "subscription",
        ("subscribe", "_INBOX.>"): "subscription",
        ("subscribe", ">"): "subscription",
    }
    for (action, subject), word in refusals.items():
        errors = asyncio.run(_violations(creds, servers, action, subject))
        assert any(
            f'permissions violation for {word} to "{subject.lower()}"' in e.lower() for e in errors
        ), (action, subject, errors)


def test_alices_publish_to_bobs_subject_never_reaches_bob(auth: AuthServer) -> None:
    alice, bob = _learner(auth, "alice"), _learner(auth, "bob")
    subject = f"{bob.user_id}.echo"

    async def scenario() -> tuple[list[str], int]:
        bob_nc = await bob.connect()
        bobs_echo = await bob_nc.subscribe(subject)
        await bob_nc.flush()
        alice_nc, seen = await observed_connection(alice.nats.creds, alice.nats.servers[0])
        await alice_nc.publish(subject, b"spoofed by alice")
        await wait_until(lambda: bool(seen.errors), "alice's permissions violation")
        # Bob's own sentinel follows alice's publish: had the server let it through, it is here.
        await sentinel_through(bob_nc, f"{bob.user_id}.sentinel", after=[alice_nc])
        delivered = bobs_echo.pending_msgs
        await alice_nc.close()
        await bob_nc.close()
        return seen.errors, delivered

    errors, delivered = asyncio.run(scenario())
    assert any(
        f'permissions violation for publish to "{subject.lower()}"' in e.lower() for e in errors
    )
    assert delivered == 0


def test_the_application_server_answers_through_its_response_permission(
    auth: AuthServer,
) -> None:
    alice = _learner(auth, "alice")
    server_creds = Nsc.from_settings(auth.settings).server_creds()
    url = alice.nats.servers[0]

    async def scenario() -> tuple[bytes, list[str]]:
        server, seen = await observed_connection(server_creds, url)
        requests = await server.subscribe("*.echo", queue="labkit")
        await server.flush()

        async def answer() -> None:
            msg = await requests.next_msg(timeout=2)
            assert msg.reply.startswith(f"_INBOX.{alice.user_id}.")
            await msg.respond(b"echo " + msg.data)

        task = asyncio.create_task(answer())
        nc = await alice.connect()
        reply = await nc.request(f"{alice.user_id}.echo", b"hi", timeout=2)
        await task
        # Without a request to answer, the server may not write into alice's inbox.
        await server.publish(f"_INBOX.{alice.user_id}.forged", b"spoof")
        await server.subscribe("_INBOX.>")
        await server.flush()
        await wait_until(lambda: len(seen.errors) >= 2, "both permissions violations")
        await nc.close()
        await server.close()
        return bytes(reply.data), seen.errors

    reply, errors = asyncio.run(scenario())
    assert reply == b"echo hi"
    joined = " ".join(errors).lower()
    assert f'publish to "_inbox.{alice.user_id}.forged"' in joined
    assert 'subscription to "_inbox.>"' in joined
