"""A learner's user name is refused as a "user name", whatever is wrong with it."""

from __future__ import annotations

import pytest

from labkit.nsc.errors import InvalidName, ReservedName
from labkit.nsc.names import validate_user_name


@pytest.mark.parametrize("name", ["a.b", "", "a b", "x" * 65])
def test_an_invalid_user_name_is_called_a_user_name(name: str) -> None:
    with pytest.raises(InvalidName, match=r"^user name "):
        validate_user_name(name)


def test_a_reserved_user_name_is_called_a_user_name() -> None:
    with pytest.raises(ReservedName, match=r"^user name 'labkit_server' is reserved"):
        validate_user_name("labkit_server")
