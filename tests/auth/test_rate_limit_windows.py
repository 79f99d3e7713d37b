"""The login limiter's three windows, each on its own, and giving places back.

Each test raises the other two limits out of the way, so what it shows is the one
window it names: per address, per email (only for addresses that failed for it),
and a released reservation leaving every window as it was.
"""

from __future__ import annotations

from labkit.auth.rate_limit import LoginLimiter, Reservation


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter(clock: Clock, pair: int = 100, address: int = 100, email: int = 100) -> LoginLimiter:
    return LoginLimiter(
        per_email_from_address=pair, per_address=address, per_email=email, window=60, clock=clock
    )


def _reserved(limiter: LoginLimiter, email: str, address: str) -> Reservation:
    reservation = limiter.reserve(email, address)
    assert isinstance(reservation, Reservation), f"{email} from {address}: wait {reservation}"
    return reservation


def test_one_address_failing_for_many_emails_is_held_back() -> None:
    clock = Clock()
    limiter = _limiter(clock, address=2)
    _reserved(limiter, "a@x", "10.0.0.1")
    _reserved(limiter, "b@x", "10.0.0.1")
    assert limiter.reserve("c@x", "10.0.0.1") == 60
    _reserved(limiter, "c@x", "10.0.0.2")  # another address is not held back


def test_an_email_failing_from_many_addresses_holds_back_those_that_failed() -> None:
    clock = Clock()
    limiter = _limiter(clock, email=3)
    for n in range(3):
        _reserved(limiter, "victim@x", f"10.0.0.{n}")
    assert limiter.reserve("victim@x", "10.0.0.1") == 60  # it failed for victim before
    _reserved(limiter, "victim@x", "10.9.9.9")  # a clean address never is
    _reserved(limiter, "other@x", "10.0.0.1")  # nor another email from a failed address


def test_a_released_reservation_leaves_the_address_window_as_it_was() -> None:
    clock = Clock()
    limiter = _limiter(clock, address=1)
    limiter.release(_reserved(limiter, "a@x", "10.0.0.1"))
    _reserved(limiter, "b@x", "10.0.0.1")
    assert limiter.reserve("c@x", "10.0.0.1") == 60


def test_a_released_reservation_leaves_the_email_window_as_it_was() -> None:
    clock = Clock()
    limiter = _limiter(clock, email=2)
    _reserved(limiter, "victim@x", "10.0.0.1")  # a failure: this pair counts from now on
    limiter.release(_reserved(limiter, "victim@x", "10.0.0.1"))  # right password
    _reserved(limiter, "victim@x", "10.0.0.1")  # one failure for victim, under 2
    assert limiter.reserve("victim@x", "10.0.0.1") == 60


def test_releasing_one_of_several_failures_keeps_the_others() -> None:
    clock = Clock()
    limiter = _limiter(clock, pair=3)
    _reserved(limiter, "a@x", "10.0.0.1")
    _reserved(limiter, "a@x", "10.0.0.1")
    limiter.release(_reserved(limiter, "a@x", "10.0.0.1"))
    _reserved(limiter, "a@x", "10.0.0.1")
    assert limiter.reserve("a@x", "10.0.0.1") == 60


def test_a_release_after_the_window_was_swept_is_harmless() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    slow = _reserved(limiter, "a@x", "10.0.0.1")  # its password check outlasts the window
    clock.now += 61
    _reserved(limiter, "b@x", "10.0.0.2")  # sweeps a@x away
    limiter.release(slow)
    limiter.release(slow)
    assert limiter.tracked_keys() == 3  # b@x's pair, address and email


def test_a_released_only_reservation_leaves_no_key_behind() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    limiter.release(_reserved(limiter, "a@x", "10.0.0.1"))
    assert limiter.tracked_keys() == 0


def test_idle_keys_are_swept_every_window_and_at_most_once_per_window() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    _reserved(limiter, "a@x", "10.0.0.1")
    clock.now += 30
    _reserved(limiter, "b@x", "10.0.0.2")
    clock.now += 30  # exactly one window on: a@x's failure has left it, and is swept
    _reserved(limiter, "c@x", "10.0.0.3")
    assert limiter.tracked_keys() == 6  # b@x and c@x
    clock.now += 40  # b@x has expired, but the last sweep was under a window ago
    _reserved(limiter, "d@x", "10.0.0.4")
    assert limiter.tracked_keys() == 9
    clock.now += 20  # a window after the last sweep: b@x and c@x go
    _reserved(limiter, "e@x", "10.0.0.5")
    assert limiter.tracked_keys() == 6
    clock.now += 60  # and again a window later (the sweep keeps its own clock)
    _reserved(limiter, "f@x", "10.0.0.6")
    assert limiter.tracked_keys() == 3
