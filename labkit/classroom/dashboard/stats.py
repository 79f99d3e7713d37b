"""Per-learner request and error counts: every application server's `$SRV.STATS`, summed.

Each replica answers `$SRV.STATS.<service>` for itself (the NATS services API), so the
dashboard sends one request and gathers every answer that arrives: it waits up to
FIRST_ANSWER_WAIT for the first, then GATHER_WAIT for the other replicas. Counts come
from each endpoint's `data` section (`requests_by_user`, `errors_by_user`, `busy_by_user`).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from labkit.server.services import SRV_PREFIX

SERVICE_NAME = "labkit"
FIRST_ANSWER_WAIT = 2.0
GATHER_WAIT = 0.25


@dataclass
class ClassStats:
    """Counts per learner over every replica that answered."""

    servers: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    busy: Counter[str] = field(default_factory=Counter)


def sum_stats(answers: Iterable[Mapping[str, Any]]) -> ClassStats:
    """Add up the per-user counts of `$SRV.STATS` answers (one per replica)."""
    stats = ClassStats()
    for answer in answers:
        if answer.get("type") != "io.nats.micro.v1.stats_response":
            continue
        stats.servers += 1
        for endpoint in answer.get("endpoints") or []:
            data = endpoint.get("data") or {}
            for counter, key in (
                (stats.requests, "requests_by_user"),
                (stats.errors, "errors_by_user"),
                (stats.busy, "busy_by_user"),
            ):
                for user, count in (data.get(key) or {}).items():
                    if isinstance(count, int):
                        counter[str(user)] += count
    return stats


async def gather_stats(nc: Client, service: str = SERVICE_NAME) -> ClassStats:
    """Ask every replica of `service` for its stats and sum the answers."""
    answers: list[dict[str, Any]] = []
    first = asyncio.Event()

    async def on_answer(msg: Msg) -> None:
        try:
            body = json.loads(msg.data)
        except ValueError:
            return
        if isinstance(body, dict):
            answers.append(body)
            first.set()

    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox, cb=on_answer)
    try:
        await nc.publish(f"{SRV_PREFIX}.STATS.{service}", b"", reply=inbox)
        try:
            await asyncio.wait_for(first.wait(), FIRST_ANSWER_WAIT)
        except TimeoutError:
            return sum_stats(answers)  # no server runs: nothing to count
        await asyncio.sleep(GATHER_WAIT)  # the other replicas' answers
    finally:
        await subscription.unsubscribe()
    return sum_stats(answers)
