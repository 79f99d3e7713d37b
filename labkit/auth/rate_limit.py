"""A sliding-window counter of failed logins, per email and per client address."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """Counts events per key over the last `window` seconds (thread-safe, in memory)."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it is under the limit."""
        with self._lock:
            events = self._trim(key)
            if len(events) < self.limit:
                return 0
            return max(1, math.ceil(events[0] + self.window - self._clock()))

    def add(self, key: str) -> None:
        with self._lock:
            self._trim(key)
            self._events.setdefault(key, deque()).append(self._clock())

    def _trim(self, key: str) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            return deque()
        cutoff = self._clock() - self.window
        while events and events[0] <= cutoff:
            events.popleft()
        if not events:
            # Forget idle keys so the table does not grow with every address ever seen.
            del self._events[key]
        return events
