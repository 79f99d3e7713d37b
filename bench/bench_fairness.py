"""Does one learner's burst slow another learner down? Bob's latency, alone and during.

Starts NATS (a stack of its own on free ports), then the labkit server serving the
echo lab (`labkit.server.Server`, bounds from the settings) in a process of its own.
Bob sends one echo request every 2 ms (waiting for each answer) the whole time and
notes each latency. First bob alone; then alice, in another process, publishes a
burst of 5,000 requests at once and waits for every answer (served or `busy`);
then a burst of 20,000. Each burst is repeated `--bursts` times; bob's samples
sent between the first request of a burst and its last answer count as "during".

Client processes of their own: bob's event loop must not be the one that reads
alice's 20,000 answers, or his latency would measure the client, not the server.

Each burst line also shows the labkit server's CPU time against the burst's wall
time, and how busy the whole machine was: on a shared machine a server that gets a
fraction of a core reads a burst that much slower, whatever its code does.
`--before DIR` also runs the labkit server of another checkout (DIR holds its
`labkit/`), alternating with this one (`--rounds`), for before/after figures.

Targets (the issue): bob's p99 during a burst <= 5x his p99 alone, and his worst
<= 50x his p50 alone.

`--readers 4` (the default, as the server's): this checkout's server reads each
user's requests on one of 4 NATS connections of its own (LABKIT_SERVER_READERS,
labkit.server.readers); `--readers 0`, on one connection.

`--work-ms 20`: alice's handler first waits 20 ms (like a read from the object
store), bob's does not; this is where serving in arrival order hurts most.

`--floor`: one more run, with this checkout's server serving bob while alice's
bursts go to a subject that no route serves: NATS answers each of her requests
"no responders" itself, and the labkit server does nothing for her. Bob's figures
there are the floor of this machine: what her process and nats-server's work cost
him on the shared cores whatever any server does.

    .venv/bin/python bench/bench_fairness.py [--alone 3] [--bursts 3] [--sizes 5000,20000]
        [--work-ms 0] [--readers 4] [--before DIR --rounds 2] [--floor]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nats.aio.msg import Msg
from proc_stats import cpu_seconds, load_average, machine_busy_seconds

from labkit.client import connect_as
from labkit.error_replies import LABKIT_CODE_HEADER
from labkit.labs import echo
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Router, Server
from labkit.settings import Settings
from labkit.stack import Stack

ALICE, BOB = "bench-alice", "bench-bob"
PERIOD = 0.002  # bob's pace: one request every 2 ms
TIMEOUT = 30.0
STARTUP_TIMEOUT = 30.0
PAYLOAD = EchoRequest(message="hello").SerializeToString()
# `--floor`: a subject of alice's that no route serves; NATS itself answers each request.
UNSERVED = f"{ALICE}.unserved"
NO_RESPONDERS = "503"


# --- the processes the benchmark starts -------------------------------------------


def _serve_profiled(ready: Path, profile: Path | None, work_ms: float) -> None:
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(_serve(ready, work_ms))
    finally:
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)


def _router(work_ms: float) -> Router:
    """The echo lab, plus `<user>.echo.slow`: an echo that first waits `work_ms` (I/O)."""
    router = Router("bench")
    router.include_router(echo.router)

    @router.subscribe("*.echo.slow")
    async def slow(request: EchoRequest) -> EchoResponse:
        await asyncio.sleep(work_ms / 1000)
        return EchoResponse(message=f"echo {request.message}")

    return router


async def _serve(ready: Path, work_ms: float) -> None:
    settings = Settings()
    server = Server(_router(work_ms), settings=settings, queue=settings.server.queue)
    # As `python -m labkit.server` runs it (start, the collector step, the ready file).
    await server.serve_until_signalled(ready_file=ready)


async def _alice(creds_file: Path, count: int, subject: str) -> None:
    """Publish `count` requests at once, wait for every answer, print what came back."""
    nc = await connect_as(creds_file.read_text(), settings=Settings())
    answers = {"served": 0, "busy": 0, "unserved": 0, "other": 0}
    done = asyncio.Event()

    async def on_answer(msg: Msg) -> None:
        headers = msg.headers or {}
        code = headers.get(LABKIT_CODE_HEADER)
        if headers.get("Status") == NO_RESPONDERS:  # `--floor`: NATS answered, not a server
            answers["unserved"] += 1
        else:
            answers["served" if code is None else "busy" if code == "busy" else "other"] += 1
        if sum(answers.values()) == count:
            done.set()

    inbox = f"{nc.new_inbox()}.burst"
    await nc.subscribe(f"{inbox}.*", cb=on_answer, pending_msgs_limit=10 * count)
    await nc.flush()
    # Connected: the benchmark notes the CPU used so far, then says go.
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started = time.time()
    for n in range(count):
        await nc.publish(subject, PAYLOAD, reply=f"{inbox}.{n}")
    await nc.flush()
    await asyncio.wait_for(done.wait(), TIMEOUT)
    print(json.dumps({"started": started, "ended": time.time(), **answers}), flush=True)
    await nc.close()


# --- the benchmark -----------------------------------------------------------------


@dataclass
class Sample:
    sent: float  # wall clock (time.time), to compare with alice's process
    seconds: float


class Bob:
    """Asks every PERIOD until stopped; keeps every sample."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._stop = asyncio.Event()

    async def run(self, creds: str, settings: Settings) -> None:
        nc = await connect_as(creds, settings=settings)
        try:
            while not self._stop.is_set():
                sent, started = time.time(), time.perf_counter()
                answer = await nc.request(f"{BOB}.echo", PAYLOAD, timeout=TIMEOUT)
                seconds = time.perf_counter() - started
                if answer.headers:
                    raise RuntimeError(f"bob got an error reply: {answer.headers}")
                self.samples.append(Sample(sent, seconds))
                await asyncio.sleep(max(0.0, PERIOD - seconds))
        finally:
            await nc.close()

    def stop(self) -> None:
        self._stop.set()

    def between(self, start: float, end: float) -> list[float]:
        return [s.seconds for s in self.samples if start <= s.sent <= end]


