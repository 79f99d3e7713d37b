"""How fast does the durable outbox save and flush, next to a bare JetStream publish loop?

Starts a throwaway stack (nats-server only) in a temporary data directory on free
ports, creates a stream on `bench.>` and a user allowed to use it, then measures in
one run, each `--runs` times, the median printed as a Markdown table:

- save: `Buffer.save()` one message at a time, each a durable commit (WAL,
  synchronous=FULL: one disk sync per message), and `save_many()` (one sync for all).
- flush: `Buffer.flush(js)` of `--messages` saved messages: sequential by design
  (publish, wait for the ack, delete, next), so that order survives any crash.
- bare sequential: `await js.publish(...)` in a loop, one ack awaited at a time,
  with a `Nats-Msg-Id` header like the flush sends (the baseline flush should reach).
- bare 100 in flight: 100 tasks publishing at once: what giving up order would buy.

Flush and bare sequential alternate (ABBA) so drift on the machine hits both alike.
Payloads are 100 bytes. Everything the benchmark started is stopped at the end.

    .venv/bin/python bench/bench_buffer.py [--runs 3] [--messages 3000] [--saves 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from nats.js.api import Header, StreamConfig
from nats.js.client import JetStreamContext

from labkit.buffer import Buffer
from labkit.client import connect_as
from labkit.nsc.claims import Permissions
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.stack import Stack

USER = "bench"
STREAM = "BENCH_BUFFER"
PAYLOAD = b"x" * 100
IN_FLIGHT = 100
TIMEOUT = 10.0


def _settings(home: Path) -> Settings:
    return Settings(
        home=home,
        nats={"port": 0, "monitor_port": 0},  # type: ignore[arg-type]
        nsc={"service_port": 0},  # type: ignore[arg-type]
    )


def _bench_user(settings: Settings) -> str:
    permissions = Permissions(
        publish=(f"{USER}.>", "$JS.API.>", "$JS.ACK.>"),
        subscribe=(f"{USER}.>", f"_INBOX.{USER}.>"),
    )
    return Nsc.from_settings(settings).create_user(USER, permissions=permissions).creds


class Runs:
    """Hands out a fresh subject per measured run, and checks what the stream got."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self.count = 0

    def subject(self) -> str:
        self.count += 1
        return f"{USER}.run.{self.count}"

    async def check(self, subject: str, expected: int) -> None:
        info = await self.js.stream_info(STREAM, subjects_filter=subject)
        stored = (info.state.subjects or {}).get(subject, 0)
        if stored != expected:
            raise RuntimeError(f"{subject}: {stored} messages stored, {expected} expected")


def _rate(count: int, started: float) -> float:
    return count / (time.perf_counter() - started)


def bench_save(buffer: Buffer, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        buffer.save(PAYLOAD)
    return _rate(count, started)


def bench_save_many(buffer: Buffer, count: int) -> float:
    started = time.perf_counter()
    buffer.save_many([PAYLOAD] * count)
    return _rate(count, started)


async def bench_flush(buffer: Buffer, runs: Runs, count: int) -> float:
    subject = runs.subject()
    buffer.save_many([PAYLOAD] * count, subject=subject)
    started = time.perf_counter()
    result = await buffer.flush(runs.js, timeout=TIMEOUT)
    rate = _rate(count, started)
    if not result.ok or result.sent != count or result.remaining:
        raise RuntimeError(f"flush did not send everything: {result}")
    await runs.check(subject, count)
    return rate


async def bench_bare_sequential(runs: Runs, count: int) -> float:
    subject = runs.subject()
    started = time.perf_counter()
    for n in range(count):
        await runs.js.publish(
            subject, PAYLOAD, timeout=TIMEOUT, headers={Header.MSG_ID: f"{subject}-{n}"}
        )
    rate = _rate(count, started)
    await runs.check(subject, count)
    return rate


async def bench_bare_in_flight(runs: Runs, count: int) -> float:
    subject = runs.subject()
    numbers = iter(range(count))

    async def publisher() -> None:
        for n in numbers:
            await runs.js.publish(
                subject, PAYLOAD, timeout=TIMEOUT, headers={Header.MSG_ID: f"{subject}-{n}"}
            )

    started = time.perf_counter()
    await asyncio.gather(*(publisher() for _ in range(IN_FLIGHT)))
    rate = _rate(count, started)
    await runs.check(subject, count)
    return rate


async def _bench(settings: Settings, workdir: Path, args: argparse.Namespace) -> None:
    creds = _bench_user(settings)
    nc = await connect_as(creds, settings=settings)
    try:
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(name=STREAM, subjects=[f"{USER}.>"], duplicate_window=120.0)
        )
        runs = Runs(js)
        # Saves pile up in a file of their own; flushes empty theirs every run.
        saves = Buffer(workdir / "saves.db", f"{USER}.save")
        buffer = Buffer(workdir / "outbox.db", f"{USER}.flush")
        rates: dict[str, list[float]] = {}

        def record(name: str, rate: float) -> None:
            rates.setdefault(name, []).append(rate)

        # Warm up the connection, the stream and the file before measuring.
        await bench_bare_sequential(runs, 300)
        await bench_flush(buffer, runs, 300)

        for run in range(args.runs):
            record("save", bench_save(saves, args.saves))
            record("save_many", bench_save_many(saves, args.messages))
            measures: list[tuple[str, Callable[[], Awaitable[float]]]] = [
                ("flush", lambda: bench_flush(buffer, runs, args.messages)),
                ("bare", lambda: bench_bare_sequential(runs, args.messages)),
            ]
            for name, measure in measures if run % 2 == 0 else reversed(measures):
                record(name, await measure())
            record("in_flight", await bench_bare_in_flight(runs, args.messages))
        saves.remove()
        buffer.remove()
    finally:
        await nc.close()

    print(_table(rates, args))


def _table(rates: dict[str, list[float]], args: argparse.Namespace) -> str:
    bare = statistics.median(rates["bare"])
    rows = [
        ("save, one durable commit each", "save", args.saves),
        ("save_many, one commit for all", "save_many", args.messages),
        ("flush (sequential, acked messages deleted 16 at a time)", "flush", args.messages),
        ("bare publish with ack, sequential", "bare", args.messages),
        (f"bare publish with ack, {IN_FLIGHT} in flight", "in_flight", args.messages),
    ]
    lines = [
        f"Outbox vs bare JetStream publish ({args.runs} runs, medians; 100 B payloads)",
        "",
        "| what | messages | msg/s | range | vs bare sequential |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key, count in rows:
        values = rates[key]
        median = statistics.median(values)
        spread = f"{min(values):,.0f}–{max(values):,.0f}"
        ratio = f"{median / bare:.2f}×" if key in ("flush", "bare", "in_flight") else "—"
        lines.append(f"| {label} | {count:,} | {median:,.0f} | {spread} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=3000, help="per flush / publish run")
    parser.add_argument("--saves", type=int, default=1000, help="single saves per run")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-buffer-") as tmp:
        settings = _settings(Path(tmp) / "home")
        stack = Stack(settings)
        try:
            stack.ensure("nats")
            asyncio.run(_bench(settings, Path(tmp), args))
        finally:
            stack.down()
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
