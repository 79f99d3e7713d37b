"""What crosses the bus, in words: pure helpers the wire taps share (no IO, no widgets).

A tap sees subjects and bytes. `WireDecoder` turns the bytes into the protobuf
message the lab sends on that subject; a reply, which travels on an inbox
subject that says nothing about it, is decoded as the type answering the
request seen with that reply subject. `sender_of` names the user a message
belongs to, and `table_html` draws the rows, newest last, with long subjects and
user ids shortened for the eye (`short_subject`, `short_user`: the rows keep them whole).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from labkit.error_replies import error_from
from labkit.protocol import (
    EchoRequest,
    EchoResponse,
    ImageConfirmation,
    ImageRequest,
    ImageResponse,
    PingRequest,
)
from labkit.subjects import (
    ECHO,
    ECHO_STREAM,
    INBOX,
    PERSIST_PREFIX,
    PING,
    REPLY_SUFFIX,
    SEND_FILE,
    TRANSFORM_FILE,
    any_user,
    matches,
    stored,
)
from labkit.widgets.base import FOLLOW_END

INBOX_PREFIX = "_INBOX"
# Longer cells (presigned URLs) are cut in the table; the rows keep the whole text.
MAX_CELL_CHARS = 160
# The auth service's user ids are ULIDs (26 characters of Crockford's base32): the table
# shows their last SHORT_ID_CHARS, the random part (the first ten characters are the time
# the user was made, the same for two learners who registered together); a reply inbox,
# its user and the end of its own random part.
ULID = re.compile(r"[0-7][0-9a-hjkmnp-tv-z]{25}", re.IGNORECASE)
SHORT_ID_CHARS = 6
SHORT_INBOX_TAIL = 4
# Columns shown shortened (whole in the cell's tooltip), and columns kept on one line.
_SHORTENED_COLUMNS = ("subject", "sender")
_NOWRAP_COLUMNS = ("time", "subject", "sender")
# Room between the columns (the cells have next to no padding).
_TABLE = "border-spacing:8px 0"
# The header row stays at the top of the scrolled table, on the page's background.
_HEADER_CELL = (
    "text-align:left; position:sticky; top:0; z-index:1; background:var(--jp-layout-color1, white)"
)


@dataclass(frozen=True)
class LabMessage:
    """What travels on a lab subject, and what a reply to it carries (None: no protobuf)."""

    pattern: str
    payload: type[Message]
    answer: type[Message] | None


_ECHO_STREAM_REPLY = f"{ECHO_STREAM}.{REPLY_SUFFIX}"
# First match wins, so the longer patterns come first. A persisted request is answered
# by JetStream's own JSON acknowledgement, not by a lab message.
LAB_MESSAGES: tuple[LabMessage, ...] = (
    # A stored reply's subject ends in its request's slot: `...echo.stream.reply.<slot>`.
    LabMessage(stored(any_user(_ECHO_STREAM_REPLY)) + ".*", EchoResponse, None),
    LabMessage(stored(any_user(_ECHO_STREAM_REPLY)), EchoResponse, None),
    LabMessage(stored(any_user(ECHO_STREAM)), EchoRequest, None),
    LabMessage(any_user(_ECHO_STREAM_REPLY), EchoResponse, None),
    LabMessage(any_user(ECHO_STREAM), EchoRequest, None),
    LabMessage(any_user(ECHO), EchoRequest, EchoResponse),
    LabMessage(any_user(ECHO) + ".>", EchoRequest, EchoResponse),
    LabMessage(any_user(PING), PingRequest, PingRequest),
    LabMessage(any_user(INBOX), PingRequest, None),
    LabMessage(any_user(SEND_FILE), ImageRequest, ImageResponse),
    LabMessage(any_user(TRANSFORM_FILE), ImageConfirmation, ImageResponse),
)
# JetStream's answers to a pull consumer's fetch that found nothing (404, 408), and its
# heartbeats (100): a server reading its stream sends them all day long, without payload.
POLLING_STATUSES = frozenset({"100", "404", "408"})
# A reply whose request the tap did not see: most requests in the labs are echoes.
REPLY_GUESS: type[Message] = EchoResponse
MAX_PENDING_REPLIES = 1000


def lab_message(subject: str) -> LabMessage | None:
    """The lab message that travels on `subject`, or None."""
    return next((kind for kind in LAB_MESSAGES if matches(kind.pattern, subject)), None)


def sender_of(subject: str) -> str:
    """The user a message belongs to: its subject's first token, which NATS vouches for.

    `_INBOX.<user>.…` (a reply to the user) and `persist.<user>.…` (the account's
    mapping of a persisted subject) name the user in their second token.
    """
    tokens = subject.split(".")
    if tokens[0] in (INBOX_PREFIX, PERSIST_PREFIX) and len(tokens) > 1:
        return tokens[1]
    return tokens[0]


def is_polling(headers: Mapping[str, str] | None, data: bytes) -> bool:
    """True for a consumer's polling chatter (no payload, a status in POLLING_STATUSES)."""
    return not data and bool(headers) and (headers or {}).get("Status") in POLLING_STATUSES


