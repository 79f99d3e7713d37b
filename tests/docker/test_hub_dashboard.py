"""The compose hub runs the instructor dashboard, checked without a Docker engine.

The hub's config is loaded with compose's resolved environment for the hub (as the hub
loads it), the service it adds is compared with `classroom up`'s, and what the
dashboard reads is checked against what compose gives it: addresses in its
environment, secrets as the files compose mounts, no keystore. Then the dashboard's
own code reads those files in a folder laid out as compose mounts them and connects,
with the creds deploy-config issued, to a real nats-server running node 1's generated
config: it sees who is connected through the monitoring URL and taps a learner's message.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from labkit.auth.database import database_url
from labkit.classroom.dashboard.collect import Classroom
from labkit.classroom.dashboard.credentials import DASHBOARD_USER, dashboard_permissions
from labkit.classroom.dashboard.online import online_users
from labkit.classroom.dashboard.service import SERVICE_NAME, hub_service
from labkit.client import connect_as
from labkit.deploy import DeployConfig, monitor_urls, parse_env
from labkit.discovery import nats_urls, nsc_service
from labkit.nsc import jwt
from labkit.nsc.claims import user_permissions
from labkit.nsc.creds import parse_creds
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest
from labkit.settings import DataPaths, Settings
from tests.conftest import make_settings
from tests.docker.test_compose import ROOT
from tests.docker.test_hub import HUB_DOCKERFILE, _configured, _secret_values
from tests.docker.test_websocket_tls import running_node_one

DASHBOARD_HOME = PurePosixPath("/srv/labkit")
# Every nkeys seed (operator, account, user): the keystore's secrets.
SEED = re.compile(r"S[OAU][A-Z2-7]{56}")


def _dashboard(config: Any) -> dict[str, Any]:
    (service,) = [s for s in config.JupyterHub.services if s["name"] == SERVICE_NAME]
    return dict(service)


def _keystore_seeds(deployment: DeployConfig) -> set[str]:
    seeds: set[str] = set()
    for path in (deployment.out / "nsc").rglob("*"):
        if path.is_file():
            seeds |= set(SEED.findall(path.read_text(errors="replace")))
    return seeds


def _hub_secret_files(resolved: dict[str, Any]) -> dict[str, Path]:
    """Each file compose mounts into the hub: its target there, its file on the host."""
    files = {name: Path(spec["file"]) for name, spec in resolved["secrets"].items()}
    return {s["target"]: files[s["source"]] for s in resolved["services"]["hub"]["secrets"]}


def test_the_hub_runs_the_dashboard_as_classroom_up_does(
    resolved: dict[str, Any],
    deployment: DeployConfig,
    hub_config: dict[str, Any],
) -> None:
    hub_env = resolved["services"]["hub"]["environment"]
    config = _configured(hub_config, hub_env)
    service = _dashboard(config)
    values = parse_env(deployment.env_file.read_text())
    settings = {
        "LABKIT_NATS_URL": values["LABKIT_NATS_URL"],  # the cluster's three nodes
        "LABKIT_NATS_MONITOR_URL": monitor_urls(),  # each node's /connz
        "LABKIT_NSC_SERVICE_URL": "http://nsc:4000",  # revoking a learner
    }
    # The same entry `classroom up` makes (labkit.classroom.dashboard.service), with the
    # cluster's addresses beside its LABKIT_HOME.
    assert service == hub_service(Path(DASHBOARD_HOME), "http://127.0.0.1:8090", settings=settings)
    assert service["command"] == [sys.executable, "-m", "labkit.classroom.dashboard"]
    assert service["environment"] == {**settings, "LABKIT_HOME": str(DASHBOARD_HOME)}
    assert (
        resolved["services"]["auth"]["environment"]["LABKIT_NSC_SERVICE_URL"] == "http://nsc:4000"
    )
    # It listens on the hub container's loopback: only the proxy beside it reaches it,
    # under /services/dashboard/; no port of its own is published.
    assert service["url"].startswith("http://127.0.0.1:")
    published = [p for s in resolved["services"].values() for p in s.get("ports", [])]
    assert all(str(port["target"]) != service["url"].rsplit(":", 1)[1] for port in published)
    # No role, no token, no admin flag: who may see it is the visitor's (hub admins only,
    # the dashboard's own check), and no role gives learners access to services.
    assert not {"roles", "api_token", "admin"} & set(service)
    assert "load_roles" not in config.JupyterHub
    assert [s["name"] for s in config.JupyterHub.services] == [SERVICE_NAME]


def test_the_dashboards_secrets_are_files_and_the_keystore_stays_out(
    resolved: dict[str, Any],
    deployment: DeployConfig,
    hub_config: dict[str, Any],
) -> None:
    hub = resolved["services"]["hub"]
    config = _configured(hub_config, hub["environment"])
    service = _dashboard(config)
    # Where the dashboard looks (its LABKIT_HOME's secrets/), compose mounts deploy-config's.
    paths = DataPaths(Path(service["environment"]["LABKIT_HOME"]))
    secrets = deployment.out / "secrets"
    mounted = _hub_secret_files(resolved)
    for in_hub, on_host in (
        (paths.dashboard_creds_file, secrets / "dashboard.creds"),
        (paths.observer_creds_file, secrets / "observer.creds"),
        (paths.database_url_file, secrets / "database.url"),
        (paths.nsc_token_file, secrets / "nsc-service.token"),
    ):
        assert mounted[str(in_hub)] == on_host
        assert on_host.stat().st_mode & 0o777 == 0o600
    values = parse_env(deployment.env_file.read_text())
    assert (secrets / "database.url").read_text() == values["LABKIT_DATABASE_URL"]
    assert (secrets / "nsc-service.token").read_text() == values["NSC_SERVICE_TOKEN"]
    # Issued in the deployment's keystore: the dashboard's user with its permissions, and
    # the subscribe-only observer.
    claims = jwt.decode(parse_creds((secrets / "dashboard.creds").read_text())[0])
    assert claims["name"] == DASHBOARD_USER
    assert user_permissions(claims) == dashboard_permissions()
    observer = jwt.decode(parse_creds((secrets / "observer.creds").read_text())[0])
    assert observer["name"] == make_settings(deployment.out).nsc.observer_user
    assert observer["nats"]["pub"] == {"deny": [">"]}

    # The keystore is never mounted into the hub; of its seeds, the hub's files hold only
    # the dashboard's and the observer's own user seeds (no operator, no account key).
    keystore = str(deployment.out / "nsc")
    assert not any(v["source"].startswith(keystore) for v in hub["volumes"])
    in_hub = set()
    for on_host in mounted.values():
        in_hub |= set(SEED.findall(on_host.read_text()))
    assert {seed[:2] for seed in in_hub} == {"SU"} and len(in_hub) == 2

    # No secret in any environment: the dashboard's, the hub's (the proxy inherits it;
    # tests/docker/test_hub.py checks the learners' too) or a learner's.
    everywhere = {
        "dashboard": json.dumps([service["environment"], service["command"]]),
        "hub and proxy": json.dumps(hub["environment"]),
        "learner": json.dumps(
            [dict(config.DockerSpawner.environment), dict(config.DockerSpawner.volumes)]
        ),
    }
    forbidden = {**_secret_values(deployment)}
    forbidden |= {f"seed {seed[:2]}": seed for seed in _keystore_seeds(deployment)}
    for creds in ("dashboard.creds", "observer.creds"):
        forbidden[creds] = parse_creds((secrets / creds).read_text())[0]
    for where, text in everywhere.items():
        for what, value in forbidden.items():
            assert value not in text, (where, what)


def _as_compose_mounts(resolved: dict[str, Any], home: Path) -> None:
    """Put the hub's secret files under `home` as compose mounts them under /srv/labkit."""
    for target, on_host in _hub_secret_files(resolved).items():
        if PurePosixPath(target).is_relative_to(DASHBOARD_HOME):
            copy = home / PurePosixPath(target).relative_to(DASHBOARD_HOME)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(on_host, copy)


