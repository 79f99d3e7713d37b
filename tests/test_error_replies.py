"""The error model both sides share: the client reads it without the server's internals."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labkit.error_replies import RemoteError, error_from, error_reply, raise_for_error
from labkit.protocol import EchoResponse
from labkit.server.errors import RemoteError as ServerRemoteError


def test_the_client_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, labkit.client\n"
        "print(sorted(m for m in sys.modules if m.startswith('labkit.server')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_an_error_reply_round_trips() -> None:
    body, headers = error_reply("too_large", "ask for less", "alice.echo", 413)
    error = error_from(headers, body)
    assert error is not None and (error.code, error.subject) == ("too_large", "alice.echo")
    with pytest.raises(RemoteError, match="too_large: ask for less"):
        raise_for_error(headers, body)
    raise_for_error(None, EchoResponse(message="fine").SerializeToString())  # no error


def test_the_server_names_the_same_remote_error() -> None:
    assert ServerRemoteError is RemoteError
