"""Classroom mode's `Stack`: it checks the class's shared stack and starts none of it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from labkit.settings import Settings
from labkit.stack import Stack
from labkit.stack.shared import SharedStackOnly, SharedStackUnavailable
from tests.classroom_notebooks.class_stack import register_learner


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _classroom(home: Path, **env: object) -> Settings:
    return Settings(home=home, classroom=True, _env_prefix="LABKIT_TEST_UNUSED_", **env)  # type: ignore[arg-type]


def test_nothing_answers_names_each_service_and_starts_nothing(tmp_path: Path) -> None:
    port = _closed_port()
    settings = _classroom(
        tmp_path / "home",
        nats={"url": f"nats://127.0.0.1:{port}"},
        auth={"url": f"http://127.0.0.1:{port}"},
        s3={"endpoint": f"127.0.0.1:{port}"},
    )
    with pytest.raises(SharedStackUnavailable) as refused:
        Stack(settings).ensure("auth", "objects")
    message = str(refused.value)
    assert f"no NATS server answers at nats://127.0.0.1:{port}" in message
    assert f"the auth service does not answer at http://127.0.0.1:{port}/healthz" in message
    assert f"no S3 object store answers at http://127.0.0.1:{port}" in message
    assert "Ask your instructor" in message and "starts none of it" in message
    assert not (tmp_path / "home" / "state.json").exists()
    assert not (tmp_path / "home" / "run").exists(), "a classroom ensure started a process"


def test_a_missing_endpoint_names_its_variable(tmp_path: Path) -> None:
    with pytest.raises(SharedStackUnavailable, match="LABKIT_AUTH_URL is not set"):
        Stack(_classroom(tmp_path / "home", nats={"url": "nats://127.0.0.1:1"})).ensure("auth")


def test_a_learner_cannot_stop_or_restart_the_shared_stack(tmp_path: Path) -> None:
    stack = Stack(_classroom(tmp_path / "home"))
    with pytest.raises(SharedStackOnly, match="cannot stop it"):
        stack.down("nats")
    with pytest.raises(SharedStackOnly, match="cannot restart it"):
        stack.restart("server")


def test_the_shared_stack_answers_and_keeps_its_processes(
    class_stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    learner = register_learner(class_stack, "carol", tmp_path / "learners")
    monkeypatch.setenv("LABKIT_LEARNER_FILE", str(learner.learner_file))
    shared = class_stack.record("objects")["endpoint"]
    settings = _classroom(
        learner.home,
        nats={"url": class_stack.url("nats")},
        auth={"url": class_stack.url("auth")},
        s3={"endpoint": shared},
    )
    before = {name: status.pid for name, status in class_stack.status().items()}
    statuses = Stack(settings).ensure("server", "auth", "objects")
    assert {name: status.state for name, status in statuses.items()} == {
        "nats": "running",
        "nsc": "running",
        "auth": "running",
        "server": "running",
        "objects": "running",
    }
    # The application server was asked for real: the learner's own echo came back.
    assert statuses["server"].details["checked_with"] == f"{learner.user_id}.echo"
    assert statuses["auth"].url == class_stack.url("auth")
    assert {name: status.pid for name, status in class_stack.status().items()} == before
    assert not (learner.home / "state.json").exists()


def test_the_server_check_says_it_needs_the_login(
    class_stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABKIT_LEARNER_FILE", raising=False)
    settings = _classroom(tmp_path / "home", nats={"url": class_stack.url("nats")})
    with pytest.raises(SharedStackUnavailable, match="server: cannot be asked without your login"):
        Stack(settings).ensure("server")


def test_status_reports_a_silent_shared_stack_without_raising(tmp_path: Path) -> None:
    port = _closed_port()
    settings = _classroom(tmp_path / "home", auth={"url": f"http://127.0.0.1:{port}"})
    statuses = Stack(settings).status()
    assert statuses["auth"].state == "stopped"
    assert "the auth service does not answer" in statuses["auth"].details["problem"]
    assert "LABKIT_NATS_URL is not set" in statuses["nats"].details["problem"]


def test_a_sandbox_hands_its_processes_its_own_endpoints(tmp_path: Path) -> None:
    from labkit.stack.shared import endpoint_env

    sandbox = Settings(home=tmp_path / "sandbox", _env_prefix="LABKIT_TEST_UNUSED_")
    assert set(endpoint_env(sandbox).values()) == {None}, "the class's endpoints must be unset"
    shared = _classroom(tmp_path / "home", nats={"url": "nats://127.0.0.1:4222"})
    assert endpoint_env(shared)["LABKIT_CLASSROOM"] == "1"
    assert endpoint_env(shared)["LABKIT_NATS_URL"] == "nats://127.0.0.1:4222"
