"""The outbox file on its own: saving, reading, deleting, threads, damaged and locked files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.buffer import (
    Buffer,
    BufferCorrupt,
    BufferedMessage,
    BufferError,
    BufferLocked,
)
from labkit.errors import LabkitError
from labkit.subjects import InvalidSubject
from tests.conftest import make_settings

SUBJECT = "buffer-test.unit"


@pytest.fixture
def buffer(tmp_path: Path) -> Iterator[Buffer]:
    with Buffer(tmp_path / "outbox.db", SUBJECT) as opened:
        yield opened


# empty outbox
def test_a_new_outbox_is_empty(buffer: Buffer) -> None:
    assert buffer.get() is None
    assert buffer.get_all() == []
    assert buffer.pending() == 0
    assert len(buffer) == 0


def test_deleting_a_missing_message_reports_false(buffer: Buffer) -> None:
    assert buffer.delete(1) is False
    buffer.save(b"x")
    assert buffer.delete(999) is False
    assert buffer.pending() == 1


# save / get / get_all / delete
def test_save_returns_strictly_increasing_ids(buffer: Buffer) -> None:
    ids = [buffer.save(f"m{n}") for n in range(20)]
    assert ids == sorted(set(ids))
    assert ids[0] >= 1


def test_save_many_stores_all_in_order_in_one_go(buffer: Buffer) -> None:
    first = buffer.save(b"single")
    ids = buffer.save_many((f"n{n}" for n in range(100)), subject="buffer-test.many")
    assert ids == list(range(first + 1, first + 101))
    messages = buffer.get_all()
    assert [m.payload for m in messages[1:]] == [f"n{n}".encode() for n in range(100)]
    assert {m.subject for m in messages[1:]} == {"buffer-test.many"}
    assert buffer.save_many([]) == []


def test_save_many_saves_nothing_when_one_payload_is_bad(buffer: Buffer) -> None:
    with pytest.raises(TypeError):
        buffer.save_many([b"fine", 42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="bytes or str"):  # bytes(42) is 42 zero bytes
        buffer.save(42)  # type: ignore[arg-type]
    assert buffer.pending() == 0


def test_get_returns_the_oldest_and_leaves_it_in_place(buffer: Buffer) -> None:
    first = buffer.save(b"first")
    buffer.save(b"second")
    oldest = buffer.get()
    assert oldest is not None
    assert (oldest.id, oldest.payload, oldest.subject) == (first, b"first", SUBJECT)
    assert buffer.get() == oldest
    assert buffer.pending() == 2


def test_get_all_keeps_save_order(buffer: Buffer) -> None:
    payloads = [f"message {n}".encode() for n in range(10)]
    ids = [buffer.save(p) for p in payloads]
    messages = buffer.get_all()
    assert [m.id for m in messages] == ids
    assert [m.payload for m in messages] == payloads
    assert all(isinstance(m, BufferedMessage) for m in messages)


def test_delete_removes_exactly_one_message(buffer: Buffer) -> None:
    ids = [buffer.save(str(n)) for n in range(5)]
    assert buffer.delete(ids[2]) is True
    assert [m.id for m in buffer.get_all()] == [ids[0], ids[1], ids[3], ids[4]]
    assert buffer.delete(ids[2]) is False
    assert len(buffer) == 4


def test_deleting_the_oldest_makes_the_next_one_oldest(buffer: Buffer) -> None:
    first, second = buffer.save(b"a"), buffer.save(b"b")
    buffer.delete(first)
    oldest = buffer.get()
    assert oldest is not None and oldest.id == second


def test_ids_are_never_reused_after_deleting_the_newest(buffer: Buffer) -> None:
    # A reused id would give a new message an old Nats-Msg-Id: the server would drop it.
    newest = buffer.save(b"a")
    buffer.delete(newest)
    assert buffer.save(b"b") > newest


def test_ids_keep_growing_after_reopening(tmp_path: Path) -> None:
    with Buffer(tmp_path / "o.db", SUBJECT) as first:
        last = first.save(b"a")
        first.delete(last)
    with Buffer(tmp_path / "o.db", SUBJECT) as again:
        assert again.save(b"b") > last


def test_text_is_stored_as_utf8_and_binary_as_is(buffer: Buffer) -> None:
    text = "héllo wörld ✓ 漢字 🚀"
    binary = bytes(range(256)) + b"\x00\x00"
    buffer.save(text)
    buffer.save(binary)
    buffer.save(b"")
    buffer.save(bytearray(b"\xff\xfe"))
    assert [m.payload for m in buffer.get_all()] == [
        text.encode("utf-8"),
        binary,
        b"",
        b"\xff\xfe",
    ]


def test_a_large_payload_round_trips(buffer: Buffer) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    buffer.save(payload)
    stored = buffer.get()
    assert stored is not None and stored.payload == payload


def test_each_message_keeps_its_subject(buffer: Buffer) -> None:
    buffer.save(b"default")
    buffer.save(b"other", subject="buffer-test.other.place")
    assert [(m.subject, m.payload) for m in buffer.get_all()] == [
        (SUBJECT, b"default"),
        ("buffer-test.other.place", b"other"),
    ]


@pytest.mark.parametrize("subject", ["", "a..b", "a.*", "a.>", "has space", " a.b"])
def test_subjects_nats_cannot_publish_to_are_refused(buffer: Buffer, subject: str) -> None:
    with pytest.raises(InvalidSubject):
        buffer.save(b"x", subject=subject)
    assert buffer.pending() == 0


def test_the_default_subject_is_checked_too(tmp_path: Path) -> None:
    with pytest.raises(InvalidSubject):
        Buffer(tmp_path / "o.db", "buffer-test.>")


def test_saved_at_is_the_utc_time_of_the_save(buffer: Buffer) -> None:
    before = datetime.now(UTC)
    buffer.save(b"x")
    stored = buffer.get()
    assert stored is not None
    assert stored.saved_at.tzinfo is not None
    assert before - timedelta(seconds=1) <= stored.saved_at <= datetime.now(UTC)


# durability and identity
def test_messages_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Buffer(path, SUBJECT) as first:
        first.save(b"kept")
        uid = first.uid
    with Buffer(path, SUBJECT) as again:
        assert [m.payload for m in again.get_all()] == [b"kept"]
        assert again.uid == uid


def test_the_file_uses_wal(buffer: Buffer) -> None:
    with sqlite3.connect(buffer.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_saves_and_deletes_commit_with_a_disk_sync_but_deletes_after_acks_do_not(
    buffer: Buffer,
) -> None:
    statements: list[str] = []
    with buffer._lock:
        conn = buffer._connection()
        conn.set_trace_callback(statements.append)

    def synced_commits() -> list[str]:
        # The synchronous setting in force at each COMMIT, in order.
        setting, commits = "NORMAL", []
        for statement in statements:
            if statement.startswith("PRAGMA synchronous"):
                setting = statement.split("=")[1].strip()
            elif statement == "COMMIT":
                commits.append(setting)
        return commits

    first = buffer.save(b"a")
    buffer.save_many([b"b", b"c"])
    buffer.delete(first)
    assert synced_commits() == ["FULL", "FULL", "FULL"]
    statements.clear()
    buffer._delete_sent([first + 1])  # after a publish ack: a resend is deduplicated
    assert synced_commits() == []
    assert not any("FULL" in statement for statement in statements)
    conn.set_trace_callback(None)


def test_a_saved_message_survives_its_process_being_killed(tmp_path: Path) -> None:
    # Each id the child printed came back from save(): it must be in the file.
    path = tmp_path / "o.db"
    script = (
        "import sys\n"
        "from labkit.buffer import Buffer\n"
        f"b = Buffer({str(path)!r}, {SUBJECT!r})\n"
        "while True:\n"
        "    print(b.save(b'x'), flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        printed = [int(child.stdout.readline()) for _ in range(200)]
    finally:
        child.kill()
        child.communicate()
    with Buffer(path, SUBJECT) as after:
        kept = {m.id for m in after.get_all()}
    assert set(printed) <= kept


def test_message_ids_name_the_outbox(buffer: Buffer, tmp_path: Path) -> None:
    with Buffer(tmp_path / "another.db", SUBJECT) as another:
        assert another.uid != buffer.uid
    assert buffer.message_id(7) == f"{buffer.uid}-7"
    assert len(buffer.uid) == 16


# remove
def test_remove_deletes_the_file_and_the_unsent_messages(buffer: Buffer) -> None:
    buffer.save(b"lost")
    old_uid = buffer.uid
    buffer.remove()
    assert not buffer.path.exists()
    assert not Path(f"{buffer.path}-wal").exists()
    # The next use starts a fresh outbox with a new uid: old Nats-Msg-Ids never repeat.
    assert buffer.pending() == 0
    assert buffer.uid != old_uid
    assert buffer.save(b"new") >= 1
    assert [m.payload for m in buffer.get_all()] == [b"new"]


def test_remove_of_an_outbox_twice_is_harmless(buffer: Buffer) -> None:
    buffer.remove()
    buffer.remove()
    assert not buffer.path.exists()


# settings
def test_from_settings_uses_the_client_folder_of_home(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    with Buffer.from_settings(settings, SUBJECT) as buffer:
        assert buffer.path == (tmp_path / "home" / "client" / "outbox.db").resolve()
        assert buffer.path.exists()


def test_from_settings_honours_buffer_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_BUFFER_PATH", str(tmp_path / "elsewhere" / "mine.db"))
    settings = make_settings(tmp_path / "home")
    assert settings.buffer.path == tmp_path / "elsewhere" / "mine.db"
    with Buffer.from_settings(settings, SUBJECT) as buffer:
        assert buffer.path == (tmp_path / "elsewhere" / "mine.db").resolve()


# threads
def test_threads_saving_at_once_get_distinct_ids_in_their_own_order(buffer: Buffer) -> None:
    threads, per_thread = 8, 200
    saved: dict[int, list[int]] = {t: [] for t in range(threads)}
    start = threading.Barrier(threads)

    def saver(t: int) -> None:
        start.wait()
        for n in range(per_thread):
            saved[t].append(buffer.save(f"{t}:{n}"))

    workers = [threading.Thread(target=saver, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    all_ids = [i for ids in saved.values() for i in ids]
    assert len(set(all_ids)) == threads * per_thread
    messages = buffer.get_all()
    assert len(messages) == threads * per_thread
    for t in range(threads):
        assert saved[t] == sorted(saved[t])
        mine = [m.payload.decode() for m in messages if m.payload.startswith(f"{t}:".encode())]
        assert mine == [f"{t}:{n}" for n in range(per_thread)]


# damaged and locked files
def test_a_corrupt_file_raises_buffer_corrupt_saying_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not an SQLite database, just some text\n" * 200)
    with pytest.raises(BufferCorrupt, match="move it away") as caught:
        Buffer(path, SUBJECT)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, BufferError)
    assert isinstance(caught.value, LabkitError)


def test_an_outbox_overwritten_with_garbage_raises_buffer_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Buffer(path, SUBJECT) as buffer:
        buffer.save(b"x")
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(BufferCorrupt):
        Buffer(path, SUBJECT)


def test_another_programs_database_is_not_taken_for_an_outbox(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(BufferError, match="not a labkit outbox"):
        Buffer(path, SUBJECT)
    with sqlite3.connect(path) as other:  # untouched
        tables = {row[0] for row in other.execute("SELECT name FROM sqlite_master")}
    assert tables == {"people"}


def test_an_outbox_from_a_newer_labkit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    Buffer(path, SUBJECT).close()
    with sqlite3.connect(path) as other:
        other.execute("PRAGMA user_version = 99")
    with pytest.raises(BufferError, match="newer labkit"):
        Buffer(path, SUBJECT)


def test_a_folder_that_cannot_hold_the_file_raises_buffer_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(BufferError, match="cannot create"):
        Buffer(blocker / "outbox.db", SUBJECT)


@contextmanager
def locked_by_another_process(path: Path) -> Iterator[None]:
    """Another process holds `BEGIN EXCLUSIVE` on `path` until the block ends."""
    script = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        try:
            holder.wait(timeout=5)
        finally:
            holder.kill()
            holder.wait()


def test_a_write_locked_outbox_raises_buffer_locked_saying_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Buffer(path, SUBJECT, busy_timeout=0.2) as buffer:
        buffer.save(b"before")
        with locked_by_another_process(path):
            with pytest.raises(BufferLocked, match="close the other program") as caught:
                buffer.save(b"during")
            with pytest.raises(BufferLocked):
                buffer.delete(1)
            # WAL lets readers in while another program writes.
            assert [m.payload for m in buffer.get_all()] == [b"before"]
        assert str(path) in str(caught.value)
        buffer.save(b"after")  # usable again once the other program let go
        assert [m.payload for m in buffer.get_all()] == [b"before", b"after"]


def test_opening_a_new_outbox_locked_by_another_process_raises_buffer_locked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.db"
    sqlite3.connect(path).close()  # an empty file another program is writing
    with locked_by_another_process(path), pytest.raises(BufferLocked):
        Buffer(path, SUBJECT, busy_timeout=0.2)


# the outbox behaves like a list of what was saved and not deleted
@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("save"), st.binary(max_size=64)),
            st.tuples(st.just("delete"), st.integers(min_value=0, max_value=30)),
        ),
        max_size=25,
    )
)
def test_the_outbox_matches_a_list_model(operations: list[tuple[str, object]]) -> None:
    model: list[tuple[int, bytes]] = []
    with tempfile.TemporaryDirectory() as folder, Buffer(Path(folder) / "o.db", SUBJECT) as buffer:
        for action, value in operations:
            if action == "save":
                assert isinstance(value, bytes)
                message_id = buffer.save(value)
                assert not model or message_id > model[-1][0]
                model.append((message_id, value))
            else:
                assert isinstance(value, int)
                target = model[value % len(model)][0] if model else value
                existed = any(i == target for i, _ in model)
                assert buffer.delete(target) is existed
                model = [(i, p) for i, p in model if i != target]
        assert [(m.id, m.payload) for m in buffer.get_all()] == model
        assert len(buffer) == len(model)
        oldest = buffer.get()
        if model:
            assert oldest is not None and (oldest.id, oldest.payload) == model[0]
        else:
            assert oldest is None