class WireDecoder:
    """Decodes the messages one tap sees, in the order it sees them.

    It remembers, for each request seen, the reply subject and the type the answer
    will carry (at most `max_pending`, oldest forgotten first: requests nobody answered).
    """

    def __init__(self, max_pending: int = MAX_PENDING_REPLIES) -> None:
        self.max_pending = max_pending
        self._awaited: dict[str, type[Message]] = {}

    def decode(
        self,
        subject: str,
        data: bytes,
        *,
        reply: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """The message as text: `EchoRequest{message: "hi"}`, an error reply, JSON, or bytes."""
        # A reply answers its request whatever it carries (an error, a status).
        answer = self._awaited.pop(subject, None)
        error = error_from(dict(headers) if headers else None, data)
        if error is not None:
            return show(error)
        if headers and headers.get("Status") and not data:
            # A NATS status message (no responders, JetStream's "no messages", ...).
            return f"status {headers['Status']} {headers.get('Description', '')}".strip()
        kind = lab_message(subject)
        if kind is not None:
            if reply and kind.answer is not None:
                self._expect(reply, kind.answer)
            return parse(kind.payload, data)
        if subject.startswith(INBOX_PREFIX + "."):
            return parse(answer or REPLY_GUESS, data)
        return parse(None, data)

    @property
    def pending(self) -> int:
        """How many replies it still expects."""
        return len(self._awaited)

    def _expect(self, reply_subject: str, answer: type[Message]) -> None:
        if len(self._awaited) >= self.max_pending:
            self._awaited.pop(next(iter(self._awaited)))
        self._awaited[reply_subject] = answer


def parse(kind: type[Message] | None, data: bytes) -> str:
    """`data` as a `kind` message; JSON (JetStream's answers) as JSON; else the raw bytes."""
    # No labkit message starts with "{" (it would be field 15, which none has).
    if data.startswith(b"{"):
        try:
            return "JSON " + json.dumps(json.loads(data), separators=(",", ":"))
        except ValueError:
            pass
    if kind is None:
        return repr(data)
    try:
        return show(kind.FromString(data))
    except DecodeError:
        return repr(data)


def show(message: Message) -> str:
    """`EchoRequest{message: "hi"}`: the type and its fields on one line.

    Text shows as it was typed (quotes and accents unescaped, unlike protobuf's text
    format); only line breaks and other control characters are written as escapes.
    """
    return f"{type(message).__name__}{{{_fields(message)}}}"


def _fields(message: Message) -> str:
    shown = []
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated:
            shown.append(f"{field.name} {{ {_fields(value)} }}")  # as protobuf's text format
        elif field.is_repeated:
            items = ", ".join(_value(field, item) for item in value)
            shown.append(f"{field.name}: [{items}]")
        else:
            shown.append(f"{field.name}: {_value(field, value)}")
    return " ".join(shown)


def _value(field: FieldDescriptor, value: object) -> str:
    if field.type == FieldDescriptor.TYPE_MESSAGE and isinstance(value, Message):
        return f"{{ {_fields(value)} }}"
    if field.type == FieldDescriptor.TYPE_STRING:
        return f'"{_CONTROL.sub(_escape_control, str(value))}"'
    if field.type == FieldDescriptor.TYPE_BYTES:
        return repr(value)
    if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        number = value if isinstance(value, int) else 0
        named = field.enum_type.values_by_number.get(number)
        return named.name if named is not None else str(value)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    return str(value)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(char, f"\\x{ord(char):02x}")


def now_text() -> str:
    """The wall-clock time to the millisecond, as a tap's time column shows it."""
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]


def short_user(user: str) -> str:
    """A ULID user id as "…" and its last SHORT_ID_CHARS (its random end); others as they are.

    Two learners who registered in the same millisecond share a ULID's first ten
    characters (its time), never its end.
    """
    if ULID.fullmatch(user):
        return "…" + user[-SHORT_ID_CHARS:]
    return user


def short_subject(subject: str) -> str:
    """`subject` for the eye: `_INBOX.…eaxe2z.…850e`, `…eaxe2z.echo.shout`.

    A reply inbox, `_INBOX.<user>.<random>[.<random>]`, keeps its user (`short_user`)
    and its last SHORT_INBOX_TAIL characters (enough to pair replies by eye); in other
    subjects, ULID user ids are cut (`short_user`). Never longer than `subject`.
    """
    tokens = subject.split(".")
    if tokens[0] == INBOX_PREFIX and len(tokens) > 2:
        short = f"{INBOX_PREFIX}.{short_user(tokens[1])}.…{subject[-SHORT_INBOX_TAIL:]}"
    else:
        short = ".".join(short_user(token) for token in tokens)
    return short if len(short) < len(subject) else subject


def table_html(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    """An HTML table of `rows` (one mapping per row), newest last, scrolled to the end.

    The header stays in view (sticky); numbers are right-aligned; subjects are in code
    font and, like senders, shortened (`short_subject`, `short_user`) with the whole
    value in the cell's tooltip; long texts are cut; all text is escaped.
    """
    header = "".join(f"<th style='{_HEADER_CELL}'>{html.escape(c)}</th>" for c in columns)
    lines = ["<tr>" + "".join(_cell(c, row.get(c, "")) for c in columns) + "</tr>" for row in rows]
    if not lines:
        lines = [f"<tr><td colspan='{len(columns)}'><i>nothing yet</i></td></tr>"]
    body = "".join(lines)
    table = f"<table style='{_TABLE}'><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
    return f"<div style='{FOLLOW_END}'><div>{table}</div></div>"


def _cell(column: str, value: object) -> str:
    if isinstance(value, int):
        return f"<td style='text-align:right'>{value}</td>"
    nowrap = "white-space:nowrap" if column in _NOWRAP_COLUMNS else ""
    text = str(value)
    title = ""
    if column in _SHORTENED_COLUMNS:
        shown = short_subject(text) if column == "subject" else short_user(text)
        if shown != text:
            title = f" title='{html.escape(text, quote=True)}'"
            text = shown
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "…"
    escaped = html.escape(text)
    if column == "subject":
        escaped = f"<code>{escaped}</code>"
    style = f" style='{nowrap}'" if nowrap else ""
    return f"<td{style}{title}>{escaped}</td>"
