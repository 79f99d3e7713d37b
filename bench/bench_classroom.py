"""How big a class one machine holds: N simulated learners against one stack.

Starts the stack as `labkit up` runs it (nats-server, NSC service, auth service,
application server, object store) in a data directory kept between runs
(`--home`, default build/bench-classroom). Then:

1. accounts (cached): each simulated learner registers through the real auth
   service and logs in (the login mints its NATS creds through the NSC service).
   Hashing passwords and minting creds take time, so the accounts and their logins
   are kept in `<home>/bench-accounts.json` (0600) and reused by the next run; only
   the missing ones are created. The bench raises the per-address register/login
   limits for its own stack only (every learner comes from 127.0.0.1 here).
2. load: for each pace and each class size N (upward), `--drivers` processes
   (bench/classroom_learners.py) connect the N learners, one NATS connection each,
   and let every learner act at the pace for `--duration` seconds: echo, cached
   echo, ping a classmate, stream echo, a small file round trip, an exercise report
   (see classroom_learners.py). Human pace is one action every `--human-interval`
   (10 s: a learner reads, types, clicks; notebooks 03-07 ask for a click every few
   cells); `--paces 1,10` runs it and ten times faster.

A size passes when echo's p99 is <= 50 ms and no request failed. For each step it
prints latencies, failures, and the CPU (cores used over the window) and RSS (peak)
of each component, and of the driver processes that simulate the learners (they
share the 2 cores, so the figures are for stack plus simulator).

    .venv/bin/python bench/bench_classroom.py [--sizes 100,250,500,1000,1500]
        [--paces 1,10] [--duration 30] [--drivers 2] [--json FILE] [--keep-going]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from labkit.auth.client import AuthClient, AuthRequestFailed
from labkit.discovery import auth_url, nats_urls
from labkit.settings import Settings
from labkit.stack import Stack

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "classroom_learners.py"
COMPONENTS = ("nats", "server", "auth", "nsc", "objects")
PASSWORD = "bench classroom password"
ECHO_P99_TARGET_MS = 50.0
READY_TIMEOUT = 900.0  # seconds for a driver to connect its learners: a bound, not a claim
REGISTERING_AT_ONCE = 4
# What a learner does (the rest of the latencies are a file round trip's steps and the
# simulator's own event-loop lag).
LEARNER_ACTIONS = ("echo", "cached", "ping", "stream", "file", "progress")


def configure(home: Path, replicas: int, nanio_workers: int) -> Settings:
    """The bench's stack: its own data dir, free ports, registration limits raised."""
    os.environ.update(
        {
            "LABKIT_SERVER_REPLICAS": str(replicas),
            "LABKIT_S3_WORKERS": str(nanio_workers),
        }
    )
    os.environ.update(
        {
            "LABKIT_HOME": str(home),
            "LABKIT_NATS_PORT": "0",
            "LABKIT_NATS_MONITOR_PORT": "0",
            "LABKIT_NATS_WS_PORT": "0",
            "LABKIT_NATS_CLUSTER_PORT": "0",
            "LABKIT_NSC_SERVICE_PORT": "0",
            "LABKIT_AUTH_PORT": "0",
            "LABKIT_S3_PORT": "0",
            # A whole class registers and logs in from one address here.
            "LABKIT_AUTH_REGISTRATIONS_PER_ADDRESS": "1000000",
            "LABKIT_AUTH_LOGIN_ATTEMPTS_PER_ADDRESS": "1000000",
            # Runs reuse the accounts: old stream echoes leave within the hour, so the
            # per-user bound of the stream never fills across runs.
            "LABKIT_STREAM_MAX_AGE": "3600",
            # nats-server recovers every learner's reply consumer at start (2,000 took
            # over 15 s here), before it answers its health check.
            "LABKIT_STACK_STARTUP_TIMEOUT": "180",
        }
    )
    return Settings()


# --- phase 1: accounts, cached between runs -----------------------------------------


def ensure_accounts(home: Path, settings: Settings, count: int) -> list[dict[str, str]]:
    """`count` learners registered and logged in: from the cache, the rest created now."""
    cache = home / "bench-accounts.json"
    accounts: list[dict[str, str]] = json.loads(cache.read_text()) if cache.exists() else []
    missing = range(len(accounts), count)
    if not missing:
        return accounts[:count]
    client = AuthClient(auth_url(settings), timeout=120)

    def create(number: int) -> dict[str, str]:
        email = f"learner-{number:05d}@bench.example"
        try:
            client.register(email, PASSWORD)
        except AuthRequestFailed as exc:
            if exc.status != 409:  # registered by a run that stopped before saving
                raise
        login = client.login(email, PASSWORD)
        return {"email": email, "user": login.user_id, "creds": login.nats.creds}

    began = time.perf_counter()
    with ThreadPoolExecutor(REGISTERING_AT_ONCE) as pool:
        created = list(pool.map(create, missing))
    seconds = time.perf_counter() - began
    accounts += created
    cache.write_text(json.dumps(accounts))
    cache.chmod(0o600)
    print(
        f"accounts: {len(created)} registered and logged in in {seconds:.0f} s "
        f"({len(created) / seconds:.1f}/s, {REGISTERING_AT_ONCE} at once); "
        f"{len(accounts)} cached in {cache}",
        flush=True,
    )
    return accounts[:count]


