"""How fast is the stream echo: a request stored in JetStream, a reply stored and read back?

Starts a throwaway stack in a temporary data directory on free ports: nats-server and
the application server (`python -m labkit.server`, the stack's `server` component, a
process of its own), then measures as a learner would see it:

- round trip, direct: `publish_request` (JetStream publish, wait for the ack), then
  the reply read from the learner's durable consumer `reply-<user>` (fetch, ack).
  One request at a time (`--requests`, default 500): median and p99.
- the same with a `Nats-Msg-Id` on each request, as the outbox sends them (the
  server stores each reply on a subject of that id's, only if it is empty).
- round trip, through the outbox: `StreamEchoClient.send` (save in the SQLite outbox
  with a disk sync, publish with ack, delete), then the reply as above.
- 100 in flight: `--pipelined` requests (default 3000), at most 100 sent and not yet
  answered at any time; requests/s from the first send to the last reply read.

Every reply is checked: one per request, with the right text. Everything the
benchmark started is stopped at the end.

    .venv/bin/python bench/bench_stream_echo.py [--requests 500] [--pipelined 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from nats.aio.client import Client

from labkit.buffer import Buffer
from labkit.client import connect_as
from labkit.labs.stream_echo import (
    StreamEchoClient,
    StreamEchoReplies,
    publish_request,
    request_subject,
)
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.stack import Stack

USER = "bench-stream"
IN_FLIGHT = 100
WARMUP = 20
REPLY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Row:
    name: str
    count: int
    median_ms: float | None
    p99_ms: float | None
    per_second: float


def _settings(home: Path) -> Settings:
    return Settings(
        home=home,
        nats={"port": 0, "monitor_port": 0},  # type: ignore[arg-type]
        nsc={"service_port": 0},  # type: ignore[arg-type]
    )


async def _one_reply(replies: StreamEchoReplies, expected: str) -> None:
    async with asyncio.timeout(REPLY_TIMEOUT):
        got: list[str] = []
        while not got:
            got = await replies.fetch(most=1, timeout=REPLY_TIMEOUT)
    if got != [expected]:
        raise RuntimeError(f"expected {expected!r}, got {got!r}")


async def _sequential(
    name: str, count: int, send: Callable[[str], Awaitable[object]], replies: StreamEchoReplies
) -> Row:
    for n in range(WARMUP):
        await send(f"warm {n}")
        await _one_reply(replies, f"echo warm {n} from {USER}")
    seconds = []
    started = time.perf_counter()
    for n in range(count):
        before = time.perf_counter()
        await send(f"{name} {n}")
        await _one_reply(replies, f"echo {name} {n} from {USER}")
        seconds.append(time.perf_counter() - before)
    elapsed = time.perf_counter() - started
    p99 = statistics.quantiles(seconds, n=100)[98]
    return Row(name, count, statistics.median(seconds) * 1000, p99 * 1000, count / elapsed)


async def _pipelined(count: int, nc: Client, replies: StreamEchoReplies) -> Row:
    window = asyncio.Semaphore(IN_FLIGHT)
    answered: list[str] = []

    async def send(n: int) -> None:
        await window.acquire()  # released when a reply comes back
        await publish_request(nc, USER, f"p {n}", msg_id=f"p-{n}")

    started = time.perf_counter()
    sending = asyncio.gather(*(send(n) for n in range(count)))
    async with asyncio.timeout(REPLY_TIMEOUT + count / 100):
        while len(answered) < count:
            got = await replies.fetch(most=IN_FLIGHT, timeout=1.0)
            answered.extend(got)
            for _ in got:
                window.release()
    elapsed = time.perf_counter() - started
    await sending
    if sorted(answered) != sorted(f"echo p {n} from {USER}" for n in range(count)):
        raise RuntimeError("pipelined: replies missing or duplicated")
    return Row(f"{IN_FLIGHT} in flight", count, None, None, count / elapsed)


async def _bench(settings: Settings, outbox: Path, args: argparse.Namespace) -> list[Row]:
    creds = Nsc.from_settings(settings).create_user(USER).creds
    nc = await connect_as(creds, settings=settings)
    try:
        client = await StreamEchoClient(nc, USER, Buffer(outbox, request_subject(USER))).open()
        replies = client.replies

        async def direct(text: str) -> int:
            return await publish_request(nc, USER, text)

        ids = itertools.count()

        async def with_id(text: str) -> int:
            return await publish_request(nc, USER, text, msg_id=f"bench-{next(ids)}")

        rows = [
            await _sequential("direct", args.requests, direct, replies),
            await _sequential("direct + Nats-Msg-Id", args.requests, with_id, replies),
            await _sequential("outbox", args.requests, client.send, replies),
            await _pipelined(args.pipelined, nc, replies),
        ]
        await client.close()
        return rows
    finally:
        await nc.close()


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="sequential round trips")
    parser.add_argument("--pipelined", type=int, default=3000, help="requests, 100 in flight")
    args = parser.parse_args()
    started = time.perf_counter()
    # One user sends every request here: lift its share of the stream (1,000 by default)
    # for the application server process the stack starts, which reads the environment.
    os.environ["LABKIT_STREAM_MAX_MSGS_PER_USER"] = str(10 * (args.requests + args.pipelined))
    with tempfile.TemporaryDirectory(prefix="labkit-bench-stream-") as workdir:
        settings = _settings(Path(workdir) / "home")
        with Stack(settings) as stack:  # stops what it started, whatever happens
            stack.ensure("server")  # nats-server, then the application server
            rows = asyncio.run(_bench(settings, Path(workdir) / "outbox.db", args))
    print("| stream echo round trip | requests | median ms | p99 ms | requests/s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.name} | {row.count} | {_ms(row.median_ms)} | {_ms(row.p99_ms)} "
            f"| {row.per_second:,.0f} |"
        )
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