def _figures(latencies: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49], cuts[98], max(latencies)


@dataclass
class Burst:
    answers: dict[str, float]  # alice's report: started, ended, served, busy, other
    server_cpu: float  # the labkit server's CPU seconds from go to alice's report
    machine_busy: float  # the machine's busy CPU seconds (all cores), same window
    wall: float  # that window's wall time


async def _burst(creds_file: Path, count: int, subject: str, server_pid: int) -> Burst:
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--alice", str(count), "--creds", str(creds_file),
        "--subject", subject,
        stdout=subprocess.PIPE, stdin=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stdin is not None
    if (await process.stdout.readline()).strip() != b"ready":
        raise RuntimeError(f"alice's burst of {count} did not start")
    cpu, machine, began = cpu_seconds(server_pid), machine_busy_seconds(), time.time()
    process.stdin.write(b"go\n")
    await process.stdin.drain()
    line = await process.stdout.readline()
    used = cpu_seconds(server_pid) - cpu, machine_busy_seconds() - machine, time.time() - began
    await process.wait()
    if process.returncode != 0 or not line:
        raise RuntimeError(f"alice's burst of {count} failed ({process.returncode})")
    return Burst(json.loads(line.decode()), *used)


@dataclass
class Figures:
    """One server's run: bob alone, bob during each burst size, alice's bursts."""

    alone: list[float]
    during: dict[int, list[float]]
    bursts: dict[int, list[Burst]]


async def _run_server(
    settings: Settings,
    workdir: Path,
    args: argparse.Namespace,
    bob_creds: str,
    alice_file: Path,
    before: Path | None,
    alice_subject: str,
) -> Figures:
    ready = workdir / "server.ready"
    ready.unlink(missing_ok=True)
    argv = [sys.executable, __file__, "--serve", "--ready-file", str(ready)]
    argv += ["--work-ms", str(args.work_ms)]
    if args.profile and before is None:
        argv += ["--profile-out", str(args.profile)]
    env = dict(os.environ)
    if before is not None:  # the other checkout's labkit, ahead of the installed one
        env["PYTHONPATH"] = str(before)
    else:  # this checkout's reader connections (the one before has none)
        env["LABKIT_SERVER_READERS"] = str(args.readers)
    server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not ready.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the labkit server did not start")
            await asyncio.sleep(0.05)
        bob = Bob()
        asking = asyncio.create_task(bob.run(bob_creds, settings))
        await asyncio.sleep(0.5)  # warm-up
        start = time.time()
        await asyncio.sleep(args.alone)
        figures = Figures(bob.between(start, time.time()), {}, {})
        for size in args.sizes:
            for _ in range(args.bursts):
                burst = await _burst(alice_file, size, alice_subject, server.pid)
                figures.bursts.setdefault(size, []).append(burst)
                answers = burst.answers
                figures.during.setdefault(size, []).extend(
                    bob.between(answers["started"], answers["ended"])
                )
                await asyncio.sleep(args.pause)
        bob.stop()
        await asyncio.wait_for(asking, TIMEOUT)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return figures


