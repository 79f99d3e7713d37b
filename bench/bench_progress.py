"""What one exercise progress report costs the application server and nats-server in CPU.

A learner's check sends a `ProgressReport` on `<user>.progress`; the application
server stores it in the `labkit_progress` JetStream KV bucket, keeping the bound of
exercises per learner (labkit.classroom.progress_store). Two kinds of report:

- `re-report`: an exercise the learner has reported before (a check run again: most
  reports in a lab);
- `new`: an exercise id the learner has no record of yet (fresh learners each time,
  far from the bound).

A real stack in a temporary data directory on free ports: nats-server and the
application server as the stack runs it (`python -m labkit.server`, its own process).
The bucket first gets a class's records (`--class-size` learners × 8 exercises,
written directly: what a listing of one learner's keys searches grows with it); then
`--clients` learners send `--reports` reports in all, one at a time each, to
`--replicas` application servers (their CPU added up). CPU comes
from /proc (bench/proc_stats.py): each process's CPU seconds over the window, divided
by the reports.

With `--baseline DIR` (a directory holding another version of the `labkit` package,
e.g. `git archive <commit> labkit | tar -x -C DIR`), the application server is
restarted alternately on that code (through PYTHONPATH) and on this checkout's,
`--repeats` times each, against the same nats-server: the ratio of the two is
measured in one run.

    .venv/bin/python bench/bench_progress.py [--reports 600] [--clients 4]
        [--class-size 1000] [--replicas 1] [--baseline DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from nats.aio.client import Client

from labkit.classroom.progress import report
from labkit.client import connect_as
from labkit.nsc.wrapper import Nsc
from labkit.protocol import ProgressReport
from labkit.settings import Settings
from labkit.stack import Stack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from baseline_code import add_baseline_option, check_baseline, codes_to_measure, use_code  # noqa: E402
from proc_stats import cpu_seconds, load_average  # noqa: E402

KINDS = ("re-report", "new")
KNOWN_EXERCISES = 8  # the re-reported learner's exercises (a lab's worth)


async def measure_async(
    settings: Settings, found: dict[str, int], kind: str, reports: int, clients: int
) -> tuple[dict[str, float], float]:
    """CPU ms per report of each process in `found`, and reports per second."""
    nsc = Nsc.from_settings(settings)
    learners: list[Client] = []
    for _ in range(clients):
        user = f"benchprogress{uuid.uuid4().hex[:10]}"  # fresh: no record yet
        learners.append(await connect_as(nsc.create_user(user).creds, settings=settings))
    share = [reports // clients + (1 if i < reports % clients else 0) for i in range(clients)]

    async def warm_up(nc: Client) -> None:
        # Known exercises, reported twice (the second time as the measured ones are).
        for _ in range(2):
            for n in range(KNOWN_EXERCISES):
                await report(nc, f"lab01-ex{n}", False, 1)

    async def one(nc: Client, count: int) -> None:
        for n in range(count):
            if kind == "re-report":
                await report(nc, f"lab01-ex{n % KNOWN_EXERCISES}", n % 3 == 0, n + 2)
            else:
                await report(nc, f"lab02-ex{n}", True, 1)

    try:
        await asyncio.gather(*(warm_up(nc) for nc in learners))
        before = {name: cpu_seconds(pid) for name, pid in found.items()}
        began = time.perf_counter()
        await asyncio.gather(*(one(nc, n) for nc, n in zip(learners, share, strict=True)))
        wall = time.perf_counter() - began
        after = {name: cpu_seconds(pid) for name, pid in found.items()}
    finally:
        for nc in learners:
            await nc.close()
    return {name: (after[name] - before[name]) / reports * 1000 for name in after}, reports / wall


async def fill_class(settings: Settings, learners: int) -> None:
    """`learners` × KNOWN_EXERCISES records in the bucket, as a class's would be."""
    nc = await connect_as(Nsc.from_settings(settings).server_creds(), settings=settings)
    try:
        kv = await nc.jetstream().key_value(settings.progress.bucket)
        record = ProgressReport(exercise_id="lab01-ex0", passed=True, attempts=1)
        for start in range(0, learners, 50):
            await asyncio.gather(
                *(
                    kv.put(f"classmate{n}.lab01-ex{e}", record.SerializeToString())
                    for n in range(start, min(start + 50, learners))
                    for e in range(KNOWN_EXERCISES)
                )
            )
    finally:
        await nc.close()


