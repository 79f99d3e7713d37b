"""labkit.nsc.delivery: unpushed account changes stay queued until a push is confirmed.

The pusher here is a stand-in (the real one is tested against a real NATS server in
tests/security/test_identity_revocation_push.py); the store is a real keystore.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from labkit.nsc.delivery import AccountDelivery
from labkit.nsc.errors import PushFailed
from labkit.nsc.wrapper import Nsc


class Pusher:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.fail = False

    def __call__(self, account_jwt: str) -> bool:
        if self.fail:
            raise PushFailed("the server is away")
        self.sent.append(account_jwt)
        return True


@pytest.fixture
def nsc(tmp_path: Path) -> Nsc:
    instance = Nsc(tmp_path / "nsc")
    instance.setup()
    return instance


def test_a_revocation_marks_its_account_until_a_push_is_confirmed(nsc: Nsc) -> None:
    pusher = Pusher()
    delivery = AccountDelivery(nsc, pusher, retry_interval=60)
    delivery.retry_pending()  # what setup created
    assert delivery.pending() == []
    nsc.create_user("alice")
    assert delivery.pending() == []  # a new user changes no account
    nsc.revoke_user("alice")
    assert delivery.pending() == ["labkit"]
    pusher.fail = True
    assert delivery.push("labkit") is False
    assert delivery.pending() == ["labkit"]
    pusher.fail = False
    delivery.retry_pending()
    assert delivery.pending() == []
    assert pusher.sent[-1] == nsc.read_account_jwt("labkit")


def test_a_change_made_during_a_push_stays_pending(nsc: Nsc) -> None:
    nsc.create_user("bob")
    nsc.create_user("carol")
    old = nsc.revoke_user("bob")
    newer = nsc.revoke_user("carol")
    assert nsc.mark_pushed("labkit", old) is False  # the server has an older JWT
    assert nsc.unpushed_accounts() == ["labkit"]
    assert nsc.mark_pushed("labkit", newer) is True
    assert nsc.unpushed_accounts() == []


def test_a_request_does_not_queue_behind_a_push_in_progress(nsc: Nsc) -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow(_account_jwt: str) -> bool:
        entered.set()
        release.wait(30)
        return True

    delivery = AccountDelivery(nsc, slow, retry_interval=60)
    worker = threading.Thread(target=delivery.push, args=("labkit",))
    worker.start()
    assert entered.wait(30)
    try:
        assert delivery.push("labkit", wait=0) is False  # left to the retry thread
    finally:
        release.set()
        worker.join(30)
    assert delivery.pending() == []


def test_the_retry_thread_pushes_and_stops(nsc: Nsc) -> None:
    pusher = Pusher()
    pushed = threading.Event()

    def push(account_jwt: str) -> bool:
        pusher(account_jwt)
        pushed.set()
        return True

    delivery = AccountDelivery(nsc, push, retry_interval=0.01)
    delivery.start()
    try:
        assert pushed.wait(30)
    finally:
        delivery.stop()
    assert delivery.pending() == []
