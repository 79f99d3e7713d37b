"""Find the stack's endpoints: settings first, then the running stack's state file."""

from __future__ import annotations

from typing import Any

from labkit.settings import Settings
from labkit.stack.cluster import cluster_size, jetstream_replicas, node_number
from labkit.stack.state import component_record, load_records

# The stack's component names that clients look up here.
OBJECT_STORE = "objects"

__all__ = [
    "OBJECT_STORE",
    "auth_url",
    "cluster_size",
    "jetstream_replicas",
    "nats_monitor_urls",
    "nats_url",
    "nats_urls",
    "nats_ws_urls",
    "nsc_service",
    "object_store_address",
]


def nats_urls(settings: Settings | None = None) -> list[str]:
    """Every NATS server clients should know (a cluster's nodes, node 1 first).

    Give the whole list to `nats.connect(servers=...)`: the client picks one and
    fails over to another when it goes away.
    """
    settings = settings or Settings()
    if settings.nats.url:
        return _split(settings.nats.url)
    return [str(record["url"]) for record in _nats_nodes(settings)]


def nats_ws_urls(settings: Settings | None = None) -> list[str]:
    """Every NATS WebSocket endpoint a browser should know (a cluster's nodes, node 1 first).

    `LABKIT_NATS_WS_URL` (comma-separated) wins: a deployment's `wss://` address.
    """
    settings = settings or Settings()
    if settings.nats.ws_url:
        return _split(settings.nats.ws_url)
    return [str(record["ws_url"]) for record in _nats_nodes(settings) if record.get("ws_url")]


def nats_monitor_urls(settings: Settings | None = None) -> list[str]:
    """Every NATS node's HTTP monitoring URL (node 1 first).

    `LABKIT_NATS_MONITOR_URL` (comma-separated) wins: a deployment's nodes by name.
    """
    settings = settings or Settings()
    if settings.nats.monitor_url:
        return _split(settings.nats.monitor_url)
    nodes = _nats_nodes(settings)
    return [str(record["monitor_url"]) for record in nodes if record.get("monitor_url")]


def _split(urls: str) -> list[str]:
    return [url.strip() for url in urls.split(",") if url.strip()]


def _nats_nodes(settings: Settings) -> list[dict[str, Any]]:
    """The state file's records of the running NATS nodes, node 1 first."""
    records = load_records(settings.paths.state_file)
    nodes = sorted(
        (name for name in records if name == "nats" or name.startswith("nats#")), key=node_number
    )
    if not nodes:
        component_record("nats", settings)  # raises, saying how to start it
    return [records[name] for name in nodes]


def nats_url(settings: Settings | None = None) -> str:
    """One NATS server (the first); clients should prefer `nats_urls`."""
    return nats_urls(settings)[0]


def nsc_service(settings: Settings | None = None) -> tuple[str, str]:
    """The NSC service's (url, bearer token)."""
    settings = settings or Settings()
    token = settings.paths.nsc_token_file.read_text().strip()
    if settings.nsc.service_url:
        return settings.nsc.service_url, token
    return str(component_record("nsc", settings)["url"]), token


def auth_url(settings: Settings | None = None) -> str:
    """The auth service's base URL."""
    settings = settings or Settings()
    if settings.auth.url:
        return settings.auth.url
    return str(component_record("auth", settings)["url"])


def object_store_address(settings: Settings | None = None) -> str:
    """The stack's embedded object store, `host:port` (raises saying how to start it)."""
    settings = settings or Settings()
    return str(component_record(OBJECT_STORE, settings)["endpoint"])
