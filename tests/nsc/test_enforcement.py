"""The real nats-server enforces what the NSC wrapper issues (operator mode)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import requests

from labkit.nsc import claims, jwt, keys
from labkit.nsc.creds import format_creds
from labkit.nsc.keys import KeyKind
from labkit.nsc.wrapper import Nsc
from labkit.stack import Stack
from tests.nats_helpers import (
    assert_connect_refused,
    observed_connection,
    sentinel_through,
    wait_until,
)


@pytest.fixture
def nsc(running_stack: Stack) -> Nsc:
    return Nsc.from_settings(running_stack.settings)


@pytest.fixture
def nats_url(running_stack: Stack) -> str:
    return running_stack.url("nats")


def test_user_creds_connect_and_use_own_subjects(nsc: Nsc, nats_url: str) -> None:
    creds = nsc.create_user("enf-alice").creds

    async def scenario() -> bytes:
        nc, seen = await observed_connection(creds, nats_url)
        sub = await nc.subscribe("enf-alice.echo")
        await nc.publish("enf-alice.echo", b"hello")
        msg = await sub.next_msg(timeout=2)
        await nc.close()
        assert seen.errors == []
        return bytes(msg.data)

    assert asyncio.run(scenario()) == b"hello"


def test_publish_outside_allow_list_is_refused_by_the_server(nsc: Nsc, nats_url: str) -> None:
    alice = nsc.create_user("enf-pub-alice").creds
    bob = nsc.create_user("enf-pub-bob").creds

    async def scenario() -> tuple[list[str], int]:
        bob_nc, _ = await observed_connection(bob, nats_url)
        received = await bob_nc.subscribe("enf-pub-bob.echo")
        await bob_nc.flush()
        alice_nc, seen = await observed_connection(alice, nats_url)
        await alice_nc.publish("enf-pub-bob.echo", b"spoofed")
        await wait_until(lambda: bool(seen.errors), "alice's permissions violation")
        # Bob's sentinel comes after alice's publish: had it been delivered, it is here now.
        await sentinel_through(bob_nc, "enf-pub-bob.sentinel", after=[alice_nc])
        delivered = received.pending_msgs
        await alice_nc.close()
        await bob_nc.close()
        return seen.errors, delivered

    errors, delivered = asyncio.run(scenario())
    assert any('permissions violation for publish to "enf-pub-bob.echo"' in e for e in errors)
    assert delivered == 0


def test_subscribe_to_another_users_inbox_is_refused(nsc: Nsc, nats_url: str) -> None:
    creds = nsc.create_user("enf-sub-alice").creds

    async def scenario() -> list[str]:
        nc, seen = await observed_connection(creds, nats_url)
        await nc.subscribe("_INBOX.>")
        await nc.flush()
        await wait_until(lambda: bool(seen.errors), "the permissions violation")
        await nc.close()
        return seen.errors

    errors = asyncio.run(scenario())
    assert any('permissions violation for subscription to "_inbox.>"' in e.lower() for e in errors)


def _expired_creds(nsc: Nsc, name: str) -> str:
    """Creds whose JWT expired a minute ago, signed like the wrapper signs."""
    account_claims = jwt.decode(nsc.read_account_jwt())
    signing_key = account_claims["nats"]["signing_keys"][0]
    user_seed = keys.create_seed(KeyKind.USER)
    body = claims.user_claims(
        name,
        keys.public_key(user_seed),
        claims.Permissions(publish=(f"{name}.>",), subscribe=(f"{name}.>",)),
        expires_at=datetime.now(UTC) - timedelta(minutes=1),
        issuer_account=account_claims["sub"],
    )
    return format_creds(jwt.encode(body, nsc.store.seed(signing_key)), user_seed)


def test_expired_user_jwt_is_refused_at_connect(nsc: Nsc, nats_url: str) -> None:
    creds = _expired_creds(nsc, "enf-expired")

    assert_connect_refused(nats_url, creds)


def test_same_signing_path_with_future_expiry_connects(nsc: Nsc, nats_url: str) -> None:
    # Guards the expiry test above: only the expiry differs from a working user.
    issued = nsc.create_user("enf-fresh", expires_in=timedelta(minutes=5))
    assert issued.expires_at is not None

    async def scenario() -> bool:
        nc, _ = await observed_connection(issued.creds, nats_url)
        connected: bool = nc.is_connected
        await nc.close()
        return connected

    assert asyncio.run(scenario())


def test_revoked_user_is_disconnected_within_a_second(
    nsc: Nsc, nats_url: str, running_stack: Stack
) -> None:
    creds = nsc.create_user("enf-revoked").creds
    service = running_stack.url("nsc")
    token = running_stack.settings.paths.nsc_token_file.read_text().strip()

    async def scenario() -> list[str]:
        nc, seen = await observed_connection(creds, nats_url)
        assert nc.is_connected
        response = await asyncio.to_thread(
            requests.post,
            f"{service}/revoke",
            json={"name": "enf-revoked"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.json()["pushed"] is True
        await asyncio.wait_for(seen.closed.wait(), timeout=1.0)
        return [*seen.errors, str(nc.last_error)]

    errors = asyncio.run(scenario())
    assert any("revoked" in e.lower() for e in errors), errors

    assert_connect_refused(nats_url, creds)

    # The name can be issued again: a new key the revocation does not cover.
    again = nsc.create_user("enf-revoked")

    async def connect_again() -> bool:
        nc, _ = await observed_connection(again.creds, nats_url)
        ok: bool = nc.is_connected
        await nc.close()
        return ok

    assert asyncio.run(connect_again())
