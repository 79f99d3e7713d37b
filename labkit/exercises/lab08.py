"""Exercises of notebook 08 (scaling out): replicas in a queue group, a majority to predict.

The first check runs the learner's replica twice on the stack's real NATS server and
counts, on each replica's own connection, the requests it received; a flush on that
connection is the sentinel (the server answers it only after everything it had queued
for that connection), so a request delivered to both replicas is always counted. The
second one is pure arithmetic, checked without IO.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import nats.errors
from nats.aio.client import Client

from labkit.client import connect_as
from labkit.exercises.base import (
    AsyncExercise,
    NotYet,
    SyncExercise,
    await_learner,
    call_learner,
    kind_of,
)
from labkit.exercises.live import (
    ALICE,
    EXERCISE_SERVER,
    EXERCISE_SERVER_PERMISSIONS,
    connect_learner,
)
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import user_subject

# What the replicas serve: every user's `<user>.echo.scaled`.
SCALED_ECHO = "echo.scaled"
REPLICAS = ("replica-1", "replica-2")
REQUESTS = 40
REQUEST_TIMEOUT = 2.0


@asynccontextmanager
async def _replica_connections(settings: Settings) -> AsyncIterator[list[Client]]:
    """One connection per replica, as the exercises' server user (it reads `*.echo.>`)."""
    # On the cell's own (main) thread: a component started from a worker thread cannot
    # be tied to the kernel (the parent-death signal follows the thread that forks).
    Stack(settings).ensure("nats")
    creds = (
        Nsc.from_settings(settings)
        .issue_stack_user(EXERCISE_SERVER, EXERCISE_SERVER_PERMISSIONS)
        .creds
    )
    async with AsyncExitStack() as stack:
        connections = []
        for replica in REPLICAS:
            nc = await connect_as(
                creds, settings=settings, allow_reconnect=False, name=f"exercise {replica}"
            )
            stack.push_async_callback(nc.close)
            connections.append(nc)
        yield connections


class ScaledEcho(AsyncExercise):
    number = 1
    title = "Replicas that share the load"
    answer_name = "serve_echo"
    prompt = (
        "Write `serve_echo(nc, replica)`, one replica of an echo service: subscribe to every "
        f"user's `{SCALED_ECHO}` (the pattern `*.{SCALED_ECHO}`) and answer each request "
        "with the bytes `echo <request text> from <replica>`; return the subscription. The "
        f"check starts it twice ({', '.join(REPLICAS)}), each on a connection of its own, "
        f"sends {REQUESTS} requests, and counts what each replica received: every request "
        "must reach exactly one replica, and both must take part."
    )
    placeholder_code = (
        "from nats.aio.client import Client\n"
        "from nats.aio.subscription import Subscription\n"
        "\n"
        "\n"
        "async def serve_echo(nc: Client, replica: str) -> Subscription:\n"
        "    return ____  # a subscription whose callback answers each request"
    )
    hint_text = (
        "`await nc.subscribe(subject, queue=..., cb=answer)`: subscribers that give the same "
        "`queue` name share the messages, each message goes to one of them. In `answer(msg)`, "
        "`await msg.respond(...)` replies; `msg.data.decode()` is the request text."
    )
    solution_code = f"""\
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription


async def serve_echo(nc: Client, replica: str) -> Subscription:
    async def answer(msg: Msg) -> None:
        await msg.respond(f"echo {{msg.data.decode()}} from {{replica}}".encode())

    # One queue group: each request goes to one replica, whichever NATS picks.
    return await nc.subscribe("*.{SCALED_ECHO}", queue="echo-replicas", cb=answer)
"""

    async def verify(self, answer: object) -> str:
        subject = user_subject(ALICE, SCALED_ECHO)
        async with (
            _replica_connections(self.settings) as connections,
            connect_learner(self.settings, ALICE) as alice,
        ):
            for nc, replica in zip(connections, REPLICAS, strict=True):
                subscription = await await_learner(
                    answer, nc, replica, what=f"serve_echo(nc, {replica!r})"
                )
                if not hasattr(subscription, "unsubscribe"):
                    raise NotYet(
                        f"serve_echo returned {kind_of(subscription)}; return the "
                        "subscription `nc.subscribe(...)` gives"
                    )
                await nc.flush()
            texts = [f"request {n}" for n in range(REQUESTS)]
            # A second round when one replica got nothing: nats-server was seen (once, on
            # a busy machine) to route all of a first round to one member although both
            # subscriptions were flushed; a real queue group gives one replica all 40
            # twice in a row with odds of 1 in 2^78, an answer without one every time.
            for _round in range(2):
                replies, received = await _one_round(alice.nc, subject, texts, connections)
                if min(received) > 0 or sum(received) > REQUESTS:
                    break
        for text, reply in zip(texts, replies, strict=True):
            if reply not in (f"echo {text} from {replica}" for replica in REPLICAS):
                raise NotYet(
                    f"`{text}` got the reply {reply!r}; expected `echo {text} from <replica>`, "
                    f"<replica> being {' or '.join(REPLICAS)}"
                )
        counts = ", ".join(f"{r} {n}" for r, n in zip(REPLICAS, received, strict=True))
        if sum(received) > REQUESTS:
            raise NotYet(
                f"{REQUESTS} requests, but the replicas received {sum(received)} ({counts}): a "
                "request reached more than one replica; how do subscribers share messages "
                "instead of each getting a copy?"
            )
        if min(received) == 0:
            raise NotYet(f"only one replica took part ({counts}); both should share the load")
        return f"each of the {REQUESTS} requests reached exactly one replica ({counts})"


