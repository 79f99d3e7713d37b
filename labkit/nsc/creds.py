"""The `.creds` format: a user's JWT and seed in their BEGIN/END armour."""

from __future__ import annotations

import re

from labkit.nsc import jwt
from labkit.nsc.errors import InvalidJwt

_TEMPLATE = """-----BEGIN NATS USER JWT-----
{jwt}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.
NKEYs are sensitive and should be treated as secrets.

-----BEGIN USER NKEY SEED-----
{seed}
------END USER NKEY SEED------

*************************************************************
"""
_BLOCK = re.compile(r"-{3,}BEGIN [^\n]+-{3,}\s*\n\s*(\S+)\s*\n\s*-{3,}END [^\n]+-{3,}")


def format_creds(user_jwt: str, user_seed: str) -> str:
    """The creds text nats clients read (nats-py takes it as `RawCredentials`)."""
    return _TEMPLATE.format(jwt=user_jwt.strip(), seed=user_seed.strip())


def parse_creds(text: str) -> tuple[str, str]:
    """The (jwt, seed) inside creds text."""
    blocks = _BLOCK.findall(text)
    if len(blocks) != 2:
        raise InvalidJwt("creds text must hold a user JWT block and a seed block")
    return blocks[0], blocks[1]


def user_of(creds: str) -> str:
    """The user name inside creds text (the first token of its subjects)."""
    user_jwt, _ = parse_creds(creds)
    return str(jwt.decode(user_jwt)["name"])
