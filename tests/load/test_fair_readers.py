"""Reader connections: bob's request is read before alice's burst is (real NATS, real process).

With LABKIT_SERVER_READERS each user's route subjects are read on a connection of
their own, so a request bob sends after alice's 20,000 does not wait in the same
socket behind all of hers. To make "after" exact, the server process is paused
(SIGSTOP) while alice publishes her burst and bob his request, and resumed once the
NATS server has taken both: everything then waits for the server at once, alice's
burst first. No timing is asserted: the server's answer to bob says how many
messages it had read when it served him, and alice's answers are counted when his
arrives. With one connection for all (READERS=0) bob's request is read after every
one of alice's: the read count is then past her whole burst.
"""

from __future__ import annotations

import asyncio
import os
import signal

from labkit.client import connect_as
from labkit.error_replies import raise_for_error
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.stack import Stack
from tests.conftest import make_settings
from tests.load.conftest import StartServer
from tests.load.fairness import Burst
from tests.nats_helpers import wait_until

ALICE, BOB = "fair-readers-alice", "fair-readers-bob"
BURST = 20_000
GENEROUS = 60.0  # seconds: a bound for a stuck test, not a speed claim


def test_bobs_request_is_read_and_answered_while_alices_burst_is_still_being_read(
    running_stack: Stack, fair_server: StartServer
) -> None:
    settings = make_settings(running_stack.settings.home)
    nsc = Nsc.from_settings(settings)
    # Users that exist when the server starts get their reader at once.
    alice_creds, bob_creds = nsc.create_user(ALICE).creds, nsc.create_user(BOB).creds
    server = fair_server(READERS=4)

    async def scenario() -> tuple[int, int, Burst]:
        alice = await connect_as(alice_creds, settings=settings)
        bob = await connect_as(bob_creds, settings=settings)
        burst = Burst(BURST)
        answered_when_bob_was: list[int] = []
        try:
            inbox = bob.new_inbox()
            answers = await bob.subscribe(inbox)
            await bob.flush()
            os.kill(server.pid, signal.SIGSTOP)
            try:
                await burst.fire(alice, f"{ALICE}.echo.fair")  # flushed: NATS has all of it
                payload = EchoRequest(message="bob").SerializeToString()
                await bob.publish(f"{BOB}.echo.fairreads", payload, reply=inbox)
                await bob.flush()  # and bob's request, sent after her whole burst
            finally:
                os.kill(server.pid, signal.SIGCONT)
            reply = await answers.next_msg(timeout=GENEROUS)
            answered_when_bob_was.append(burst.answered)
            raise_for_error(reply.headers, reply.data)
            read = int(EchoResponse.FromString(reply.data).message)
            await wait_until(lambda: burst.answered == BURST, "every burst answer", GENEROUS)
        finally:
            await alice.close()
            await bob.close()
        return read, answered_when_bob_was[0], burst

    read, answered_before_bob, burst = asyncio.run(scenario())
    # Bob's request was read and served before the server had read alice's whole burst,
    # and answered before her last answer.
    assert read < BURST, f"the server had read {read} messages when it served bob"
    assert answered_before_bob < BURST
    # Nothing of hers lost or doubled: each request answered once, served or busy.
    assert burst.other == []
    assert burst.answered == BURST