async def _one_round(
    alice: Client, subject: str, texts: list[str], replicas: list[Client]
) -> tuple[list[str], list[int]]:
    """alice's replies to `texts`, and how many requests each replica received meanwhile."""
    received_before = [nc.stats["in_msgs"] for nc in replicas]
    replies = await asyncio.gather(*(_ask(alice, subject, text) for text in texts))
    # The sentinel: once each replica's own flush returns, it has received every
    # request the server had routed to it before.
    for nc in replicas:
        await nc.flush()
    received = [
        nc.stats["in_msgs"] - before for nc, before in zip(replicas, received_before, strict=True)
    ]
    return list(replies), received


async def _ask(nc: Client, subject: str, text: str) -> str:
    try:
        msg = await nc.request(subject, text.encode(), timeout=REQUEST_TIMEOUT)
    except nats.errors.NoRespondersError:
        raise NotYet(f"nobody is subscribed to `{subject}`, so nothing answered") from None
    except (TimeoutError, nats.errors.TimeoutError):
        raise NotYet(
            f"`{text}` on `{subject}` got no reply within {REQUEST_TIMEOUT:g} s: does the "
            "callback `respond`?"
        ) from None
    return msg.data.decode(errors="replace")


class Majority(SyncExercise):
    number = 2
    title = "How many nodes may die"
    answer_name = "nodes_that_may_fail"
    prompt = (
        "A JetStream stream with `replicas` copies, one per node, acknowledges a write once "
        "a majority of its copies has stored it. Write `nodes_that_may_fail(replicas)`: how "
        "many of those nodes may be down at once while the stream still accepts writes. "
        "The check tries 1 to 7 replicas."
    )
    placeholder_code = (
        "def nodes_that_may_fail(replicas: int) -> int:\n"
        "    return ____  # nodes that may be down while writes still succeed"
    )
    hint_text = (
        "A majority of n is more than half of it: n // 2 + 1 nodes must still run. "
        "The rest may be down."
    )
    solution_code = """\
def nodes_that_may_fail(replicas: int) -> int:
    # A write needs a majority (replicas // 2 + 1) of the copies; the rest may be down.
    return replicas - (replicas // 2 + 1)
"""

    def verify(self, answer: object) -> str:
        for replicas in range(1, 8):
            got = call_learner(answer, replicas, what=f"nodes_that_may_fail({replicas})")
            if not isinstance(got, int) or isinstance(got, bool):
                raise NotYet(
                    f"nodes_that_may_fail({replicas}) returned {kind_of(got)}; return an int"
                )
            majority = replicas // 2 + 1
            if got != replicas - majority:
                raise NotYet(
                    f"nodes_that_may_fail({replicas}) returned {got}; with {replicas} "
                    f"copies, how many must still run to make a majority, and how many "
                    "does that leave?"
                )
        return (
            "1 replica tolerates no failure, 3 tolerate 1, 5 tolerate 2; and an even number "
            "buys nothing over the odd one below it (4 tolerate 1, like 3)"
        )


ex1 = ScaledEcho()
ex2 = Majority()
EXERCISES = (ex1, ex2)
