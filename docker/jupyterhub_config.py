"""JupyterHub for a class, as docker/compose.yaml runs it (the `hub` service).

Learners log in with their labkit email and password (labkit's authenticator calls
the auth service), and each gets a container of their own (DockerSpawner) from the
labkit image, on the compose network, pointed at the cluster's NATS, auth service and
object store. What a learner's container gets:

- the settings env, none of it secret: LABKIT_NATS_URL, LABKIT_NATS_WS_URL,
  LABKIT_AUTH_URL, LABKIT_S3_ENDPOINT, LABKIT_HOME, LABKIT_CLASSROOM=1,
  LABKIT_LEARNER_FILE; nothing of the hub's own environment (`env_keep` is empty);
- their login (the auth service's /login answer, email and auth_url: the learner
  file) as a 0600 file in a folder of its own, mounted read-only into their
  container only;
- a named volume for their home (their copy of the course, their answers).

The hub also runs the instructor dashboard (labkit.classroom.dashboard, a managed
service at /services/dashboard/, for hub admins only: instructors) as it does in
`classroom up`, inside this container on loopback. Its environment holds addresses
only (the nodes, their monitoring ports, the NSC service); what it needs that is
secret, compose mounts as files in its LABKIT_HOME's secrets/ (its own and the
observer's NATS creds, issued by deploy-config: the keystore never comes here; the
auth database's URL; the NSC service's token, for revoking a learner).

The hub's secrets (auth_state key, cookie secret) are files mounted by compose
(`/run/secrets/...`), never in its environment or the image: the proxy the hub
starts inherits the hub's environment. The docker socket is the hub's only
privilege. Everything read from the environment below comes from compose.yaml.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit.classroom.dashboard.service import hub_service

SECRETS = Path("/run/secrets")
CRYPT_KEY_FILE = SECRETS / "jupyterhub-crypt-key"
COOKIE_SECRET_FILE = SECRETS / "jupyterhub-cookie-secret"
HUB_DATA = Path("/srv/jupyterhub")
# The hub's view of the learners' folders; LABKIT_LEARNERS_HOST_DIR is the same folder
# on the Docker host, which is what a bind mount of a learner's container must name.
HUB_LEARNERS_DIR = Path("/srv/learners")
LEARNER_FILE_NAME = "learner.json"
# Inside a learner's container (the labkit image's user and home).
LEARNER_UID = 1000
LEARNER_HOME = "/home/labkit"
LEARNER_LOGIN_DIR = f"{LEARNER_HOME}/.labkit-login"
# The settings a learner's server needs to reach the shared stack (none is a secret).
SHARED_SETTINGS = ("LABKIT_NATS_URL", "LABKIT_NATS_WS_URL", "LABKIT_AUTH_URL", "LABKIT_S3_ENDPOINT")
# The instructor dashboard: its data dir in this container (compose mounts its secret
# files in secrets/), where it listens (loopback: only the proxy beside it reaches it),
# and the addresses it reads from the hub's environment (none is a secret).
DASHBOARD_HOME = Path("/srv/labkit")
DASHBOARD_URL = "http://127.0.0.1:8090"
DASHBOARD_SETTINGS = ("LABKIT_NATS_URL", "LABKIT_NATS_MONITOR_URL", "LABKIT_NSC_SERVICE_URL")


def _required(hub_env: Mapping[str, str], keys: tuple[str, ...]) -> dict[str, str]:
    missing = [key for key in keys if not hub_env.get(key)]
    if missing:
        raise RuntimeError(
            f"the hub needs {', '.join(missing)} in its environment (docker/compose.yaml sets them)"
        )
    return {key: hub_env[key] for key in keys}


def learner_environment(hub_env: Mapping[str, str]) -> dict[str, str]:
    """The environment every learner's container gets, from the hub's compose settings."""
    return {
        **_required(hub_env, SHARED_SETTINGS),
        "LABKIT_HOME": f"{LEARNER_HOME}/.labkit",
        "LABKIT_CLASSROOM": "1",
        "LABKIT_LEARNER_FILE": f"{LEARNER_LOGIN_DIR}/{LEARNER_FILE_NAME}",
    }


def dashboard_service(hub_env: Mapping[str, str]) -> dict[str, Any]:
    """The instructor dashboard's entry in `c.JupyterHub.services`, as `classroom up` makes it."""
    return hub_service(
        DASHBOARD_HOME, DASHBOARD_URL, settings=_required(hub_env, DASHBOARD_SETTINGS)
    )


