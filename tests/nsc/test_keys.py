"""labkit.nsc.keys: seeds, public keys, kinds, signatures."""

from __future__ import annotations

import base64

import nkeys
import pytest

from labkit.nsc import keys
from labkit.nsc.keys import KeyKind


@pytest.mark.parametrize(
    ("kind", "letter"),
    [(KeyKind.OPERATOR, "O"), (KeyKind.ACCOUNT, "A"), (KeyKind.USER, "U")],
)
def test_create_seed_has_the_prefix_and_length_of_its_kind(kind: KeyKind, letter: str) -> None:
    seed = keys.create_seed(kind)
    assert seed.startswith("S" + letter)
    assert len(seed) == 58
    public = keys.public_key(seed)
    assert public.startswith(letter)
    assert len(public) == 56
    assert kind.letter == letter


def test_create_seed_is_random() -> None:
    seeds = {keys.create_seed(KeyKind.USER) for _ in range(20)}
    assert len(seeds) == 20


def test_seed_is_readable_by_nkeys() -> None:
    seed = keys.create_seed(KeyKind.ACCOUNT)
    kp = nkeys.from_seed(seed.encode())
    assert kp.public_key.decode() == keys.public_key(seed)


def test_public_key_is_deterministic() -> None:
    seed = keys.create_seed(KeyKind.USER)
    assert keys.public_key(seed) == keys.public_key(seed)


def test_public_key_of_garbage_raises() -> None:
    with pytest.raises(nkeys.NkeysError):
        keys.public_key("SUNOTASEED")


@pytest.mark.parametrize("kind", list(KeyKind))
def test_kind_of_reads_the_first_letter(kind: KeyKind) -> None:
    assert keys.kind_of(keys.public_key(keys.create_seed(kind))) is kind


@pytest.mark.parametrize("public", ["", "NABC", "CABC", "SUABC", "xyz"])
def test_kind_of_rejects_other_keys(public: str) -> None:
    with pytest.raises(ValueError, match="not an operator, account or user public key"):
        keys.kind_of(public)


def test_sign_and_verify() -> None:
    seed = keys.create_seed(KeyKind.USER)
    public = keys.public_key(seed)
    signature = keys.sign(seed, b"hello")
    assert isinstance(signature, bytes)
    assert len(signature) == 64
    assert keys.verify(public, b"hello", signature)


def test_signature_is_ed25519_deterministic() -> None:
    seed = keys.create_seed(KeyKind.ACCOUNT)
    assert keys.sign(seed, b"x") == keys.sign(seed, b"x")


def test_verify_rejects_other_data() -> None:
    seed = keys.create_seed(KeyKind.USER)
    assert not keys.verify(keys.public_key(seed), b"hellO", keys.sign(seed, b"hello"))


def test_verify_rejects_another_key() -> None:
    seed = keys.create_seed(KeyKind.USER)
    other = keys.public_key(keys.create_seed(KeyKind.USER))
    assert not keys.verify(other, b"hello", keys.sign(seed, b"hello"))


def test_verify_rejects_a_flipped_signature_bit() -> None:
    seed = keys.create_seed(KeyKind.OPERATOR)
    signature = bytearray(keys.sign(seed, b"hello"))
    signature[10] ^= 0x01
    assert not keys.verify(keys.public_key(seed), b"hello", bytes(signature))


@pytest.mark.parametrize("signature", [b"", b"short", b"\x00" * 63, b"\x00" * 65])
def test_verify_rejects_wrong_length_signatures(signature: bytes) -> None:
    public = keys.public_key(keys.create_seed(KeyKind.USER))
    assert not keys.verify(public, b"hello", signature)


def _corrupt_checksum(public: str) -> str:
    raw = bytearray(base64.b32decode(public + "=" * (-len(public) % 8)))
    raw[-1] ^= 0xFF
    return base64.b32encode(bytes(raw)).decode().rstrip("=")


def test_verify_rejects_malformed_public_keys() -> None:
    seed = keys.create_seed(KeyKind.USER)
    public = keys.public_key(seed)
    signature = keys.sign(seed, b"hello")
    for bad in [
        "",
        "not base32!",
        public.lower(),
        public[:-4],
        _corrupt_checksum(public),
        seed,  # a seed is not a public key
    ]:
        assert not keys.verify(bad, b"hello", signature), bad
