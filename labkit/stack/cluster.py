"""A local NATS cluster on loopback: how many nodes, and each node's ports.

Every node's config lists the route port of every other node, so the ports of the
whole cluster are chosen before any node starts: by the first node prepared, then
saved in the data directory (`nats/cluster.json`, the "plan"). The plan is also
how a later `status`, `down` or `ensure` in the same data directory knows how many
nodes there are, even when the settings do not say (`python -m labkit up --cluster
3` once, then plain `up`, `status`, `down`).

The instance `nats` is node 1, `nats#2` node 2, and so on.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from labkit.files import write_atomic, write_private
from labkit.settings import DataPaths, NatsSettings, Settings

CLUSTER_NAME = "labkit"
PLAN_FILE = "cluster.json"
ROUTE_USER = "route"
ROUTE_SECRET_FILE = "nats-route.secret"
# JetStream replicas of the labs' streams and KV buckets on a cluster of this size or more.
REPLICATED_FROM = 3
CLUSTER_REPLICAS = 3


@dataclass(frozen=True)
class NodePorts:
    """The ports one node listens on: clients, HTTP monitoring, routes, browsers."""

    port: int
    monitor_port: int
    cluster_port: int
    # Browsers (WebSocket); 0 in a plan saved before nodes had one: a free port is taken.
    ws_port: int = 0


@dataclass(frozen=True)
class ClusterPlan:
    """Every node's ports, node 1 first."""

    nodes: tuple[NodePorts, ...]

    @property
    def size(self) -> int:
        return len(self.nodes)

    def ports_of(self, node: int) -> NodePorts:
        return self.nodes[node - 1]

    def with_ports(self, node: int, ports: NodePorts) -> ClusterPlan:
        nodes = list(self.nodes)
        nodes[node - 1] = ports
        return ClusterPlan(tuple(nodes))

    def routes(self, host: str, node: int, password: str) -> list[str]:
        """The route URLs of every node but `node` (what its config lists)."""
        return [
            f"nats-route://{ROUTE_USER}:{password}@{host}:{ports.cluster_port}"
            for number, ports in enumerate(self.nodes, start=1)
            if number != node
        ]


def node_number(instance: str) -> int:
    """`nats` -> 1, `nats#3` -> 3."""
    _, _, number = instance.partition("#")
    return int(number) if number else 1


def server_name(node: int) -> str:
    """The nats-server `server_name` of a node (JetStream needs a unique one per node)."""
    return f"{CLUSTER_NAME}-{node}"


def preferred_ports(nats: NatsSettings, node: int) -> NodePorts:
    """Node k prefers the configured ports plus k-1 (4222, 4223, ...); 0 stays 0 (any)."""

    def shifted(base: int) -> int:
        return base + node - 1 if base else 0

    return NodePorts(
        shifted(nats.port),
        shifted(nats.monitor_port),
        shifted(nats.cluster_port),
        shifted(nats.ws_port),
    )


def plan_file(paths: DataPaths) -> Path:
    return paths.nats_dir / PLAN_FILE


def load_plan(paths: DataPaths) -> ClusterPlan | None:
    """The saved plan of this data directory, or None (never a cluster, or unreadable)."""
    try:
        data = json.loads(plan_file(paths).read_text())
        return ClusterPlan(tuple(NodePorts(**node) for node in data["nodes"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def save_plan(paths: DataPaths, plan: ClusterPlan) -> None:
    body = {"name": CLUSTER_NAME, "nodes": [asdict(node) for node in plan.nodes]}
    write_atomic(plan_file(paths), json.dumps(body, indent=2) + "\n")


def forget_plan(paths: DataPaths) -> None:
    plan_file(paths).unlink(missing_ok=True)


def route_password(paths: DataPaths) -> str:
    """The password nodes present to each other's route port (made once, kept 0600).

    Routes carry every account's messages, so even on loopback another local user must
    not be able to join the cluster as a node.
    """
    path = paths.secrets_dir / ROUTE_SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        password = secrets.token_urlsafe(24)
        write_private(path, password + "\n")
        return password


def cluster_size(settings: Settings) -> int:
    """How many NATS nodes: the settings when they say, else what the data dir last ran, else 1."""
    if settings.nats.cluster_size is not None:
        return settings.nats.cluster_size
    plan = load_plan(settings.paths)
    return plan.size if plan is not None else 1


def jetstream_replicas(settings: Settings) -> int:
    """Replicas of the streams and KV buckets the labs create: 3 on a cluster of 3+, else 1."""
    if settings.stream.replicas is not None:
        return settings.stream.replicas
    return CLUSTER_REPLICAS if cluster_size(settings) >= REPLICATED_FROM else 1
