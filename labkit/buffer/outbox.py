"""A durable outbox on the client's machine: messages wait in SQLite until JetStream has them.

`Buffer.save()` returns only once the message is on disk (WAL, `synchronous=FULL`).
`Buffer.flush(js)` publishes the oldest message first, with `Nats-Msg-Id` set to
`<buffer uid>-<message id>`, and deletes it only after JetStream acknowledged it.
A crash at any point therefore loses nothing: at worst a message is published again,
and the server drops the copy because it saw that `Nats-Msg-Id` before (within the
stream's duplicate window, two minutes by default).

Acknowledged messages are deleted in groups of `DELETE_EVERY` (16), one statement
each: a crash resends at most that many, all deduplicated, and the flush keeps pace
with a bare publish-with-ack loop (see bench/bench_buffer.py). The delete is
committed without its own fsync (`synchronous=NORMAL`):
it survives the process being killed, and if a power cut undoes it the message is
sent again and deduplicated, the same way. Saves always wait for the disk.

`BufferedPublisher` puts the two together for an application: `send()` saves first,
then publishes what is waiting while NATS is reachable; offline, messages stay in the
file and go out, in order, when the connection comes back.

The file must be on a local disk (SQLite's WAL needs shared memory). Several threads
and processes may use one outbox; each message is published by whoever flushes first.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Self

import nats.errors
from nats.js.api import Header

from labkit.errors import LabkitError
from labkit.subjects import InvalidSubject, validate_pattern

if TYPE_CHECKING:
    from types import TracebackType

    from nats.js.client import JetStreamContext

    from labkit.settings import Settings

log = logging.getLogger(__name__)

# Seconds to wait for a publish ack, and for another connection's write lock.
DEFAULT_PUBLISH_TIMEOUT = 5.0
DEFAULT_BUSY_TIMEOUT = 5.0
# Rows read per query while flushing (the file is re-read between batches, so
# messages saved during a flush go out in the same flush).
FLUSH_BATCH = 100
# Acknowledged messages are deleted in groups of this many, in one statement: a crash
# resends at most this many already-stored messages, which the server drops as
# duplicates (same Nats-Msg-Id within the stream's duplicate window).
DELETE_EVERY = 16
# Stamped in the file header so another program's database is never mistaken for
# an outbox ("LBOX"), and the schema version for files written by a later labkit.
APPLICATION_ID = 0x4C424F58
SCHEMA_VERSION = 1

# Fixed names: no table or column name is ever built from user input.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # AUTOINCREMENT: an id is never reused, even after the newest message was deleted,
    # so a Nats-Msg-Id never names two different messages.
    "CREATE TABLE IF NOT EXISTS messages ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " subject TEXT NOT NULL,"
    " payload BLOB NOT NULL,"
    " saved_at REAL NOT NULL)",
)
_COLUMNS = "id, subject, payload, saved_at"

# What save() accepts; text is stored (and sent) as UTF-8.
Payload = bytes | bytearray | memoryview | str

# What a failed publish raises (TimeoutError is an OSError); the message stays in
# the outbox for the next flush.
PUBLISH_ERRORS: tuple[type[BaseException], ...] = (nats.errors.Error, OSError)


# The name; it shadows Python's builtin BufferError inside this module only.
class BufferError(LabkitError):
    """The outbox file cannot be used; the message says what to do about it."""


class BufferCorrupt(BufferError):
    """The outbox file is not a readable SQLite database."""


class BufferLocked(BufferError):
    """Another program holds the outbox's write lock for longer than the busy timeout."""


@dataclass(frozen=True)
class BufferedMessage:
    """One saved message: `id` grows with every save, so id order is save order."""

    id: int
    subject: str
    payload: bytes
    saved_at: datetime


@dataclass(frozen=True)
class FlushResult:
    """What one flush did.

    `sent` counts every message JetStream acknowledged, `duplicates` those among
    them the stream already had (a resend after a crash). `error` is the publish
    failure that stopped the flush, with `remaining` messages still waiting.
    """

    sent: int
    duplicates: int
    remaining: int
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def validate_publish_subject(subject: str) -> str:
    """Return `subject` if a message may be published to it (no wildcards)."""
    validate_pattern(subject)
    if any(token in ("*", ">") for token in subject.split(".")):
        raise InvalidSubject(f"cannot publish to {subject!r}: wildcards only match, never send")
    return subject


