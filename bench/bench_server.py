"""How fast is the labkit echo server next to a hand-written nats-py responder?

Starts a real stack (nats-server only; `ensure("nats")` also issues the server's
creds) in a temporary data directory on free ports, then measures `<user>.echo`
request/reply as a user would see it, against two responders in turn:

- bare:   what a hand-written service does: the server's creds, `*.echo` in queue
          group "bench", parse EchoRequest, `msg.respond(EchoResponse(...))`.
- labkit: `labkit.server.Server` serving the echo lab's router (`*.echo` and
          `*.echo.identified`), with the queue group and in-flight bound from the
          settings as `lab_server` uses them. The other labs are left out so their
          start-up resources (cache, streams) stay out of the measurement: the
          per-message path (subscription -> task -> dispatch -> reply) is the same.

Only one responder is subscribed at a time, so every request is answered by the one
being measured. Each responder runs in its own subprocess (`--serve bare|labkit`):
the client's event loop and the responder's then each get a core of their own
(budget permitting) instead of sharing one interpreter and one loop, which would
charge the client's cost to the responder and hide the difference we look for.
It also gives the labkit server a pid of its own for the memory reading.

Measured, each 3 times, with bare and labkit alternating (ABBA order) so drift on
the machine hits both alike; the table shows medians:

- sequential: one request at a time (default 3000): requests/s, p50, p99.
- 200 in flight: 200 concurrent requesters sharing the work (default 20000).

Each row also shows the responder process's own CPU time per request (user + system,
from /proc/<pid>/stat): on a shared machine it is far steadier than requests/s,
which any other load on the cores moves from run to run.

`--before DIR` adds a third responder, alternating with the other two: the labkit
server of another checkout (DIR holds its `labkit/` package, imported ahead of the
installed one), for before/after figures from the same run.

Then the labkit server's RSS (VmRSS) in a fresh subprocess after 10,000 and after
100,000 requests, 200 in flight. `--profile FILE` also runs the labkit server
under cProfile for one 200-in-flight run and prints where its time goes.

    .venv/bin/python bench/bench_server.py [--runs 3] [--sequential 3000] [--pipelined 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import nats
from nats.aio.client import Client, RawCredentials
from nats.aio.msg import Msg
from proc_stats import cpu_seconds, load_average, rss_bytes

from labkit.client import connect_as
from labkit.discovery import nats_url
from labkit.files import write_atomic
from labkit.labs import echo
from labkit.nsc.creds import user_of
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Server
from labkit.settings import Settings
from labkit.stack import Stack

USER = "bench"
SUBJECT = f"{USER}.echo"
PAYLOAD = EchoRequest(message="hello").SerializeToString()
EXPECTED = "echo hello"
RESPONDERS = ("bare", "labkit")
# `--before DIR`: also the labkit server of another checkout (DIR holds its labkit/).
BEFORE = "before"
TIMEOUT = 10.0
STARTUP_TIMEOUT = 30.0
MIB = 1024 * 1024


# --- the responders (run in a subprocess: `--serve bare|labkit`) -------------------


async def _until_stopped() -> None:
    """Return on SIGTERM/SIGINT, or when the benchmark that started us is gone."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def _serve_bare(settings: Settings, ready: Path) -> None:
    """A hand-written responder: what a service without labkit would do."""
    creds = Nsc.from_settings(settings).server_creds()
    nc = await nats.connect(
        nats_url(settings),
        user_credentials=RawCredentials(creds),
        inbox_prefix=f"_INBOX.{user_of(creds)}",  # _INBOX.labkit_server
    )

    async def echo(msg: Msg) -> None:
        request = EchoRequest.FromString(msg.data)
        await msg.respond(EchoResponse(message="echo " + request.message).SerializeToString())

    await nc.subscribe("*.echo", queue="bench", cb=echo)
    await nc.flush()
    write_atomic(ready, str(os.getpid()))
    await _until_stopped()
    await nc.drain()


async def _serve_labkit(settings: Settings, ready: Path) -> None:
    server = Server(
        echo.router,
        settings=settings,
        queue=settings.server.queue,
        max_in_flight=settings.server.max_in_flight,
    )
    # As `python -m labkit.server` runs it (start, the collector step, the ready file).
    await server.serve_until_signalled(ready_file=ready)


def _serve(mode: str, ready: Path, profile: Path | None) -> None:
    serve = _serve_bare if mode == "bare" else _serve_labkit
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(serve(Settings(), ready))
    finally:
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)


# --- the benchmark -----------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    rate: float  # requests per second
    p50: float  # seconds
    p99: float
    cpu: float = 0.0  # the responder's CPU seconds (user + system) per request


