"""Pure rules of the auth service: body validation and the sliding-window limiter."""

from __future__ import annotations

import pytest

from labkit.auth.errors import InvalidField, MalformedRequest
from labkit.auth.rate_limit import SlidingWindow
from labkit.auth.validation import normalise_email, read_email_password


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_counts_then_releases() -> None:
    clock = Clock()
    window = SlidingWindow(limit=2, window=60, clock=clock)
    assert window.retry_after("a") == 0
    window.add("a")
    window.add("a")
    assert window.retry_after("a") == 60
    assert window.retry_after("b") == 0
    clock.now += 30
    assert window.retry_after("a") == 30
    clock.now += 30
    assert window.retry_after("a") == 0


def test_window_forgets_idle_keys() -> None:
    clock = Clock()
    window = SlidingWindow(limit=1, window=1, clock=clock)
    for n in range(100):
        window.add(f"address-{n}")
    clock.now += 2
    for n in range(100):
        window.retry_after(f"address-{n}")
    assert window._events == {}


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
