"""Echo and identified echo, in memory and on the real server."""

from __future__ import annotations

import pytest

from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import RemoteError
from tests.labs.harness import ALICE, BOB, Lab, LabHarness


def test_echo(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> list[str]:
        return [await h.echo(ALICE, "hello"), await h.echo(BOB, ""), await h.echo(ALICE, "é ✓")]

    assert lab.run(scenario) == ["echo hello", "echo ", "echo é ✓"]


def test_identified_echo_names_the_user_from_the_subject(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> list[str]:
        return [await h.identified(ALICE, "hi"), await h.identified(BOB, "hi")]

    assert lab.run(scenario) == [f"echo hi from {ALICE}", f"echo hi from {BOB}"]


def test_malformed_payload_is_refused_and_the_server_keeps_answering(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> tuple[RemoteError, str]:
        with pytest.raises(RemoteError) as raised:
            await h.raw_request(ALICE, f"{ALICE}.echo", b"\xff\xff\xff")
        return raised.value, await h.echo(ALICE, "next")

    error, after = lab.run(scenario)
    assert error.code == "invalid_payload"
    assert error.subject == f"{ALICE}.echo"
    assert after == "echo next"


def test_a_raw_well_formed_request_is_answered(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> bytes:
        data = EchoRequest(message="raw").SerializeToString()
        return await h.raw_request(ALICE, f"{ALICE}.echo.identified", data)

    assert EchoResponse.FromString(lab.run(scenario)).message == f"echo raw from {ALICE}"
