"""Bounded memory and fair share: the application server under one heavy user.

Starts a real stack in a temporary data directory on free ports: nats-server, the
embedded object store and the application server as the stack runs it (its own
process, whose RSS is read from /proc). Then:

1. cache flood: alice sends `--flood` distinct messages of `--message-kib` KiB to
   the caching echo as fast as it answers; the server's RSS at start, at its peak,
   and one cache TTL (plus a sweep) after the flood, with nobody touching the cache;
2. one heavy file-lab user: alice keeps `--alice-load` transforms of a 5000×5000
   image asked for at once (her over-limit ones get `busy` and are asked again);
   bob's presign (`send_file`) latency alone, then while alice's transforms run,
   and the server's RSS peak.

    .venv/bin/python bench/bench_memory.py [--flood 600] [--message-kib 500] [--presigns 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image
from proc_stats import rss_bytes

from labkit.client import connect_as
from labkit.labs.caching import send_cached_echo
from labkit.labs.files import FileClient, request_upload_url
from labkit.nsc.wrapper import Nsc
from labkit.objects.transforms import encode_png
from labkit.server import RemoteError
from labkit.settings import Settings
from labkit.stack import Stack

ALICE, BOB = "bench-alice", "bench-bob"


def rss_mb(pid: int) -> float:
    return rss_bytes(pid) / 2**20


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


async def cache_flood(settings: Settings, pid: int, args: argparse.Namespace) -> None:
    nsc = Nsc.from_settings(settings)
    nc = await connect_as(nsc.create_user(ALICE).creds, settings=settings)
    try:
        for number in range(20):  # warm up: imports, buffers, the first replies
            await send_cached_echo(nc, ALICE, f"warm {number}")
        start = rss_mb(pid)
        peak = start
        began = time.perf_counter()
        padding = "x" * (args.message_kib * 1024)
        for number in range(args.flood):
            await send_cached_echo(nc, ALICE, f"{number:06d}{padding}", timeout=30)
            if number % 20 == 0:
                peak = max(peak, rss_mb(pid))
        flood_seconds = time.perf_counter() - began
        peak = max(peak, rss_mb(pid))
        ttl = settings.server.cache_ttl.total_seconds()
        await asyncio.sleep(ttl + 1.5)  # one TTL and a sweep, nobody touching the cache
        after = rss_mb(pid)
    finally:
        await nc.close()
    print(
        f"\n## cache flood: {args.flood} distinct {args.message_kib} KiB messages in "
        f"{flood_seconds:.1f} s (TTL {ttl:g} s, bounds {settings.server.cache_max_bytes >> 20} "
        f"MiB total, {settings.server.cache_max_user_bytes >> 20} MiB per user)\n"
    )
    print("| server RSS | MB |")
    print("|---|---|")
    print(f"| at start | {start:.0f} |")
    print(f"| peak during the flood | {peak:.0f} |")
    print(f"| one TTL after | {after:.0f} ({after / start - 1:+.0%} of start) |")


async def presign_latencies(nc: object, count: int) -> list[float]:
    latencies = []
    for number in range(count):
        began = time.perf_counter()
        await request_upload_url(nc, BOB, f"bob-{number}.png", 1000)  # type: ignore[arg-type]
        latencies.append(time.perf_counter() - began)
    return latencies


async def heavy_user(settings: Settings, pid: int, args: argparse.Namespace) -> None:
    nsc = Nsc.from_settings(settings)
    alice = FileClient(await connect_as(nsc.create_user(ALICE).creds, settings=settings), ALICE)
    bob_nc = await connect_as(nsc.create_user(BOB).creds, settings=settings)
    big = encode_png(Image.linear_gradient("L").resize((5000, 5000)).convert("RGB"))
    try:
        await alice.upload(big, "big.png")
        await presign_latencies(bob_nc, 5)  # warm up
        alone = await presign_latencies(bob_nc, args.presigns)
        start = rss_mb(pid)
        done, busy, stop = 0, 0, asyncio.Event()

        async def keep_transforming() -> None:
            nonlocal done, busy
            while not stop.is_set():
                try:
                    await alice.transform("big.png", "rotate", "90")
                    done += 1
                except RemoteError as exc:
                    if exc.code != "busy":
                        raise
                    busy += 1
                    await asyncio.sleep(0.05)

        peak = start
        workers = [asyncio.create_task(keep_transforming()) for _ in range(args.alice_load)]
        await asyncio.sleep(1.0)  # her transforms are under way
        during: list[float] = []
        for _ in range(args.presigns):
            during += await presign_latencies(bob_nc, 1)
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*workers)
        peak = max(peak, rss_mb(pid))
    finally:
        await alice.nc.close()
        await bob_nc.close()
    print(
        f"\n## one heavy user: alice keeps {args.alice_load} transforms of a 5000×5000 image "
        f"asked for ({done} done, {busy} answered `busy`)\n"
    )
    print("| bob's presign (send_file) | median | p95 |")
    print("|---|---|---|")
    print(f"| alone ({len(alone)}) | {ms(statistics.median(alone))} | {ms(p95(alone))} |")
    print(
        f"| during alice's transforms ({len(during)}) | {ms(statistics.median(during))} "
        f"| {ms(p95(during))} |"
    )
    print(f"\nserver RSS: {start:.0f} MB before alice's transforms, peak {peak:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flood", type=int, default=600)
    parser.add_argument("--message-kib", type=int, default=500)
    parser.add_argument("--presigns", type=int, default=40)
    parser.add_argument("--alice-load", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-memory-") as home:
        settings = Settings(
            home=Path(home),
            nats={"port": 0, "monitor_port": 0},  # type: ignore[arg-type]
            s3={"port": 0},  # type: ignore[arg-type]
        )
        began = time.perf_counter()
        with Stack(settings) as stack:
            status = stack.ensure("nats", "objects", "server")
            pid = status["server"].pid
            assert pid is not None, "the application server has no pid"
            asyncio.run(cache_flood(settings, pid, args))
            asyncio.run(heavy_user(settings, pid, args))
        print(f"\n(wall time: {time.perf_counter() - began:.1f} s, {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
