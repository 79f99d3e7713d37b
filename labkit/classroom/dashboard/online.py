"""Who is online now: the NATS monitoring endpoint's `/connz?auth=true`, per node.

In operator mode each connection's entry carries the user JWT it logged in with;
that JWT's `name` is the user's NATS name, which for a learner is their auth user
id. The server verified the JWT when the client connected, so reading its claims
without verifying them again is safe here. Every node of a cluster is asked: a
learner's connection lives on one of them (a deployment names them in
LABKIT_NATS_MONITOR_URL; the local stack's are in its state file).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import requests

from labkit.discovery import nats_monitor_urls
from labkit.errors import LabkitError
from labkit.nsc import jwt
from labkit.settings import Settings
from labkit.stack.errors import StackError

# Far above a class; a monitoring page this long is still read in milliseconds.
CONNZ_LIMIT = 4096
CONNZ_TIMEOUT = 3.0


class MonitoringUnavailable(LabkitError):
    """No NATS monitoring endpoint could be read."""


def monitor_urls(settings: Settings) -> list[str]:
    """Every NATS node's monitoring URL (node 1 first): LABKIT_NATS_MONITOR_URL, else the
    state file's running nodes."""
    try:
        urls = nats_monitor_urls(settings)
    except StackError:
        urls = []
    if not urls:
        raise MonitoringUnavailable(
            f"no running NATS server recorded in {settings.home}; start the stack "
            "(`python -m labkit up`) with the same LABKIT_HOME as the dashboard, or set "
            "LABKIT_NATS_MONITOR_URL"
        )
    return urls


def connection_users(connections: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How many connections each NATS user name has, from `/connz?auth=true` entries."""
    counts: Counter[str] = Counter()
    for connection in connections:
        token = connection.get("jwt")
        if not isinstance(token, str) or not token:
            continue
        try:
            name = jwt.decode(token).get("name")
        except LabkitError:
            continue  # not a JWT the stack issued: nobody to show
        if isinstance(name, str) and name:
            counts[name] += 1
    return counts


def read_connz(url: str) -> list[dict[str, Any]]:
    """The connections one node reports (raises MonitoringUnavailable saying why)."""
    try:
        response = requests.get(
            f"{url}/connz",
            params={"auth": "true", "limit": str(CONNZ_LIMIT)},
            timeout=CONNZ_TIMEOUT,
        )
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise MonitoringUnavailable(
            f"the NATS monitoring endpoint {url} did not answer: {exc}"
        ) from exc
    connections = body.get("connections") or []
    return [c for c in connections if isinstance(c, dict)]


async def online_users(settings: Settings) -> tuple[Counter[str], list[str]]:
    """Connections per NATS user over every node, and what could not be read."""
    counts: Counter[str] = Counter()
    problems: list[str] = []
    try:
        urls = monitor_urls(settings)
    except MonitoringUnavailable as exc:
        return counts, [str(exc)]
    for url in urls:
        try:
            counts += connection_users(await asyncio.to_thread(read_connz, url))
        except MonitoringUnavailable as exc:
            problems.append(str(exc))
    return counts, problems
