"""`python -m labkit deploy-config`: the files docker/compose.yaml mounts, and its secrets.

The folder it writes (default `docker/generated/`, git-ignored):

    .env                          secrets and endpoints for compose (0600), kept across runs
    nsc/                          the deployment's keystore: operator, accounts, users
    nats/operator.jwt             the operator JWT every node trusts
    nats/nats-<n>.conf            node n's config (0600: it holds the route password)
    nats/nats-<n>/resolver/       node n's full-resolver folder, the account JWTs written in
    nats/tls/server.crt, .key     the browsers' wss:// certificate (self-signed unless yours)
    secrets/nsc-service.token     the NSC service's bearer token (0600), copied from .env
    secrets/auth-jwt.secret       the auth service's JWT signing secret (0600), from .env
    secrets/jupyterhub-crypt.key  the hub's auth_state key (0600), from .env
    secrets/jupyterhub-cookie.secret  the hub's cookie secret (0600), from .env
    secrets/dashboard.creds       the instructor dashboard's NATS user (0600), issued here
    secrets/observer.creds        the wire tap's subscribe-only user (0600), issued here
    secrets/database.url          the auth database's URL (0600), for the dashboard
    learners/                     the hub's learner files, one folder per learner (0700)

`.env` is the one place the secrets live: a second run keeps them (`rotate=True`
makes new ones) and writes the other files from it again. The rendering functions
are pure; `write_deploy_config` does the writing.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from labkit.classroom.dashboard.credentials import DASHBOARD_USER, dashboard_permissions
from labkit.deploy_tls import ensure_certificate
from labkit.errors import LabkitError
from labkit.files import write_atomic, write_private
from labkit.nsc.wrapper import SYSTEM_ACCOUNT, Nsc
from labkit.objects.endpoint import generate_keys
from labkit.settings import DataPaths, Settings
from labkit.stack.cluster import CLUSTER_NAME, ROUTE_USER
from labkit.stack.nats_server import RouteConfig, TlsFiles, render_config

NODES = 3
CLIENT_PORT = 4222
ROUTE_PORT = 6222
MONITOR_PORT = 8222
# Browsers (nats.js over wss://): inside each container; compose publishes node n's
# on 127.0.0.1:<WS_HOST_PORT + n - 1>.
WS_PORT = 8443
WS_HOST_PORT = 8443
DEFAULT_OUT = Path("docker/generated")
# The labkit services' data directory inside their containers (compose.yaml mounts here).
CONTAINER_HOME = Path("/data")

# Generated once, then kept in .env across runs unless rotated.
SECRET_KEYS = (
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "NATS_ROUTE_PASSWORD",
    "NSC_SERVICE_TOKEN",
    "AUTH_JWT_SECRET",
    "JUPYTER_TOKEN",
    "JUPYTERHUB_CRYPT_KEY",
    "JUPYTERHUB_COOKIE_SECRET",
)
# The hub's secrets, as files the hub service mounts (compose secrets), never env.
HUB_SECRET_FILES = {
    "JUPYTERHUB_CRYPT_KEY": "jupyterhub-crypt.key",
    "JUPYTERHUB_COOKIE_SECRET": "jupyterhub-cookie.secret",
}
# Everything compose.yaml reads from .env: the secrets and what follows from them.
ENV_KEYS = (
    "LABKIT_DEPLOY_DIR",
    "LABKIT_UID",
    "LABKIT_GID",
    "POSTGRES_USER",
    "POSTGRES_DB",
    *SECRET_KEYS,
    "LABKIT_DATABASE_URL",
    "LABKIT_S3_ENDPOINT",
    "LABKIT_S3_ACCESS_KEY",
    "LABKIT_S3_SECRET_KEY",
    "LABKIT_NATS_URL",
)
POSTGRES_USER = "labkit"
POSTGRES_DB = "labkit"
# Values go into URLs, NATS configs and compose's interpolation: keep them plain.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._~-]+")


class DeployError(LabkitError):
    """The deployment folder cannot be written as asked (e.g. a hand-edited .env)."""


@dataclass(frozen=True)
class NodePaths:
    """Where a node finds its files: the container paths compose.yaml mounts."""

    operator_jwt: str = "/etc/nats/operator.jwt"
    resolver_dir: str = "/data/resolver"
    jetstream_dir: str = "/data/jetstream"
    tls_cert: str = "/etc/nats/tls/server.crt"
    tls_key: str = "/etc/nats/tls/server.key"


@dataclass(frozen=True)
class DeployConfig:
    """What `write_deploy_config` wrote."""

    out: Path
    env_file: Path
    node_configs: list[Path]
    operator: str
    accounts: list[str]
    kept_secrets: bool


def node_name(node: int) -> str:
    """The compose service name (and NATS server name) of node `node` (1-based)."""
    return f"nats-{node}"


def ws_urls(nodes: int = NODES) -> str:
    """The wss:// URLs a browser on the Docker host uses, one per node (published ports)."""
    return ",".join(f"wss://localhost:{WS_HOST_PORT + n - 1}" for n in range(1, nodes + 1))


