"""Shared fixtures: isolated data directories and a real stack for integration tests.

Every test run gets its own LABKIT_HOME (notebook kernels inherit it), and free
ports, so `make test` never touches a stack the user has running.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.settings import Settings
from labkit.stack import Stack
from tests.postgres import postgres_url  # noqa: F401  (a session fixture, imported once)

_RUN_DIR = Path(tempfile.mkdtemp(prefix="labkit-tests-"))
# Set before any kernel starts so nbval's notebooks run in their own data directory.
os.environ["LABKIT_HOME"] = str(_RUN_DIR / "notebooks")
os.environ["LABKIT_NATS_PORT"] = "0"
os.environ["LABKIT_NATS_MONITOR_PORT"] = "0"
os.environ["LABKIT_NSC_SERVICE_PORT"] = "0"
os.environ["LABKIT_AUTH_PORT"] = "0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if type(item).__name__ == "IPyNbCell":
            item.add_marker(pytest.mark.notebook)


def make_settings(home: Path, **overrides: object) -> Settings:
    """Settings for a data directory of its own, on free ports."""
    values: dict[str, object] = {
        "home": home,
        "nats": {"port": 0, "monitor_port": 0},
        "nsc": {"service_port": 0},
        "auth": {"port": 0},
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Fresh settings with an empty data directory."""
    return make_settings(tmp_path / "home")


@pytest.fixture(scope="session")
def running_stack() -> Iterator[Stack]:
    """One NATS server + NSC service for the whole run (tests must not stop it)."""
    stack = Stack(make_settings(_RUN_DIR / "shared-stack"))
    stack.ensure("nats", "nsc")
    yield stack
    stack.down()
