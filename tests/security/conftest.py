"""A stack of its own for tests that change the labs' stream or read its consumers' state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labkit.stack import Stack
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """NATS and the NSC service in a data dir of this module's: its stream is its own."""
    stack = Stack(make_settings(tmp_path_factory.mktemp("security") / "home"))
    stack.ensure("nats", "nsc")
    yield stack
    stack.down()
