"""The auth service when the real NSC service cannot be reached: 503 `nsc_unavailable`.

A stack of its own (this test kills its NSC service): the auth service runs as the
stack runs it, in its own process, and the NSC process dies under it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from labkit.stack import Stack
from labkit.stack.process import ProcessId, stop
from tests.auth.conftest import PASSWORD
from tests.conftest import make_settings

EMAIL = "outage@example.com"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(make_settings(tmp_path / "home"))
    stack.ensure("nats", "nsc", "auth")
    yield stack
    stack.down()


def test_login_answers_503_nsc_unavailable_while_the_nsc_service_is_down(stack: Stack) -> None:
    auth = stack.url("auth")
    body = {"email": EMAIL, "password": PASSWORD}
    assert requests.post(f"{auth}/register", json=body, timeout=10).status_code == 201
    assert requests.post(f"{auth}/login", json=body, timeout=10).status_code == 200
    nsc = stack.record("nsc")
    assert stop(ProcessId(nsc["pid"], nsc["start_time"]))  # it dies; the auth service runs on

    refused = requests.post(f"{auth}/login", json=body, timeout=30)
    assert refused.status_code == 503, refused.text
    answer = refused.json()
    assert answer["error"] == "nsc_unavailable"
    assert "python -m labkit up" in answer["detail"]  # says what to do
    assert "access_token" not in answer and "nats" not in answer

    stack.ensure("nsc", "auth")  # back: logins work again
    assert requests.post(f"{stack.url('auth')}/login", json=body, timeout=10).status_code == 200
