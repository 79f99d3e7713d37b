"""Subject patterns: NATS wildcard matching and the validation done at decoration."""

from __future__ import annotations

import pytest

from labkit.subjects import (
    InvalidSubject,
    any_user,
    first_token,
    is_private_reply,
    matches,
    stored,
    unstored,
    user_subject,
)
from labkit.subjects import validate_pattern as validate


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        # `*` stands for exactly one token.
        ("*.echo", "alice.echo", True),
        ("*.echo", "bob.echo", True),
        ("*.echo", "alice.ping", False),
        ("*.echo", "echo", False),
        ("*.echo", "alice.echo.identified", False),
        ("alice.*", "alice.echo", True),
        ("*.*", "a.b", True),
        # `>` stands for one or more tokens, never zero.
        ("*.echo.>", "alice.echo.identified", True),
        ("*.echo.>", "alice.echo.a.b.c", True),
        ("*.echo.>", "alice.echo", False),
        (">", "anything", True),
        (">", "a.b.c", True),
        ("$SRV.>", "$SRV.PING", True),
        ("$SRV.>", "$SRV", False),
        # Exact subjects match only themselves.
        ("alice.echo", "alice.echo", True),
        ("alice.echo", "bob.echo", False),
        ("alice.echo", "alice.ech", False),
        # Length mismatches, both ways.
        ("alice.echo", "alice.echo.extra", False),
        ("alice.echo.extra", "alice.echo", False),
        ("a.b.c", "a.b", False),
        ("a", "a.b", False),
    ],
)
def test_matches(pattern: str, subject: str, expected: bool) -> None:
    assert matches(pattern, subject) is expected


@pytest.mark.parametrize("pattern", ["*.echo", "*.echo.>", ">", "$SRV.PING", "alice", "a.*.c"])
def test_valid_patterns_are_returned(pattern: str) -> None:
    assert validate(pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "empty"),
        ("a..b", "empty token"),
        (".a", "empty token"),
        ("a.", "empty token"),
        ("a.>.b", "'>' must be the last token"),
        ("a*", "wildcards must be whole tokens"),
        ("a.b*.c", "wildcards must be whole tokens"),
        ("a.>b", "wildcards must be whole tokens"),
        (" a.b", "surrounding spaces"),
        ("a.b ", "surrounding spaces"),
        ("a b.c", "whitespace"),
        ("a.\tb", "whitespace"),
    ],
)
def test_invalid_patterns_say_why(pattern: str, reason: str) -> None:
    with pytest.raises(InvalidSubject, match=reason):
        validate(pattern)


def test_invalid_subject_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate("a..b")


def test_subject_builders() -> None:
    assert user_subject("alice", "echo.cached") == "alice.echo.cached"
    assert any_user("ping") == "*.ping"
    assert first_token("alice.echo.identified") == "alice"
    assert first_token("alice") == "alice"


def test_unstored_gives_back_the_subject_the_user_published_on() -> None:
    assert unstored(stored("alice.echo.stream")) == "alice.echo.stream"
    assert unstored("alice.echo") == "alice.echo"  # not a stored subject: unchanged


@pytest.mark.parametrize(
    ("subject", "reply", "allowed"),
    [
        ("alice.echo", "_INBOX.alice.abc.1", True),
        ("alice.echo", "_INBOX.alice.x", True),
        ("alice.echo", "_INBOX.alice", False),
        ("alice.echo", "_INBOX.alice.", False),
        ("alice.echo", "_INBOX.alicex.1", False),
        ("alice.echo", "_INBOX.bob.1", False),
        ("alice.echo", "bob.echo.stream.reply", False),
        ("alice.echo", "carol.ping", False),
        ("alice.echo", "_INBOX.alice.*", False),
        ("alice.echo", "_INBOX.alice.>", False),
        ("alice.echo", "_INBOX.alice..x", False),
        ("alice.ping", "alice.ping", False),
    ],
)
def test_a_reply_is_private_only_inside_the_senders_inbox(
    subject: str, reply: str, allowed: bool
) -> None:
    assert is_private_reply(subject, reply) is allowed
