"""Get every account change to the running NATS server, however long it is away.

A revocation is written to the keystore first, together with an "unpushed" mark
for its account (`Keystore.mark_unpushed`). The NSC service then pushes the
account's current JWT; when the server cannot be reached the mark stays, and this
module's background thread pushes again every `push_retry_interval`, and once at
the service's start, until the server confirms. So a logout whose push failed
still cuts the user off as soon as the server is back, even a server restarted
from its old resolver directory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from labkit.errors import LabkitError
from labkit.nsc.wrapper import Nsc

log = logging.getLogger("labkit.nsc.delivery")
# Sends an account JWT to the running server: True when it confirmed, False when no
# server is known; raises PushFailed when one is known but did not confirm.
Pusher = Callable[[str], bool]


class AccountDelivery:
    """Pushes accounts' current JWTs, one push at a time, and retries the unconfirmed ones."""

    def __init__(self, nsc: Nsc, push: Pusher, retry_interval: float) -> None:
        self.nsc = nsc
        self._push = push
        self.retry_interval = retry_interval
        # One push at a time: an older JWT read before a newer one is also sent before it,
        # so the server always ends with the newest.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()  # accounts already logged as failing: no log flood

    def push(self, account: str, wait: float | None = None) -> bool:
        """Push `account`'s current JWT now; True once the server has it, else it stays queued.

        `wait`: how long to wait for another push in progress (None: as long as it takes).
        A request gives up after a moment rather than queue behind pushes to a server that
        is away: its change is in the store and the retry thread sends it.
        """
        if not self._lock.acquire(timeout=-1 if wait is None else wait):
            return False
        try:
            try:
                token = self.nsc.read_account_jwt(account)
                if not self._push(token):
                    return False
            except LabkitError as exc:
                if account not in self._warned:
                    log.warning("account %s not pushed yet, will retry: %s", account, exc)
                    self._warned.add(account)
                return False
            self.nsc.mark_pushed(account, token)
            self._warned.discard(account)
            return True
        finally:
            self._lock.release()

    def pending(self) -> list[str]:
        """Accounts the running server has not confirmed yet."""
        return self.nsc.unpushed_accounts()

    def retry_pending(self) -> None:
        for account in self.pending():
            if self.push(account):
                log.info("account %s pushed to the NATS server (was pending)", account)

    def start(self) -> None:
        """Retry now and then every `retry_interval` seconds, in a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="labkit-nsc-push", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            self.retry_pending()
            if self._stop.wait(self.retry_interval):
                return
