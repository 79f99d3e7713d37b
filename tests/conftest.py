"""Shared fixtures: isolated data directories and a real stack for integration tests.

The run-wide data directory and free ports are set in the root conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.settings import Settings
from labkit.stack import Stack
from tests.notebook_kernels import notebook_stack  # noqa: F401  (a module fixture: one stack for kernels)
from tests.postgres import postgres_url  # noqa: F401  (a session fixture, imported once)

# The run's directory, made by the root conftest.py (notebooks live in its "notebooks").
RUN_DIR = Path(os.environ["LABKIT_HOME"]).parent


def make_settings(home: Path, **overrides: object) -> Settings:
    """Settings for a data directory of its own, on free ports."""
    values: dict[str, object] = {
        "home": home,
        "nats": {"port": 0, "monitor_port": 0, "ws_port": 0},
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
    stack = Stack(make_settings(RUN_DIR / "shared-stack"))
    stack.ensure("nats", "nsc")
    yield stack
    stack.down()
