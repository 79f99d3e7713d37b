"""Random bytes at every lab subject: an answer or an error reply each time, never a crash."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.nsc.errors import InvalidName
from labkit.nsc.names import validate_name
from labkit.protocol import EchoRequest, EchoResponse, PingRequest
from labkit.server import RemoteError
from labkit.subjects import ECHO, ECHO_CACHED, ECHO_IDENTIFIED, PING, user_subject
from tests.labs.harness import ALICE, Lab, LabHarness

# Every request/reply lab subject (a persisted route answers on a stream, not an inbox).
SUBJECTS = [ECHO, ECHO_IDENTIFIED, ECHO_CACHED, PING]
EXAMPLES = {"memory": 400, "nats": 50}


def parsed(message_type: type[Message], data: bytes) -> Message | None:
    """What the server will make of `data`, or None when it cannot parse it."""
    try:
        return message_type.FromString(data)
    except (DecodeError, ValueError):
        return None


def check_answer(lab_subject: str, data: bytes, answer: bytes | RemoteError) -> None:
    """The answer is the one the lab owes for `data`: a valid response or the right error."""
    request_type = PingRequest if lab_subject == PING else EchoRequest
    request = parsed(request_type, data)
    if request is None:
        assert isinstance(answer, RemoteError), answer
        assert answer.code == "invalid_payload"
        return
    if lab_subject == PING:
        assert isinstance(request, PingRequest)
        try:
            validate_name(request.destination, "destination")
        except InvalidName:
            assert isinstance(answer, RemoteError) and answer.code == "invalid_destination"
            return
        if isinstance(answer, RemoteError):
            assert answer.code == "unknown_destination", answer
            return
        receipt = PingRequest.FromString(answer)
        assert (receipt.origin, receipt.destination) == (ALICE, request.destination)
        assert receipt.message == request.message
        return
    assert isinstance(request, EchoRequest)
    assert isinstance(answer, bytes), answer
    text = EchoResponse.FromString(answer).message
    if lab_subject == ECHO:
        assert text == f"echo {request.message}"
    elif lab_subject == ECHO_IDENTIFIED:
        assert text == f"echo {request.message} from {ALICE}"
    else:
        assert text.startswith(f"echo {request.message} (made at ")


def test_random_bytes_get_an_answer_or_an_error_reply(lab: Lab) -> None:
    with lab.session() as (runner, harness):

        async def throw(lab_subject: str, data: bytes) -> bytes | RemoteError:
            try:
                return await harness.raw_request(ALICE, user_subject(ALICE, lab_subject), data)
            except RemoteError as error:
                return error

        @settings(
            max_examples=EXAMPLES[lab.kind],
            deadline=None,
            database=None,  # nothing written to the working tree
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(lab_subject=st.sampled_from(SUBJECTS), data=st.binary(max_size=512))
        def answers(lab_subject: str, data: bytes) -> None:
            check_answer(lab_subject, data, runner.run(throw(lab_subject, data)))

        answers()
        assert runner.run(harness.echo(ALICE, "still alive")) == "echo still alive"


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",  # a truncated varint
        b"\x0a\x05ab",  # a string field shorter than its length
        b"\x0a\x02\xc3\x28",  # invalid UTF-8 in a string field
        b"\x0b",  # a group start without its end
    ],
)
def test_known_bad_payloads_are_invalid_payload(lab: Lab, data: bytes) -> None:
    async def scenario(harness: LabHarness) -> list[str]:
        codes = []
        for lab_subject in SUBJECTS:
            with pytest.raises(RemoteError) as raised:
                await harness.raw_request(ALICE, user_subject(ALICE, lab_subject), data)
            codes.append(raised.value.code)
        return codes

    assert lab.run(scenario) == ["invalid_payload"] * len(SUBJECTS)
