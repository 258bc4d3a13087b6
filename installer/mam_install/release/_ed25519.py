"""Ed25519 signature verification in pure Python: RFC 8032 §6's reference algorithm, verify only.

The pyz must check a release signature on every CPython 3.9-3.13 and every platform with no
compiled dependency, so it carries this instead of `cryptography` or PyNaCl. Only verification
is here: it handles public data (key, message, signature), so the reference code's lack of
constant-time arithmetic leaks nothing secret. Signing happens in CI with `cryptography`
(scripts/sign.py). Checked against RFC 8032 §7.1's vectors and against `cryptography`
(tests/test_ed25519.py).
"""

from __future__ import annotations

import hashlib

__all__ = ["verify"]

_Point = tuple[int, int, int, int]  # extended homogeneous coordinates (X, Y, Z, T)

_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493  # the order of the base point


def _inv(x: int) -> int:
    return pow(x, _P - 2, _P)


_D = -121665 * _inv(121666) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = 2 * t1 * t2 * _D % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(scalar: int, point: _Point) -> _Point:
    result = (0, 1, 1, 0)  # the neutral element
    while scalar > 0:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _equal(a: _Point, b: _Point) -> bool:
    # x1/z1 == x2/z2 and y1/z1 == y2/z2, without dividing.
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None  # a non-canonical encoding: RFC 8032 §5.1.3 step 1 rejects it
    x2 = (y * y - 1) * _inv(_D * y * y + 1) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None  # not on the curve
    if (x & 1) != sign:
        x = _P - x
    return x


def _decompress(data: bytes) -> _Point | None:
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * _inv(5) % _P
_GX = _recover_x(_GY, 0)
assert _GX is not None
_BASE = (_GX, _GY, 1, _GX * _GY % _P)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` (64 bytes) is ``public_key``'s (32 bytes) Ed25519 signature of
    ``message``; False for any malformed input, never an exception."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decompress(public_key)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _Q:
        return False  # malleability: RFC 8032 §5.1.7 step 1
    digest = hashlib.sha512(signature[:32] + public_key + message).digest()
    k = int.from_bytes(digest, "little") % _Q
    return _equal(_mul(s, _BASE), _add(r, _mul(k, a)))
