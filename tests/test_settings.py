"""labkit.settings: LABKIT_ environment variables, nested groups, .env, validation."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from labkit.settings import SIX_MONTHS, DataPaths, NscSettings, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No LABKIT_* variable leaks in, and the cwd (where .env is read) is empty."""
    for var in [v for v in os.environ if v.upper().startswith("LABKIT_")]:
        monkeypatch.delenv(var)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def test_defaults(clean_env: Path) -> None:
    settings = Settings()
    assert settings.home == (clean_env / ".labkit").resolve()
    assert settings.nats.host == "127.0.0.1"
    assert settings.nats.port == 4222
    assert settings.nats.monitor_port == 8222
    assert settings.nats.url is None
    assert settings.nsc.credential_expiry == SIX_MONTHS == timedelta(days=183)
    assert settings.nsc.operator == "labkit"
    assert settings.nsc.account == "labkit"
    assert settings.nsc.user_publish[0] == "{user}.>"
    assert settings.nsc.user_subscribe == ["{user}.>", "_INBOX.{user}.>"]
    assert settings.nsc.user_response_max == 0
    assert settings.stack.startup_timeout == 15.0


def test_every_default_the_readme_promises(clean_env: Path) -> None:
    # The README's settings table, row by row.
    settings = Settings()
    assert (settings.nats.max_memory_store, settings.nats.max_file_store) == (256 << 20, 2 << 30)
    assert settings.nats.cluster_size is None and settings.nats.cluster_port == 6222
    assert settings.nsc.service_port == 4000 and settings.nsc.store_dir is None
    assert settings.database.url is None
    auth = settings.auth
    assert auth.port == 5000
    assert auth.access_token_expiry == timedelta(minutes=15)
    assert auth.refresh_token_expiry == timedelta(days=30)
    assert auth.min_password_length == 8
    assert (auth.login_attempts_per_email, auth.login_attempts_per_address) == (5, 30)
    assert auth.login_window == timedelta(seconds=60)
    server = settings.server
    assert (server.replicas, server.max_in_flight) == (1, 256)
    assert (server.cache_backend, server.cache_ttl) == ("memory", timedelta(seconds=5))
    assert server.cache_max_entries == 10_000
    assert (server.cache_max_bytes, server.cache_max_user_bytes) == (64 << 20, 8 << 20)
    stream = settings.stream
    assert (stream.max_age, stream.max_bytes) == (timedelta(days=7), 256 << 20)
    assert stream.duplicate_window == timedelta(minutes=2)
    assert stream.ack_wait == timedelta(seconds=30)
    assert stream.replicas is None  # then 3 on a cluster of 3+, else 1 (discovery)
    assert settings.paths.outbox_file == settings.home / "client" / "outbox.db"
    s3 = settings.s3
    assert s3.endpoint is None and s3.access_key is None and s3.secret_key is None
    assert (s3.region, s3.secure, s3.port) == ("us-east-1", False, 9000)
    assert s3.bucket == "labkit-files" and s3.url_expiry == timedelta(hours=2)
    assert (s3.max_image_pixels, s3.max_image_bytes) == (25_000_000, 20 << 20)
    assert s3.upload_url_expiry == timedelta(minutes=5)
    # The bounds that keep one learner from exhausting the others (same table).
    assert settings.nats.ws_port == 4280 and settings.nats.monitor_url is None
    nsc = settings.nsc
    assert nsc.push_retry_interval == timedelta(seconds=2)
    assert nsc.max_body_bytes == 64 << 10
    assert (nsc.user_max_subscriptions, nsc.user_max_payload) == (1_000, 512 << 10)
    assert auth.login_attempts_per_email_everywhere == 20
    assert (auth.registrations_per_address, auth.registration_window) == (
        30,
        timedelta(minutes=10),
    )
    assert auth.max_body_bytes == 16 << 10
    assert (server.user_max_in_flight, server.user_max_queued) == (16, 1_000)
    assert (server.busy_retry_after, server.busy_backlog) == (timedelta(milliseconds=250), 50_000)
    assert (server.receive_pending_msgs, server.receive_pending_bytes) == (200_000, 128 << 20)
    assert server.drain_timeout == timedelta(seconds=4)
    assert (stream.max_msgs_per_user, stream.max_msg_size) == (1_000, 16 << 10)
    assert stream.max_deliveries == 8
    assert stream.max_consumers == 10_000
    assert s3.workers == 1
    assert (s3.image_workers, s3.transforms_per_user) == (3, 2)
    assert s3.max_pixels_in_flight == 25_000_000
    assert (s3.image_workers, s3.transforms_per_user) == (3, 2)
    assert s3.max_pixels_in_flight == 25_000_000
    progress = settings.progress
    assert (progress.max_exercises_per_user, progress.max_bytes) == (200, 64 << 20)
    assert progress.bucket == "labkit_progress" and progress.replicas is None


