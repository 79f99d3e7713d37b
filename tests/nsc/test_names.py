"""labkit.nsc.names: names are single, safe subject tokens."""

from __future__ import annotations

import pytest

from labkit.nsc.errors import InvalidName, NscError, ReservedName
from labkit.nsc.names import (
    MAX_NAME_LENGTH,
    reserved_reason,
    stack_user_names,
    validate_name,
    validate_user_name,
)
from labkit.settings import NscSettings


@pytest.mark.parametrize(
    "name",
    [
        "01jd8x7k2m3n4p5q6r7s8t9v0w",
        "01JD8X7K2M3N4P5Q6R7S8T9V0W",
        "alice",
        "a-b_c",
        "A",
        "0",
        "-",
        "_",
        "_inbo",
        "my_INBOX",
        "x" * MAX_NAME_LENGTH,
    ],
)
def test_accepts(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "is empty"),
        ("a.b", "a dot separates subject tokens"),
        (".", "a dot separates"),
        ("alice.", "a dot separates"),
        ("*", "'*' is a wildcard"),
        ("a*", "'*' is a wildcard"),
        (">", "'>' is a wildcard"),
        ("a>", "'>' is a wildcard"),
        ("a b", "contains whitespace"),
        ("a\tb", "contains whitespace"),
        ("alice\n", "contains whitespace"),
        (" ", "contains whitespace"),
        ("a\u00a0b", "contains whitespace"),
        ("x" * (MAX_NAME_LENGTH + 1), f"{MAX_NAME_LENGTH + 1} characters long; the limit is 64"),
        ("_INBOX", "would shadow the reply inboxes"),
        ("_INBOX_alice", "would shadow the reply inboxes"),
        ("_inbox", "would shadow the reply inboxes"),
        ("a/b", "contains '/'"),
        ("a$b", "contains '$'"),
        ("a!b@", "contains '!@'"),
        ("a:b", "contains ':'"),
        ("a,b", "contains ','"),
        ("é", "contains 'é'"),
        ("a+b", "use letters, digits, '-' or '_'"),
    ],
)
def test_rejects_with_a_reason(name: str, fragment: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_name(name)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("value", "type_name"), [(None, "NoneType"), (42, "int"), (b"alice", "bytes"), (["a"], "list")]
)
def test_rejects_non_strings(value: object, type_name: str) -> None:
    with pytest.raises(InvalidName, match=f"must be a string, got {type_name}"):
        validate_name(value)


def test_message_names_what_was_checked() -> None:
    with pytest.raises(InvalidName, match=r"^user name 'a\.b' contains '\.'"):
        validate_name("a.b", "user name")
    with pytest.raises(InvalidName, match="^account name is empty"):
        validate_name("", "account name")


def test_invalid_name_is_a_value_error_and_nsc_error() -> None:
    assert issubclass(InvalidName, ValueError)
    assert issubclass(InvalidName, NscError)


@pytest.mark.parametrize(
    "name",
    ["labkit_server", "labkit_x", "LABKIT_x", "persist", "persisted", "Persist-x", "_x", "_"],
)
def test_reserved_user_names_are_refused_with_a_reason(name: str) -> None:
    assert reserved_reason(name) is not None
    with pytest.raises(ReservedName, match="is reserved: .*; choose another name"):
        validate_user_name(name)


def test_the_stack_users_of_the_settings_are_reserved() -> None:
    stack_users = stack_user_names(NscSettings(server_user="srv", observer_user="tap"))
    assert stack_users == {"srv", "tap"}
    for name in stack_users:
        with pytest.raises(ReservedName, match="one of the stack's own users"):
            validate_user_name(name, stack_users)


@pytest.mark.parametrize(
    "name", ["alice", "01jd8x7k2m3n4p5q6r7s8t9v0w", "labkit", "per-sist", "a_b"]
)
def test_ordinary_user_names_pass(name: str) -> None:
    assert validate_user_name(name, stack_user_names(NscSettings())) == name