def certificate_names(nodes: int = NODES) -> list[str]:
    """Names the browsers' certificate is for: the host's loopback and the service names."""
    return ["localhost", "127.0.0.1", *(node_name(n) for n in range(1, nodes + 1))]


def nats_urls(nodes: int = NODES) -> str:
    """Client URLs of every node, comma-separated (LABKIT_NATS_URL)."""
    return ",".join(f"nats://{node_name(n)}:{CLIENT_PORT}" for n in range(1, nodes + 1))


def monitor_urls(nodes: int = NODES) -> str:
    """Monitoring URLs of every node on the compose network (LABKIT_NATS_MONITOR_URL)."""
    return ",".join(f"http://{node_name(n)}:{MONITOR_PORT}" for n in range(1, nodes + 1))


def render_node_config(
    node: int,
    *,
    system_account: str,
    system_account_jwt: str,
    route_password: str,
    max_memory_store: int,
    max_file_store: int,
    nodes: int = NODES,
    paths: NodePaths | None = None,
) -> str:
    """Node `node`'s nats-server config: operator mode, full resolver, JetStream, routes,
    and WebSocket for browsers behind TLS (wss).

    Inside its container a node listens on every interface and finds the others by
    their compose service names.
    """
    if not 1 <= node <= nodes:
        raise ValueError(f"node must be between 1 and {nodes}, got {node}")
    paths = paths or NodePaths()
    routes = [
        f"nats-route://{ROUTE_USER}:{route_password}@{node_name(peer)}:{ROUTE_PORT}"
        for peer in range(1, nodes + 1)
        if peer != node
    ]
    return render_config(
        host="0.0.0.0",  # every interface of the node's own container
        port=CLIENT_PORT,
        monitor_port=MONITOR_PORT,
        operator_jwt=Path(paths.operator_jwt),
        system_account=system_account,
        system_account_jwt=system_account_jwt,
        resolver_dir=Path(paths.resolver_dir),
        jetstream_dir=Path(paths.jetstream_dir),
        max_memory_store=max_memory_store,
        max_file_store=max_file_store,
        server_name=node_name(node),
        cluster=RouteConfig(CLUSTER_NAME, ROUTE_PORT, ROUTE_USER, route_password, routes),
        ws_port=WS_PORT,
        ws_tls=TlsFiles(paths.tls_cert, paths.tls_key),
    )


def generate_secrets() -> dict[str, str]:
    """A fresh value for every key of SECRET_KEYS."""
    minio = generate_keys()  # S3-shaped: a 20-character access key, a 40-character secret
    return {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "MINIO_ROOT_USER": minio.access_key,
        "MINIO_ROOT_PASSWORD": minio.secret_key,
        "NATS_ROUTE_PASSWORD": secrets.token_urlsafe(24),
        "NSC_SERVICE_TOKEN": secrets.token_urlsafe(32),
        "AUTH_JWT_SECRET": secrets.token_urlsafe(48),
        "JUPYTER_TOKEN": secrets.token_urlsafe(24),
        # JupyterHub reads both as 32 bytes, hex-encoded.
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
        "JUPYTERHUB_COOKIE_SECRET": secrets.token_hex(32),
    }


def choose_secrets(existing: Mapping[str, str], *, rotate: bool = False) -> dict[str, str]:
    """The secrets to write: the existing ones kept (unless `rotate`), missing ones new."""
    fresh = generate_secrets()
    chosen = {}
    for key in SECRET_KEYS:
        value = existing.get(key, "") if not rotate else ""
        if value and not _SAFE_VALUE.fullmatch(value):
            raise DeployError(
                f"{key} in the existing .env has characters other than letters, digits "
                "and ._~-; fix it or run again with --rotate"
            )
        chosen[key] = value or fresh[key]
    return chosen


def env_values(
    chosen: Mapping[str, str], *, deploy_dir: Path, uid: int, gid: int, nodes: int = NODES
) -> dict[str, str]:
    """Every ENV_KEYS value: the secrets and the endpoints built from them."""
    password = quote(chosen["POSTGRES_PASSWORD"], safe="")
    return {
        "LABKIT_DEPLOY_DIR": str(deploy_dir),
        "LABKIT_UID": str(uid),
        "LABKIT_GID": str(gid),
        "POSTGRES_USER": POSTGRES_USER,
        "POSTGRES_DB": POSTGRES_DB,
        **{key: chosen[key] for key in SECRET_KEYS},
        "LABKIT_DATABASE_URL": (
            f"postgresql+psycopg://{POSTGRES_USER}:{password}@postgres:5432/{POSTGRES_DB}"
        ),
        "LABKIT_S3_ENDPOINT": "minio:9000",
        "LABKIT_S3_ACCESS_KEY": chosen["MINIO_ROOT_USER"],
        "LABKIT_S3_SECRET_KEY": chosen["MINIO_ROOT_PASSWORD"],
        "LABKIT_NATS_URL": nats_urls(nodes),
    }


