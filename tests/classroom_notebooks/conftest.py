"""The class's shared stack for these tests, started as `labkit up` starts it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labkit.stack import Stack
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def class_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A whole stack (NATS, NSC, auth, application server, object store) for one class."""
    stack = Stack(make_settings(tmp_path_factory.mktemp("class") / "stack"))
    stack.ensure("server", "auth", "objects")
    yield stack
    stack.down()
