"""labkit.nsc.store: the keystore's layout, private seeds and lookups."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from labkit.nsc import keys
from labkit.nsc.errors import NotFound
from labkit.nsc.keys import KeyKind
from labkit.nsc.store import Keystore


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "nsc")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_layout(store: Keystore) -> None:
    root = store.root
    assert store.operator_path == root / "operator.jwt"
    assert store.account_path("labkit") == root / "accounts" / "labkit.jwt"
    assert store.user_path("labkit", "alice") == root / "users" / "labkit" / "alice.jwt"
    assert store.creds_path("labkit", "alice") == root / "creds" / "labkit" / "alice.creds"


def test_save_seed_writes_mode_0600_named_by_public_key(store: Keystore) -> None:
    seed = keys.create_seed(KeyKind.USER)
    public = store.save_seed(seed)
    assert public == keys.public_key(seed)
    path = store.root / "keys" / f"{public}.nk"
    assert path.read_text() == seed + "\n"
    assert _mode(path) == 0o600
    assert store.seed(public) == seed


def test_save_seed_is_0600_even_with_a_permissive_umask(store: Keystore) -> None:
    old = os.umask(0)
    try:
        public = store.save_seed(keys.create_seed(KeyKind.ACCOUNT))
    finally:
        os.umask(old)
    assert _mode(store.root / "keys" / f"{public}.nk") == 0o600


def test_save_seed_leaves_no_temporary_files(store: Keystore) -> None:
    for kind in KeyKind:
        store.save_seed(keys.create_seed(kind))
    names = [p.name for p in (store.root / "keys").iterdir()]
    assert len(names) == 3
    assert all(name.endswith(".nk") and not name.startswith(".") for name in names)


def test_overwriting_a_seed_keeps_0600(store: Keystore) -> None:
    seed = keys.create_seed(KeyKind.USER)
    public = store.save_seed(seed)
    path = store.root / "keys" / f"{public}.nk"
    path.chmod(0o644)
    store.save_seed(seed)
    assert _mode(path) == 0o600


def test_missing_seed_raises_not_found(store: Keystore) -> None:
    public = keys.public_key(keys.create_seed(KeyKind.USER))
    with pytest.raises(NotFound, match="no seed for key"):
        store.seed(public)


def test_delete_seed(store: Keystore) -> None:
    public = store.save_seed(keys.create_seed(KeyKind.USER))
    store.delete_seed(public)
    with pytest.raises(NotFound):
        store.seed(public)
    store.delete_seed(public)  # a second delete is fine


def test_write_and_read_jwt(store: Keystore) -> None:
    store.write_jwt(store.account_path("labkit"), "a.b.c")
    assert store.account_path("labkit").read_text() == "a.b.c\n"
    assert store.read(store.account_path("labkit"), "account") == "a.b.c"


def test_read_missing_raises_not_found_naming_it(store: Keystore) -> None:
    with pytest.raises(NotFound, match="account 'x' does not exist"):
        store.read(store.account_path("x"), "account 'x'")
    assert issubclass(NotFound, LookupError)


def test_write_creds_is_private(store: Keystore) -> None:
    path = store.write_creds("labkit", "alice", "CREDS")
    assert path == store.creds_path("labkit", "alice")
    assert path.read_text() == "CREDS"
    assert _mode(path) == 0o600


def test_delete_user_removes_jwt_and_creds_only(store: Keystore) -> None:
    public = store.save_seed(keys.create_seed(KeyKind.USER))
    store.write_jwt(store.user_path("labkit", "alice"), "a.b.c")
    store.write_creds("labkit", "alice", "CREDS")
    store.write_jwt(store.user_path("labkit", "bob"), "d.e.f")
    store.delete_user("labkit", "alice")
    assert not store.user_path("labkit", "alice").exists()
    assert not store.creds_path("labkit", "alice").exists()
    assert store.user_path("labkit", "bob").exists()
    assert store.seed(public)  # seeds are the caller's business
    store.delete_user("labkit", "alice")  # idempotent
    store.delete_user("nowhere", "nobody")


def test_account_and_user_names(store: Keystore) -> None:
    assert store.account_names() == []
    assert store.user_names("labkit") == []
    for account in ("labkit", "SYS", "beta"):
        store.write_jwt(store.account_path(account), "x.y.z")
    for user in ("carol", "alice"):
        store.write_jwt(store.user_path("labkit", user), "x.y.z")
    store.write_creds("labkit", "dave", "creds only")
    assert store.account_names() == ["SYS", "beta", "labkit"]
    assert store.user_names("labkit") == ["alice", "carol"]
    assert store.user_names("beta") == []


def _finishes(target: Callable[[], None], timeout: float = 2.0) -> bool:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def test_locked_creates_the_root(store: Keystore) -> None:
    assert not store.root.exists()
    with store.locked():
        assert (store.root / ".lock").exists()


def test_locked_is_reentrant(store: Keystore) -> None:
    def nested() -> None:
        with store.locked(), store.locked(), store.locked():
            pass
        with store.locked():  # and usable again afterwards
            pass

    assert _finishes(nested), "a nested locked() deadlocked"


def test_lock_is_released_after_an_error(store: Keystore) -> None:
    with pytest.raises(RuntimeError), store.locked():
        raise RuntimeError("boom")
    other = Keystore(store.root)

    def relock() -> None:
        with other.locked():
            pass

    assert _finishes(relock)


def test_locked_excludes_another_keystore_on_the_same_dir(store: Keystore) -> None:
    other = Keystore(store.root)  # its own thread lock: only the file lock stands between
    acquired = threading.Event()

    def take() -> None:
        with other.locked():
            acquired.set()

    with store.locked():
        thread = threading.Thread(target=take, daemon=True)
        thread.start()
        assert not acquired.wait(0.1)
    thread.join(2)
    assert acquired.is_set()


def test_locked_serialises_threads(store: Keystore) -> None:
    inside = threading.Event()
    release = threading.Event()
    entered = threading.Event()

    def holder() -> None:
        with store.locked():
            inside.set()
            release.wait(5)

    def waiter() -> None:
        with store.locked():
            entered.set()

    first = threading.Thread(target=holder)
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=waiter)
    second.start()
    assert not entered.wait(0.05)
    release.set()
    first.join(5)
    second.join(5)
    assert entered.is_set()
