"""A local three-node NATS cluster: joined by routes, R3 JetStream, fail-over, replicas.

Real nats-server processes on loopback, killed with SIGKILL. One cluster serves the
module's tests (it starts in well under a second); the CLI test runs its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.api import StorageType, StreamConfig

from labkit.auth.client import AuthClient
from labkit.client import connect_as
from labkit.discovery import cluster_size, jetstream_replicas, nats_urls
from labkit.labs import lab_server
from labkit.labs.echo import send_echo
from labkit.labs.stream_echo import echo_stream_config
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.push import push_account_jwt
from labkit.nsc.wrapper import Nsc
from labkit.server.jetstream import when_available
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.stack.cluster import load_plan
from labkit.subjects import ECHO_STREAM_NAME
from tests.conftest import make_settings
from tests.nats_helpers import assert_connect_refused, observed_connection
from tests.stack.test_stack import _gone

ADMIN = "cluster-admin"
NODES = ["nats", "nats#2", "nats#3"]


def cluster_settings(home: Path, size: int | None = 3, **overrides: Any) -> Settings:
    nats_settings: dict[str, Any] = {"port": 0, "monitor_port": 0, "cluster_port": 0}
    if size is not None:
        nats_settings["cluster_size"] = size
    return make_settings(home, nats=nats_settings, **overrides)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = cluster_settings(tmp_path_factory.mktemp("cluster") / "home")
    stack = Stack(settings)
    stack.ensure("nats")
    yield stack
    stack.down()


@pytest.fixture(scope="module")
def admin_creds(cluster: Stack) -> str:
    """A user of the labs' account that may use any subject (test set-up and checks)."""
    permissions = permissions_from_templates(ADMIN, [">"], [">"])
    return Nsc.from_settings(cluster.settings).create_user(ADMIN, permissions=permissions).creds


def jsz(record: dict[str, Any]) -> dict[str, Any]:
    url = f"{record['monitor_url']}/jsz?accounts=true&streams=true"
    with urllib.request.urlopen(url, timeout=2) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def local_stream_state(record: dict[str, Any], stream: str) -> dict[str, Any] | None:
    """The stream's state in this node's own replica (from its monitoring port)."""
    for account in jsz(record).get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail["name"] == stream:
                state: dict[str, Any] = detail["state"]
                return state
    return None


async def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


# --- pure pieces ----------------------------------------------------------------


def test_the_cluster_size_is_remembered_by_the_data_dir(tmp_path: Path, cluster: Stack) -> None:
    home = cluster.settings.home
    assert cluster_size(cluster_settings(home, size=None)) == 3  # from the saved plan
    assert cluster_size(cluster_settings(home, size=1)) == 1  # the settings win
    assert cluster_size(cluster_settings(tmp_path / "fresh", size=None)) == 1
    assert jetstream_replicas(cluster_settings(home, size=None)) == 3
    assert jetstream_replicas(cluster_settings(tmp_path / "fresh", size=None)) == 1
    assert jetstream_replicas(cluster_settings(home, stream={"replicas": 2})) == 2
    assert echo_stream_config(cluster.settings.stream, 3).num_replicas == 3


def test_nats_urls_come_from_the_settings_when_they_name_servers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, nats={"url": "nats://a:4222, nats://b:4222"})
    assert nats_urls(settings) == ["nats://a:4222", "nats://b:4222"]


# --- the running cluster ----------------------------------------------------------


def test_three_nodes_are_joined_and_clients_get_every_url(cluster: Stack) -> None:
    statuses = cluster.status()
    assert [name for name in statuses if name.startswith("nats")] == NODES
    assert all(statuses[name].running for name in NODES)
    records = [cluster.record(name) for name in NODES]
    assert nats_urls(cluster.settings) == [record["url"] for record in records]
    assert len({record["url"] for record in records}) == 3
    assert [record["server_name"] for record in records] == ["labkit-1", "labkit-2", "labkit-3"]
    plan = load_plan(cluster.settings.paths)
    assert plan is not None and plan.size == 3
    for record in records:
        meta = jsz(record)["meta_cluster"]
        assert meta["cluster_size"] == 3 and meta["leader"]
        config = Path(record["config"])
        assert config.stat().st_mode & 0o077 == 0  # it holds the route password
        assert "nats-route://route:" in config.read_text()
    # Every node has its own JetStream store.
    stores = {Path(record["config"]).parent / "jetstream" for record in records}
    assert len(stores) == 3 and all(store.is_dir() for store in stores)


def test_a_revocation_pushed_to_one_node_disconnects_the_user_on_another(
    cluster: Stack,
) -> None:
    nsc = Nsc.from_settings(cluster.settings)
    creds = nsc.create_user("cluster-revoked").creds
    node1, node2, node3 = (cluster.url(name) for name in NODES)

    async def scenario() -> list[str]:
        nc, seen = await observed_connection(creds, node3)
        assert nc.is_connected
        account_jwt = nsc.revoke_user("cluster-revoked")
        await push_account_jwt(node1, nsc.system_creds(), account_jwt)
        await asyncio.wait_for(seen.closed.wait(), timeout=2.0)
        return [*seen.errors, str(nc.last_error)]

    errors = asyncio.run(scenario())
    assert any("revoked" in error.lower() for error in errors), errors

    assert_connect_refused(node2, creds)


STREAM = "CLUSTER_KILL"
SUBJECT = "clusterkill.data"
TOTAL, KILL_AT, WINDOW = 2000, 1000, 50


async def publish_until_acked(
    nc: Client, number: int, acked: dict[int, int], retries: list[str], deadline: float
) -> None:
    """Publish message `number`, retrying on timeouts; its Nats-Msg-Id makes retries safe."""
    js = nc.jetstream()
    while True:
        try:
            ack = await js.publish(
                SUBJECT, str(number).encode(), timeout=1.0, headers={"Nats-Msg-Id": f"m-{number}"}
            )
        except (TimeoutError, NatsError) as exc:
            retries.append(type(exc).__name__)
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        acked[number] = ack.seq
        return


async def read_stream(creds: str, url: str) -> dict[int, bytes]:
    """Every message of the stream, by sequence, from that node's own replica.

    A direct get is answered by any replica, and a node serves its local subscribers
    first: a client connected to this node only reads this node's copy.
    """
    nc = await connect_as(creds, servers=[url], allow_reconnect=False)
    try:
        js = nc.jetstream()
        last = (await js.stream_info(STREAM)).state.last_seq

        async def get(seq: int) -> tuple[int, bytes]:
            return seq, bytes((await js.get_msg(STREAM, seq, direct=True)).data or b"")

        messages: dict[int, bytes] = {}
        for first in range(1, last + 1, 200):
            batch = range(first, min(first + 200, last + 1))
            messages.update(await asyncio.gather(*(get(seq) for seq in batch)))
        return messages
    finally:
        await nc.close()


def test_acked_messages_survive_a_node_killed_midway_and_it_catches_up(
    cluster: Stack, admin_creds: str
) -> None:
    records = {name: cluster.record(name) for name in NODES}

    async def create_stream() -> str:
        nc = await connect_as(admin_creds, settings=cluster.settings)
        try:
            js = nc.jetstream()
            config = StreamConfig(
                name=STREAM,
                subjects=[SUBJECT],
                storage=StorageType.FILE,
                num_replicas=3,
                allow_direct=True,
            )
            info = await when_available(lambda: js.add_stream(config), "creating the stream")
            assert info.cluster is not None and info.cluster.leader
            return str(info.cluster.leader)
        finally:
            await nc.close()

    leader = asyncio.run(create_stream())
    # Kill the stream's leader, with the client connected to it: both must fail over.
    victim = next(name for name in NODES if records[name]["server_name"] == leader)
    survivors = [name for name in NODES if name != victim]
    servers = [records[victim]["url"]] + [records[name]["url"] for name in survivors]

    async def publish_all() -> tuple[dict[int, int], list[str], int | None]:
        nc = await connect_as(
            admin_creds, servers=servers, dont_randomize=True, reconnect_time_wait=0.1
        )
        assert nc.connected_url is not None
        assert nc.connected_url.port == int(records[victim]["url"].rsplit(":", 1)[1])
        acked: dict[int, int] = {}
        retries: list[str] = []
        deadline = time.monotonic() + 30
        try:
            for start in range(0, TOTAL, WINDOW):
                if start == KILL_AT:
                    os.kill(records[victim]["pid"], signal.SIGKILL)
                    killed = time.perf_counter()
                window = range(start, start + WINDOW)
                await asyncio.gather(
                    *(publish_until_acked(nc, n, acked, retries, deadline) for n in window)
                )
                if start == KILL_AT:
                    print(
                        f"first window after the kill acked in {time.perf_counter() - killed:.2f} s"
                    )
            return acked, retries, nc.connected_url.port if nc.connected_url else None
        finally:
            await nc.close()

    started = time.perf_counter()
    acked, retries, connected_port = asyncio.run(publish_all())
    took = time.perf_counter() - started
    assert _gone(records[victim]["pid"])
    assert connected_port != int(records[victim]["url"].rsplit(":", 1)[1])  # it failed over
    assert len(acked) == TOTAL
    # One sequence per message: retried publishes were recognised, not stored twice.
    assert sorted(acked.values()) == list(range(1, TOTAL + 1))
    print(f"published {TOTAL} in {took:.2f} s with {len(retries)} retries: {set(retries)}")

    async def replicas_current(names: list[str]) -> None:
        def current() -> bool:
            states = [local_stream_state(cluster.record(name), STREAM) for name in names]
            return all(state and state["last_seq"] == TOTAL for state in states)

        await wait_for(current, 10, f"the stream's replicas on {names}")

    asyncio.run(replicas_current(survivors))
    expected = {seq: str(n).encode() for n, seq in acked.items()}
    for name in survivors:  # each remaining node holds every acked message
        assert asyncio.run(read_stream(admin_creds, records[name]["url"])) == expected

    # The stack restarts the killed node, on its ports, and leaves the others running.
    after = Stack(cluster.settings).ensure("nats")
    assert all(status.running for status in after.values())
    assert after[victim].pid != records[victim]["pid"]
    assert all(after[name].pid == records[name]["pid"] for name in survivors)
    assert cluster.url(victim) == records[victim]["url"]
    asyncio.run(replicas_current([victim]))
    assert asyncio.run(read_stream(admin_creds, cluster.url(victim))) == expected