class Buffer:
    """A durable outbox in one SQLite file, keeping messages in the order they were saved.

    `subject` is where `save()` sends a message unless it names another subject.
    Safe to share between threads; several processes may open the same file.
    """

    def __init__(
        self, path: Path | str, subject: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        self.subject = validate_publish_subject(subject)
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._uid = ""
        with self._lock:
            self._connection()

    @classmethod
    def from_settings(cls, settings: Settings, subject: str) -> Buffer:
        """The outbox at `settings.buffer.path` (default `<home>/client/outbox.db`)."""
        return cls(settings.paths.outbox_file, subject)

    @property
    def uid(self) -> str:
        """This outbox's random id; a new one after `remove()`."""
        with self._lock:
            self._connection()
            return self._uid

    def message_id(self, message_id: int) -> str:
        """The `Nats-Msg-Id` of a message: unique across outboxes and re-created files."""
        return f"{self.uid}-{message_id}"

    # the seed system's API
    def save(self, payload: Payload, subject: str | None = None) -> int:
        """Store a message (text is sent as UTF-8); its id, once it is safely on disk."""
        return self.save_many([payload], subject)[0]

    def save_many(self, payloads: Iterable[Payload], subject: str | None = None) -> list[int]:
        """Store several messages in one transaction (one disk sync); their ids, in order."""
        data = [_as_bytes(payload) for payload in payloads]
        target = self.subject if subject is None else validate_publish_subject(subject)
        now = time.time()
        with self._lock, self._sqlite_errors("saving messages"):
            conn = self._connection()
            with _durable_transaction(conn):
                ids = [_inserted_id(conn, target, payload, now) for payload in data]
        return ids

    def get(self) -> BufferedMessage | None:
        """The oldest waiting message, or None when the outbox is empty."""
        oldest = self._oldest(1)
        return oldest[0] if oldest else None

    def get_all(self) -> list[BufferedMessage]:
        """Every waiting message, oldest first."""
        with self._lock, self._sqlite_errors("reading the messages"):
            rows = (
                self._connection()
                .execute(f"SELECT {_COLUMNS} FROM messages ORDER BY id")
                .fetchall()
            )
        return [_message(row) for row in rows]

    def delete(self, message_id: int) -> bool:
        """Drop one message without sending it; False if it was not there."""
        with self._lock, self._sqlite_errors("deleting a message"):
            conn = self._connection()
            with _durable_transaction(conn):
                cursor = conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            return cursor.rowcount > 0

    def remove(self) -> None:
        """Delete the whole outbox file: messages not yet sent are lost.

        The next use creates an empty outbox with a new uid. Close other programs
        using the file first; one still writing would write into the removed file.
        """
        with self._lock:
            self.close()
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    # counting
    def pending(self) -> int:
        """How many messages wait to be sent."""
        with self._lock, self._sqlite_errors("counting the messages"):
            (count,) = self._connection().execute("SELECT count(*) FROM messages").fetchone()
        return int(count)

    def __len__(self) -> int:
        return self.pending()

    # sending
    async def flush(
        self, js: JetStreamContext, timeout: float = DEFAULT_PUBLISH_TIMEOUT
    ) -> FlushResult:
        """Publish waiting messages oldest first, deleting each once JetStream acked it.

        Stops at the first failed publish and keeps that message and the ones after
        it, so they go out in order next time. Errors of the file itself (locked,
        corrupt) are raised as `BufferError`.
        """
        sent = duplicates = 0
        error: BaseException | None = None
        acked: list[int] = []
        try:
            while error is None:
                batch = self._oldest(FLUSH_BATCH, after=acked[-1] if acked else 0)
                if not batch:
                    break
                for message in batch:
                    try:
                        ack = await js.publish(
                            message.subject,
                            message.payload,
                            timeout=timeout,
                            headers={Header.MSG_ID: self.message_id(message.id)},
                        )
                    except PUBLISH_ERRORS as exc:
                        error = exc
                        break
                    acked.append(message.id)
                    sent += 1
                    duplicates += bool(ack.duplicate)
                    if len(acked) >= DELETE_EVERY:
                        self._delete_sent(acked)
                        acked = []
        finally:
            # Only ever acknowledged messages, and all of them, whatever stopped us.
            self._delete_sent(acked)
        return FlushResult(sent, duplicates, self.pending(), error)

    # lifetime
    def close(self) -> None:
        """Close the file; the next use opens it again."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Buffer({str(self.path)!r}, {self.subject!r})"

    # internals
    def _oldest(self, limit: int, after: int = 0) -> list[BufferedMessage]:
        # `after` skips messages already acknowledged but not yet deleted.
        with self._lock, self._sqlite_errors("reading the oldest messages"):
            rows = (
                self._connection()
                .execute(
                    f"SELECT {_COLUMNS} FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                    (after, limit),
                )
                .fetchall()
            )
        return [_message(row) for row in rows]

    def _delete_sent(self, message_ids: list[int]) -> None:
        # Not a durable transaction (see the module docstring): an undone delete means
        # a resend, which the server deduplicates by Nats-Msg-Id.
        if not message_ids:
            return
        with self._lock, self._sqlite_errors("deleting sent messages"):
            self._connection().executemany(
                "DELETE FROM messages WHERE id = ?", [(message_id,) for message_id in message_ids]
            )

    def _connection(self) -> sqlite3.Connection:
        # Callers hold self._lock.
        if self._conn is None:
            with self._sqlite_errors("opening the outbox"):
                self._conn, self._uid = self._open()
        return self._conn

    def _open(self) -> tuple[sqlite3.Connection, str]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BufferError(
                f"cannot create the folder of {self.path} ({exc}); "
                "set LABKIT_BUFFER_PATH to a file in a writable folder"
            ) from exc
        # Autocommit (isolation_level=None): each statement is its own transaction
        # unless an explicit BEGIN groups several.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise BufferError(
                    f"{self.path} cannot use SQLite's write-ahead log (journal mode {mode!r}); "
                    "put the outbox on a local disk (set LABKIT_BUFFER_PATH)"
                )
            # Statements outside a durable transaction commit without a disk sync;
            # durable ones switch to FULL for their commit (see _durable_transaction).
            conn.execute("PRAGMA synchronous = NORMAL")
            self._check_or_create_schema(conn)
            uid = conn.execute("SELECT value FROM meta WHERE key = 'uid'").fetchone()[0]
        except BaseException:
            conn.close()
            raise
        return conn, str(uid)

    def _check_or_create_schema(self, conn: sqlite3.Connection) -> None:
        if self._schema_version(conn) == SCHEMA_VERSION:
            return
        with _durable_transaction(conn):
            # Read again under the write lock: another process may have just created it.
            if self._schema_version(conn) == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('uid', ?)",
                    (secrets.token_hex(8),),
                )
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if application_id == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables == 0:
                return 0
        if application_id != APPLICATION_ID:
            raise BufferError(
                f"{self.path} is an SQLite database but not a labkit outbox; "
                "choose another file (set LABKIT_BUFFER_PATH)"
            )
        if version > SCHEMA_VERSION:
            raise BufferError(
                f"{self.path} was written by a newer labkit (outbox schema {version}); "
                "upgrade labkit or use another file"
            )
        return version

    @contextmanager
    def _sqlite_errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _buffer_error(self.path, doing, exc, self.busy_timeout) from exc


def _as_bytes(payload: object) -> bytes:
    # Not bytes(payload): bytes(42) is 42 zero bytes, not an error.
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    raise TypeError(f"a message payload is bytes or str, not {type(payload).__name__}")


@contextmanager
def _durable_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction whose COMMIT returns only once it is on disk."""
    # synchronous=FULL makes the commit sync the WAL file. BEGIN IMMEDIATE takes the
    # write lock up front (waiting up to the busy timeout), so the transaction never
    # fails halfway for want of it.
    conn.execute("PRAGMA synchronous = FULL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.execute("PRAGMA synchronous = NORMAL")


def _inserted_id(conn: sqlite3.Connection, subject: str, payload: bytes, saved_at: float) -> int:
    cursor = conn.execute(
        "INSERT INTO messages (subject, payload, saved_at) VALUES (?, ?, ?)",
        (subject, payload, saved_at),
    )
    assert cursor.lastrowid is not None  # an INSERT always sets it
    return cursor.lastrowid


def _message(row: tuple[int, str, bytes, float]) -> BufferedMessage:
    message_id, subject, payload, saved_at = row
    return BufferedMessage(
        message_id, subject, bytes(payload), datetime.fromtimestamp(saved_at, UTC)
    )


def _buffer_error(path: Path, doing: str, exc: sqlite3.Error, busy_timeout: float) -> BufferError:
    """The BufferError a learner can act on, for an sqlite3 error."""
    code = getattr(exc, "sqlite_errorcode", -1) & 0xFF  # the primary result code
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return BufferLocked(
            f"{path} is locked by another program (waited {busy_timeout:g} s while {doing}); "
            "close the other program using it (another notebook kernel, a `sqlite3` shell) "
            "and try again"
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return BufferCorrupt(
            f"{path} is not a readable outbox ({exc}; while {doing}); move it away, e.g. "
            f"`mv {path} {path}.broken`, to start an empty outbox, and keep the copy: "
            "it may hold unsent messages"
        )
    if code == sqlite3.SQLITE_FULL:
        return BufferError(f"the disk holding {path} is full ({doing}); free some space")
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM):
        return BufferError(
            f"cannot write {path} ({exc}; while {doing}); check the folder exists and is "
            "writable, or set LABKIT_BUFFER_PATH to another file"
        )
    return BufferError(f"outbox {path} failed while {doing}: {exc}")