# --- phase 2: one class size at one pace --------------------------------------------


class Sampler:
    """CPU seconds over a window and peak RSS of processes (with their children)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak_rss: dict[str, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _family(self, name: str) -> list[psutil.Process]:
        root = self.processes[name]
        try:
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> dict[str, float]:
        totals = {}
        for name in self.processes:
            total = 0.0
            for process in self._family(name):
                try:
                    times = process.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
            totals[name] = total
        return totals

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for name in self.processes:
                rss = 0
                for process in self._family(name):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        rss += process.memory_info().rss
                self.peak_rss[name] = max(self.peak_rss[name], rss)

    def start(self) -> dict[str, float]:
        self._thread.start()
        return self.cpu_seconds()

    def stop(self) -> dict[str, float]:
        cpu = self.cpu_seconds()
        self._stop.set()
        self._thread.join()
        return cpu


def run_step(
    stack: Stack,
    accounts: list[dict[str, str]],
    interval: float,
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, Any]:
    size = len(accounts)
    learners = []
    for number, account in enumerate(accounts):
        partner = number ^ 1 if (number ^ 1) < size else 0  # the classmate next to you
        learners.append(
            {
                "user": account["user"],
                "creds": account["creds"],
                "partner": accounts[partner]["user"],
            }
        )
    drivers = min(args.drivers, size)
    servers = nats_urls(stack.settings)
    processes = []
    for index in range(drivers):
        job = workdir / f"driver-{index}.json"
        job.write_text(
            json.dumps(
                {
                    # Classmates share a driver, so its flush at the end is a
                    # sentinel for every line the server relayed between them.
                    "learners": [
                        spec for n, spec in enumerate(learners) if (n // 2) % drivers == index
                    ],
                    "servers": servers,
                    "interval": interval,
                    "duration": args.duration,
                    "skip": args.skip.split(",") if args.skip else [],
                    "result": str(workdir / f"driver-{index}.result.json"),
                }
            )
        )
        job.chmod(0o600)
        processes.append(
            subprocess.Popen(
                [sys.executable, str(DRIVER), str(job)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "READY":
                raise RuntimeError(f"a driver did not connect its learners (exit {process.wait()})")
        status = stack.status()
        # Every instance: `server#2` is the second replica, `nats#2` a cluster's node 2.
        pids = {
            name: entry.pid
            for name, entry in status.items()
            if name.split("#")[0] in COMPONENTS and entry.pid
        }
        sampler = Sampler({name: pid for name, pid in pids.items() if pid is not None})
        load_before = os.getloadavg()[0]
        cpu_before = sampler.start()
        began = time.perf_counter()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("GO\n")
            process.stdin.flush()
        codes = [process.wait() for process in processes]
        wall = time.perf_counter() - began
        cpu_after = sampler.stop()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    if any(codes):
        raise RuntimeError(f"a driver failed: exit codes {codes}")
    merged = merge(
        [json.loads((workdir / f"driver-{i}.result.json").read_text()) for i in range(drivers)]
    )
    merged.update(
        size=size,
        drivers=drivers,
        load=(load_before, os.getloadavg()[0]),
        interval=interval,
        wall=wall,
        cpu={name: (cpu_after[name] - cpu_before[name]) / wall for name in cpu_after},
        rss_mb={name: rss / 2**20 for name, rss in sampler.peak_rss.items()},
    )
    return merged


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    counts: dict[str, float] = {}
    for result in results:
        for action, values in result["latencies"].items():
            latencies.setdefault(action, []).extend(values)
        for reason, number in result["failures"].items():
            failures[reason] = failures.get(reason, 0) + number
        for name, number in result["counts"].items():
            # Connecting runs in parallel in every driver: the slowest one counts.
            if name in ("connect seconds", "driver peak rss mb"):
                counts[name] = max(counts.get(name, 0), number)
            else:
                counts[name] = counts.get(name, 0) + number
    return {"latencies": latencies, "failures": failures, "counts": counts}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def passed(step: dict[str, Any]) -> bool:
    echo = step["latencies"].get("echo", [])
    return bool(echo) and percentile(echo, 0.99) <= ECHO_P99_TARGET_MS and not step["failures"]


def report(step: dict[str, Any], pace: str) -> None:
    actions = sum(len(step["latencies"].get(action, [])) for action in LEARNER_ACTIONS)
    failed = sum(step["failures"].values())
    verdict = "PASS" if passed(step) else "FAIL"
    print(
        f"\n## {step['size']} learners at {pace} (one action every {step['interval']:g} s): "
        f"{verdict}\n\n{actions + failed} actions in {step['wall']:.0f} s "
        f"({(actions + failed) / step['wall']:.0f}/s), {failed} failed; "
        f"connecting took {step['counts'].get('connect seconds', 0):.0f} s\n"
    )
    print("| action | done | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for action, values in sorted(step["latencies"].items()):
        print(
            f"| {action} | {len(values)} | {statistics.median(values):.1f} "
            f"| {percentile(values, 0.99):.1f} | {max(values):.1f} |"
        )
    for reason, number in sorted(step["failures"].items()):
        print(f"- failed: {reason} x{number}")
    for name, number in sorted(step["counts"].items()):
        if name not in ("connect seconds", "driver cpu seconds", "driver peak rss mb"):
            print(f"- {name}: {number:g}")
    rate = actions / step["wall"]
    print(
        f"\nThe machine's load average: {step['load'][0]:.1f} before, {step['load'][1]:.1f} "
        f"after ({os.cpu_count()} cores, shared with whatever else runs).\n"
    )
    print("| process | CPU (cores) | CPU ms per learner action | peak RSS MB |")
    print("|---|---|---|---|")
    for name in step["cpu"]:
        cores = step["cpu"][name]
        print(f"| {name} | {cores:.2f} | {cores / rate * 1000:.2f} | {step['rss_mb'][name]:.0f} |")
    drivers = step["counts"]
    cores = drivers.get("driver cpu seconds", 0) / step["wall"]
    print(
        f"| simulator ({step['drivers']} processes) | {cores:.2f} | {cores / rate * 1000:.2f} "
        f"| {drivers.get('driver peak rss mb', 0):.0f} each at most |"
    )
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path("build/bench-classroom"))
    parser.add_argument("--sizes", default="100,250,500,1000,1500")
    parser.add_argument("--paces", default="1,10", help="multiples of human pace")
    parser.add_argument("--human-interval", type=float, default=10.0, help="seconds")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per step")
    parser.add_argument("--drivers", type=int, default=2, help="simulator processes")
    parser.add_argument("--skip", default="", help="actions left out, e.g. file,stream")
    parser.add_argument("--replicas", type=int, default=1, help="application servers")
    parser.add_argument("--nanio-workers", type=int, default=1, help="object store processes")
    parser.add_argument("--keep-going", action="store_true", help="go on after a failed size")
    parser.add_argument("--json", type=Path, help="write every step's figures here")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    paces = [float(pace) for pace in args.paces.split(",")]
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    # One run per data dir: two would share one stack and each other's driver files.
    lock = (home / "bench.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another bench_classroom.py runs on {home}; wait for it or pass --home")
        return 2
    settings = configure(home, args.replicas, args.nanio_workers)
    steps: list[dict[str, Any]] = []
    largest: dict[str, int] = {}
    with Stack(settings) as stack:
        began = time.perf_counter()
        stack.ensure(*COMPONENTS)
        print(
            f"stack up in {time.perf_counter() - began:.1f} s ({home}): {args.replicas} "
            f"application server(s), {args.nanio_workers} object store process(es)"
            + (f"; actions left out: {args.skip}" if args.skip else ""),
            flush=True,
        )
        accounts = ensure_accounts(home, settings, max(sizes))
        workdir = home / "bench-run"
        workdir.mkdir(exist_ok=True)
        for pace in paces:
            name = "human pace" if pace == 1 else f"{pace:g}x human pace"
            for size in sizes:
                step = run_step(stack, accounts[:size], args.human_interval / pace, args, workdir)
                step["pace"] = pace
                steps.append(step)
                report(step, name)
                if passed(step):
                    largest[name] = size
                elif not args.keep_going:
                    break
    print("\n## largest class passing (echo p99 <= 50 ms, no failed request)\n")
    for pace in paces:
        name = "human pace" if pace == 1 else f"{pace:g}x human pace"
        print(f"- {name}: {largest.get(name, 0)} learners (sizes tried: {args.sizes})")
    if args.json:
        args.json.write_text(json.dumps({"steps": steps, "largest": largest}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
