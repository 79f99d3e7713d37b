"""Losing a NATS node mid-burst: every request has exactly one stored reply, the echo.

A 3-node cluster (`labkit up --cluster 3` machinery), the lab server in this process,
a learner publishing 300 stream echo requests with Nats-Msg-Id and retries, and one
node SIGKILLed after the first 100 were acknowledged: the stream's leader in even
trials, another node in odd ones. Then every acknowledged request must have exactly
one reply in its slot, the correct echo, and nothing else may be stored for the user.

All trials run behind the `soak` marker (`make soak`, which CI runs after `make test`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError

from labkit.labs.stream_echo import SERVER_CONSUMER, request_subject
from labkit.protocol import EchoRequest
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import ECHO_STREAM_NAME
from tests.conftest import make_settings
from tests.security.helpers import (
    connect_admin,
    connect_user,
    describe,
    replies_by_slot,
    serving,
    slot_of,
    unique_user,
)

NODES = ["nats", "nats#2", "nats#3"]
TOTAL, KILL_AFTER, WINDOW = 300, 100, 25
# Generous: a leader election takes 4-8 s here, and a reply whose store failed is
# retried after 1, 2, 4 ... s; a lost nak waits out the ack wait (30 s).
SETTLE_TIMEOUT = 180


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("node-loss") / "home"
    nats_settings: dict[str, Any] = {
        "port": 0,
        "monitor_port": 0,
        "cluster_port": 0,
        "cluster_size": 3,
    }
    stack = Stack(make_settings(home, nats=nats_settings))
    stack.ensure("nats", "nsc")
    yield stack
    stack.down()


async def publish_until_acked(nc: Client, user: str, number: int, deadline: float) -> int:
    """Publish request `number`, retrying on failure; its Nats-Msg-Id makes retries safe."""
    js = nc.jetstream()
    payload = EchoRequest(message=f"m{number}").SerializeToString()
    while True:
        try:
            ack = await js.publish(
                request_subject(user),
                payload,
                timeout=1.0,
                headers={"Nats-Msg-Id": f"{user}-{number}"},
            )
            return int(ack.seq)
        except (TimeoutError, NatsError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def stream_leader(admin: Client) -> str:
    info = await admin.jetstream().stream_info(ECHO_STREAM_NAME)
    assert info.cluster is not None and info.cluster.leader
    return str(info.cluster.leader)


async def one_trial(stack: Stack, settings: Settings, kill_leader: bool) -> dict[str, Any]:
    user = unique_user("node-loss")
    records = {name: stack.record(name) for name in NODES}
    nc = await connect_user(settings, user, reconnect_time_wait=0.1, max_reconnect_attempts=-1)
    admin = await connect_admin(settings)
    try:
        async with serving(settings):
            leader = await stream_leader(admin)
            by_server = {records[name]["server_name"]: name for name in NODES}
            victim = (
                by_server[leader]
                if kill_leader
                else next(name for name in NODES if name != by_server[leader])
            )
            acked: dict[int, int] = {}
            deadline = time.monotonic() + 120
            for start in range(0, TOTAL, WINDOW):
                if start == KILL_AFTER:
                    os.kill(records[victim]["pid"], signal.SIGKILL)
                numbers = range(start, min(start + WINDOW, TOTAL))
                sequences = await asyncio.gather(
                    *(publish_until_acked(nc, user, n, deadline) for n in numbers)
                )
                acked.update(zip(numbers, sequences, strict=True))
            expected = {slot_of(seq): f"echo m{n} from {user}" for n, seq in acked.items()}
            await _read_slots(admin, user, lambda slots: set(expected) <= set(slots))
            # Anything stored after the last reply would be a second answer: look again
            # once the server has settled everything it holds.
            await _all_settled(admin)
            slots = await _read_slots(admin, user, lambda slots: True)
        return {
            "victim": victim,
            "distinct_sequences": len(set(acked.values())),
            "expected": expected,
            "stored": {
                slot: [describe(reply) for reply in replies] for slot, replies in slots.items()
            },
        }
    finally:
        await nc.close()
        await admin.close()
        stack.ensure("nats")  # the killed node back, caught up with its peers


async def _read_slots(
    admin: Client, user: str, enough: Callable[[dict[str, list[Any]]], bool]
) -> dict[str, list[Any]]:
    """The user's replies by slot, read again until `enough` (and the cluster answers)."""
    async with asyncio.timeout(SETTLE_TIMEOUT):
        while True:
            try:
                slots = await replies_by_slot(admin, user)
                if enough(slots):
                    return slots
            except (TimeoutError, NatsError):  # the cluster (or this connection) settling
                pass
            await asyncio.sleep(0.5)


async def _all_settled(admin: Client) -> None:
    async with asyncio.timeout(SETTLE_TIMEOUT):
        while True:
            try:
                info = await admin.jetstream().consumer_info(ECHO_STREAM_NAME, SERVER_CONSUMER)
                if info.num_ack_pending == 0 and info.num_pending == 0:
                    return
            except (TimeoutError, NatsError):
                pass
            await asyncio.sleep(0.5)


def check_trial(result: dict[str, Any]) -> None:
    assert result["distinct_sequences"] == TOTAL  # each request stored once
    expected, stored = result["expected"], result["stored"]
    wrong = {slot: stored.get(slot) for slot in expected if stored.get(slot) != [expected[slot]]}
    assert wrong == {}, f"{len(wrong)} slots without exactly the echo (victim {result['victim']})"
    assert set(stored) == set(expected)  # nothing else stored for the user


def run_trial(cluster: Stack, trial: int) -> None:
    result = asyncio.run(one_trial(cluster, cluster.settings, kill_leader=trial % 2 == 0))
    print(f"trial {trial}: killed {result['victim']}, {len(result['stored'])} replies checked")
    check_trial(result)


@pytest.mark.soak  # a 3-node cluster per trial: `make soak` (CI runs it) has 20 more
@pytest.mark.parametrize("trial", range(1))
def test_a_node_lost_mid_burst_leaves_exactly_one_echo_per_request(
    cluster: Stack, trial: int
) -> None:
    run_trial(cluster, trial)


@pytest.mark.soak
@pytest.mark.parametrize("trial", range(20))
def test_soak_twenty_node_losses(cluster: Stack, trial: int) -> None:
    run_trial(cluster, trial)
