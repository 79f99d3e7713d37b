"""Notebook 05's exercises refuse plausible wrong answers, saying why."""

from __future__ import annotations

import pytest

from labkit.exercises.lab05 import CheckedRelayRouter, RelayRouter
from labkit.labs.directory import UserDirectory
from labkit.protocol import PingRequest
from labkit.server import CurrentUser, HandlerError, Publish, Router
from labkit.settings import Settings
from labkit.subjects import any_user
from tests.exercises.checking import assert_not_yet, run_check

trusting = Router("trusting")


@trusting.subscribe(any_user("note"))
async def relay_as_written(note: PingRequest, publish: Publish) -> PingRequest:
    await publish(f"{note.destination}.inbox", note)
    return note


silent = Router("silent")


@silent.subscribe(any_user("note"))
async def receipt_only(note: PingRequest, user: CurrentUser) -> PingRequest:
    return PingRequest(origin=user, destination=note.destination, message=note.message)


elsewhere = Router("elsewhere")


@elsewhere.subscribe(any_user("ping"))
async def relay_pings(note: PingRequest, user: CurrentUser, publish: Publish) -> PingRequest:
    relayed = PingRequest(origin=user, destination=note.destination, message=note.message)
    await publish(f"{note.destination}.inbox", relayed)
    return relayed


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (trusting, "that is the origin alice wrote in the payload"),
        (silent, "nothing arrived on `exercise-bob.inbox`"),
        (elsewhere, "none of relay_router's patterns ['*.ping'] matches `exercise-alice.note`"),
    ],
    ids=["origin from the payload", "never publishes", "wrong subject"],
)
def test_relay_router_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    assert_not_yet(run_check(RelayRouter(stack_settings), answer), says)


unchecked = Router("unchecked")


@unchecked.subscribe(any_user("note"))
async def relay_anyone(note: PingRequest, user: CurrentUser, publish: Publish) -> PingRequest:
    relayed = PingRequest(origin=user, destination=note.destination, message=note.message)
    await publish(f"{note.destination}.inbox", relayed)
    return relayed


vague = Router("vague")


@vague.subscribe(any_user("note"))
async def relay_or_refuse(
    note: PingRequest, user: CurrentUser, publish: Publish, users: UserDirectory
) -> PingRequest:
    if not users.knows(note.destination):
        raise HandlerError("no such user")
    relayed = PingRequest(origin=user, destination=note.destination, message=note.message)
    await publish(f"{note.destination}.inbox", relayed)
    return relayed


publish_first = Router("publish_first")


@publish_first.subscribe(any_user("note"))
async def relay_then_refuse(
    note: PingRequest, user: CurrentUser, publish: Publish, users: UserDirectory
) -> PingRequest:
    relayed = PingRequest(origin=user, destination=note.destination, message=note.message)
    await publish(f"{note.destination}.inbox", relayed)  # too early: before the check
    if not users.knows(note.destination):
        raise HandlerError("no such user", code="unknown_destination")
    return relayed


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (unchecked, "a line for exercise-nobody, who has no credentials, was relayed"),
        (
            publish_first,
            "was refused, but it was published on `exercise-nobody.inbox` first: "
            "refuse before publishing",
        ),
        (vague, "refused with code 'bad_request' (no such user); use code='unknown_destination'"),
        (trusting, "that is the origin alice wrote in the payload"),
    ],
    ids=["no check", "published before refusing", "other code", "origin from the payload"],
)
def test_checked_relay_router_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    assert_not_yet(run_check(CheckedRelayRouter(stack_settings), answer), says)
