"""`when_available`: the server's start-up JetStream calls wait out a settling cluster.

Pure logic with stand-in calls: "unavailable" answers are tried again, anything
else is final, and a cluster that never settles gets its error raised in the end.
"""

from __future__ import annotations

import asyncio

import pytest
from nats.errors import NoRespondersError
from nats.js.errors import APIError, BadRequestError, ServiceUnavailableError

from labkit.server.jetstream import when_available


class Flaky:
    """Fails with `errors` in turn, then answers "created"; counts the calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "created"


def test_unavailable_answers_are_tried_again_until_it_works() -> None:
    call = Flaky(ServiceUnavailableError(), NoRespondersError(), TimeoutError())
    assert asyncio.run(when_available(call, "creating the stream")) == "created"
    assert call.calls == 4


def placement_refused(reason: str) -> Exception:
    """The error nats.py raises for JetStream's "no suitable peers for placement"."""
    try:
        APIError.from_error(
            {
                "code": 400,
                "err_code": 10005,
                "description": f"no suitable peers for placement{reason}",
            }
        )
    except APIError as exc:
        return exc
    raise AssertionError("nats.py raised nothing")


def test_a_peer_the_meta_leader_has_not_heard_from_yet_is_waited_for() -> None:
    # Seen in CI: `labkit up --cluster 3` under load, the server's first stream.
    call = Flaky(placement_refused(", peer offline"), placement_refused(", peer offline"))
    assert asyncio.run(when_available(call, "creating the stream")) == "created"
    assert call.calls == 3


@pytest.mark.parametrize("reason", [", insufficient resources", ", no storage", ""])
def test_placement_refused_for_any_other_reason_is_final_at_once(reason: str) -> None:
    call = Flaky(placement_refused(reason))
    with pytest.raises(BadRequestError, match="no suitable peers"):
        asyncio.run(when_available(call, "creating the stream"))
    assert call.calls == 1


def test_any_other_error_is_final_at_once() -> None:
    call = Flaky(BadRequestError())
    with pytest.raises(BadRequestError):
        asyncio.run(when_available(call, "creating the stream"))
    assert call.calls == 1


def test_a_cluster_that_never_settles_gets_its_error_in_the_end() -> None:
    call = Flaky(*(ServiceUnavailableError() for _ in range(1000)))
    with pytest.raises(ServiceUnavailableError):
        asyncio.run(when_available(call, "creating the stream", timeout=0.3))
    assert 1 < call.calls < 1000  # it tried again, and then it stopped