def learner_volumes(host_learners_dir: str) -> dict[str, Any]:
    """Each learner's home (a named volume) and their own login folder (read-only)."""
    return {
        "labkit-learner-{username}": LEARNER_HOME,
        f"{host_learners_dir}/{{username}}": {"bind": LEARNER_LOGIN_DIR, "mode": "ro"},
    }


def write_learner_login(
    learners_dir: Path, folder: str, session: Mapping[str, Any], uid: int = LEARNER_UID
) -> Path:
    """Write the learner file for one learner: their /login answer, email and auth_url.

    `session` is the authenticator's auth_state: `{"answer", "email", "auth_url"}`.
    The folder and the file belong to the learner's uid in the container (0700/0600).
    """
    content = {**session["answer"], "email": session["email"], "auth_url": session["auth_url"]}
    folder_path = learners_dir / folder
    folder_path.mkdir(mode=0o700, exist_ok=True)
    os.chown(folder_path, uid, uid)
    path = folder_path / LEARNER_FILE_NAME
    temporary = folder_path / f".{LEARNER_FILE_NAME}.tmp"
    # Created 0600 before a byte is written: the login is never readable by others.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(content, file, indent=2)
    os.chown(temporary, uid, uid)
    os.replace(temporary, path)
    return path


async def auth_state_hook(spawner: Any, auth_state: Mapping[str, Any] | None) -> None:
    """Before each spawn: the learner's current login becomes their learner file."""
    if not auth_state:
        raise RuntimeError(
            f"no labkit login kept for {spawner.user.name}: log out of the hub and log in again"
        )
    write_learner_login(HUB_LEARNERS_DIR, spawner.escaped_name, auth_state)


def configure(c: Any, env: Mapping[str, str]) -> None:
    """Fill the hub's config `c` from compose's environment `env`."""
    c.JupyterHub.bind_url = "http://0.0.0.0:8000"
    c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
    c.JupyterHub.hub_connect_url = "http://hub:8081"  # the service name, for learners
    c.JupyterHub.db_url = f"sqlite:///{HUB_DATA}/jupyterhub.sqlite"
    c.JupyterHub.pid_file = str(HUB_DATA / "jupyterhub.pid")
    c.JupyterHub.cookie_secret_file = str(COOKIE_SECRET_FILE)
    c.ConfigurableHTTPProxy.command = [env["LABKIT_HUB_PROXY"]]
    c.ConfigurableHTTPProxy.pid_file = str(HUB_DATA / "proxy.pid")

    c.JupyterHub.authenticator_class = "labkit.classroom.authenticator.LabkitAuthenticator"
    c.LabkitAuthenticator.auth_service_url = env["LABKIT_AUTH_URL"]
    c.Authenticator.enable_auth_state = True
    c.Authenticator.allow_all = True  # every account of the auth service; instructors: admin

    c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
    c.DockerSpawner.image = env["LABKIT_LEARNER_IMAGE"]
    c.DockerSpawner.pull_policy = "never"  # compose builds it; never a registry's image
    c.DockerSpawner.network_name = env["LABKIT_CLASSROOM_NETWORK"]
    c.DockerSpawner.use_internal_ip = True
    c.DockerSpawner.remove = True  # the container goes; the home volume stays
    c.DockerSpawner.cmd = ["labkit-learner-start"]
    c.DockerSpawner.notebook_dir = f"{LEARNER_HOME}/course"
    c.DockerSpawner.volumes = learner_volumes(env["LABKIT_LEARNERS_HOST_DIR"])
    c.DockerSpawner.env_keep = []  # nothing of the hub's own environment
    c.DockerSpawner.environment = learner_environment(env)
    c.DockerSpawner.mem_limit = env.get("LABKIT_LEARNER_MEM_LIMIT", "1G")
    c.Spawner.auth_state_hook = auth_state_hook

    # No role and no extra scope: a learner is refused by the hub (no access:services)
    # and by the dashboard itself (admins only).
    c.JupyterHub.services = [dashboard_service(env)]


def load_crypt_key() -> None:
    """auth_state's key, from its compose secret (never JUPYTERHUB_CRYPT_KEY in the env)."""
    from jupyterhub.crypto import CryptKeeper

    CryptKeeper.instance(keys=[CRYPT_KEY_FILE.read_text(encoding="utf-8").strip()])


if "get_config" in globals():  # loaded by JupyterHub (tests import the functions above)
    configure(get_config(), os.environ)  # type: ignore[name-defined]  # noqa: F821
    load_crypt_key()