def test_the_labs_stream_and_kv_cache_bucket_get_three_replicas(
    cluster: Stack, admin_creds: str
) -> None:
    settings = cluster.settings.model_copy(deep=True)
    settings.server.cache_backend = "kv"
    server = lab_server(settings)

    async def scenario() -> dict[str, int]:
        await server.start()
        nc = await connect_as(admin_creds, settings=settings)
        try:
            js = nc.jetstream()
            names = [ECHO_STREAM_NAME, f"KV_{settings.server.cache_bucket}"]
            return {name: (await js.stream_info(name)).config.num_replicas or 1 for name in names}
        finally:
            await nc.close()
            await server.stop()

    assert set(asyncio.run(scenario()).values()) == {3}


def test_one_node_is_stopped_and_started_by_name_alone(cluster: Stack) -> None:
    before = {name: cluster.status()[name].pid for name in NODES}
    assert cluster.down("nats#2") == ["nats#2"]
    assert _gone(before["nats#2"] or 0)
    after = cluster.ensure("nats#2")
    assert list(after) == ["nats#2"] and after["nats#2"].running
    now = {name: cluster.status()[name].pid for name in NODES}
    assert now["nats"] == before["nats"] and now["nats#3"] == before["nats#3"]
    assert now["nats#2"] != before["nats#2"]


def test_no_request_is_lost_when_an_app_server_replica_is_killed(
    cluster: Stack, admin_creds: str
) -> None:
    settings = cluster.settings.model_copy(deep=True)
    settings.server.replicas = 2
    stack = Stack(settings)
    user = "cluster-alice"
    creds = Nsc.from_settings(settings).create_user(user).creds
    total, kill_after = 60, 30
    try:
        statuses = stack.ensure("server")
        assert statuses["server"].running and statuses["server#2"].running
        victim = statuses["server#2"].pid
        assert victim is not None

        async def echo_with_retries(nc: Client, text: str) -> int:
            for attempt in range(1, 5):  # the client's policy: 0.5 s timeout, 3 retries
                try:
                    assert await send_echo(nc, user, text, timeout=0.5) == f"echo {text}"
                    return attempt
                except TimeoutError:
                    if attempt == 4:
                        raise
            raise AssertionError("unreachable")

        async def served_per_replica(admin: Client) -> list[int]:
            # $SRV.STATS: each replica answers with its own request counts.
            inbox = admin.new_inbox()
            sub = await admin.subscribe(inbox)
            await admin.publish("$SRV.STATS.labkit", b"", reply=inbox)
            counts = []
            for _ in range(2):
                msg = await sub.next_msg(timeout=2)
                stats = json.loads(msg.data)
                counts += [e["num_requests"] for e in stats["endpoints"] if e["name"] == "echo"]
            await sub.unsubscribe()
            return counts

        async def scenario() -> tuple[list[int], list[int]]:
            nc = await connect_as(creds, settings=settings)
            admin = await connect_as(admin_creds, settings=settings)
            try:
                attempts, served = [], []
                for n in range(total):
                    if n == kill_after:
                        served = await served_per_replica(admin)
                        os.kill(victim, signal.SIGKILL)  # no drain, no goodbye
                    attempts.append(await echo_with_retries(nc, str(n)))
                return attempts, served
            finally:
                await nc.close()
                await admin.close()

        attempts, served = asyncio.run(scenario())
        assert len(attempts) == total and max(attempts) <= 4
        assert len(served) == 2
        assert all(count > 0 for count in served), served  # both took part before the kill
        assert _gone(victim)
    finally:
        stack.down("server")


