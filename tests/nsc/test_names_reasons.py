"""Each refused name says why, naming what was refused (the NSC service's 422 detail)."""

from __future__ import annotations

import pytest

from labkit.nsc.errors import InvalidName
from labkit.nsc.names import validate_name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a.b", "contains '.': a dot separates subject tokens"),
        ("a*", "contains '*': '*' is a wildcard"),
        ("a>", "contains '>': '>' is a wildcard"),
    ],
)
def test_a_refused_name_says_why(name: str, reason: str) -> None:
    with pytest.raises(InvalidName) as refused:
        validate_name(name)
    assert str(refused.value) == f"name {name!r} {reason}"


def test_the_message_names_what_was_refused_by_default_a_name() -> None:
    with pytest.raises(InvalidName, match=r"^name is empty"):
        validate_name("")
    with pytest.raises(InvalidName, match=r"^account is empty"):
        validate_name("", "account")