def test_nested_variables_use_one_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_NATS_PORT", "5222")
    monkeypatch.setenv("LABKIT_NATS_MONITOR_PORT", "9222")
    monkeypatch.setenv("LABKIT_NATS_HOST", "0.0.0.0")
    monkeypatch.setenv("LABKIT_NSC_OPERATOR", "teacher")
    monkeypatch.setenv("LABKIT_NSC_USER_SUBSCRIBE", '["{user}.in"]')
    monkeypatch.setenv("LABKIT_NSC_USER_RESPONSE_MAX", "2")
    monkeypatch.setenv("LABKIT_STACK_STOP_TIMEOUT", "1.5")
    settings = Settings()
    assert settings.nats.port == 5222
    assert settings.nats.monitor_port == 9222
    assert settings.nats.host == "0.0.0.0"
    assert settings.nsc.operator == "teacher"
    assert settings.nsc.user_subscribe == ["{user}.in"]
    assert settings.nsc.user_response_max == 2
    assert settings.stack.stop_timeout == 1.5


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_PORT", "1111")
    monkeypatch.setenv("HOME_NATS_PORT", "1112")
    assert Settings().nats.port == 4222


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2592000", timedelta(days=30)),
        ("3600", timedelta(hours=1)),
        ("1.5", timedelta(seconds=1.5)),
        ("P30D", timedelta(days=30)),
        ("PT12H", timedelta(hours=12)),
        ("P1DT2H", timedelta(days=1, hours=2)),
    ],
)
def test_credential_expiry_from_env(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: timedelta
) -> None:
    monkeypatch.setenv("LABKIT_NSC_CREDENTIAL_EXPIRY", value)
    assert Settings().nsc.credential_expiry == expected


@pytest.mark.parametrize("value", ["0", "-5", "PT0S", "-P1D", "0.0"])
def test_non_positive_credential_expiry_is_rejected_clearly(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LABKIT_NSC_CREDENTIAL_EXPIRY", value)
    with pytest.raises(ValidationError) as info:
        Settings()
    message = str(info.value)
    assert "credential_expiry" in message
    assert "must be positive" in message


@pytest.mark.parametrize("value", [timedelta(0), timedelta(seconds=-1), 0, -10])
def test_non_positive_credential_expiry_is_rejected_in_code(value: object) -> None:
    with pytest.raises(ValidationError, match="must be positive"):
        NscSettings(credential_expiry=value)  # type: ignore[arg-type]


def test_garbage_credential_expiry_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_NSC_CREDENTIAL_EXPIRY", "soon")
    with pytest.raises(ValidationError, match="credential_expiry"):
        Settings()


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_bad_port_is_rejected(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("LABKIT_NATS_PORT", port)
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_home_resolves_to_an_absolute_path(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABKIT_HOME", "data/../lab")
    settings = Settings()
    assert settings.home.is_absolute()
    assert settings.home == (clean_env / "lab").resolve()
    assert ".." not in settings.home.parts


def test_home_expands_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    monkeypatch.setenv("LABKIT_HOME", "~/lab")
    assert Settings().home == (tmp_path / "me" / "lab").resolve()


def test_dotenv_in_the_cwd_is_honoured(clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        "LABKIT_NATS_PORT=6222\nLABKIT_NSC_CREDENTIAL_EXPIRY=P7D\nLABKIT_HOME=from-dotenv\n"
        "UNRELATED=1\n"
    )
    settings = Settings()
    assert settings.nats.port == 6222
    assert settings.nsc.credential_expiry == timedelta(days=7)
    assert settings.home == (clean_env / "from-dotenv").resolve()


def test_environment_beats_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("LABKIT_NATS_PORT=6222\nLABKIT_NATS_MONITOR_PORT=6333\n")
    monkeypatch.setenv("LABKIT_NATS_PORT", "7222")
    settings = Settings()
    assert settings.nats.port == 7222
    assert settings.nats.monitor_port == 6333


def test_dotenv_elsewhere_is_not_read(tmp_path: Path, clean_env: Path) -> None:
    (tmp_path / ".env").write_text("LABKIT_NATS_PORT=6222\n")  # parent of the cwd
    assert Settings().nats.port == 4222


def test_load_settings_reads_the_environment_now(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().nats.port == 4222
    monkeypatch.setenv("LABKIT_NATS_PORT", "4333")
    assert load_settings().nats.port == 4333


def test_paths_default_under_home(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_HOME", str(clean_env / "h"))
    paths = Settings().paths
    home = (clean_env / "h").resolve()
    assert paths.home == home
    assert paths.nsc_store == home / "nsc"
    assert paths.state_file == home / "state.json"
    assert paths.log_file("nats") == home / "logs" / "nats.log"
    assert paths.pid_file("nsc") == home / "run" / "nsc.pid"


def test_nsc_store_dir_overrides(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_NSC_STORE_DIR", "keys-here")
    settings = Settings()
    assert settings.nsc.store_dir == Path("keys-here")
    assert settings.paths.nsc_store == (clean_env / "keys-here").resolve()
    assert DataPaths(Path("/x")).nsc_store == Path("/x/nsc").resolve()
