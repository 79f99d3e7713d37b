"""The hub's configuration: a plan (JSON, no secret) and `configure(c, plan)`.

`classroom up` writes the plan and a two-line jupyterhub_config.py that calls
`configure_from_file`; everything the hub does is decided here. Secrets stay in
0600 files of the data dir and reach the hub through its config, never through its
environment: the proxy (and so anyone who reads its /proc/<pid>/environ as root's
peers) inherits the hub's environment, which is why the auth_state key is given to
CryptKeeper here and not as JUPYTERHUB_CRYPT_KEY.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.classroom.dashboard.service import hub_service
from labkit.classroom.settings import LOCAL_SPAWNER
from labkit.files import read_or_create_secret, write_private

STATUS_SERVICE = "labkit-status"
# `classroom status`: who is online, nothing more (no auth_state, no tokens).
STATUS_SCOPES = ["list:users", "read:users:activity", "read:servers"]
CONFIG_TEXT = """\
# Written by `python -m labkit classroom up`; the settings are in hub.json beside it.
from labkit.classroom.hub_config import configure_from_file

configure_from_file(c, __file__)  # noqa: F821 (c is given by JupyterHub)
"""


class HubPaths:
    """The hub's files inside the stack's data directory."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.folder = home / "hub"
        self.config_file = self.folder / "jupyterhub_config.py"
        self.plan_file = self.folder / "hub.json"
        self.database = self.folder / "jupyterhub.sqlite"
        self.proxy_pid_file = self.folder / "proxy.pid"
        self.state_file = self.folder / "state.json"
        # Not in the stack's run/: its sweep would stop a process it does not know.
        # (A run/ folder still, where the test run's last sweep looks for leftovers.)
        self.pid_file = self.folder / "run" / "hub.pid"
        self.log_file = home / "logs" / "hub.log"
        secrets_dir = home / "secrets"
        self.cookie_secret_file = secrets_dir / "hub-cookie.secret"
        self.crypt_key_file = secrets_dir / "hub-crypt.key"
        self.status_token_file = secrets_dir / "hub-status.token"


@dataclass
class HubPlan:
    """What the hub needs to know: addresses, the stack's public URLs, learner settings."""

    home: str
    public_url: str
    hub_bind_url: str
    proxy_api_url: str
    proxy_command: str
    auth_url: str
    account_prefix: str
    home_base: str
    course_dir: str
    learner_python: str
    spawner: str = LOCAL_SPAWNER
    # Where the instructor dashboard listens (empty: none).
    dashboard_url: str = ""
    # The non-secret settings every learner's server gets (LABKIT_NATS_URL, ...).
    learner_environment: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> HubPlan:
        return cls(**json.loads(path.read_text()))


def isolation_problem(euid: int, spawner: str) -> str | None:
    """Why a hub with this spawner, run by `euid`, would not keep learners apart (or None)."""
    if spawner == LOCAL_SPAWNER and euid != 0:
        return (
            "a classroom hub runs each learner's server as the learner's own OS account, "
            "so that no learner can read another's credentials, files or processes; "
            "creating and switching to those accounts needs root. Run it as root "
            "(sudo .venv/bin/python -m labkit classroom up), or set "
            "LABKIT_CLASSROOM_SPAWNER to a container spawner class (e.g. "
            "dockerspawner.DockerSpawner). One learner alone needs no hub: `make lab`."
        )
    return None


def write_hub_files(paths: HubPaths, plan: HubPlan) -> None:
    """The plan, the config file and the hub's secrets (made once, kept, 0600)."""
    plan.save(paths.plan_file)
    paths.config_file.write_text(CONFIG_TEXT)
    # Both are 32 random bytes in hex, the form JupyterHub reads for either.
    for secret_file in (paths.cookie_secret_file, paths.crypt_key_file):
        if not secret_file.exists():
            write_private(secret_file, secrets.token_hex(32))
    read_or_create_secret(paths.status_token_file)


def configure_from_file(c: Any, config_file: str) -> None:
    """Called by the hub's jupyterhub_config.py: load the plan beside it, apply it."""
    paths = HubPaths(Path(config_file).resolve().parent.parent)
    configure(c, HubPlan.load(paths.plan_file), paths)


def configure(c: Any, plan: HubPlan, paths: HubPaths) -> None:
    """Set every JupyterHub option labkit's classroom needs on the config `c`."""
    c.JupyterHub.bind_url = plan.public_url
    c.JupyterHub.hub_bind_url = plan.hub_bind_url
    c.JupyterHub.db_url = f"sqlite:///{paths.database}"
    c.JupyterHub.cookie_secret_file = str(paths.cookie_secret_file)
    c.ConfigurableHTTPProxy.api_url = plan.proxy_api_url
    c.ConfigurableHTTPProxy.command = [plan.proxy_command]
    c.ConfigurableHTTPProxy.pid_file = str(paths.proxy_pid_file)
    # Stopping the hub stops every learner's server with it (`classroom down`).
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True

    c.JupyterHub.authenticator_class = "labkit.classroom.authenticator.LabkitAuthenticator"
    c.LabkitAuthenticator.auth_service_url = plan.auth_url
    c.Authenticator.allow_all = True  # the auth service decides who may log in
    c.Authenticator.enable_auth_state = True
    c.Authenticator.refresh_pre_spawn = True
    c.Authenticator.auth_refresh_age = 60
    c.CryptKeeper.keys = [paths.crypt_key_file.read_text().strip()]
    # A learner who logs out has dead credentials: their server goes too.
    c.JupyterHub.shutdown_on_logout = True

    if plan.spawner == LOCAL_SPAWNER:
        c.JupyterHub.spawner_class = "labkit.classroom.spawner.LabkitSpawner"
        c.LabkitSpawner.account_prefix = plan.account_prefix
        c.LabkitSpawner.home_base = plan.home_base
        c.LabkitSpawner.course_dir = plan.course_dir
        c.LabkitSpawner.learner_python = plan.learner_python
        c.LabkitSpawner.stack_environment = dict(plan.learner_environment)
    else:
        c.JupyterHub.spawner_class = plan.spawner
        c.Spawner.environment = dict(plan.learner_environment)
    c.Spawner.cmd = [plan.learner_python, "-m", "jupyterhub.singleuser"]
    c.Spawner.default_url = "/lab"
    c.Spawner.http_timeout = 60
    c.Spawner.start_timeout = 120

    services: list[dict[str, Any]] = [
        {"name": STATUS_SERVICE, "api_token": paths.status_token_file.read_text().strip()}
    ]
    roles: list[dict[str, Any]] = [
        {"name": STATUS_SERVICE, "scopes": STATUS_SCOPES, "services": [STATUS_SERVICE]}
    ]
    if plan.dashboard_url:
        # The instructor dashboard (labkit.classroom.dashboard): no role, the visitor's
        # identity and `admin` flag come with its OAuth login.
        services.append(hub_service(Path(plan.home), plan.dashboard_url))
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles
