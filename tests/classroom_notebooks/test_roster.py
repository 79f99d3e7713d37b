"""The class roster: who is online, and nobody can announce someone else."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nats.aio.client import Client

from labkit.auth.client import AuthClient
from labkit.labs.roster import Classmate, Roster, announce, clean_name, partner_of
from labkit.stack import Stack
from labkit.subjects import user_subject
from tests.classroom_notebooks.class_stack import PASSWORD, register_learner


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_announcement_keeps_a_learner_online_for_a_while() -> None:
    clock = Clock()
    roster = Roster(online_seconds=10, clock=clock)
    roster.announce("u1", "ada")
    clock.now = 5
    roster.announce("u2", "bob")
    assert roster.online() == [Classmate("u1", "ada"), Classmate("u2", "bob")]
    clock.now = 12
    assert roster.online() == [Classmate("u2", "bob")]


def test_one_entry_per_learner_and_a_bounded_roster() -> None:
    roster = Roster(max_entries=2)
    for _ in range(100):
        roster.announce("u1", "ada")
    roster.announce("u2", "bob")
    roster.announce("u3", "cy")
    assert [mate.id for mate in roster.online()] == ["u2", "u3"]


def test_names_are_shown_printable_and_short() -> None:
    assert clean_name("  ada\n\x1b[31mlovelace  ") == "ada [31mlovelace"
    assert len(clean_name("x" * 500)) == 40


def test_partners_pick_each_other() -> None:
    online = [Classmate(user, user) for user in ("d", "b", "a", "c", "e")]
    pairs = {user: partner_of(user, online) for user in "abcde"}
    assert {user: mate.id if mate else None for user, mate in pairs.items()} == {
        "a": "b",
        "b": "a",
        "c": "d",
        "d": "c",
        "e": None,
    }


async def _connect(login_email: str, auth: AuthClient, errors: list[str]) -> tuple[str, Client]:
    login = auth.login(login_email, PASSWORD)

    async def record(error: Exception) -> None:
        errors.append(str(error))

    return login.user_id, await login.connect(error_cb=record, allow_reconnect=False)


def test_a_learner_cannot_announce_a_classmate(class_stack: Stack, tmp_path: Path) -> None:
    mallory = register_learner(class_stack, "mallory", tmp_path / "learners")
    victim = register_learner(class_stack, "victim", tmp_path / "learners")
    auth = AuthClient(class_stack.url("auth"))

    async def scenario() -> tuple[list[str], list[Classmate], list[Classmate]]:
        errors: list[str] = []
        me, nc = await _connect(mallory.email, auth, errors)
        try:
            # Mallory announces the victim, on the victim's subject and in the payload.
            with pytest.raises(Exception):  # noqa: B017 (no reply: the server never got it)
                await announce(nc, victim.user_id, "victim", timeout=0.5)
            await nc.publish(user_subject(victim.user_id, "roster"), b"\n\x06victim")
            await nc.flush()
            # The sentinel: her own announcement, through the same server, after the forgery.
            online = await announce(nc, me, victim.user_id)
        finally:
            await nc.close()
        victim_errors: list[str] = []
        victim_id, victim_nc = await _connect(victim.email, auth, victim_errors)
        try:
            with_victim = await announce(victim_nc, victim_id, "the real victim")
        finally:
            await victim_nc.close()
        return errors, online, with_victim

    errors, online, with_victim = asyncio.run(scenario())
    refusal = f'permissions violation for publish to "{victim.user_id.lower()}.roster"'
    assert any(refusal in error.lower() for error in errors), errors
    ids = [mate.id for mate in online]
    assert mallory.user_id in ids and victim.user_id not in ids, online
    # A name is only a name: mallory's entry says "victim's id" as its name, under her id.
    assert Classmate(mallory.user_id, victim.user_id) in online
    assert Classmate(victim.user_id, "the real victim") in with_victim


def test_partners_are_picked_among_those_waiting_now() -> None:
    """Someone seen a minute ago (in another notebook) is online, but not waiting."""
    from labkit.labs.roster import WAITING_SECONDS

    clock = Clock()
    roster = Roster(clock=clock)
    roster.announce("a", "gone to notebook 07")
    clock.now = 60
    roster.announce("b", "waiting")
    roster.announce("c", "waiting too")
    online = roster.online()
    assert [(mate.id, mate.ago) for mate in online] == [("a", 60), ("b", 0), ("c", 0)]
    waiting = [mate for mate in online if mate.ago <= WAITING_SECONDS]
    assert partner_of("b", online) == Classmate("a", "gone to notebook 07")
    assert partner_of("b", waiting) == Classmate("c", "waiting too")