def _result(latencies: list[float], elapsed: float) -> Result:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(len(latencies) / elapsed, cuts[49], cuts[98])


async def _ask(nc: Client) -> float:
    started = time.perf_counter()
    answer = await nc.request(SUBJECT, PAYLOAD, timeout=TIMEOUT)
    seconds = time.perf_counter() - started
    if answer.headers or EchoResponse.FromString(answer.data).message != EXPECTED:
        raise RuntimeError(f"unexpected answer: {answer.headers} {answer.data!r}")
    return seconds


async def _sequential(nc: Client, count: int) -> Result:
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        latencies.append(await _ask(nc))
    return _result(latencies, time.perf_counter() - started)


async def _pipelined(nc: Client, count: int, in_flight: int) -> Result:
    """`in_flight` requesters share `count` requests: always that many outstanding."""
    latencies: list[float] = []
    left = count

    async def requester() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            latencies.append(await _ask(nc))

    started = time.perf_counter()
    await asyncio.gather(*(requester() for _ in range(in_flight)))
    return _result(latencies, time.perf_counter() - started)


class Responder:
    """One responder subprocess; only one runs at a time."""

    def __init__(
        self, mode: str, workdir: Path, profile: Path | None = None, before: Path | None = None
    ) -> None:
        self.mode = mode
        self.before = before
        self.ready = workdir / f"{mode}.ready"
        self.profile = profile
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.ready.unlink(missing_ok=True)
        mode = "labkit" if self.mode == BEFORE else self.mode
        argv = [sys.executable, __file__, "--serve", mode, "--ready-file", str(self.ready)]
        if self.profile is not None:
            argv += ["--profile-out", str(self.profile)]
        env = dict(os.environ)
        if self.mode == BEFORE:
            assert self.before is not None
            # Ahead of the installed (editable) labkit: the other checkout's is imported.
            env["PYTHONPATH"] = str(self.before)
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.ready.exists():
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"the {self.mode} responder exited with {code}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {self.mode} responder did not subscribe in time")
            await asyncio.sleep(0.02)

    def rss(self) -> int:
        """Resident memory of the responder process, in bytes (VmRSS)."""
        assert self.process is not None
        return rss_bytes(self.process.pid)

    def cpu(self) -> float:
        """CPU seconds (user + system) the responder process has used so far."""
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _measure(
    nc: Client, responder: Responder, args: argparse.Namespace
) -> tuple[Result, Result]:
    await responder.start()
    try:
        for _ in range(args.warmup):
            await _ask(nc)
        cpu = responder.cpu()
        sequential = await _sequential(nc, args.sequential)
        sequential = replace(sequential, cpu=(responder.cpu() - cpu) / args.sequential)
        await _pipelined(nc, args.warmup * 5, args.in_flight)
        cpu = responder.cpu()
        pipelined = await _pipelined(nc, args.pipelined, args.in_flight)
        pipelined = replace(pipelined, cpu=(responder.cpu() - cpu) / args.pipelined)
    finally:
        responder.stop()
    return sequential, pipelined


async def _memory(nc: Client, workdir: Path, args: argparse.Namespace) -> tuple[int, int, int]:
    """The labkit server's RSS at start, after `--memory-first` and `--memory-total` requests."""
    responder = Responder("labkit", workdir)
    await responder.start()
    try:
        await asyncio.sleep(0.2)
        at_start = responder.rss()
        await _pipelined(nc, args.memory_first, args.in_flight)
        await asyncio.sleep(0.2)
        first = responder.rss()
        await _pipelined(nc, args.memory_total - args.memory_first, args.in_flight)
        await asyncio.sleep(0.2)
        total = responder.rss()
    finally:
        responder.stop()
    return at_start, first, total


async def _profile(nc: Client, workdir: Path, out: Path, args: argparse.Namespace) -> None:
    responder = Responder("labkit", workdir, profile=out)
    await responder.start()
    try:
        await _pipelined(nc, args.pipelined, args.in_flight)
    finally:
        responder.stop()


def _median(results: list[Result]) -> Result:
    return Result(
        statistics.median(r.rate for r in results),
        statistics.median(r.p50 for r in results),
        statistics.median(r.p99 for r in results),
        statistics.median(r.cpu for r in results),
    )


