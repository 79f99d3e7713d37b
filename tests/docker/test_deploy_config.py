"""`python -m labkit deploy-config`: the cluster configs, the keystore and the secrets."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.deploy import (
    ENV_KEYS,
    NODES,
    SECRET_KEYS,
    DeployError,
    NodePaths,
    node_name,
    parse_env,
    render_node_config,
    write_deploy_config,
)
from labkit.nsc.creds import user_of
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.stack.nats_server import nats_server_binary
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


def _render(node: int, **overrides: object) -> str:
    values: dict[str, object] = {
        "system_account": "ASYSTEM",
        "system_account_jwt": "eyJ.sys.jwt",
        "route_password": "route-secret",
        "max_memory_store": 1024,
        "max_file_store": 4096,
    }
    values.update(overrides)
    return render_node_config(node, **values)  # type: ignore[arg-type]


def _routes(config: str) -> list[str]:
    return re.findall(r'"nats-route://route:route-secret@([\w-]+):6222"', config)


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def test_each_node_routes_to_the_other_two() -> None:
    names = [node_name(n) for n in range(1, NODES + 1)]
    assert names == ["nats-1", "nats-2", "nats-3"]
    for node, name in enumerate(names, start=1):
        config = _render(node)
        assert f"server_name: {name}\n" in config
        assert sorted(_routes(config)) == [other for other in names if other != name]
        # Clients, monitoring and routes on the container's interfaces, fixed ports.
        assert 'host: "0.0.0.0"\nport: 4222\nhttp: "0.0.0.0:8222"' in config
        assert 'listen: "0.0.0.0:6222"' in config
        assert "name: labkit" in config  # one cluster name for all
        assert 'password: "route-secret"' in config  # routes need the shared password
        assert 'operator: "/etc/nats/operator.jwt"' in config
        assert 'dir: "/data/resolver"' in config and "type: full" in config
        assert 'store_dir: "/data/jetstream"' in config
        assert 'ASYSTEM: "eyJ.sys.jwt"' in config  # the system account, preloaded


def test_a_node_outside_the_cluster_is_refused() -> None:
    for node in (0, NODES + 1):
        with pytest.raises(ValueError, match="node must be between"):
            _render(node)


def test_written_configs_are_valid_for_nats_server(tmp_path: Path, settings: Settings) -> None:
    written = write_deploy_config(tmp_path / "generated", settings=settings)
    nats_dir = written.out / "nats"
    for node in range(1, NODES + 1):
        text = (nats_dir / f"{node_name(node)}.conf").read_text()
        # nats-server -t reads the operator file: point the container paths at the host's.
        local = text.replace("/etc/nats/operator.jwt", str(nats_dir / "operator.jwt"))
        local = local.replace("/data/resolver", str(nats_dir / node_name(node) / "resolver"))
        local = local.replace("/data/jetstream", str(tmp_path / f"js-{node}"))
        local = local.replace("/etc/nats/tls", str(nats_dir / "tls"))  # nats-server loads them
        config = tmp_path / f"local-{node}.conf"
        config.write_text(local)
        checked = subprocess.run(
            [str(nats_server_binary()), "-t", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr + checked.stdout
        assert "is valid" in checked.stderr + checked.stdout


def test_node_paths_are_parameters() -> None:
    config = _render(2, paths=NodePaths("/o.jwt", "/r", "/j"))
    assert 'operator: "/o.jwt"' in config and 'dir: "/r"' in config
    assert 'store_dir: "/j"' in config


def test_the_deployment_folder(tmp_path: Path, settings: Settings) -> None:
    out = tmp_path / "generated"
    written = write_deploy_config(out, settings=settings)
    assert written.out == out.resolve() and not written.kept_secrets
    assert [path.name for path in written.node_configs] == [
        "nats-1.conf",
        "nats-2.conf",
        "nats-3.conf",
    ]
    assert all(_private(path) for path in written.node_configs)  # they hold the route password

    nsc = Nsc(out / "nsc", settings.nsc)
    assert (out / "nats" / "operator.jwt").read_text().strip() == nsc.read_operator_jwt()
    accounts = nsc.account_jwts()
    assert len(accounts) == 2  # the system account and labkit's
    for node in range(1, NODES + 1):
        resolver = out / "nats" / node_name(node) / "resolver"
        assert {path.name for path in resolver.iterdir()} == {f"{key}.jwt" for key in accounts}
        for key, token in accounts.items():
            assert (resolver / f"{key}.jwt").read_text() == token
    # The application servers read their creds from the keystore.
    assert user_of(nsc.server_creds()) == settings.nsc.server_user


def test_env_has_every_key_and_only_its_owner_reads_it(tmp_path: Path, settings: Settings) -> None:
    written = write_deploy_config(tmp_path / "generated", settings=settings)
    assert _private(written.env_file)
    values = parse_env(written.env_file.read_text())
    assert list(values) == list(ENV_KEYS)
    assert all(values[key] for key in ENV_KEYS)
    assert values["LABKIT_DEPLOY_DIR"] == str(written.out)
    assert values["LABKIT_NATS_URL"] == ("nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222")
    password = values["POSTGRES_PASSWORD"]
    assert values["LABKIT_DATABASE_URL"] == (
        f"postgresql+psycopg://labkit:{password}@postgres:5432/labkit"
    )
    assert values["LABKIT_S3_ENDPOINT"] == "minio:9000"
    assert values["LABKIT_S3_ACCESS_KEY"] == values["MINIO_ROOT_USER"]
    assert values["LABKIT_S3_SECRET_KEY"] == values["MINIO_ROOT_PASSWORD"]
    assert len(values["MINIO_ROOT_PASSWORD"]) >= 8  # MinIO's minimum
    # No two secrets are the same value.
    assert len({values[key] for key in SECRET_KEYS}) == len(SECRET_KEYS)
    # The services read two of them as files, 0600, the same values.
    secrets = written.out / "secrets"
    assert (secrets / "nsc-service.token").read_text() == values["NSC_SERVICE_TOKEN"]
    assert (secrets / "auth-jwt.secret").read_text() == values["AUTH_JWT_SECRET"]
    assert _private(secrets / "nsc-service.token") and _private(secrets / "auth-jwt.secret")
    # The route password is the one in every node's config.
    for path in written.node_configs:
        assert f'password: "{values["NATS_ROUTE_PASSWORD"]}"' in path.read_text()


def test_running_again_keeps_the_secrets_rotate_replaces_them(
    tmp_path: Path, settings: Settings
) -> None:
    out = tmp_path / "generated"
    first = parse_env(write_deploy_config(out, settings=settings).env_file.read_text())
    operator = Nsc(out / "nsc").read_operator_jwt()

    again = write_deploy_config(out, settings=settings)
    assert again.kept_secrets
    assert parse_env(again.env_file.read_text()) == first
    assert Nsc(out / "nsc").read_operator_jwt() == operator  # the same keystore

    rotated = write_deploy_config(out, rotate=True, settings=settings)
    assert not rotated.kept_secrets
    after = parse_env(rotated.env_file.read_text())
    assert all(after[key] != first[key] for key in SECRET_KEYS)
    assert (out / "secrets" / "nsc-service.token").read_text() == after["NSC_SERVICE_TOKEN"]
    assert f'"{after["NATS_ROUTE_PASSWORD"]}"' in (out / "nats" / "nats-1.conf").read_text()


def test_two_deployments_share_no_secret(tmp_path: Path, settings: Settings) -> None:
    one = parse_env(write_deploy_config(tmp_path / "a", settings=settings).env_file.read_text())
    two = parse_env(write_deploy_config(tmp_path / "b", settings=settings).env_file.read_text())
    assert not {one[key] for key in SECRET_KEYS} & {two[key] for key in SECRET_KEYS}


def test_a_missing_secret_is_added_and_the_others_kept(tmp_path: Path, settings: Settings) -> None:
    out = tmp_path / "generated"
    first = parse_env(write_deploy_config(out, settings=settings).env_file.read_text())
    lines = [line for line in first.items() if line[0] != "JUPYTER_TOKEN"]
    (out / ".env").write_text("".join(f"{key}={value}\n" for key, value in lines))
    after = parse_env(write_deploy_config(out, settings=settings).env_file.read_text())
    assert after["JUPYTER_TOKEN"] and after["JUPYTER_TOKEN"] != first["JUPYTER_TOKEN"]
    assert all(after[key] == first[key] for key in SECRET_KEYS if key != "JUPYTER_TOKEN")


def test_a_hand_edited_secret_that_would_break_a_url_is_refused(
    tmp_path: Path, settings: Settings
) -> None:
    out = tmp_path / "generated"
    out.mkdir()
    (out / ".env").write_text("POSTGRES_PASSWORD=p@ss word\n")
    with pytest.raises(DeployError, match="POSTGRES_PASSWORD"):
        write_deploy_config(out, settings=settings)
    assert write_deploy_config(out, rotate=True, settings=settings).env_file.exists()


def test_parse_env_reads_compose_style_lines() -> None:
    text = "# a comment\n\nA=1\nB = 'two'\nC=\"three\"\nnot a pair\nD=x=y\n"
    assert parse_env(text) == {"A": "1", "B": "two", "C": "three", "D": "x=y"}


def test_cli_writes_then_keeps(
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LABKIT_HOME", str(settings.home))
    out = tmp_path / "generated"
    assert main(["deploy-config", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "secrets generated into" in printed and "docker compose" in printed
    assert main(["deploy-config", "--out", str(out)]) == 0
    assert "secrets kept from" in capsys.readouterr().out
    assert main(["deploy-config", "--out", str(out), "--rotate"]) == 0
    assert "secrets generated into" in capsys.readouterr().out
