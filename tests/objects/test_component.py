"""The object store as a stack component: keys, files, status, CLI; and endpoint discovery."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from labkit.objects.endpoint import (
    S3Endpoint,
    S3Keys,
    embedded_endpoint,
    generate_keys,
    read_or_create_keys,
    s3_endpoint,
)
from labkit.objects.errors import ObjectStoreUnavailable
from labkit.objects.store import ObjectStore
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.stack.object_store import render_options, s3_answers
from labkit.stack.ports import free_port
from tests.conftest import make_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_are_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "s3-keys.json"
    keys = read_or_create_keys(path)
    assert len(keys.access_key) == 20 and len(keys.secret_key) == 40
    assert _mode(path) == 0o600
    assert read_or_create_keys(path) == keys
    assert generate_keys() != keys
    assert keys.secret_key not in repr(keys)


def test_options_file_quotes_what_it_holds() -> None:
    text = render_options(S3Keys('a"b', "s\\e"))
    assert 'access_key = "a\\"b"' in text and 'secret_key = "s\\\\e"' in text


def test_the_stack_runs_it_with_generated_keys_and_shows_its_endpoint(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", s3={"port": 0})
    paths = settings.paths
    with Stack(settings) as stack:
        status = stack.ensure("objects")["objects"]
        assert status.running
        details = status.as_dict()
        host, port = details["endpoint"].split(":")
        assert host == "127.0.0.1" and details["url"] == f"http://127.0.0.1:{port}"
        assert details["data_dir"] == str(paths.objects_dir)
        assert s3_answers(details["url"])
        assert _mode(paths.s3_keys_file) == 0o600
        assert _mode(paths.secrets_dir / "nanio-options.toml") == 0o600
        keys = json.loads(paths.s3_keys_file.read_text())
        endpoint = embedded_endpoint(settings)
        assert endpoint.keys == S3Keys(keys["access_key"], keys["secret_key"])
        ObjectStore.from_settings(settings).write("alice/x", b"x")
        assert (paths.objects_dir / settings.s3.bucket / "alice" / "x").read_bytes() == b"x"
        # A restart keeps the keys (and the objects: see the conformance suite).
        stack.down("objects")
        assert not s3_answers(details["url"])
        stack.ensure("objects")
        assert json.loads(paths.s3_keys_file.read_text()) == keys
        # Clients read the keys, never make them: new ones would not match the server's.
        paths.s3_keys_file.unlink()
        with pytest.raises(ObjectStoreUnavailable, match="keys are missing"):
            embedded_endpoint(settings)
        assert not paths.s3_keys_file.exists()
    assert stack.status()["objects"].state == "stopped"


def test_a_store_of_several_processes_serves_and_stops_whole(tmp_path: Path) -> None:
    # LABKIT_S3_WORKERS: nanio's workers share one port; `down` stops every one of them.
    settings = make_settings(tmp_path / "home", s3={"port": 0, "workers": 2})
    with Stack(settings) as stack:
        status = stack.ensure("objects")["objects"]
        assert status.pid is not None
        supervisor = psutil.Process(status.pid)
        workers = supervisor.children(recursive=True)
        # uvicorn spawns its workers (and multiprocessing's resource tracker).
        spawned = [w for w in workers if "spawn_main" in " ".join(w.cmdline())]
        assert len(spawned) == 2, [w.cmdline() for w in workers]
        store = ObjectStore.from_settings(settings)
        for number in range(20):  # spread over the workers by the kernel: all must answer
            store.write(f"alice/{number}", str(number).encode())
        assert [store.read(f"alice/{n}") for n in range(20)] == [str(n).encode() for n in range(20)]
        stack.down("objects")
        _, alive = psutil.wait_procs([supervisor, *workers], timeout=30)
        assert alive == []
        assert not s3_answers(status.details["url"])


def test_cli_up_and_status_show_the_endpoint(tmp_path: Path) -> None:
    env = {**os.environ, "LABKIT_HOME": str(tmp_path / "home"), "LABKIT_S3_PORT": "0"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "labkit", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    try:
        up = cli("up", "objects", "--json")
        assert up.returncode == 0, up.stderr
        state = json.loads(cli("status", "--json").stdout)["components"]["objects"]
        assert state["state"] == "running"
        assert state["endpoint"].startswith("127.0.0.1:")
        assert s3_answers(state["url"])
    finally:
        assert cli("down").returncode == 0
    assert not s3_answers(state["url"])


def test_without_a_running_store_the_error_says_how_to_start_it(settings: Settings) -> None:
    with pytest.raises(ObjectStoreUnavailable, match="python -m labkit up"):
        s3_endpoint(settings)
    with pytest.raises(ObjectStoreUnavailable, match="python -m labkit up"):
        ObjectStore.from_settings(settings).presign_put("alice/cat.png")


def test_a_store_that_does_not_answer_fails_after_few_attempts(
    hanging_up_port: tuple[int, list[int]],
) -> None:
    nothing = free_port("127.0.0.1")  # nothing listens there
    assert not s3_answers(f"http://127.0.0.1:{nothing}")
    refused = ObjectStore.at(S3Endpoint(f"127.0.0.1:{nothing}", generate_keys()), "labkit-files")
    with pytest.raises(ObjectStoreUnavailable, match="does not answer"):
        refused.read("alice/cat.png")
    # Failing fast is giving up after a try and two retries; the SDK's own policy makes
    # six attempts with back-off (about 6 s) before a learner hears anything.
    port, attempts = hanging_up_port
    store = ObjectStore.at(S3Endpoint(f"127.0.0.1:{port}", generate_keys()), "labkit-files")
    with pytest.raises(ObjectStoreUnavailable, match="does not answer"):
        store.read("alice/cat.png")
    assert attempts[0] == 3


def test_an_endpoint_from_settings_wins_over_the_stack(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        s3={
            "endpoint": "https://minio.example.org:9000/",
            "access_key": "minio",
            "secret_key": "minio-secret",
            "region": "eu-west-1",
        },
    )
    endpoint = s3_endpoint(settings)
    assert endpoint.endpoint == "minio.example.org:9000"
    assert endpoint.secure and endpoint.url == "https://minio.example.org:9000"
    assert endpoint.region == "eu-west-1" and endpoint.keys.access_key == "minio"


def test_an_endpoint_without_keys_is_a_clear_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, s3={"endpoint": "127.0.0.1:9000"})
    with pytest.raises(ObjectStoreUnavailable, match="LABKIT_S3_ACCESS_KEY"):
        s3_endpoint(settings)
