"""Persisted reply slots and the private-reply rule at their edges."""

from __future__ import annotations

import hashlib

import pytest

from labkit.subjects import is_private_reply, slot_token


def test_a_request_without_an_id_gets_its_sequence_as_slot() -> None:
    assert slot_token(None, 7) == "seq-7"
    assert slot_token("", 7) == "seq-7"


def test_a_safe_id_is_its_own_slot() -> None:
    assert slot_token("order-42_A=", 7) == "id-order-42_A="


def test_an_unsafe_id_is_hashed_into_one_token() -> None:
    # Client and server compute the same slot: the digest is part of the contract.
    msg_id = "order 42.*>"
    expected = "h-" + hashlib.sha256(msg_id.encode()).hexdigest()[:40]
    assert slot_token(msg_id, 7) == expected
    assert slot_token("order 43.*>", 7) != expected


@pytest.mark.parametrize(
    "reply", ["_INBOX.alice.", "_INBOX.alice.abc.", "_INBOX.alice.a..b", "_INBOX.alice.*"]
)
def test_an_inbox_that_is_not_one_literal_subject_is_not_private(reply: str) -> None:
    assert not is_private_reply("alice.echo", reply)


def test_a_literal_subject_in_the_senders_inbox_is_private() -> None:
    assert is_private_reply("alice.echo", "_INBOX.alice.abc.1")
