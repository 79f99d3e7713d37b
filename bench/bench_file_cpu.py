"""What one small file round trip costs the application server in CPU, against a baseline.

The classroom bench's file action, alone: presign (`<user>.send_file`), HTTP PUT of a
64×64 PNG to the object store, `<user>.transform_file` (the server reads it, rotates
it, writes the PNG, presigns a GET), HTTP GET of the result. A real stack in a
temporary data directory on free ports: nats-server, the embedded object store
(nanio) and the application server as the stack runs it (`python -m labkit.server`,
its own process); `--clients` learners' connections do `--rounds` round trips in all.

CPU comes from /proc (bench/proc_stats.py): the application server's, the object
store's and nats-server's CPU seconds over the window, divided by the round trips.
CPU time is far steadier than the rate on a shared machine.

With `--baseline DIR` (a directory holding another version of the `labkit` package,
e.g. `git archive <commit> labkit | tar -x -C DIR`), the application server is
restarted alternately on that code (through PYTHONPATH) and on this checkout's,
`--repeats` times each, against the same object store and NATS: the ratio of the
two is measured in one run.

    .venv/bin/python bench/bench_file_cpu.py [--rounds 300] [--clients 4]
        [--baseline DIR] [--repeats 3]
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from labkit.client import connect_as
from labkit.labs.files import FileClient
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.stack import Stack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from baseline_code import add_baseline_option, check_baseline, codes_to_measure, use_code  # noqa: E402
from proc_stats import CLOCK_TICKS, cpu_seconds, load_average  # noqa: E402

WARMUP_ROUNDS = 10


def tiny_png() -> bytes:
    """The classroom bench's file: a 64×64 gradient, a few hundred bytes."""
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((64, 64)).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def loop_thread_cpu_seconds(pid: int) -> float:
    """CPU seconds of process `pid`'s main thread (the server's event loop); the rest of
    its CPU is its worker threads' (image and presign pools, the SDK's HTTP)."""
    return cpu_seconds_of_task(pid, pid)


def cpu_seconds_of_task(pid: int, tid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except FileNotFoundError:
        return 0.0
    fields = text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pids(stack: Stack) -> dict[str, int]:
    """The pid of each process whose CPU is counted (a store of one process here)."""
    found = {}
    for name, entry in stack.status().items():
        if name in ("server", "objects", "nats") and entry.pid:
            found[name] = entry.pid
    return found


async def measure_async(
    settings: Settings, found: dict[str, int], rounds: int, clients: int, data: bytes
) -> tuple[dict[str, float], float]:
    """Connect and warm up, then `rounds` round trips spread over `clients` learners:
    CPU ms per round trip of each process in `found`, and round trips per second."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(4 * clients))
    nsc = Nsc.from_settings(settings)
    learners = []
    for index in range(clients):
        user = f"bench-filecpu-{index}"
        nc = await connect_as(nsc.create_user(user).creds, settings=settings)
        learners.append(FileClient(nc, user))

    async def one(files: FileClient, count: int) -> None:
        for _ in range(count):
            await files.upload(data, "bench.png", content_type="image/png")
            url = await files.transform("bench.png", "rotate", "90")
            if not await files.download_bytes(url):
                raise RuntimeError("empty download")

    try:
        await asyncio.gather(*(one(files, WARMUP_ROUNDS) for files in learners))
        share = [rounds // clients + (1 if i < rounds % clients else 0) for i in range(clients)]
        before = {name: cpu_seconds(pid) for name, pid in found.items()}
        before["server loop"] = loop_thread_cpu_seconds(found["server"])
        began = time.perf_counter()
        await asyncio.gather(*(one(f, n) for f, n in zip(learners, share, strict=True)))
        wall = time.perf_counter() - began
        after = {name: cpu_seconds(pid) for name, pid in found.items()}
        after["server loop"] = loop_thread_cpu_seconds(found["server"])
    finally:
        for files in learners:
            await files.nc.close()
            files.close()
    return {name: (after[name] - before[name]) / rounds * 1000 for name in after}, rounds / wall


def measure(stack: Stack, rounds: int, clients: int, data: bytes) -> tuple[dict[str, float], float]:
    """CPU ms per round trip of each process, and round trips per second."""
    return asyncio.run(measure_async(stack.settings, pids(stack), rounds, clients, data))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="round trips per measurement")
    parser.add_argument("--clients", type=int, default=4, help="learners at once")
    add_baseline_option(parser)
    parser.add_argument("--repeats", type=int, default=3, help="measurements per code")
    args = parser.parse_args()
    check_baseline(parser, args.baseline)
    data = tiny_png()
    codes = codes_to_measure(HERE.parent, args.baseline)
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in codes}
    rates: dict[str, list[float]] = {name: [] for name, _ in codes}
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="labkit-bench-filecpu-") as home:
        settings = Settings(
            home=Path(home),
            nats={"port": 0, "monitor_port": 0},  # type: ignore[arg-type]
            s3={"port": 0},  # type: ignore[arg-type]
        )
        # `python -m` puts the working directory first on the path, before PYTHONPATH:
        # the servers start from the data directory, so a baseline's labkit is the one.
        os.chdir(home)
        with Stack(settings) as stack:
            stack.ensure("nats", "objects", "server")
            for repeat in range(args.repeats):
                for name, code in codes:
                    use_code(stack, code)
                    per_round, rate = measure(stack, args.rounds, args.clients, data)
                    results[name].append(per_round)
                    rates[name].append(rate)
                    loads.append(load_average())
                    shown = ", ".join(f"{p} {ms:.2f} ms" for p, ms in per_round.items())
                    print(
                        f"[{repeat + 1}/{args.repeats}] {name}: {shown}; {rate:.0f}/s", flush=True
                    )
    print(
        f"\n64×64 PNG, rotate 90: {args.rounds} round trips × {args.repeats} per code, "
        f"{args.clients} learners at once; load average {min(loads):.1f} to {max(loads):.1f} "
        f"({os.cpu_count()} cores)\n"
    )
    print(
        "| code | application server ms CPU / round trip | of it, its event loop "
        "| object store | nats-server | rate |"
    )
    print("|---|---|---|---|---|---|")
    medians: dict[str, float] = {}
    for name, _ in codes:
        runs = results[name]

        def median_of(process: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(run.get(process, 0.0) for run in runs)

        medians[name] = median_of("server")
        print(
            f"| {name} | {median_of('server'):.2f} | {median_of('server loop'):.2f} "
            f"| {median_of('objects'):.2f} "
            f"| {median_of('nats'):.2f} | {statistics.median(rates[name]):.0f}/s |"
        )
    if args.baseline is not None:
        base, now = medians[codes[0][0]], medians[codes[1][0]]
        print(f"\napplication server CPU per round trip: {now / base:.2f}× the baseline's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
