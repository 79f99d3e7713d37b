"""Browsers reach the stack's NATS over WebSocket: every node listens on loopback.

The listener is a real nats-server's; the tests log in over it as a browser does (the
JWT, and the nonce signed with the seed), meet clients on the TCP port, and hit the
same permissions. `up --json` and `status` show each node's `ws_url`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nkeys
import pytest

from labkit.client import connect_as
from labkit.discovery import nats_ws_urls
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.stack import Stack, StackError
from labkit.stack.nats_server import render_config
from tests.conftest import make_settings
from tests.stack.test_stack import _gone
from tests.stack.ws_client import WsNatsClient

NODES = ["nats", "nats#2", "nats#3"]
WATCHER = "ws-watcher"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(make_settings(tmp_path_factory.mktemp("ws") / "home"))
    stack.ensure("nats")
    yield stack
    stack.down()


def _creds(stack: Stack, name: str, *, everything: bool = False) -> str:
    nsc = Nsc.from_settings(stack.settings)
    if everything:
        permissions = permissions_from_templates(name, [">"], [">"])
        return nsc.create_user(name, permissions=permissions).creds
    return nsc.create_user(name).creds


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_nats_records_a_websocket_url_of_its_own_on_loopback(stack: Stack) -> None:
    record = stack.record("nats")
    assert record["ws_url"].startswith("ws://127.0.0.1:")
    ports = {_port(record["url"]), _port(record["monitor_url"]), _port(record["ws_url"])}
    assert len(ports) == 3, record
    config = Path(record["config"]).read_text()
    assert f'listen: "127.0.0.1:{_port(record["ws_url"])}"' in config
    assert nats_ws_urls(stack.settings) == [record["ws_url"]]
    assert stack.status()["nats"].details["ws_url"] == record["ws_url"]


def test_a_user_logs_in_over_websocket_and_talks_with_tcp_clients(stack: Stack) -> None:
    creds = _creds(stack, "ws-alice")
    browser = WsNatsClient(stack.record("nats")["ws_url"])
    info = browser.connect(creds)
    try:
        assert info["auth_required"] is True and "nonce" in info
        browser.subscribe("ws-alice.inbox", 1)
        browser.ping()

        async def over_tcp() -> bytes:
            nc = await connect_as(creds, settings=stack.settings)
            try:
                sub = await nc.subscribe("ws-alice.from-browser")
                await nc.flush()
                await nc.publish("ws-alice.inbox", b"from tcp")
                await nc.flush()
                assert browser.next_message() == ("ws-alice.inbox", b"from tcp")
                browser.publish("ws-alice.from-browser", b"from the browser")
                browser.ping()
                msg = await sub.next_msg(timeout=5)
                return bytes(msg.data)
            finally:
                await nc.close()

        assert asyncio.run(over_tcp()) == b"from the browser"
    finally:
        browser.close()


def test_websocket_clients_get_the_same_permissions(stack: Stack) -> None:
    """A publish on someone else's subject is refused; a sentinel proves nothing leaked."""
    creds = _creds(stack, "ws-mallory")
    watcher_creds = _creds(stack, WATCHER, everything=True)
    browser = WsNatsClient(stack.record("nats")["ws_url"])
    browser.connect(creds)

    async def watch() -> list[str]:
        nc = await connect_as(watcher_creds, settings=stack.settings)
        try:
            sub = await nc.subscribe("*.ping")
            await nc.flush()
            browser.publish("ws-victim.ping", b"I am the victim")
            browser.publish("ws-mallory.ping", b"sentinel")
            browser.ping()
            first = await sub.next_msg(timeout=5)
            return [first.subject, first.data.decode()]
        finally:
            await nc.close()

    try:
        # The sentinel, sent after the forbidden line over the same connection, is first.
        assert asyncio.run(watch()) == ["ws-mallory.ping", "sentinel"]
        assert any(
            'Permissions Violation for Publish to "ws-victim.ping"' in error
            for error in browser.errors
        ), browser.errors
    finally:
        browser.close()


