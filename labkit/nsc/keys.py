"""Ed25519 nkeys: create seeds for operators, accounts and users, sign, verify.

nkeys 0.2.1 can read seeds but not create them, so a seed is made here from 32
random bytes with the prefix byte of its kind.
"""

from __future__ import annotations

import base64
import binascii
import enum
import secrets

import nacl.exceptions
import nacl.signing
import nkeys


class KeyKind(enum.Enum):
    """The roles of a key; the first letter of a public key tells its kind."""

    OPERATOR = nkeys.PREFIX_BYTE_OPERATOR
    ACCOUNT = nkeys.PREFIX_BYTE_ACCOUNT
    USER = nkeys.PREFIX_BYTE_USER

    @property
    def letter(self) -> str:
        return self.name[0]


def create_seed(kind: KeyKind) -> str:
    """A new random seed (the private key, starting with `S`) of the given kind."""
    seed: bytes = nkeys.encode_seed(secrets.token_bytes(32), kind.value)
    return seed.decode()


def public_key(seed: str) -> str:
    """The public key (identity) of a seed."""
    key: bytes = nkeys.from_seed(seed.encode()).public_key
    return key.decode()


def kind_of(public: str) -> KeyKind:
    """The kind of a public key, from its first letter."""
    for kind in KeyKind:
        if public.startswith(kind.letter):
            return kind
    raise ValueError(f"{public[:8]}... is not an operator, account or user public key")


def sign(seed: str, data: bytes) -> bytes:
    """The Ed25519 signature of `data` by `seed`."""
    signature: bytes = nkeys.from_seed(seed.encode()).sign(data)
    return signature


def verify(public: str, data: bytes, signature: bytes) -> bool:
    """True when `signature` is `public`'s signature of `data`."""
    try:
        raw = _decode_public(public)
        nacl.signing.VerifyKey(raw).verify(data, signature)
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False
    return True


def _decode_public(public: str) -> bytes:
    """The raw 32-byte Ed25519 key inside an encoded public key (checksum checked)."""
    try:
        decoded = base64.b32decode(public + "=" * (-len(public) % 8))
    except binascii.Error as exc:
        raise ValueError("not a base32 public key") from exc
    if len(decoded) != 35:
        raise ValueError("a public key holds 32 bytes")
    body, checksum = decoded[:-2], decoded[-2:]
    if nkeys.crc16(bytearray(body)).to_bytes(2, "little") != checksum:
        raise ValueError("public key checksum does not match")
    kind_of(public)
    return bytes(body[1:])
