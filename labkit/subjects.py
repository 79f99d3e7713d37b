"""Subject names and wildcard matching, in one place; pure functions.

Identity on the bus is the first subject token (`alice.echo`): the server's
permissions only let alice publish under `alice.`, so handlers can trust it.
"""

from __future__ import annotations

import hashlib
import re

from labkit.errors import LabkitError

# Lab subjects, after the user's token: `<user>.echo`, `<peer>.inbox`, ...
ECHO = "echo"
ECHO_IDENTIFIED = "echo.identified"
ECHO_CACHED = "echo.cached"
PING = "ping"
INBOX = "inbox"
# Where the browser chat's page reports what it did (the kernel follows it over NATS).
PAGE = "page"
ECHO_STREAM = "echo.stream"
# The stream the server owns for it; the user permission templates name it too.
ECHO_STREAM_NAME = "ECHO_STREAM"
# A persisted request's reply goes to `<request subject>.reply`.
REPLY_SUFFIX = "reply"
# The account maps `<user>.echo.stream[.reply]` to `persist.<user>.echo.stream[.reply]`
# (NscSettings.account_mappings): the stream stores them under this first token.
PERSIST_PREFIX = "persist"


def stored(subject: str) -> str:
    """Where the account mapping puts a persisted subject: `persist.alice.echo.stream`."""
    return f"{PERSIST_PREFIX}.{subject}"


def unstored(subject: str) -> str:
    """The subject the user published on, from the subject a stream stored."""
    return subject.removeprefix(f"{PERSIST_PREFIX}.")


# What a request id may hold to be used as a subject token as it is.
_SLOT_TOKEN = re.compile(r"[-_=A-Za-z0-9]{1,128}")
# A user's private reply space: `_INBOX.<user>.>` (the client sets its inbox prefix).
INBOX_PREFIX = "_INBOX"
# The core request a stream echo client sends before reading its replies: the server
# creates the user's reply consumer (users may not create consumers themselves).
ECHO_STREAM_OPEN = "echo.stream.open"


def inbox_prefix(user: str) -> str:
    """`_INBOX.alice`: where alice's replies go, and only hers."""
    return f"{INBOX_PREFIX}.{user}"


def persisted_reply(subject: str) -> str:
    """Where the reply to a persisted request goes: `alice.echo.stream.reply`."""
    return f"{subject}.{REPLY_SUFFIX}"


def slot_token(msg_id: str | None, sequence: int) -> str:
    """The last token of a persisted reply's subject: one per request.

    From the request's Nats-Msg-Id when it has one (a resend of it, however late,
    lands on the same slot), else from its stream sequence; made a valid token.
    """
    if not msg_id:
        return f"seq-{sequence}"
    if _SLOT_TOKEN.fullmatch(msg_id):
        return f"id-{msg_id}"
    return "h-" + hashlib.sha256(msg_id.encode()).hexdigest()[:40]


def is_private_reply(subject: str, reply: str) -> bool:
    """True when `reply` lies in the inbox space of the user who sent on `subject`.

    The user is the subject's first token (the only one the NATS server lets them
    publish under); the reply must be a literal subject under `_INBOX.<user>.`.
    The server answers nowhere else, so a requester can never make it write on a
    subject of someone else's (a confused deputy).
    """
    prefix = f"{INBOX_PREFIX}.{first_token(subject)}."
    return (
        reply.startswith(prefix)
        and len(reply) > len(prefix)
        and "*" not in reply
        and ">" not in reply
        and ".." not in reply
        and not reply.endswith(".")
    )


SEND_FILE = "send_file"
TRANSFORM_FILE = "transform_file"

# Exercise progress (classroom): a check's report, and a learner's own records.
PROGRESS = "progress"
PROGRESS_MINE = "progress.mine"

# Where the stack announces a learner just created, so every application server with
# reader connections (labkit.server.readers) subscribes them before their first
# request (labkit.server.announcements, labkit.nsc.announce). Its first token begins
# with `labkit_`, which no learner's name may (labkit.nsc.names): a learner may publish
# only under their own name, so none can publish or read it (a learner may be called
# `labkit`, so `labkit.` would not do). Only the server's user may subscribe it.
USER_NEW = "labkit_stack.server.user.new"

# Subjects the exercises (labkit.exercises) serve, on a server of their own.
ECHO_REVERSE = "echo.reverse"
ECHO_COUNT = "echo.count"
NOTE = "note"


class InvalidSubject(LabkitError, ValueError):
    """A subject or pattern NATS would not accept."""


def user_subject(user: str, lab_subject: str) -> str:
    """`alice` + `echo` -> `alice.echo`."""
    return f"{user}.{lab_subject}"


def any_user(lab_subject: str) -> str:
    """The pattern the server subscribes to for a lab: `*.echo`."""
    return f"*.{lab_subject}"


def first_token(subject: str) -> str:
    return subject.split(".", 1)[0]


def validate_pattern(pattern: str) -> str:
    """Return `pattern` if it is a valid subscription subject (wildcards allowed)."""
    if not pattern or pattern != pattern.strip():
        raise InvalidSubject(f"subject {pattern!r} is empty or has surrounding spaces")
    tokens = pattern.split(".")
    for index, token in enumerate(tokens):
        if not token:
            raise InvalidSubject(f"subject {pattern!r} has an empty token (two dots in a row?)")
        if any(c.isspace() for c in token):
            raise InvalidSubject(f"subject {pattern!r} contains whitespace")
        if token == ">" and index != len(tokens) - 1:
            raise InvalidSubject(f"'>' must be the last token in {pattern!r}")
        if len(token) > 1 and ("*" in token or ">" in token):
            raise InvalidSubject(f"wildcards must be whole tokens in {pattern!r}")
    return pattern


def matches(pattern: str, subject: str) -> bool:
    """True when `subject` matches the NATS `pattern` (`*` one token, `>` the rest)."""
    pattern_tokens = pattern.split(".")
    subject_tokens = subject.split(".")
    for index, token in enumerate(pattern_tokens):
        if token == ">":
            return len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if token != "*" and token != subject_tokens[index]:
            return False
    return len(subject_tokens) == len(pattern_tokens)
