"""The hub's pure pieces, without a hub: OS account names, the learner file, the hub's
configuration (services, scopes, where the crypt key goes), the isolation refusal."""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from traitlets.config import Config

from labkit.classroom.course_mode import is_classroom
from labkit.classroom.dashboard.service import SERVICE_NAME as DASHBOARD_SERVICE
from labkit.classroom.hub_config import (
    STATUS_SERVICE,
    HubPaths,
    HubPlan,
    configure,
    isolation_problem,
    write_hub_files,
)
from labkit.classroom.learner import (
    LEARNER_FILE_VARIABLE,
    NotInClassroom,
    current_login,
    learner_file,
    write_learner_file,
)
from labkit.classroom.learner_python import unreachable_by_others
from labkit.classroom.os_accounts import AccountError, account_name

ANSWER = {
    "access_token": "access",
    "refresh_token": "refresh",
    "user_id": "01abc",
    "role": "learner",
    "nats": {
        "servers": ["nats://127.0.0.1:4222"],
        "creds": "creds text",
        "expires_at": "2027-06-01T00:00:00+00:00",
        "publish": ["01abc.>"],
        "subscribe": ["01abc.>", "_INBOX.01abc.>"],
    },
}


@pytest.mark.parametrize(
    ("email", "expected_start"),
    [
        ("Alice@Example.com", "lk-alice-"),
        ("a.b+tag@example.com", "lk-abtag-"),
        ("x'; rm -rf /@example.com", "lk-xrmrf-"),
        ("éé@example.com", "lk-"),
    ],
)
def test_account_names_are_safe_short_and_stable(email: str, expected_start: str) -> None:
    name = account_name(email)
    assert name.startswith(expected_start)
    assert len(name) <= 32
    assert all(c.islower() or c.isdigit() or c == "-" for c in name)
    assert account_name(email.upper()) == name  # emails are case-blind


def test_emails_alike_in_letters_get_different_accounts() -> None:
    names = {account_name(e) for e in ("ab@x.org", "a.b@x.org", "ab@y.org", "a-b@x.org")}
    assert len(names) == 4


@pytest.mark.parametrize("prefix", ["", "1lk-", "LK-", "lk_", "much-too-long-"])
def test_a_bad_prefix_is_refused_with_what_to_use(prefix: str) -> None:
    with pytest.raises(AccountError, match="lower-case letter first"):
        account_name("alice@example.com", prefix)


def test_the_learner_file_is_private_and_gives_the_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "learner.json"
    write_learner_file(path, ANSWER, "alice@example.com", "http://127.0.0.1:5000")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["auth_url"] == "http://127.0.0.1:5000"
    monkeypatch.setenv(LEARNER_FILE_VARIABLE, str(path))
    monkeypatch.setenv("LABKIT_CLASSROOM", "1")  # the spawner sets both
    assert learner_file() == path and is_classroom()
    login = current_login()
    assert (login.user_id, login.email, login.nats.publish) == (
        "01abc",
        "alice@example.com",
        ["01abc.>"],
    )


def test_alone_there_is_no_classroom_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LEARNER_FILE_VARIABLE, raising=False)
    monkeypatch.delenv("LABKIT_CLASSROOM", raising=False)
    assert learner_file() is None and not is_classroom()
    with pytest.raises(NotInClassroom, match="AuthClient"):
        current_login()


def test_a_missing_learner_file_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LEARNER_FILE_VARIABLE, str(tmp_path / "gone.json"))
    with pytest.raises(NotInClassroom, match="start your server"):
        current_login()


def test_only_root_or_containers_may_run_a_class() -> None:
    refusal = isolation_problem(1000, "local")
    assert refusal is not None and "root" in refusal and "LABKIT_CLASSROOM_SPAWNER" in refusal
    assert isolation_problem(0, "local") is None
    assert isolation_problem(1000, "dockerspawner.DockerSpawner") is None


def _configured(tmp_path: Path, dashboard_url: str = "") -> tuple[Config, HubPaths]:
    paths = HubPaths(tmp_path)
    plan = HubPlan(
        home=str(tmp_path),
        public_url="http://127.0.0.1:8000",
        hub_bind_url="http://127.0.0.1:8081",
        proxy_api_url="http://127.0.0.1:8001",
        proxy_command="/bin/false",
        auth_url="http://127.0.0.1:5000",
        account_prefix="lk-",
        home_base="/home",
        course_dir="/srv/course",
        learner_python="/usr/bin/python3",
        learner_environment={"LABKIT_AUTH_URL": "http://127.0.0.1:5000"},
        dashboard_url=dashboard_url,
    )
    write_hub_files(paths, plan)
    c = Config()
    configure(c, plan, paths)
    return c, paths


def test_the_crypt_key_is_given_in_the_config_and_secrets_are_private(tmp_path: Path) -> None:
    c, paths = _configured(tmp_path)
    key = paths.crypt_key_file.read_text().strip()
    assert c.CryptKeeper["keys"] == [key] and len(bytes.fromhex(key)) == 32
    for secret in (paths.crypt_key_file, paths.cookie_secret_file, paths.status_token_file):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert c.Authenticator.enable_auth_state is True
    assert c.LabkitSpawner.stack_environment == {"LABKIT_AUTH_URL": "http://127.0.0.1:5000"}
    # Written again (a second `up`), the key stays: auth_state stays readable.
    _configured(tmp_path)
    assert paths.crypt_key_file.read_text().strip() == key


def test_the_status_token_may_only_see_who_is_online(tmp_path: Path) -> None:
    c, _ = _configured(tmp_path)
    (role,) = [r for r in c.JupyterHub.load_roles if r["name"] == STATUS_SERVICE]
    assert set(role["scopes"]) == {"list:users", "read:users:activity", "read:servers"}


def test_the_dashboard_service_is_added_when_planned(tmp_path: Path) -> None:
    c, _ = _configured(tmp_path)
    assert [s["name"] for s in c.JupyterHub.services] == [STATUS_SERVICE]
    c, _ = _configured(tmp_path, dashboard_url="http://127.0.0.1:8123")
    (dashboard,) = [s for s in c.JupyterHub.services if s["name"] == DASHBOARD_SERVICE]
    assert dashboard["command"][1:] == ["-m", "labkit.classroom.dashboard"]
    assert dashboard["url"] == "http://127.0.0.1:8123"
    assert dashboard["environment"] == {"LABKIT_HOME": str(tmp_path)}
    # No role for it: nothing it could read auth_state (or anything else) with.
    assert all(DASHBOARD_SERVICE not in r.get("services", []) for r in c.JupyterHub.load_roles)


def test_a_closed_folder_on_the_way_is_found() -> None:
    # Under /tmp itself: pytest's tmp_path sits in folders closed to others.
    top = Path(tempfile.mkdtemp(prefix="labkit-reach-"))
    try:
        top.chmod(0o755)
        closed = top / "closed"
        inner = closed / "inner"
        inner.mkdir(parents=True)
        (inner / "file").write_text("x")
        (inner / "file").chmod(0o644)
        closed.chmod(0o700)
        assert unreachable_by_others(inner / "file") == closed
        closed.chmod(0o755)
        assert unreachable_by_others(inner / "file") is None
        (inner / "file").chmod(0o600)
        assert unreachable_by_others(inner / "file") == inner / "file"
    finally:
        shutil.rmtree(top)
