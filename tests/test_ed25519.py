"""The pure-Python Ed25519 verifier the pyz carries: RFC 8032's vectors, `cryptography`'s
signatures, and the malformed inputs it must refuse without raising."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mam_install.release._ed25519 import verify
from workspaces import ROOT

VECTORS = json.loads((ROOT / "tests/data/ed25519/rfc8032-7.1.json").read_text())["vectors"]
# The order of the base point: a signature's S must be below it (RFC 8032 §5.1.7).
Q = 2**252 + 27742317777372353535851937790883648493


def _raw(key):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_rfc8032_vectors_verify_and_any_change_does_not(vector):
    public = bytes.fromhex(vector["public_key"])
    message = bytes.fromhex(vector["message"])
    signature = bytes.fromhex(vector["signature"])
    assert verify(public, message, signature)
    assert not verify(public, message + b"\0", signature)
    flipped = bytearray(signature)
    flipped[5] ^= 0x10
    assert not verify(public, message, bytes(flipped))
    other = bytes.fromhex(VECTORS[(VECTORS.index(vector) + 1) % len(VECTORS)]["public_key"])
    assert not verify(other, message, signature)


def test_the_vectors_public_keys_are_their_secret_keys_own():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    for vector in VECTORS:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["secret_key"]))
        assert _raw(key).hex() == vector["public_key"]


@settings(max_examples=25, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_signatures_made_by_cryptography_verify(seed, message):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(seed)
    assert verify(_raw(key), message, key.sign(message))
    assert not verify(_raw(key), message + b"!", key.sign(message))


def test_malformed_keys_and_signatures_are_false_not_errors():
    vector = VECTORS[0]
    public = bytes.fromhex(vector["public_key"])
    signature = bytes.fromhex(vector["signature"])
    message = bytes.fromhex(vector["message"])
    assert not verify(public[:31], message, signature)
    assert not verify(public, message, signature[:63])
    assert not verify(public, message, signature + b"\0")
    # S + Q is the same scalar mod Q: accepting it would make signatures malleable.
    s = int.from_bytes(signature[32:], "little")
    assert not verify(public, message, signature[:32] + (s + Q).to_bytes(32, "little"))
    # y >= p is a non-canonical encoding; an R that is not the signature's never verifies.
    assert not verify(b"\xff" * 31 + b"\x7f", message, signature)
    assert not verify(public, message, (2).to_bytes(32, "little") + signature[32:])
