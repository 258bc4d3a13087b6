"""Streaming SHA-256: the same digest as hashlib, in constant memory."""

from __future__ import annotations

import hashlib
import io

from mam_install._hashing import (
    CHUNK_SIZE,
    is_sha256_hex,
    sha256_file,
    sha256_stream,
)


def test_streamed_digest_equals_hashlib_across_chunk_boundaries(tmp_path):
    for size in (0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 7):
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        path = tmp_path / f"f{size}"
        path.write_bytes(data)
        expected = hashlib.sha256(data).hexdigest()
        assert sha256_file(path) == expected
        assert sha256_stream(io.BytesIO(data)) == expected


def test_only_64_lowercase_hex_digits_are_a_sha256():
    assert is_sha256_hex("a" * 64)
    for bad in ("A" * 64, "a" * 63, "a" * 65, "g" * 64, " " + "a" * 63, ""):
        assert not is_sha256_hex(bad)
