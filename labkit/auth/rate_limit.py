"""Login and registration limits: sliding windows per key, in memory, thread-safe.

The login policy (README, "The auth service"): failures are counted per email
*from one address*, per address, and per email across addresses. A caller who
guesses wrong is slowed down at its own address; a third party cannot lock a
learner out, because a correct password from an address that has not failed for
that email is never refused. A login attempt reserves its place in every window
before the password is hashed, under one lock: sixteen parallel wrong passwords
get five answers, not twelve. A correct password gives its place back.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Clock = Callable[[], float]


class SlidingWindow:
    """Counts events per key over the last `window` seconds; the caller holds the lock.

    Keys whose events have all expired are swept once per window, so the table
    holds only keys seen in the last two windows however many keys ever came.
    """

    def __init__(self, limit: int, window: float, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._last_sweep = clock()

    def __len__(self) -> int:
        """How many keys the table holds (idle ones included until the next sweep)."""
        return len(self._events)

    def count(self, key: str) -> int:
        return len(self._live(key))

    def retry_after(self, key: str) -> int:
        """Seconds until `key` is under the limit again; 0 when it is now."""
        events = self._live(key)
        if len(events) < self.limit:
            return 0
        oldest_that_counts = events[len(events) - self.limit]
        return max(1, math.ceil(oldest_that_counts + self.window - self._clock()))

    def add(self, key: str, moment: float) -> None:
        self._events.setdefault(key, deque()).append(moment)

    def remove(self, key: str, moment: float) -> None:
        events = self._events.get(key)
        if events is not None and moment in events:
            events.remove(moment)
            if not events:
                del self._events[key]

    def sweep(self) -> None:
        """Forget keys with no event in the window (at most once per window)."""
        now = self._clock()
        if now - self._last_sweep < self.window:
            return
        self._last_sweep = now
        for key in list(self._events):
            self._live(key)

    def _live(self, key: str) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            return deque()
        cutoff = self._clock() - self.window
        while events and events[0] <= cutoff:
            events.popleft()
        if not events:
            del self._events[key]
        return events


@dataclass(frozen=True)
class Reservation:
    """A login attempt's place in the windows, kept if it fails, given back if not."""

    email: str
    address: str
    moment: float


class LoginLimiter:
    """Failed logins per (email, address), per address, and per email everywhere."""

    def __init__(
        self,
        *,
        per_email_from_address: int,
        per_address: int,
        per_email: int,
        window: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._clock = clock
        self._pair = SlidingWindow(per_email_from_address, window, clock)
        self._address = SlidingWindow(per_address, window, clock)
        self._email = SlidingWindow(per_email, window, clock)
        self._lock = threading.Lock()

    def reserve(self, email: str, address: str) -> Reservation | int:
        """A Reservation, or the seconds to wait when this attempt is over a limit."""
        pair = _pair_key(email, address)
        with self._lock:
            for window in self._windows():
                window.sweep()
            waits = [self._pair.retry_after(pair), self._address.retry_after(address)]
            # Many addresses failing for one email: refuse those that failed for it,
            # never a clean one (a third party must not lock the learner out).
            if self._pair.count(pair):
                waits.append(self._email.retry_after(email))
            wait = max(waits)
            if wait:
                return wait
            # Giving a reservation back removes one event at its moment: which of several
            # equal ones does not matter to a count.
            moment = self._clock()
            self._pair.add(pair, moment)
            self._address.add(address, moment)
            self._email.add(email, moment)
            return Reservation(email, address, moment)

    def release(self, reservation: Reservation) -> None:
        """The attempt did not fail (right password): it does not count."""
        with self._lock:
            self._pair.remove(_pair_key(reservation.email, reservation.address), reservation.moment)
            self._address.remove(reservation.address, reservation.moment)
            self._email.remove(reservation.email, reservation.moment)

    def tracked_keys(self) -> int:
        """Keys held in all windows (for tests and monitoring)."""
        with self._lock:
            return sum(len(window) for window in self._windows())

    def _windows(self) -> Iterable[SlidingWindow]:
        return (self._pair, self._address, self._email)


class RequestLimiter:
    """Requests per key (client address) in a sliding window: /register."""

    def __init__(self, limit: int, window: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._window = SlidingWindow(limit, window, clock)
        self._lock = threading.Lock()

    def take(self, key: str) -> int:
        """0 when the request may go ahead (and is counted), else the seconds to wait."""
        with self._lock:
            self._window.sweep()
            wait = self._window.retry_after(key)
            if not wait:
                self._window.add(key, self._clock())
            return wait

    def tracked_keys(self) -> int:
        with self._lock:
            return len(self._window)


def _pair_key(email: str, address: str) -> str:
    return f"{address} {email}"  # an address never holds a space