def test_a_new_learner_is_answered_at_once_on_every_node(
    cluster: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The announcement's answer means the server's own node has the learner's
    # subscriptions; the other nodes hear of them over the routes. A learner's
    # connect, after the creds, takes longer than that (60 of 60 across the nodes
    # in a probe, 0 "no responders"). No periodic listing helps: it is an hour away.
    settings = cluster.settings.model_copy(deep=True)
    settings.server.reader_refresh = 3600
    monkeypatch.setenv("LABKIT_SERVER_READER_REFRESH", "3600")  # the server process's
    stack = Stack(settings)
    nsc = Nsc.from_settings(settings)
    urls = [cluster.url(name) for name in NODES]
    try:
        assert stack.ensure("server")["server"].running

        async def scenario() -> list[str]:
            answers = []
            for n in range(9):
                name = f"cluster-new{n}"
                creds = (await nsc.create_user_in_thread(name)).creds
                nc = await connect_as(creds, servers=[urls[n % 3]], allow_reconnect=False)
                try:
                    answers.append(await send_echo(nc, name, str(n), timeout=2.0))
                finally:
                    await nc.close()
            return answers

        assert asyncio.run(scenario()) == [f"echo {n}" for n in range(9)]
    finally:
        stack.down("server")


def test_the_stack_goes_from_one_node_to_a_cluster_and_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Stack(cluster_settings(home, size=None)) as single:
        first = single.ensure("nats")
        assert list(first) == ["nats"] and "cluster_size" not in single.record("nats")
        assert load_plan(single.settings.paths) is None
        grown = Stack(cluster_settings(home, size=3)).ensure("nats")
        assert list(grown) == NODES and grown["nats"].pid != first["nats"].pid
        # Plain settings now see the three nodes the data dir remembers.
        plain = Stack(cluster_settings(home, size=None)).status()
        assert [name for name in plain if name.startswith("nats")] == NODES
        shrunk = Stack(cluster_settings(home, size=1)).ensure("nats")
        assert list(shrunk) == ["nats"]
        assert all(_gone(grown[name].pid or 0) for name in NODES)
        assert [n for n in single.status() if n.startswith("nats")] == ["nats"]
        assert load_plan(single.settings.paths) is None
    assert _gone(shrunk["nats"].pid or 0)


def test_cli_up_cluster_status_down_leave_no_process(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LABKIT_HOME": str(tmp_path / "home"),
        **{
            f"LABKIT_{name}": "0"
            for name in (
                "NATS_PORT",
                "NATS_MONITOR_PORT",
                "NATS_CLUSTER_PORT",
                "NSC_SERVICE_PORT",
                "AUTH_PORT",
                "S3_PORT",
            )
        },
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "labkit", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    try:
        up = cli("up", "--cluster", "3", "--json")
        assert up.returncode == 0, up.stderr
        state = json.loads(up.stdout)["components"]
        urls = [state[name]["url"] for name in NODES]
        assert len(set(urls)) == 3 and all(url.startswith("nats://") for url in urls)
        assert all(state[name]["state"] == "running" for name in state)

        status = cli("status", "--json")  # no --cluster: the data dir remembers
        assert status.returncode == 0, status.stdout
        assert json.loads(status.stdout)["components"] == state

        again = cli("up", "--json")  # a later plain `up` keeps the running cluster
        assert json.loads(again.stdout)["components"] == state

        down = cli("down")
        assert down.returncode == 0
        stopped = set(down.stdout.strip().removeprefix("stopped: ").split(", "))
        assert stopped == set(state)
        assert all(_gone(record["pid"]) for record in state.values())
        assert cli("status").returncode == 3
    finally:
        cli("down")


def test_the_login_answer_lists_every_node_and_each_accepts_the_creds(cluster: Stack) -> None:
    # Last in the module: earlier tests kill nodes, and ensure brings every one back.
    cluster.ensure("nats", "nsc", "auth")
    client = AuthClient(cluster.url("auth"))
    client.register("cluster-learner@example.com", "correct horse battery")
    login = client.login("cluster-learner@example.com", "correct horse battery")
    node_urls = [cluster.url(name) for name in NODES]
    assert login.nats.servers == node_urls  # failover needs every node, not just the first

    async def connect_to_each() -> list[bool]:
        connected = []
        for url in login.nats.servers:
            nc = await connect_as(login.nats.creds, servers=url)
            connected.append(
                nc.connected_url is not None and url.endswith(str(nc.connected_url.port))
            )
            await nc.close()
        return connected

    assert asyncio.run(connect_to_each()) == [True, True, True]
