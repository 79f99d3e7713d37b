"""What does the local three-node NATS cluster cost, and do app-server replicas scale on it?

Starts, in temporary data directories on free ports, a one-node stack and a three-node
cluster stack (`cluster_size=3`, as `python -m labkit up --cluster 3` runs it), and in
the same run measures:

- JetStream publish with ack: one node (R1 stream) against the cluster (R3 stream),
  the client connected to the stream leader's node and to a follower's node (a
  follower forwards to the leader, which waits for a second replica before it acks).
  Sequential (p50, p99, rate) and 100 in flight (rate).
- The echo lab (`<user>.echo` through `python -m labkit.server`, the stack's
  application server) on the cluster with 1, 2 and 3 replicas in one queue group:
  requests/s with 200 in flight from one client process, each replica's share (from
  `$SRV.STATS`), and where the CPU went (client, nats-servers, replicas).

Runs alternate (echo: 1, 2, 3 replicas, then 3, 2, 1, ...) so a drifting machine
hits each alike; the tables show medians.

    .venv/bin/python bench/bench_cluster.py [--runs 3] [--sequential 2000] [--echo 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.js.api import StorageType, StreamConfig
from proc_stats import cpu_seconds, machine_busy_seconds

from labkit.client import connect_as
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server.jetstream import when_available
from labkit.settings import Settings
from labkit.stack import Stack

USER = "bench"
ADMIN = "bench-admin"
STREAM, JS_SUBJECT = "BENCH_JS", "benchjs.data"
JS_PAYLOAD = b"x" * 100
ECHO_PAYLOAD = EchoRequest(message="hello").SerializeToString()
TIMEOUT = 10.0


@dataclass(frozen=True)
class Latency:
    rate: float
    p50: float
    p99: float


def _latency(latencies: list[float], elapsed: float) -> Latency:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Latency(len(latencies) / elapsed, cuts[49], cuts[98])


async def _sequential(call: Callable[[], Awaitable[None]], count: int) -> Latency:
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        begin = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - begin)
    return _latency(latencies, time.perf_counter() - started)


async def _pipelined(call: Callable[[], Awaitable[None]], count: int, in_flight: int) -> float:
    """Requests/s with `in_flight` callers sharing `count` calls."""
    left = count

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return count / (time.perf_counter() - started)


def _route_messages(stack: Stack) -> int:
    """Messages the nodes have sent each other over routes so far (/routez)."""
    total = 0
    for name in stack.status():
        if name.startswith("nats") and stack.status()[name].running:
            url = f"{stack.record(name)['monitor_url']}/routez"
            with urllib.request.urlopen(url, timeout=2) as response:
                routes = json.loads(response.read()).get("routes") or []
                total += sum(route["out_msgs"] for route in routes)
    return total


def _admin_creds(settings: Settings) -> str:
    permissions = permissions_from_templates(ADMIN, [">"], [">"])
    return Nsc.from_settings(settings).create_user(ADMIN, permissions=permissions).creds


# --- JetStream publish with ack ----------------------------------------------------


async def _js_target(settings: Settings, replicas: int) -> tuple[str, dict[str, str]]:
    """Create the stream; its leader's server name and each server name's client URL."""
    stack = Stack(settings)
    urls = {
        str(stack.record(name).get("server_name", "labkit")): stack.url(name)
        for name in stack.status()
        if name.startswith("nats")
    }
    nc = await connect_as(_admin_creds(settings), settings=settings)
    try:
        js = nc.jetstream()
        config = StreamConfig(
            name=STREAM, subjects=[JS_SUBJECT], storage=StorageType.FILE, num_replicas=replicas
        )
        info = await when_available(lambda: js.add_stream(config), "creating the bench stream")
        leader = info.cluster.leader if info.cluster and info.cluster.leader else "labkit"
        return str(leader), urls
    finally:
        await nc.close()


async def _js_measure(creds: str, url: str, args: argparse.Namespace) -> tuple[Latency, float]:
    nc = await connect_as(creds, servers=[url])
    js = nc.jetstream()

    async def publish() -> None:
        await js.publish(JS_SUBJECT, JS_PAYLOAD, timeout=TIMEOUT)

    try:
        for _ in range(args.warmup):
            await publish()
        sequential = await _sequential(publish, args.sequential)
        pipelined = await _pipelined(publish, args.js_pipelined, args.js_in_flight)
        return sequential, pipelined
    finally:
        await nc.close()


# --- the echo lab with N replicas --------------------------------------------------


async def _replica_counts(admin: Client) -> dict[str, int]:
    """Echo requests served so far, by replica id ($SRV.STATS answers)."""
    inbox = admin.new_inbox()
    sub = await admin.subscribe(inbox)
    await admin.publish("$SRV.STATS.labkit", b"", reply=inbox)
    counts: dict[str, int] = {}
    try:
        while True:
            msg = await sub.next_msg(timeout=0.3)
            stats = json.loads(msg.data)
            echo = [e["num_requests"] for e in stats["endpoints"] if e["name"] == "echo"]
            counts[stats["id"]] = sum(echo)
    except TimeoutError:
        pass
    await sub.unsubscribe()
    return counts


@dataclass(frozen=True)
class EchoRun:
    rate: float
    shares: list[float]  # each replica's fraction of the requests, largest first
    cpu: dict[str, float]  # cores busy on average during the run, by process group
    route_hops: float  # route messages per request (0: client and replica on one node)


async def _echo_measure(
    stack: Stack, user_creds: str, admin_creds: str, args: argparse.Namespace
) -> EchoRun:
    settings = stack.settings
    nc = await connect_as(user_creds, settings=settings)
    admin = await connect_as(admin_creds, settings=settings)

    async def ask() -> None:
        answer = await nc.request(f"{USER}.echo", ECHO_PAYLOAD, timeout=TIMEOUT)
        if EchoResponse.FromString(answer.data).message != "echo hello":
            raise RuntimeError(f"unexpected answer {answer.data!r}")

    groups: dict[str, list[int]] = {"client": [os.getpid()], "nats-servers": [], "replicas": []}
    for name, status in stack.status().items():
        if status.pid is not None and name.startswith("nats"):
            groups["nats-servers"].append(status.pid)
        elif status.pid is not None and name.startswith("server"):
            groups["replicas"].append(status.pid)
    try:
        await _pipelined(ask, args.warmup * 5, args.in_flight)
        before = await _replica_counts(admin)
        cpu_before = {g: sum(cpu_seconds(p) for p in pids) for g, pids in groups.items()}
        machine_before, routes_before = machine_busy_seconds(), _route_messages(stack)
        started = time.perf_counter()
        rate = await _pipelined(ask, args.echo, args.in_flight)
        wall = time.perf_counter() - started
        cpu = {
            g: (sum(cpu_seconds(p) for p in pids) - cpu_before[g]) / wall
            for g, pids in groups.items()
        }
        cpu["machine"] = (machine_busy_seconds() - machine_before) / wall
        hops = (_route_messages(stack) - routes_before) / args.echo
        after = await _replica_counts(admin)
    finally:
        await nc.close()
        await admin.close()
    served = [after[r] - before.get(r, 0) for r in after]
    total = sum(served) or 1
    return EchoRun(rate, sorted((s / total for s in served), reverse=True), cpu, hops)


def _with_replicas(stack: Stack, count: int) -> Stack:
    settings = stack.settings.model_copy(deep=True)
    settings.server.replicas = count
    replicas = Stack(settings)
    replicas.ensure("server")
    for extra in range(count + 1, 4):  # fewer than before: stop the others
        replicas.down(f"server#{extra}")
    return replicas


# --- the run -----------------------------------------------------------------------


async def _bench(single: Stack, cluster: Stack, args: argparse.Namespace) -> None:
    one_leader, one_urls = await _js_target(single.settings, replicas=1)
    leader, urls = await _js_target(cluster.settings, replicas=3)
    follower = next(name for name in urls if name != leader)
    targets = {
        "one node, R1": (_admin_creds(single.settings), one_urls[one_leader]),
        "3-node cluster, R3, client on the leader's node": (
            _admin_creds(cluster.settings),
            urls[leader],
        ),
        "3-node cluster, R3, client on a follower's node": (
            _admin_creds(cluster.settings),
            urls[follower],
        ),
    }
    js_runs: dict[str, list[tuple[Latency, float]]] = {label: [] for label in targets}
    echo_runs: dict[int, list[EchoRun]] = {1: [], 2: [], 3: []}
    user_creds = Nsc.from_settings(cluster.settings).create_user(USER).creds
    admin = _admin_creds(cluster.settings)
    for run in range(args.runs):
        for label, (creds, url) in targets.items():
            js_runs[label].append(await _js_measure(creds, url, args))
        order = (1, 2, 3) if run % 2 == 0 else (3, 2, 1)
        for count in order:
            replicas = await asyncio.to_thread(_with_replicas, cluster, count)
            echo_runs[count].append(await _echo_measure(replicas, user_creds, admin, args))

    print(f"Medians of {args.runs} runs, {os.cpu_count()} cores.\n")
    print("JetStream publish with ack, 100-byte messages, file storage:\n")
    print(
        f"| target | sequential p50 ms | p99 ms | sequential msg/s | "
        f"{args.js_in_flight} in flight msg/s |"
    )
    print("|---|---|---|---|---|")
    for label, runs in js_runs.items():
        seq = [r[0] for r in runs]
        print(
            f"| {label} | {statistics.median(r.p50 for r in seq) * 1e3:.2f} "
            f"| {statistics.median(r.p99 for r in seq) * 1e3:.2f} "
            f"| {statistics.median(r.rate for r in seq):,.0f} "
            f"| {statistics.median(r[1] for r in runs):,.0f} |"
        )
    print(
        f"\nEcho lab on the 3-node cluster, {args.in_flight} requests in flight from one "
        f"client process (n={args.echo}); CPU is cores busy on average during the run:\n"
    )
    print(
        "| replicas | req/s | per-run req/s | replica shares | route msgs/req "
        "| CPU client | nats-servers | replicas | whole machine |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for count, runs in echo_runs.items():
        shares = "/".join(
            f"{statistics.median(r.shares[i] for r in runs if len(r.shares) > i) * 100:.0f}%"
            for i in range(count)
        )
        cpu = {g: statistics.median(r.cpu[g] for r in runs) for g in runs[0].cpu}
        print(
            f"| {count} | {statistics.median(r.rate for r in runs):,.0f} "
            f"| {', '.join(f'{r.rate:,.0f}' for r in runs)} | {shares} "
            f"| {statistics.median(r.route_hops for r in runs):.2f} "
            f"| {cpu['client']:.2f} | {cpu['nats-servers']:.2f} | {cpu['replicas']:.2f} "
            f"| {cpu['machine']:.2f} |"
        )


def _settings(home: Path, cluster_size: int) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "nats": {"port": 0, "monitor_port": 0, "cluster_port": 0, "cluster_size": cluster_size},
    }
    return Settings(**values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=2000, help="JetStream, one at a time")
    parser.add_argument("--js-pipelined", type=int, default=5000, help="JetStream, in flight")
    parser.add_argument("--js-in-flight", type=int, default=100)
    parser.add_argument("--echo", type=int, default=30000, help="echo requests per run")
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-cluster-") as tmp:
        # The app-server replicas read the environment: free ports, not the defaults.
        for variable in ("NATS_PORT", "NATS_MONITOR_PORT", "NATS_CLUSTER_PORT"):
            os.environ[f"LABKIT_{variable}"] = "0"
        single = Stack(_settings(Path(tmp) / "single", 1))
        cluster = Stack(_settings(Path(tmp) / "cluster", 3))
        try:
            single.ensure("nats")
            cluster.ensure("nats")
            asyncio.run(_bench(single, cluster, args))
        finally:
            cluster.down()
            single.down()
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
