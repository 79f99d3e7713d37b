"""Pure rules of the auth service: body validation and the sliding-window limiter."""

from __future__ import annotations

import pytest

from labkit.auth.errors import InvalidField, MalformedRequest
from labkit.auth.rate_limit import LoginLimiter, RequestLimiter, Reservation
from labkit.auth.validation import normalise_email, read_email_password


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter(clock: Clock, pair: int = 2, address: int = 100, email: int = 100) -> LoginLimiter:
    return LoginLimiter(
        per_email_from_address=pair, per_address=address, per_email=email, window=60, clock=clock
    )


def test_failures_count_then_expire() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    assert isinstance(limiter.reserve("a@x", "1.1.1.1"), Reservation)
    clock.now += 1
    assert isinstance(limiter.reserve("a@x", "1.1.1.1"), Reservation)
    assert limiter.reserve("a@x", "1.1.1.1") == 59  # the first failure leaves in 59 s
    assert isinstance(limiter.reserve("b@x", "1.1.1.1"), Reservation)
    clock.now += 59
    assert isinstance(limiter.reserve("a@x", "1.1.1.1"), Reservation)


def test_a_released_reservation_does_not_count() -> None:
    clock = Clock()
    limiter = _limiter(clock, pair=1)
    first = limiter.reserve("a@x", "1.1.1.1")
    assert isinstance(first, Reservation)
    limiter.release(first)
    assert isinstance(limiter.reserve("a@x", "1.1.1.1"), Reservation)


def test_another_address_is_not_locked_out_by_someone_elses_failures() -> None:
    clock = Clock()
    limiter = _limiter(clock, pair=2, email=3)
    for n in range(10):
        limiter.reserve("victim@x", f"10.0.0.{n}")  # ten attackers, a few failures each
        limiter.reserve("victim@x", f"10.0.0.{n}")
    assert isinstance(limiter.reserve("victim@x", "10.9.9.9"), Reservation)  # clean address
    # An address that failed for the email is held back by the email-wide limit.
    clock.now += 1
    assert isinstance(limiter.reserve("other@x", "10.0.0.1"), Reservation)
    assert limiter.reserve("victim@x", "10.0.0.1") > 0


def test_idle_keys_are_swept() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    for n in range(10_000):
        limiter.reserve(f"user-{n}@x", f"10.{n // 250}.{n % 250}.1")
    assert limiter.tracked_keys() >= 10_000
    clock.now += 61
    limiter.reserve("late@x", "10.200.0.1")
    assert limiter.tracked_keys() == 3  # the late attempt's pair, address and email


def test_registrations_are_limited_per_address_and_swept() -> None:
    clock = Clock()
    limiter = RequestLimiter(2, 60, clock)
    assert limiter.take("a") == 0
    assert limiter.take("a") == 0
    assert limiter.take("a") == 60
    assert limiter.take("b") == 0
    clock.now += 61
    assert limiter.take("c") == 0
    assert limiter.tracked_keys() == 1


def test_emails_are_lower_cased_and_trimmed() -> None:
    assert normalise_email("  Ada.Lovelace@Example.COM ") == "ada.lovelace@example.com"


@pytest.mark.parametrize("email", ["", "plain", "a@b", "a b@example.com", "a@@example.com"])
def test_invalid_emails_say_why(email: str) -> None:
    with pytest.raises(InvalidField, match="invalid email"):
        normalise_email(email)


def test_no_deliverability_lookup_is_made() -> None:
    # A domain that cannot resolve is still accepted: no DNS on register.
    assert normalise_email("x@labkit-no-such-domain.example") == "x@labkit-no-such-domain.example"


def test_password_length_uses_the_setting() -> None:
    body = {"email": "a@example.com", "password": "12345"}
    assert read_email_password(body, 5).password == "12345"
    with pytest.raises(InvalidField, match="at least 6"):
        read_email_password(body, 6)


def test_bodies_must_be_objects() -> None:
    with pytest.raises(MalformedRequest):
        read_email_password(["a@example.com", "password"], 8)
