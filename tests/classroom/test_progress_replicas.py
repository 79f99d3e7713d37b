"""Progress reports with two application server processes (LABKIT_SERVER_REPLICAS=2)
writing one learner's records at once, and after the servers restart.

Each server remembers the records it has seen; the other one's writes and
take-backs happen behind its back. The per-learner bound must hold all the same,
and every report must be stored or refused with a clear error.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator

import pytest
from nats.aio.client import Client

from labkit.classroom.progress import my_progress, report
from labkit.client import connect_as
from labkit.error_replies import RemoteError
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.wrapper import Nsc
from labkit.protocol import ProgressReport
from labkit.stack import Stack
from tests.conftest import make_settings

MAX_EXERCISES = 5
REPLICAS = 2


def _ensure_servers(stack: Stack) -> None:
    # The server processes read the bound from the environment they start with.
    variable = "LABKIT_PROGRESS_MAX_EXERCISES_PER_USER"
    before = os.environ.get(variable)
    os.environ[variable] = str(MAX_EXERCISES)
    try:
        stack.ensure("server")
    finally:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = make_settings(
        tmp_path_factory.mktemp("progress-replicas") / "home",
        server={"replicas": REPLICAS},
        progress={"max_exercises_per_user": MAX_EXERCISES},
    )
    stack = Stack(settings)
    try:
        stack.ensure("nats", "nsc")
        _ensure_servers(stack)
        yield stack
    finally:
        stack.down()


async def _learner(stack: Stack) -> tuple[Client, str]:
    user = f"replicas{uuid.uuid4().hex[:8]}"
    creds = Nsc.from_settings(stack.settings).create_user(user).creds
    return await connect_as(creds, settings=stack.settings), user


async def _served_per_server(stack: Stack) -> list[int]:
    """Progress reports each server process has handled ($SRV.STATS, one answer each)."""
    name = f"progress-admin-{uuid.uuid4().hex[:8]}"
    permissions = permissions_from_templates(name, [">"], [">"])
    creds = Nsc.from_settings(stack.settings).create_user(name, permissions=permissions).creds
    admin = await connect_as(creds, settings=stack.settings)
    try:
        inbox = admin.new_inbox()
        sub = await admin.subscribe(inbox)
        await admin.publish("$SRV.STATS.labkit", b"", reply=inbox)
        counts = []
        for _ in range(REPLICAS):
            stats = json.loads((await sub.next_msg(timeout=10)).data)
            counts += [
                e["num_requests"] for e in stats["endpoints"] if e["name"] == "store_progress"
            ]
        return counts
    finally:
        await admin.close()


def _stored(outcomes: list[object]) -> list[ProgressReport]:
    return [o for o in outcomes if isinstance(o, ProgressReport)]


def test_the_bound_holds_with_two_servers_writing_at_once(two_servers: Stack) -> None:
    async def scenario() -> tuple[list[object], list[ProgressReport], list[object], list[int]]:
        nc, _ = await _learner(two_servers)
        try:
            # Both servers take reports of new exercises at once (the queue group
            # spreads them); each also re-reports the ones already stored.
            flood = [f"flood-{n}" for n in range(8 * MAX_EXERCISES)]
            outcomes = await asyncio.gather(
                *(report(nc, ex, False, 1, timeout=20) for ex in flood),
                return_exceptions=True,
            )
            stored = _stored(outcomes)
            again = await asyncio.gather(
                *(
                    report(nc, r.exercise_id, True, attempt, timeout=20)
                    for r in stored
                    for attempt in range(2, 6)
                ),
                return_exceptions=True,
            )
            mine = await my_progress(nc)
            served = await _served_per_server(two_servers)
            return outcomes, mine, again, served
        finally:
            await nc.close()

    outcomes, mine, again, served = asyncio.run(scenario())
    stored = _stored(outcomes)
    refused = [o for o in outcomes if isinstance(o, RemoteError)]
    assert len(stored) + len(refused) == len(outcomes), outcomes
    assert {r.code for r in refused} == {"progress_full"}
    assert 1 <= len(stored) <= MAX_EXERCISES  # both may be taken back at the bound
    # What was answered stored is what the bucket holds, never more than the bound.
    assert sorted(r.exercise_id for r in mine) == sorted(r.exercise_id for r in stored)
    # Re-reports of stored records are stored (or, for two of one exercise racing
    # on both servers past every retry, refused as busy: never lost silently).
    assert {o.code for o in again if isinstance(o, RemoteError)} <= {"progress_busy"}, again
    assert len(_stored(again)) >= len(stored)
    assert all(r.passed and r.attempts >= 2 for r in mine)  # re-reported, last one wins
    assert len(served) == REPLICAS and all(count > 0 for count in served), served


def test_new_exercises_one_at_a_time_reach_exactly_the_bound(two_servers: Stack) -> None:
    async def scenario() -> list[object]:
        nc, _ = await _learner(two_servers)
        outcomes: list[object] = []
        try:
            for n in range(3 * MAX_EXERCISES):
                try:
                    outcomes.append(await report(nc, f"lab04-ex{n}", True, 1))
                except RemoteError as exc:
                    outcomes.append(exc)
            return outcomes
        finally:
            await nc.close()

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, ProgressReport) for o in outcomes[:MAX_EXERCISES]), outcomes
    assert all(
        isinstance(o, RemoteError) and o.code == "progress_full" for o in outcomes[MAX_EXERCISES:]
    ), outcomes


def test_re_reports_work_after_the_servers_restart(two_servers: Stack) -> None:
    async def before_restart() -> tuple[str, list[ProgressReport]]:
        nc, user = await _learner(two_servers)
        try:
            for n in range(MAX_EXERCISES):
                await report(nc, f"lab05-ex{n}", False, 1)
            return user, await my_progress(nc)
        finally:
            await nc.close()

    user, first = asyncio.run(before_restart())
    creds = Nsc.from_settings(two_servers.settings).create_user(user).creds
    two_servers.down("server")
    _ensure_servers(two_servers)  # servers that remember nothing

    async def after_restart() -> tuple[list[ProgressReport], RemoteError, list[ProgressReport]]:
        nc = await connect_as(creds, settings=two_servers.settings)
        try:
            again = [
                await report(nc, f"lab05-ex{n}", True, attempt)
                for attempt in (2, 3)
                for n in range(MAX_EXERCISES)
            ]
            with pytest.raises(RemoteError) as refused:
                await report(nc, "lab06-ex1", True, 1)
            return again, refused.value, await my_progress(nc)
        finally:
            await nc.close()

    again, refused, mine = asyncio.run(after_restart())
    assert len(first) == MAX_EXERCISES
    assert len(again) == 2 * MAX_EXERCISES
    assert refused.code == "progress_full"
    assert {r.exercise_id: (r.passed, r.attempts) for r in mine} == {
        f"lab05-ex{n}": (True, 3) for n in range(MAX_EXERCISES)
    }