def pids(stack: Stack) -> dict[str, int]:
    """nats-server's pid, and each application server's (`server`, `server#2`, ...)."""
    return {
        name: entry.pid
        for name, entry in stack.status().items()
        if name.split("#")[0] in ("server", "nats") and entry.pid
    }


def by_process(per_process: dict[str, float]) -> dict[str, float]:
    """Replicas' figures added up under `server`."""
    summed: dict[str, float] = {}
    for name, value in per_process.items():
        summed[name.split("#")[0]] = summed.get(name.split("#")[0], 0.0) + value
    return summed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=600, help="reports per measurement")
    parser.add_argument("--clients", type=int, default=4, help="learners at once")
    parser.add_argument("--replicas", type=int, default=1, help="application servers")
    parser.add_argument("--class-size", type=int, default=1000, help="learners in the bucket")
    add_baseline_option(parser)
    parser.add_argument("--repeats", type=int, default=3, help="measurements per code and kind")
    args = parser.parse_args()
    check_baseline(parser, args.baseline)
    if args.reports // args.clients >= 200:
        parser.error("keep --reports / --clients under 200, the default bound per learner")
    codes = codes_to_measure(HERE.parent, args.baseline)
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    rates: dict[tuple[str, str], list[float]] = {}
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="labkit-bench-progress-") as home:
        settings = Settings(
            home=Path(home),
            nats={"port": 0, "monitor_port": 0},  # type: ignore[arg-type]
            server={"replicas": args.replicas},  # type: ignore[arg-type]
        )
        # `python -m` puts the working directory first on the path, before PYTHONPATH:
        # the server starts from the data directory, so a baseline's labkit is the one.
        os.chdir(home)
        with Stack(settings) as stack:
            stack.ensure("nats", "server")
            asyncio.run(fill_class(settings, args.class_size))
            for repeat in range(args.repeats):
                for name, code in codes:
                    use_code(stack, code)
                    for kind in KINDS:
                        per_process, rate = asyncio.run(
                            measure_async(settings, pids(stack), kind, args.reports, args.clients)
                        )
                        per_report = by_process(per_process)
                        results.setdefault((name, kind), []).append(per_report)
                        rates.setdefault((name, kind), []).append(rate)
                        loads.append(load_average())
                        shown = ", ".join(f"{p} {ms:.2f} ms" for p, ms in per_report.items())
                        print(
                            f"[{repeat + 1}/{args.repeats}] {name}, {kind}: {shown}; {rate:.0f}/s",
                            flush=True,
                        )
    print(
        f"\n{args.reports} reports × {args.repeats} per code and kind, {args.clients} learners "
        f"at once, {args.class_size} learners' records in the bucket, {args.replicas} "
        f"application server(s); load average "
        f"{min(loads):.1f} to {max(loads):.1f} ({os.cpu_count()} cores)\n"
    )
    print("| code | report | application server ms CPU / report | nats-server | rate |")
    print("|---|---|---|---|---|")
    medians: dict[tuple[str, str], dict[str, float]] = {}
    for name, _ in codes:
        for kind in KINDS:
            runs = results[(name, kind)]
            medians[(name, kind)] = {
                process: statistics.median(run.get(process, 0.0) for run in runs)
                for process in ("server", "nats")
            }
            m = medians[(name, kind)]
            print(
                f"| {name} | {kind} | {m['server']:.2f} | {m['nats']:.2f} "
                f"| {statistics.median(rates[(name, kind)]):.0f}/s |"
            )
    if args.baseline is not None:
        base, now = codes[0][0], codes[1][0]
        print()
        for kind in KINDS:
            ratios = ", ".join(
                f"{process} {medians[(now, kind)][process] / medians[(base, kind)][process]:.2f}×"
                for process in ("server", "nats")
            )
            print(f"{kind}: CPU per report against the baseline's: {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