def render_env(values: Mapping[str, str]) -> str:
    """The .env text, keys in ENV_KEYS order (compose's env-file syntax, no quoting)."""
    missing = [key for key in ENV_KEYS if key not in values]
    if missing:
        raise ValueError(f"missing .env values: {', '.join(missing)}")
    lines = [
        "# Written by `python -m labkit deploy-config` (0600). The secrets are kept when it",
        "# runs again (--rotate makes new ones); never commit this file.",
        "# Use it as: docker compose -f docker/compose.yaml --env-file <this file> up -d",
    ]
    lines += [f"{key}={values[key]}" for key in ENV_KEYS]
    return "\n".join(lines) + "\n"


def parse_env(text: str) -> dict[str, str]:
    """`KEY=value` lines of an env file (comments and blank lines skipped, quotes removed)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def write_deploy_config(
    out: Path = DEFAULT_OUT,
    *,
    rotate: bool = False,
    settings: Settings | None = None,
    nodes: int = NODES,
) -> DeployConfig:
    """Set up the deployment's keystore and write every file compose.yaml mounts."""
    settings = settings or Settings()
    out = out.expanduser().resolve()
    nsc = Nsc(out / "nsc", settings.nsc)
    setup = nsc.setup()
    nsc.issue_server_user()

    env_file = out / ".env"
    existing = parse_env(env_file.read_text(encoding="utf-8")) if env_file.exists() else {}
    chosen = choose_secrets(existing, rotate=rotate)
    uid, gid = _owner()
    values = env_values(chosen, deploy_dir=out, uid=uid, gid=gid)
    write_private(env_file, render_env(values))
    container = DataPaths(CONTAINER_HOME)
    secrets_dir = out / "secrets"
    write_private(secrets_dir / container.nsc_token_file.name, chosen["NSC_SERVICE_TOKEN"])
    write_private(secrets_dir / container.auth_secret_file.name, chosen["AUTH_JWT_SECRET"])
    for key, name in HUB_SECRET_FILES.items():
        write_private(secrets_dir / name, chosen[key])
    # The instructor dashboard the hub runs: its NATS user and the observer are issued
    # here, so the hub gets their creds and never the keystore's signing keys; the auth
    # database's URL is a file too, never in the hub's environment (its proxy inherits it).
    dashboard = nsc.issue_stack_user(DASHBOARD_USER, dashboard_permissions())
    write_private(secrets_dir / container.dashboard_creds_file.name, dashboard.creds)
    write_private(secrets_dir / container.observer_creds_file.name, nsc.issue_observer_user().creds)
    write_private(secrets_dir / container.database_url_file.name, values["LABKIT_DATABASE_URL"])
    # The hub writes each learner's login here (as a 0600 file in a folder of its own,
    # mounted into that learner's container only).
    (out / "learners").mkdir(mode=0o700, exist_ok=True)

    nats_dir = out / "nats"
    write_atomic(nats_dir / "operator.jwt", setup.operator_jwt + "\n")
    ensure_certificate(nats_dir / "tls", certificate_names(nodes), rotate=rotate)
    # The keystore is the source of truth: each node's resolver gets the current JWTs.
    account_jwts = nsc.account_jwts()
    configs = []
    for node in range(1, nodes + 1):
        resolver_dir = nats_dir / node_name(node) / "resolver"
        for account_key, token in account_jwts.items():
            write_atomic(resolver_dir / f"{account_key}.jwt", token)
        config = render_node_config(
            node,
            system_account=setup.system_account_key,
            system_account_jwt=nsc.read_account_jwt(SYSTEM_ACCOUNT),
            route_password=chosen["NATS_ROUTE_PASSWORD"],
            max_memory_store=settings.nats.max_memory_store,
            max_file_store=settings.nats.max_file_store,
            nodes=nodes,
        )
        path = nats_dir / f"{node_name(node)}.conf"
        write_private(path, config)
        configs.append(path)
    return DeployConfig(
        out=out,
        env_file=env_file,
        node_configs=configs,
        operator=setup.operator,
        accounts=nsc.store.account_names(),
        kept_secrets=not rotate and all(existing.get(key) for key in SECRET_KEYS),
    )


def _owner() -> tuple[int, int]:
    """Who the labkit containers run as: the user who owns the files written here."""
    if hasattr(os, "getuid"):
        return os.getuid(), os.getgid()
    return 1000, 1000  # Windows: Docker Desktop maps bind mounts itself
