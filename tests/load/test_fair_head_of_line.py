"""One learner's burst does not hold another's requests behind it (real NATS, real process).

Alice publishes 20,000 requests at once. Once they are all on their way, bob asks,
one request at a time. No timing is asserted: only who is answered, and when in
terms of the other's answers.

- Held: alice's handlers wait until the test opens a gate. A server that serves in
  arrival order fills every handler slot with hers and leaves bob's request behind
  the rest of her burst: bob times out. With fair scheduling alice holds at most her
  own bound of handlers and queue, the rest of her burst is answered `busy`, and bob
  is served while every one of her handlers still waits.
- Echo: alice's burst is served as fast as the server can; bob keeps asking until
  alice has every answer, and none of his requests may time out.
"""

from __future__ import annotations

import asyncio

from labkit.client import connect_as
from labkit.error_replies import raise_for_error
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.settings import ServerSettings
from labkit.stack import Stack
from tests.conftest import make_settings
from tests.load.conftest import StartServer
from tests.load.fairness import Burst
from tests.nats_helpers import wait_until

ALICE, BOB = "fair-hol-alice", "fair-hol-bob"
BURST = 20_000
BOB_ASKS = 20
GENEROUS = 10.0  # seconds per request of bob's: a bound for a stuck test, not a speed claim
DEFAULTS = ServerSettings()
# Alice's requests the server holds for her at once: her handlers and her queue.
HELD = DEFAULTS.user_max_in_flight + DEFAULTS.user_max_queued


def users(stack: Stack) -> tuple[str, str]:
    nsc = Nsc.from_settings(make_settings(stack.settings.home))
    return nsc.create_user(ALICE).creds, nsc.create_user(BOB).creds


async def ask_as_bob(bob: object, n: int) -> int:
    """One echo request of bob's; the server's order number of its answer."""
    reply = await bob.request(  # type: ignore[attr-defined]
        f"{BOB}.echo.fair", EchoRequest(message=f"bob{n}").SerializeToString(), timeout=GENEROUS
    )
    raise_for_error(reply.headers, reply.data)
    order, message = EchoResponse.FromString(reply.data).message.split()
    assert message == f"bob{n}"
    return int(order)


def test_bob_is_served_while_alices_burst_holds_every_handler_she_may_have(
    running_stack: Stack, fair_server: StartServer
) -> None:
    fair_server()
    settings = make_settings(running_stack.settings.home)
    alice_creds, bob_creds = users(running_stack)

    async def scenario() -> tuple[Burst, int]:
        alice = await connect_as(alice_creds, settings=settings)
        bob = await connect_as(bob_creds, settings=settings)
        burst = Burst(BURST)
        try:
            await burst.fire(alice, f"{ALICE}.echo.fairheld")
            for n in range(BOB_ASKS):
                await ask_as_bob(bob, n)
            served_while_bob_asked = burst.served
            # Bob may be read before the end of her burst (reader connections): open
            # only once the server has read all of it, every one past her bounds
            # answered busy (never, were her bounds not kept while she holds them).
            await wait_until(
                lambda: burst.busy + len(burst.other) >= BURST - HELD,
                "a busy answer to every request past her bounds",
                60,
            )
            await bob.request(f"{BOB}.echo.fairopen", b"", timeout=GENEROUS)
            await wait_until(lambda: burst.answered == BURST, "every burst answer", 60)
        finally:
            await alice.close()
            await bob.close()
        return burst, served_while_bob_asked

    burst, served_while_bob_asked = asyncio.run(scenario())
    assert served_while_bob_asked == 0  # bob was served while all of alice's waited
    assert burst.other == []
    # Alice had her handlers and her queue; the rest was answered busy, with a hint.
    assert burst.served == HELD
    assert burst.busy == BURST - burst.served
    assert burst.retry_hints == {str(round(DEFAULTS.busy_retry_after.total_seconds() * 1000))}


def test_bob_is_served_during_alices_echo_burst(
    running_stack: Stack, fair_server: StartServer
) -> None:
    fair_server()
    settings = make_settings(running_stack.settings.home)
    alice_creds, bob_creds = users(running_stack)

    async def scenario() -> tuple[Burst, int]:
        alice = await connect_as(alice_creds, settings=settings)
        bob = await connect_as(bob_creds, settings=settings)
        burst = Burst(BURST)
        asked = 0
        try:
            await burst.fire(alice, f"{ALICE}.echo.fair")
            while burst.answered < BURST:
                await ask_as_bob(bob, asked)  # none may time out
                asked += 1
            await wait_until(lambda: burst.answered == BURST, "every burst answer", 60)
        finally:
            await alice.close()
            await bob.close()
        return burst, asked

    burst, asked = asyncio.run(scenario())
    assert asked >= 1
    assert burst.other == []
    assert burst.answered == BURST  # every request answered: served or busy, none lost
    assert burst.busy > 0  # past her queue bound alice is told to retry, not queued
    assert burst.served >= DEFAULTS.user_max_queued