def test_the_dashboard_reads_the_deployment_from_what_compose_gives_it(
    resolved: dict[str, Any],
    deployment: DeployConfig,
    hub_config: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = _dashboard(_configured(hub_config, resolved["services"]["hub"]["environment"]))[
        "environment"
    ]
    home = tmp_path / "srv-labkit"
    _as_compose_mounts(resolved, home)
    values = parse_env(deployment.env_file.read_text())
    with running_node_one(deployment, tmp_path) as ports:
        # The service's environment, where this machine differs from the compose network:
        # the folder stands for /srv/labkit, node 1 on loopback for the three nodes.
        here = {
            **environment,
            "LABKIT_HOME": str(home),
            "LABKIT_NATS_URL": f"nats://127.0.0.1:{ports[4222]}",
            "LABKIT_NATS_MONITOR_URL": f"http://127.0.0.1:{ports[8222]}",
        }
        monkeypatch.delenv("LABKIT_DATABASE_URL", raising=False)
        for key, value in here.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        # The auth database (roster, password resets) and the NSC service (revoking):
        # the deployment's, from the files alone.
        assert database_url(settings) == values["LABKIT_DATABASE_URL"]
        assert nsc_service(settings) == ("http://nsc:4000", values["NSC_SERVICE_TOKEN"])
        assert nats_urls(settings) == [here["LABKIT_NATS_URL"]]
        asyncio.run(_watch_the_class(settings, deployment))
    # It minted nothing: no keystore was there to mint from.
    assert not Nsc.from_settings(settings).is_set_up


async def _watch_the_class(settings: Settings, deployment: DeployConfig) -> None:
    classroom = Classroom(settings)
    learner_keystore = Nsc(deployment.out / "nsc", make_settings(deployment.out).nsc)
    learner = learner_keystore.create_user("dash-learner")  # as the NSC service issues one
    await classroom.start()  # the dashboard's user and the observer, from the issued creds
    nc = await connect_as(learner.creds, settings=settings)
    try:
        online, problems = await online_users(settings)
        assert problems == []
        assert online[DASHBOARD_USER] == 1 and online["dash-learner"] == 1
        payload = EchoRequest(message="hello class").SerializeToString()
        await nc.publish("dash-learner.echo", payload)
        await nc.flush()
        deadline = time.monotonic() + 10
        while classroom.tap.seen == 0:
            assert time.monotonic() < deadline, "the tap never saw the learner's message"
            await asyncio.sleep(0.05)
        (row,) = classroom.tap.rows()
        assert (row["subject"], row["sender"]) == ("dash-learner.echo", "dash-learner")
    finally:
        await nc.close()
        await classroom.stop()


# --- the hub image has what the dashboard imports ---------------------------------------

HUB_MODULES = (
    "labkit.classroom.dashboard.app",
    "labkit.classroom.authenticator",
    "dockerspawner",
    "jupyterhub.app",
)


def _imported_distributions(modules: Iterable[str]) -> list[set[str]]:
    """For each third-party top-level module `modules` import: the distributions that
    provide it (run in a fresh interpreter, so nothing else is loaded)."""
    script = (
        "import importlib, json, sys\n"
        "from importlib.metadata import packages_distributions\n"
        "before = set(sys.modules)\n"
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        "tops = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "known = packages_distributions()\n"
        "print(json.dumps([known[t] for t in sorted(tops) if t in known]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    return [{str(canonicalize_name(d)) for d in dists} for dists in json.loads(result.stdout)]


def _installed_closure(requirements: Iterable[str]) -> set[str]:
    """The distributions `pip install <requirements>` brings, as this environment has them."""
    wanted = [Requirement(line) for line in requirements]
    closure: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = str(canonicalize_name(requirement.name))
        extras = requirement.extras
        if name in closure and not extras:
            continue
        closure.add(name)
        for line in metadata.requires(requirement.name) or []:
            needed = Requirement(line)
            marker = needed.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in extras or {""}):
                wanted.append(needed)
    return closure


def test_the_hub_image_installs_what_the_hub_and_its_dashboard_import() -> None:
    dockerfile = HUB_DOCKERFILE.read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = re.findall(r"\['optional-dependencies'\]\['(\w+)'\]", dockerfile)
    assert set(extras) == {"course", "classroom"}
    assert "-c constraints.txt" in dockerfile  # requirements.txt's pins hold in the image
    assert "COPY pyproject.toml requirements.txt ./" in dockerfile
    listed = [*project["dependencies"], "dockerspawner==14.0.0"]
    listed += [line for extra in extras for line in project["optional-dependencies"][extra]]
    installed = _installed_closure(listed) | {"labkit"}  # labkit itself: COPY labkit
    missing = [dists for dists in _imported_distributions(HUB_MODULES) if not dists & installed]
    assert missing == []
