"""labkit.nsc.jwt: encode, decode, verify, expiry; tampering is detected."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from labkit.nsc import jwt, keys
from labkit.nsc.errors import InvalidJwt, NscError
from labkit.nsc.keys import KeyKind


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_GOOD_HEADER = _b64(b'{"typ":"JWT","alg":"ed25519-nkey"}')


@pytest.fixture
def seed() -> str:
    return keys.create_seed(KeyKind.ACCOUNT)


@pytest.fixture
def token(seed: str) -> str:
    return jwt.encode({"name": "alice", "sub": "UABC", "nats": {"version": 2}}, seed)


def test_encode_has_three_base64url_parts_and_the_nats_header(token: str) -> None:
    parts = token.split(".")
    assert len(parts) == 3
    for part in parts:
        assert "=" not in part
        assert "+" not in part
        assert "/" not in part
    assert json.loads(_unb64(parts[0])) == {"typ": "JWT", "alg": "ed25519-nkey"}
    assert len(_unb64(parts[2])) == 64


def test_encode_sets_iss_iat_jti(seed: str, token: str) -> None:
    before = int(time.time())
    claims = jwt.decode(token)
    assert claims["iss"] == keys.public_key(seed)
    assert before - 5 <= claims["iat"] <= int(time.time()) + 1
    assert isinstance(claims["iat"], int)
    assert claims["name"] == "alice"
    assert claims["sub"] == "UABC"
    assert claims["nats"] == {"version": 2}


def test_encode_uses_the_given_issued_at(seed: str) -> None:
    assert jwt.decode(jwt.encode({}, seed, issued_at=1234))["iat"] == 1234


def test_encode_does_not_mutate_its_input(seed: str) -> None:
    claims = {"name": "x", "jti": "old"}
    jwt.encode(claims, seed)
    assert claims == {"name": "x", "jti": "old"}


def test_encode_overrides_given_iss_and_jti(seed: str) -> None:
    decoded = jwt.decode(jwt.encode({"iss": "OFAKE", "jti": "FAKE"}, seed))
    assert decoded["iss"] == keys.public_key(seed)
    assert decoded["jti"] != "FAKE"


def test_jti_is_base32_sha512_256_of_the_claims_without_it(token: str) -> None:
    claims = jwt.decode(token)
    jti = claims.pop("jti")
    digest = hashlib.new("sha512_256", json.dumps(claims, separators=(",", ":")).encode())
    expected = base64.b32encode(digest.digest()).decode().rstrip("=")
    assert jti == expected
    assert len(jti) == 52
    assert jti.isupper()
    assert "=" not in jti


def test_jti_changes_with_the_claims(seed: str) -> None:
    a = jwt.decode(jwt.encode({"name": "a"}, seed, issued_at=1))["jti"]
    b = jwt.decode(jwt.encode({"name": "b"}, seed, issued_at=1))["jti"]
    c = jwt.decode(jwt.encode({"name": "a"}, seed, issued_at=1))["jti"]
    assert a != b
    assert a == c


def test_verify_returns_the_claims(token: str) -> None:
    assert jwt.verify(token) == jwt.decode(token)


def test_verify_and_decode_tolerate_surrounding_whitespace(token: str) -> None:
    assert jwt.verify(f"  {token}\n") == jwt.decode(token)


def test_invalid_jwt_is_an_nsc_error_and_value_error() -> None:
    assert issubclass(InvalidJwt, NscError)
    assert issubclass(InvalidJwt, ValueError)


def _with_claims(token: str, change: dict[str, object]) -> str:
    header, body, signature = token.split(".")
    claims = json.loads(_unb64(body))
    claims.update(change)
    return ".".join([header, _b64(json.dumps(claims, separators=(",", ":")).encode()), signature])


@pytest.mark.parametrize(
    "change",
    [
        {"name": "mallory"},
        {"sub": "UOTHER"},
        {"nats": {"version": 2, "pub": {"allow": [">"]}}},
        {"exp": 9999999999},
        {"iat": 1},
    ],
)
def test_verify_detects_tampered_claims(token: str, change: dict[str, object]) -> None:
    tampered = _with_claims(token, change)
    jwt.decode(tampered)  # still well formed
    with pytest.raises(InvalidJwt, match="signature does not match"):
        jwt.verify(tampered)


def test_verify_detects_a_swapped_issuer(token: str) -> None:
    other = keys.public_key(keys.create_seed(KeyKind.ACCOUNT))
    with pytest.raises(InvalidJwt):
        jwt.verify(_with_claims(token, {"iss": other}))


@pytest.mark.parametrize("issuer", [None, 42, "", "not a key"])
def test_verify_rejects_a_missing_or_bogus_issuer(token: str, issuer: object) -> None:
    with pytest.raises(InvalidJwt):
        jwt.verify(_with_claims(token, {"iss": issuer}))


def test_verify_detects_a_flipped_signature_byte(token: str) -> None:
    header, body, signature = token.split(".")
    raw = bytearray(_unb64(signature))
    raw[0] ^= 0x01
    with pytest.raises(InvalidJwt, match="signature does not match"):
        jwt.verify(f"{header}.{body}.{_b64(bytes(raw))}")


def test_verify_detects_a_changed_signature_character(token: str) -> None:
    header, body, signature = token.split(".")
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    tampered = signature[:middle] + swapped + signature[middle + 1 :]
    with pytest.raises(InvalidJwt):
        jwt.verify(f"{header}.{body}.{tampered}")


def test_verify_detects_a_signature_from_another_key(seed: str) -> None:
    claims = {"name": "x"}
    good = jwt.encode(claims, seed, issued_at=1)
    forged = jwt.encode(claims, keys.create_seed(KeyKind.ACCOUNT), issued_at=1)
    header, body, _ = good.split(".")
    with pytest.raises(InvalidJwt):
        jwt.verify(f"{header}.{body}.{forged.split('.')[2]}")


@pytest.mark.parametrize("signature", ["", "AAAA", "!!!!"])
def test_verify_rejects_a_truncated_or_garbage_signature(token: str, signature: str) -> None:
    header, body, _ = token.split(".")
    with pytest.raises(InvalidJwt):
        jwt.verify(f"{header}.{body}.{signature}")


def test_verify_rejects_a_tampered_header(token: str) -> None:
    _, body, signature = token.split(".")
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey", "kid": "x"}).encode())
    with pytest.raises(InvalidJwt):
        jwt.verify(f"{header}.{body}.{signature}")


@pytest.mark.parametrize("alg", ["none", "HS256", "ed25519", None])
def test_decode_rejects_other_algorithms(token: str, alg: str | None) -> None:
    _, body, signature = token.split(".")
    header = _b64(json.dumps({"typ": "JWT", "alg": alg}).encode())
    with pytest.raises(InvalidJwt, match="unsupported JWT algorithm"):
        jwt.decode(f"{header}.{body}.{signature}")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        "!!!.@@@.###",
        f"{_b64(b'not json')}.{_b64(b'{}')}.AA",
        f"{_b64(b'[1]')}.{_b64(b'{}')}.AA",
        f"{_GOOD_HEADER}.{_b64(b'[1,2]')}.AA",
        f"{_GOOD_HEADER}.{_b64(bytes([0xC3, 0x28]))}.AA",
    ],
)
def test_malformed_tokens_raise_invalid_jwt(bad: str) -> None:
    with pytest.raises(InvalidJwt):
        jwt.decode(bad)
    with pytest.raises(InvalidJwt):
        jwt.verify(bad)


@pytest.mark.parametrize(
    ("claims", "now", "expired"),
    [
        ({}, 1000, False),
        ({"exp": None}, 1000, False),
        ({"exp": 0}, 1000, False),
        ({"exp": 999}, 1000, True),
        ({"exp": 1000}, 1000, True),
        ({"exp": 1001}, 1000, False),
        ({"exp": "999"}, 1000, True),
    ],
)
def test_is_expired(claims: jwt.Claims, now: float, expired: bool) -> None:
    assert jwt.is_expired(claims, now=now) is expired


def test_is_expired_defaults_to_the_current_time() -> None:
    assert jwt.is_expired({"exp": int(time.time()) - 10})
    assert not jwt.is_expired({"exp": int(time.time()) + 3600})
