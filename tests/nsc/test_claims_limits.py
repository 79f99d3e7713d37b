"""Reading a user's limits back out of its claims (pure; the server test checks JWTs)."""

from __future__ import annotations

from labkit.nsc.claims import UNLIMITED, UserLimits, user_limits


def test_limits_are_read_from_the_nats_section() -> None:
    claims = {"nats": {"subs": 10, "payload": "2048", "data": 30}}
    assert user_limits(claims) == UserLimits(subscriptions=10, payload=2048, data=30)


def test_missing_limits_are_unlimited() -> None:
    assert user_limits({}) == UserLimits(UNLIMITED, UNLIMITED, UNLIMITED)
    assert user_limits({"nats": {"payload": 5}}) == UserLimits(UNLIMITED, 5, UNLIMITED)
