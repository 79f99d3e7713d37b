"""Encode, decode and verify NATS JWTs (ed25519-nkey signatures), with no IO.

A NATS JWT is `base64url(header).base64url(claims).base64url(signature)`, the
signature made by the issuer's nkey over the first two parts. The `jti` is the
base32 SHA-512/256 of the claims without it, as the Go library computes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from typing import Any

from labkit.nsc import keys
from labkit.nsc.errors import InvalidJwt

HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
Claims = dict[str, Any]


def encode(claims: Claims, issuer_seed: str, *, issued_at: int | None = None) -> str:
    """Sign `claims` with `issuer_seed`; sets `iss`, `iat` and `jti`."""
    body = dict(claims)
    body["iss"] = keys.public_key(issuer_seed)
    body["iat"] = int(time.time()) if issued_at is None else issued_at
    body.pop("jti", None)
    body["jti"] = _claims_id(body)
    signing_input = f"{_b64(_json(HEADER))}.{_b64(_json(body))}"
    signature = keys.sign(issuer_seed, signing_input.encode())
    return f"{signing_input}.{_b64(signature)}"


def decode(token: str) -> Claims:
    """The claims of a token, without checking its signature."""
    header, claims, _ = _split(token)
    if header.get("alg") != HEADER["alg"]:
        raise InvalidJwt(f"unsupported JWT algorithm {header.get('alg')!r}")
    return claims


def verify(token: str) -> Claims:
    """The claims of a token whose signature matches its `iss`; raises InvalidJwt."""
    claims = decode(token)
    signing_input, _, signature = token.strip().rpartition(".")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not keys.verify(
        issuer, signing_input.encode(), _unb64(signature)
    ):
        raise InvalidJwt("the JWT signature does not match its issuer")
    return claims


def is_expired(claims: Claims, now: float | None = None) -> bool:
    """True when the claims carry an `exp` that has passed."""
    exp = claims.get("exp")
    if not exp:
        return False
    return int(exp) <= (time.time() if now is None else now)


def _split(token: str) -> tuple[Claims, Claims, bytes]:
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise InvalidJwt("a JWT has three dot-separated parts")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJwt(f"the JWT is not base64url JSON: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidJwt("the JWT header and claims must be JSON objects")
    return header, claims, _unb64(parts[2])


def _claims_id(claims: Claims) -> str:
    digest = hashlib.new("sha512_256", _json(claims)).digest()
    return base64.b32encode(digest).decode().rstrip("=")


def _json(value: Claims) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidJwt("the JWT is not base64url") from exc
