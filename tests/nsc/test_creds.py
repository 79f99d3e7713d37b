"""labkit.nsc.creds: the .creds armour."""

from __future__ import annotations

import pytest

from labkit.nsc import jwt, keys
from labkit.nsc.creds import format_creds, parse_creds
from labkit.nsc.errors import InvalidJwt
from labkit.nsc.keys import KeyKind


@pytest.fixture
def pair() -> tuple[str, str]:
    user_seed = keys.create_seed(KeyKind.USER)
    token = jwt.encode({"sub": keys.public_key(user_seed)}, keys.create_seed(KeyKind.ACCOUNT))
    return token, user_seed


def test_format_creds_shape(pair: tuple[str, str]) -> None:
    token, seed = pair
    text = format_creds(token, seed)
    lines = text.splitlines()
    assert lines[0] == "-----BEGIN NATS USER JWT-----"
    assert lines[1] == token
    assert lines[2] == "------END NATS USER JWT------"
    assert "-----BEGIN USER NKEY SEED-----" in lines
    assert lines[lines.index("-----BEGIN USER NKEY SEED-----") + 1] == seed
    assert "------END USER NKEY SEED------" in lines
    assert text.endswith("\n")


def test_round_trip(pair: tuple[str, str]) -> None:
    token, seed = pair
    assert parse_creds(format_creds(token, seed)) == (token, seed)


def test_format_strips_whitespace(pair: tuple[str, str]) -> None:
    token, seed = pair
    assert parse_creds(format_creds(f"\n {token} \n", f"{seed}\n")) == (token, seed)


def test_parse_tolerates_crlf_and_indentation(pair: tuple[str, str]) -> None:
    token, seed = pair
    text = format_creds(token, seed).replace("\n", "\r\n")
    assert parse_creds(text) == (token, seed)
    indented = "\n".join("   " + line for line in format_creds(token, seed).splitlines())
    assert parse_creds(indented) == (token, seed)


def test_parsed_parts_are_usable(pair: tuple[str, str]) -> None:
    token, seed = pair
    parsed_jwt, parsed_seed = parse_creds(format_creds(token, seed))
    claims = jwt.verify(parsed_jwt)
    assert claims["sub"] == keys.public_key(parsed_seed)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "-----BEGIN NATS USER JWT-----\n",
        "-----BEGIN NATS USER JWT-----\nabc\n------END NATS USER JWT------\n",
        "-----BEGIN NATS USER JWT-----\n\n------END NATS USER JWT------\n",
        "\x00\x01\x02",
    ],
)
def test_garbage_raises_invalid_jwt(garbage: str) -> None:
    with pytest.raises(InvalidJwt, match="creds text must hold"):
        parse_creds(garbage)


def test_three_blocks_raise_invalid_jwt(pair: tuple[str, str]) -> None:
    token, seed = pair
    with pytest.raises(InvalidJwt):
        parse_creds(format_creds(token, seed) + format_creds(token, seed))
