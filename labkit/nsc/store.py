"""The on-disk keystore: where seeds, JWTs and creds files live.

Layout under the store directory (NscSettings.store_dir, default `<home>/nsc`)::

    operator.jwt                       the operator (self-signed)
    accounts/<account>.jwt             each account, SYS included
    users/<account>/<user>.jwt         each user's current JWT
    creds/<account>/<user>.creds       each user's creds file        (0600)
    keys/<PUBLIC KEY>.nk               every seed, named by its key  (0600)
    unpushed/<account>                 the account changed since the server last got it
    .lock                              serialises writers across processes

Seeds are only ever written with mode 0600, atomically.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labkit.files import write_atomic, write_private
from labkit.nsc import keys
from labkit.nsc.errors import NotFound


class Keystore:
    """Reads and writes the files of one NSC store; knows nothing about claims."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._thread_lock = threading.RLock()
        self._depth = 0  # how many times the thread holding _thread_lock entered locked()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock (threads and processes) while changing it; re-entrant."""
        with self._thread_lock:
            if self._depth:  # this thread already holds the file lock: flock again would block
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.root / ".lock", "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0
                    fcntl.flock(handle, fcntl.LOCK_UN)

    # seeds
    def save_seed(self, seed: str) -> str:
        public = keys.public_key(seed)
        write_private(self._key_path(public), seed + "\n")
        return public

    def seed(self, public: str) -> str:
        try:
            return self._key_path(public).read_text().strip()
        except FileNotFoundError as exc:
            raise NotFound(f"no seed for key {public[:10]}... in {self.root / 'keys'}") from exc

    def delete_seed(self, public: str) -> None:
        self._key_path(public).unlink(missing_ok=True)

    # JWTs
    @property
    def operator_path(self) -> Path:
        return self.root / "operator.jwt"

    def account_path(self, account: str) -> Path:
        return self.root / "accounts" / f"{account}.jwt"

    def user_path(self, account: str, user: str) -> Path:
        return self.root / "users" / account / f"{user}.jwt"

    def creds_path(self, account: str, user: str) -> Path:
        return self.root / "creds" / account / f"{user}.creds"

    def read(self, path: Path, what: str) -> str:
        try:
            return path.read_text().strip()
        except FileNotFoundError as exc:
            raise NotFound(f"{what} does not exist (looked for {path})") from exc

    def write_jwt(self, path: Path, token: str) -> None:
        write_atomic(path, token + "\n")

    def write_creds(self, account: str, user: str, text: str) -> Path:
        path = self.creds_path(account, user)
        write_private(path, text)
        return path

    def delete_user(self, account: str, user: str) -> None:
        self.user_path(account, user).unlink(missing_ok=True)
        self.creds_path(account, user).unlink(missing_ok=True)

    # Accounts whose current JWT the running server may not have: a revocation is
    # written here with the change, under the same lock, so no push can be forgotten.
    def mark_unpushed(self, account: str) -> None:
        path = self._unpushed_path(account)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def mark_pushed(self, account: str) -> None:
        self._unpushed_path(account).unlink(missing_ok=True)

    def unpushed_accounts(self) -> list[str]:
        return sorted(p.name for p in (self.root / "unpushed").glob("*") if p.is_file())

    def _unpushed_path(self, account: str) -> Path:
        return self.root / "unpushed" / account

    def account_names(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "accounts").glob("*.jwt"))

    def user_names(self, account: str) -> list[str]:
        return sorted(p.stem for p in (self.root / "users" / account).glob("*.jwt"))

    def _key_path(self, public: str) -> Path:
        return self.root / "keys" / f"{public}.nk"
