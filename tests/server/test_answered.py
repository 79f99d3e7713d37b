"""Keys of the answered-requests bucket: valid KV keys, one per user and id."""

from __future__ import annotations

import re

import pytest

from labkit.server.answered import answered_key

KV_KEY = re.compile(r"[-/_=.A-Za-z0-9]+")


@pytest.mark.parametrize(
    ("user", "msg_id"),
    [
        ("alice", "0f3a9c-17"),
        ("01hzx8k2", "buffer uid with spaces"),
        ("bob", "a.b.c"),
        ("carol", "*>"),
        ("dave", "x" * 500),
    ],
)
def test_keys_are_valid_and_per_user(user: str, msg_id: str) -> None:
    key = answered_key(user, msg_id)
    assert KV_KEY.fullmatch(key) and key.count(".") == 1
    assert key.startswith(f"{user}.")
    assert answered_key(f"{user}x", msg_id) != key


def test_different_ids_get_different_keys() -> None:
    assert answered_key("alice", "a.b") != answered_key("alice", "a_b")
    assert answered_key("alice", "ok-1") == "alice.ok-1"
