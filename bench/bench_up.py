"""How fast is `python -m labkit up` to healthy (NATS + NSC), and a user's connect?

Runs each measurement several times and prints medians as a Markdown table for
the README. The baseline, in the same run, is the bare nats-server binary started
on the same config and polled until /healthz answers: the part that is not ours.

    .venv/bin/python bench/bench_up.py [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.client import connect_as
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.stack.component import http_ok
from labkit.stack.nats_server import nats_server_binary


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LABKIT_HOME": str(home),
        "LABKIT_NATS_PORT": "0",
        "LABKIT_NATS_MONITOR_PORT": "0",
        "LABKIT_NSC_SERVICE_PORT": "0",
    }


def _cli(home: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "labkit", *args],
        env=_env(home),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _bare_nats_start(home: Path) -> float:
    """Start nats-server on the config `up` wrote, until /healthz answers."""
    settings = Settings(home=home)
    config = settings.paths.nats_dir / "nats-server.conf"
    monitor = next(
        line.split('"')[1] for line in config.read_text().splitlines() if line.startswith("http:")
    )
    started = time.perf_counter()
    server = subprocess.Popen(
        [str(nats_server_binary()), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not http_ok(f"http://{monitor}/healthz", timeout=0.2):
            time.sleep(0.002)
        return time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()


async def _connect(creds: str, url: str) -> float:
    started = time.perf_counter()
    nc = await connect_as(creds, servers=url)
    elapsed = time.perf_counter() - started
    await nc.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    cold, warm, bare, connect = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        for run in range(args.runs):
            home = Path(tmp) / f"run{run}"
            # An empty data dir: keys and JWTs are created.
            cold.append(_cli(home, "up", "nats", "nsc"))
            settings = Settings(home=home)
            stack = Stack(settings)
            creds = subprocess.run(
                [sys.executable, "-m", "labkit", "creds", "bench"],
                env=_env(home),
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            connect.append(asyncio.run(_connect(creds, stack.url("nats"))))
            _cli(home, "down")
            # An existing data dir: what a later `up` costs.
            warm.append(_cli(home, "up", "nats", "nsc"))
            _cli(home, "down")
            bare.append(_bare_nats_start(home))
    rows = [
        ("`labkit up`, empty data dir (NATS + NSC healthy)", cold),
        ("`labkit up`, existing data dir", warm),
        ("baseline: bare nats-server to /healthz", bare),
        ("user connect with creds (nats-py)", connect),
    ]
    print(f"| what ({args.runs} runs) | median | min | max |")
    print("|---|---|---|---|")
    for label, values in rows:
        ms = [v * 1000 for v in values]
        print(f"| {label} | {statistics.median(ms):.0f} ms | {min(ms):.0f} ms | {max(ms):.0f} ms |")
    ratio = statistics.median(warm) / statistics.median(bare)
    print(f"\n`up` (existing data dir) / bare nats-server start: {ratio:.1f}x")


if __name__ == "__main__":
    main()
