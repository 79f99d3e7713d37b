"""How long does a 1-megapixel image take through the file lab, and where does the time go?

Starts a real stack in a temporary data directory on free ports: nats-server, the
embedded object store (nanio) and the application server as the stack runs it
(`python -m labkit.server`, its own process). Then, as a learner's client does:

    upload    <user>.send_file (NATS) -> presigned PUT URL, HTTP PUT of the JPEG
    transform <user>.transform_file (NATS): the server reads the image from the
              store, runs Pillow in a worker thread, writes the PNG, presigns a GET
    download  HTTP GET of the PNG, decoded into a PIL image (as FileClient.download)

Measured:

- sequential, one client: per round trip median and p95, and each phase's median;
- 8 clients at once (8 connections, 8 HTTP sessions): round trips per second,
  median and p95;
- Pillow against transport: the Pillow work of one round (the server's open +
  transform + PNG encode, and the client's decode of the result) timed in this
  process on the same image, as a share of the sequential median. The rest is
  transport: NATS requests, HTTP to the store, the store's disk, presigning.

The image is the course's test card scaled to 1000×1000 with noise added, as JPEG
quality 90 (about as compressible as a photo). The transformation is `rotate 90`
by default: a full-size result, the most bytes to write and download.

    .venv/bin/python bench/bench_files.py [--rounds 40] [--clients 8] [--per-client 10]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from labkit.client import connect_as
from labkit.labs.files import FileClient
from labkit.nsc.wrapper import Nsc
from labkit.objects.sample import sample_image
from labkit.objects.transforms import (
    ImageLimits,
    open_image,
    parse_transformation,
    transform_image_bytes,
)
from labkit.settings import Settings
from labkit.stack import Stack

SIDE = 1000  # 1 megapixel
LIMITS = ImageLimits()
WARMUP_ROUNDS = 3


def test_image() -> bytes:
    """A 1000×1000 JPEG with photo-like entropy (a clean gradient would compress to nothing)."""
    card = sample_image().resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    noise = Image.effect_noise((SIDE, SIDE), 24).convert("RGB")
    photo = Image.blend(card, noise, 0.15)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@dataclass
class Round:
    """One upload + transform + download, in seconds per phase."""

    upload: float
    transform: float
    download: float
    result_bytes: int

    @property
    def total(self) -> float:
        return self.upload + self.transform + self.download


@dataclass
class Client:
    files: FileClient
    rounds: list[Round] = field(default_factory=list)

    async def round_trip(self, data: bytes, name: str, kind: str, mode: str) -> Round:
        began = time.perf_counter()
        await self.files.upload(data, name, content_type="image/jpeg")
        uploaded = time.perf_counter()
        url = await self.files.transform(name, kind, mode)
        transformed = time.perf_counter()
        image_bytes = await self.files.download_bytes(url)
        await asyncio.to_thread(open_image, image_bytes, LIMITS)
        done = time.perf_counter()
        result = Round(
            uploaded - began, transformed - uploaded, done - transformed, len(image_bytes)
        )
        self.rounds.append(result)
        return result


def pillow_seconds(data: bytes, kind: str, mode: str, repeats: int) -> tuple[float, float]:
    """Median seconds of the server's Pillow step and of the client's decode of the result."""
    transformation = parse_transformation(kind, mode)
    server, client = [], []
    result = b""
    for _ in range(repeats):
        began = time.perf_counter()
        result = transform_image_bytes(data, transformation, LIMITS)
        server.append(time.perf_counter() - began)
        began = time.perf_counter()
        open_image(result, LIMITS)
        client.append(time.perf_counter() - began)
    return statistics.median(server), statistics.median(client)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def run(settings: Settings, args: argparse.Namespace, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    # HTTP transfers run in threads: enough of them for every client at once.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=4 * args.clients))
    nsc = Nsc.from_settings(settings)
    clients = []
    for index in range(args.clients):
        user = f"bench-files-{index}"
        nc = await connect_as(nsc.create_user(user).creds, settings=settings)
        clients.append(Client(FileClient(nc, user)))
    kind, mode = args.transformation, args.mode
    try:
        first = clients[0]
        for _ in range(WARMUP_ROUNDS):
            await first.round_trip(data, "warmup.jpg", kind, mode)
        first.rounds.clear()
        for index in range(args.rounds):
            await first.round_trip(data, f"seq-{index}.jpg", kind, mode)
        sequential = list(first.rounds)

        for client in clients:
            client.rounds.clear()

        async def keep_busy(client: Client, number: int) -> None:
            for index in range(args.per_client):
                await client.round_trip(data, f"par-{number}-{index}.jpg", kind, mode)

        began = time.perf_counter()
        await asyncio.gather(*(keep_busy(c, n) for n, c in enumerate(clients)))
        wall = time.perf_counter() - began
        concurrent = [r for c in clients for r in c.rounds]
    finally:
        for client in clients:
            await client.files.nc.close()
            client.files.close()

    server_pillow, client_pillow = pillow_seconds(
        data, kind, mode, repeats=max(5, args.rounds // 4)
    )
    report(args, data, sequential, concurrent, wall, server_pillow, client_pillow)


def report(
    args: argparse.Namespace,
    data: bytes,
    sequential: list[Round],
    concurrent: list[Round],
    wall: float,
    server_pillow: float,
    client_pillow: float,
) -> None:
    def phase(pick: Callable[[Round], float]) -> str:
        return ms(statistics.median(pick(r) for r in sequential))

    totals = [r.total for r in sequential]
    together = [r.total for r in concurrent]
    median = statistics.median(totals)
    pillow = server_pillow + client_pillow
    result_kb = statistics.median(r.result_bytes for r in sequential) / 1024
    print(
        f"\n1000×1000 JPEG ({len(data) / 1024:.0f} KiB) -> {args.transformation} {args.mode} "
        f"-> PNG ({result_kb:.0f} KiB); {os.cpu_count()} cores, Python {sys.version.split()[0]}\n"
    )
    print("| measure | median | p95 | rate |")
    print("|---|---|---|---|")
    print(
        f"| round trip, 1 client ({len(totals)}) | {ms(median)} | {ms(p95(totals))} "
        f"| {1 / median:.1f} images/s |"
    )
    print(
        f"| round trip, {args.clients} clients at once ({len(together)}) "
        f"| {ms(statistics.median(together))} | {ms(p95(together))} "
        f"| {len(together) / wall:.1f} images/s |"
    )
    print(
        f"\nphases, 1 client (medians): upload {phase(lambda r: r.upload)}, "
        f"transform {phase(lambda r: r.transform)}, download + decode "
        f"{phase(lambda r: r.download)}"
    )
    print(
        f"Pillow: {ms(server_pillow)} on the server (open, {args.transformation}, PNG) + "
        f"{ms(client_pillow)} on the client (decode) = {ms(pillow)}, "
        f"{pillow / median:.0%} of the round trip; transport and storage "
        f"{ms(median - pillow)}, {1 - pillow / median:.0%}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="sequential round trips")
    parser.add_argument("--clients", type=int, default=8, help="clients at once")
    parser.add_argument("--per-client", type=int, default=10, help="round trips per client")
    parser.add_argument("--transformation", default="rotate")
    parser.add_argument("--mode", default="90")
    args = parser.parse_args()
    data = test_image()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-files-") as home:
        settings = Settings(
            home=Path(home),
            nats={"port": 0, "monitor_port": 0},  # type: ignore[arg-type]
            s3={"port": 0},  # type: ignore[arg-type]
        )
        began = time.perf_counter()
        with Stack(settings) as stack:
            stack.ensure("nats", "objects", "server")
            asyncio.run(run(settings, args, data))
        print(f"\n(wall time of this benchmark: {time.perf_counter() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