def test_a_login_signed_with_another_key_is_refused_over_websocket(stack: Stack) -> None:
    creds = _creds(stack, "ws-eve")
    stranger_seed = nkeys.from_seed(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
    browser = WsNatsClient(stack.record("nats")["ws_url"])
    try:
        with pytest.raises(PermissionError, match="Authorization Violation"):
            browser.connect(creds, sign_with=stranger_seed.seed.decode())
    finally:
        browser.close()


def test_a_taken_websocket_port_is_replaced_and_recorded(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        settings = make_settings(
            tmp_path / "home", nats={"port": 0, "monitor_port": 0, "ws_port": taken}
        )
        with Stack(settings) as stack:
            stack.ensure("nats")
            ws_url = stack.record("nats")["ws_url"]
            assert ws_url.startswith("ws://127.0.0.1:") and _port(ws_url) != taken


def test_the_websocket_listener_refuses_a_host_off_loopback(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="loopback only"):
        render_config(
            host="0.0.0.0",
            port=4222,
            monitor_port=8222,
            operator_jwt=tmp_path / "operator.jwt",
            system_account="SYS",
            system_account_jwt="jwt",
            resolver_dir=tmp_path,
            jetstream_dir=tmp_path,
            max_memory_store=1,
            max_file_store=1,
            ws_port=4280,
        )


def test_ws_urls_come_from_the_settings_when_they_name_them(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, nats={"ws_url": "wss://a.example:443, wss://b.example"})
    assert nats_ws_urls(settings) == ["wss://a.example:443", "wss://b.example"]


# --- the CLI, on one node and on a cluster -----------------------------------------


def _cli_env(home: Path) -> dict[str, str]:
    ports = ("NATS_PORT", "NATS_MONITOR_PORT", "NATS_CLUSTER_PORT", "NATS_WS_PORT")
    ports += ("NSC_SERVICE_PORT", "AUTH_PORT", "S3_PORT")
    return {**os.environ, "LABKIT_HOME": str(home), **{f"LABKIT_{p}": "0" for p in ports}}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.parametrize("size", [1, 3], ids=["one-node", "cluster-3"])
def test_up_json_and_status_show_every_nodes_websocket_url(tmp_path: Path, size: int) -> None:
    env = _cli_env(tmp_path / "home")
    nodes = NODES[:size]
    try:
        up = _cli(env, "up", "nats", "--cluster", str(size), "--json")
        assert up.returncode == 0, up.stderr
        state = json.loads(up.stdout)["components"]
        ws_urls = [state[name]["ws_url"] for name in nodes]
        assert all(url.startswith("ws://127.0.0.1:") for url in ws_urls), ws_urls
        assert len(set(ws_urls)) == size
        client_ports = {_port(state[name]["url"]) for name in nodes}
        assert not client_ports & {_port(url) for url in ws_urls}

        status = _cli(env, "status", "--json")
        assert {
            name: json.loads(status.stdout)["components"][name]["ws_url"] for name in nodes
        } == {name: state[name]["ws_url"] for name in nodes}
        shown = _cli(env, "status").stdout
        for url in ws_urls:
            assert f"{url}" in shown and "browsers (WebSocket)" in shown, shown

        # Every node really serves browsers: log in over each one's WebSocket.
        settings = make_settings(tmp_path / "home", nats={"cluster_size": size})
        creds = Nsc.from_settings(settings).create_user("ws-cli").creds
        for url in ws_urls:
            browser = WsNatsClient(url)
            try:
                assert browser.connect(creds)["server_name"]
                # A line published on node 1's TCP port reaches a browser on any node.
                browser.subscribe("ws-cli.inbox", 1)
                browser.ping()
                assert _arrives(browser, creds, state["nats"]["url"], url.encode())
            finally:
                browser.close()
    finally:
        down = _cli(env, "down")
        assert down.returncode == 0, down.stderr
    assert all(_gone(state[name]["pid"]) for name in nodes)


async def _publish(creds: str, server: str, subject: str, payload: bytes) -> None:
    nc = await connect_as(creds, servers=server)
    try:
        await nc.publish(subject, payload)
        await nc.flush()
    finally:
        await nc.close()


def _arrives(browser: WsNatsClient, creds: str, server: str, payload: bytes) -> bool:
    """Publish on `server` until the browser gets it: a new subscription reaches the other
    nodes of a cluster a moment later (over the routes), and until then lines are dropped."""
    for _ in range(50):
        asyncio.run(_publish(creds, server, "ws-cli.inbox", payload))
        try:
            return browser.next_message(timeout=0.2) == ("ws-cli.inbox", payload)
        except TimeoutError:
            continue
    return False