def _report(name: str, figures: Figures, args: argparse.Namespace) -> None:
    p50, p99, worst = _figures(figures.alone)
    print(f"\n### {name}\n")
    print("| bob | samples | p50 ms | p99 ms | max ms | p99 / alone p99 | max / alone p50 |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| alone | {len(figures.alone)} | {p50 * 1e3:.2f} | {p99 * 1e3:.2f} "
        f"| {worst * 1e3:.2f} | | |"
    )
    verdicts = []
    for size, latencies in figures.during.items():
        b50, b99, bmax = _figures(latencies)
        ratio99, ratio_max = b99 / p99, bmax / p50
        print(
            f"| during {size:,} (x{args.bursts}) | {len(latencies)} | {b50 * 1e3:.2f} "
            f"| {b99 * 1e3:.2f} | {bmax * 1e3:.2f} | {ratio99:.1f}x | {ratio_max:.1f}x |"
        )
        verdicts.append(
            f"burst {size:,}: p99 {ratio99:.1f}x alone (target <= 5: "
            f"{'meets' if ratio99 <= 5 else 'MISSES'}), max {ratio_max:.1f}x alone p50 "
            f"(target <= 50: {'meets' if ratio_max <= 50 else 'MISSES'})"
        )
    print()
    for size, runs in figures.bursts.items():
        for run in runs:
            answers, wall = run.answers, run.wall
            print(
                f"alice {size:,}: {answers['served']:,.0f} served, {answers['busy']:,.0f} busy, "
                f"{answers['unserved']:,.0f} no responders, {answers['other']:,.0f} other, "
                "all answered in "
                f"{(answers['ended'] - answers['started']) * 1e3:,.0f} ms; labkit server CPU "
                f"{run.server_cpu * 1e3:,.0f} ms in {wall * 1e3:,.0f} ms "
                f"({run.server_cpu / wall:.0%} of a core), machine busy "
                f"{run.machine_busy / wall:.1f} of {os.cpu_count()} cores"
            )
    print()
    print("\n".join(verdicts))


async def _bench(settings: Settings, workdir: Path, args: argparse.Namespace) -> None:
    nsc = Nsc.from_settings(settings)
    bob_creds = nsc.create_user(BOB).creds
    alice_file = workdir / "alice.creds"
    alice_file.write_text(nsc.create_user(ALICE).creds)
    served = f"{ALICE}.echo.slow" if args.work_ms else f"{ALICE}.echo"
    servers: list[tuple[str, Path | None, str]] = [("this checkout", None, served)]
    if args.before:
        servers.append((f"before ({args.before})", args.before, served))
    if args.floor:
        servers.append(("floor: nothing serves alice (NATS answers her)", None, UNSERVED))
    results: dict[str, list[Figures]] = {name: [] for name, _, _ in servers}
    load = [load_average()]
    for round_ in range(args.rounds):
        # Alternating (ABBA) so a drifting machine hits both alike.
        for name, before, subject in servers if round_ % 2 == 0 else servers[::-1]:
            figures = await _run_server(
                settings, workdir, args, bob_creds, alice_file, before, subject
            )
            results[name].append(figures)
    load.append(load_average())

    defaults = settings.server
    if args.work_ms:
        print(f"Alice's handler waits {args.work_ms} ms (I/O); bob's is the plain echo.")
    print(
        f"Bounds: max_in_flight {defaults.max_in_flight}, user_max_in_flight "
        f"{defaults.user_max_in_flight}, user_max_queued {defaults.user_max_queued}; "
        f"this checkout's reader connections: {args.readers}; "
        f"load average {load[0]:.1f} at the start, {load[1]:.1f} at the end"
    )
    for name, runs in results.items():
        for number, figures in enumerate(runs, 1):
            _report(f"{name}, round {number}" if len(runs) > 1 else name, figures, args)
    if args.profile:
        print("\ncProfile of the labkit server (this checkout) over the whole run:")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alone", type=float, default=3.0, help="seconds of bob alone")
    parser.add_argument("--bursts", type=int, default=3, help="bursts of each size")
    parser.add_argument("--sizes", default="5000,20000", help="burst sizes, comma-separated")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between bursts")
    parser.add_argument("--profile", type=Path, help="also cProfile the labkit server into FILE")
    parser.add_argument(
        "--before",
        type=Path,
        help="also run the labkit server of another checkout (DIR holds its labkit/), "
        "alternating with this one",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each server")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run alice's bursts on a subject no server serves (NATS answers 'no "
        "responders'): what bob sees when the machine, not a server, is all that is shared",
    )
    parser.add_argument(
        "--readers",
        type=int,
        default=4,
        help="this checkout's server reads users' requests on N connections "
        "(LABKIT_SERVER_READERS, 4 by default; 0: one connection, as before)",
    )
    parser.add_argument(
        "--work-ms",
        type=float,
        default=0.0,
        help="alice's requests wait this long in their handler (I/O), bob's do not",
    )
    # Internal: the processes the benchmark starts itself.
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--alice", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--creds", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--subject", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve_profiled(args.ready_file, args.profile_out, args.work_ms)
        return
    if args.alice:
        asyncio.run(_alice(args.creds, args.alice, args.subject))
        return
    args.sizes = [int(size) for size in args.sizes.split(",")]

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        # Set before Settings(): the processes started here read the same environment.
        os.environ.update(
            {"LABKIT_HOME": tmp, "LABKIT_NATS_PORT": "0", "LABKIT_NATS_MONITOR_PORT": "0"}
        )
        settings = Settings()
        stack = Stack(settings)
        try:
            stack.ensure("nats")
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_bench(settings, Path(tmp), args))
        finally:
            stack.down()
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