async def _bench(settings: Settings, workdir: Path, args: argparse.Namespace) -> None:
    creds = Nsc.from_settings(settings).create_user(USER).creds
    modes = (*RESPONDERS, BEFORE) if args.before else RESPONDERS
    nc = await connect_as(creds, settings=settings)
    load = [load_average()]
    try:
        runs: dict[str, dict[str, list[Result]]] = {
            mode: {"sequential": [], "pipelined": []} for mode in modes
        }
        for run in range(args.runs):
            # ABBA: bare, labkit, labkit, bare, ... so a drifting machine hits all alike.
            order = modes if run % 2 == 0 else modes[::-1]
            for mode in order:
                responder = Responder(mode, workdir, before=args.before)
                sequential, pipelined = await _measure(nc, responder, args)
                runs[mode]["sequential"].append(sequential)
                runs[mode]["pipelined"].append(pipelined)
        load.append(load_average())
        memory = await _memory(nc, workdir, args) if args.memory_total else None
        if args.profile:
            await _profile(nc, workdir, args.profile, args)
    finally:
        await nc.close()

    labels = {
        "sequential": f"sequential (1 in flight, n={args.sequential})",
        "pipelined": f"{args.in_flight} in flight (n={args.pipelined})",
    }
    medians = {mode: {kind: _median(rs) for kind, rs in by.items()} for mode, by in runs.items()}
    print(
        f"Medians of {args.runs} runs; CPU is the responder process's own (user + system); "
        f"load average {load[0]:.1f} at the start, {load[1]:.1f} at the end."
    )
    if args.before:
        print(f"before: the labkit server of {args.before}")
    print("\n| responder | mode | req/s | p50 ms | p99 ms | responder CPU µs/req |")
    print("|---|---|---|---|---|---|")
    for kind, label in labels.items():
        for mode in modes:
            r = medians[mode][kind]
            print(
                f"| {mode} | {label} | {r.rate:,.0f} | {r.p50 * 1e3:.3f} | {r.p99 * 1e3:.3f} "
                f"| {r.cpu * 1e6:.0f} |"
            )
    print()
    for mode in modes[1:]:
        for kind, target in (("sequential", 0.9), ("pipelined", 0.85)):
            ratio = medians[mode][kind].rate / medians["bare"][kind].rate
            verdict = "meets" if ratio >= target else "BELOW"
            each = ", ".join(
                f"{lab.rate / bare.rate:.2f}"
                for lab, bare in zip(runs[mode][kind], runs["bare"][kind], strict=True)
            )
            cpu = medians[mode][kind].cpu / medians["bare"][kind].cpu
            cpu_verdict = "meets" if cpu <= 1.5 else "ABOVE"
            print(
                f"{mode}/bare req/s, {labels[kind]}: {ratio:.2f} "
                f"(target >= {target}: {verdict}; per run: {each}); "
                f"responder CPU/req: {cpu:.2f}x (target <= 1.5: {cpu_verdict})"
            )
    if memory is not None:
        at_start, first, total = memory
        growth = (total - first) / first * 100
        verdict = "meets" if growth <= 10 else "BELOW"
        print(
            f"\nlabkit server RSS: {at_start / MIB:.1f} MiB at start, "
            f"{first / MIB:.1f} MiB after {args.memory_first:,} requests, "
            f"{total / MIB:.1f} MiB after {args.memory_total:,} "
            f"({args.in_flight} in flight): growth {growth:+.1f}% (target <= 10%: {verdict})"
        )
    if args.profile:
        print(f"\ncProfile of the labkit server, one {args.in_flight}-in-flight run:")
        stats = pstats.Stats(str(args.profile))
        stats.sort_stats("tottime").print_stats(args.profile_lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=3000, help="requests, one at a time")
    parser.add_argument("--pipelined", type=int, default=20000, help="requests, many in flight")
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=300, help="sequential warm-up requests")
    parser.add_argument("--memory-first", type=int, default=10_000)
    parser.add_argument("--memory-total", type=int, default=100_000, help="0 skips memory")
    parser.add_argument("--profile", type=Path, help="also cProfile the labkit server into FILE")
    parser.add_argument("--profile-lines", type=int, default=30)
    parser.add_argument(
        "--before",
        type=Path,
        help="also measure the labkit server of another checkout: DIR holds its labkit/ "
        "(e.g. `git archive <commit> labkit | tar -x -C DIR`)",
    )
    # Internal: run one responder (the benchmark starts these itself).
    parser.add_argument("--serve", choices=RESPONDERS, help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.ready_file, args.profile_out)
        return

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        # Set before Settings(): the responder subprocesses read the same environment.
        os.environ.update(
            {"LABKIT_HOME": tmp, "LABKIT_NATS_PORT": "0", "LABKIT_NATS_MONITOR_PORT": "0"}
        )
        settings = Settings()
        stack = Stack(settings)
        try:
            stack.ensure("nats")
            asyncio.run(_bench(settings, Path(tmp), args))
        finally:
            stack.down()
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
