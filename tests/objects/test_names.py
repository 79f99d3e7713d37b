"""Object names: one safe path segment each, so a request stays inside its user's prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labkit.objects.errors import InvalidObjectName
from labkit.objects.names import (
    MAX_NAME_LENGTH,
    derived_name,
    object_key,
    stem,
    validate_object_name,
)


@pytest.mark.parametrize(
    "name", ["cat.png", "CAT.JPG", "my photo.png", "a", "été-2024_v2.webp", "x" * MAX_NAME_LENGTH]
)
def test_plain_names_are_accepted(name: str) -> None:
    assert validate_object_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("bob/cat.png", "contains '/'"),
        ("/etc/passwd", "contains '/'"),
        ("a\\b.png", "folders on Windows"),
        ("..", "'..'"),
        ("cat..png", "'..'"),
        (".hidden", "starts with a dot"),
        ("tab\there.png", "control"),
        ("nul\x00.png", "control"),
        ("line\nbreak", "control"),
        ("zero\u200bwidth", "invisible"),
        (" cat.png", "whitespace"),
        ("cat?.png", "contains '\\?'"),
        ("x" * (MAX_NAME_LENGTH + 1), "the limit is"),
    ],
)
def test_unsafe_names_are_refused_saying_why(name: str, reason: str) -> None:
    with pytest.raises(InvalidObjectName, match=reason):
        validate_object_name(name)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidObjectName, match="must be text"):
        validate_object_name(b"cat.png")


@given(st.text(max_size=40))
def test_an_accepted_name_never_leaves_the_users_prefix(name: str) -> None:
    try:
        key = object_key("alice", name)
    except InvalidObjectName:
        return
    user, _, rest = key.partition("/")
    assert user == "alice" and rest == name
    assert "/" not in rest and "\\" not in rest and ".." not in rest
    assert all(ord(c) >= 32 and ord(c) != 127 for c in rest)


def test_results_are_named_next_to_the_original() -> None:
    assert stem("cat.jpg") == "cat"
    assert stem("archive.tar.gz") == "archive.tar"
    assert stem("cat") == "cat"
    assert derived_name("cat.jpg", "color-BW") == "cat.color-BW.png"
    assert derived_name("cat", "rotate-90") == "cat.rotate-90.png"
    long = "x" * MAX_NAME_LENGTH
    assert derived_name(long, "crop-0-0-10-10").startswith(long)  # results may be longer


def test_object_key_refuses_a_user_that_would_escape() -> None:
    with pytest.raises(InvalidObjectName):
        object_key("alice/../bob", "cat.png")
    with pytest.raises(InvalidObjectName):
        object_key("", "cat.png")
