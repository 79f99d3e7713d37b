"""The `lab` fixture: every test in tests/labs runs in memory and against the real server."""

from __future__ import annotations

import pytest

from tests.labs.harness import Lab, lab_settings


@pytest.fixture(params=["memory", "nats"])
def lab(request: pytest.FixtureRequest) -> Lab:
    if request.param == "memory":
        return Lab("memory")
    stack = request.getfixturevalue("running_stack")  # only the nats half needs a server
    return Lab("nats", lab_settings(stack.settings))
