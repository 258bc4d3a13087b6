#!/usr/bin/env python3
"""Sign a built release (the release job's signing steps). Run `python3 scripts/build.py` first.

    sign.py [DIST]           sigstore: one `<artifact>.sigstore.json` per artifact in SHA256SUMS
                             and one for SHA256SUMS (needs an OIDC identity, which CI provides);
                             `mam-install verify DIST --identity … --issuer …` checks them
    sign.py ed25519 [DIST]   write DIST/SHA256SUMS.ed25519, the offline signature the pyz itself
                             checks; the key is the base64 32-byte seed in $MAM_RELEASE_SIGNING_KEY
                             (or the file --key-file names)
    sign.py keygen OUT       make a key pair: OUT (the private seed, mode 0600) and OUT.pub (the
                             line for checksums/release-signing-key.pub)

Both need packages from checksums/sign-requirements.txt (sigstore, and `cryptography` for
Ed25519), installed from that small hash lock as .github/workflows/release.yml does:

    python3 scripts/locked_install.py .venv-sign checksums/sign-requirements.txt
    .venv-sign/bin/python scripts/sign.py ed25519 dist/
    .venv-sign/bin/python scripts/sign.py dist/
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "installer"))

KEY_ENV = "MAM_RELEASE_SIGNING_KEY"


def artifacts(dist: Path) -> list[Path]:
    """Everything SHA256SUMS lists (parsed strictly), then SHA256SUMS itself."""
    from mam_install.release._sums import parse_sums

    sums = dist / "SHA256SUMS"
    names = sorted(parse_sums(sums.read_bytes(), str(sums)))
    return [dist / name for name in names] + [sums]


def sign_command(python: str, files: list[Path]) -> list[str]:
    # --overwrite: a re-run of the job replaces the bundles of the previous attempt.
    return [python, "-m", "sigstore", "sign", "--overwrite", *map(str, files)]


def _seed(text: str) -> bytes:
    seed = base64.b64decode(text.strip(), validate=True)
    if len(seed) != 32:
        raise SystemExit("sign.py: the Ed25519 key must be the base64 of a 32-byte seed")
    return seed


def public_key_line(seed: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def sign_sums(dist: Path, seed: bytes) -> Path:
    """Sign SHA256SUMS (parsed strictly first: a malformed one is never signed), then check the
    signature with the installer's own verifier, so CI never publishes one the pyz refuses."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from mam_install.release._signature import (
        SIGNATURE_NAME,
        encode_signature,
        verify_sums_signature,
    )

    artifacts(dist)
    sums = (dist / "SHA256SUMS").read_bytes()
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(sums)
    out = dist / SIGNATURE_NAME
    out.write_bytes(encode_signature(signature))
    public = base64.b64decode(public_key_line(seed))
    verify_sums_signature(sums, out.read_bytes(), [public], str(out))
    return out


def keygen(out: Path) -> None:
    seed = os.urandom(32)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(base64.b64encode(seed).decode() + "\n")
    Path(f"{out}.pub").write_text(public_key_line(seed) + "\n")
    print(f"wrote {out} (secret: store it as {KEY_ENV}) and {out}.pub", file=sys.stderr)


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["keygen"]:
        parser = argparse.ArgumentParser(prog="sign.py keygen")
        parser.add_argument("out", type=Path)
        keygen(parser.parse_args(argv[1:]).out)
        return 0
    if argv[:1] == ["ed25519"]:
        parser = argparse.ArgumentParser(prog="sign.py ed25519")
        parser.add_argument("dist", nargs="?", type=Path, default=ROOT / "dist")
        parser.add_argument("--key-file", type=Path, help=f"instead of ${KEY_ENV}")
        args = parser.parse_args(argv[1:])
        text = args.key_file.read_text() if args.key_file else os.environ.get(KEY_ENV)
        if not text:
            raise SystemExit(f"sign.py: set {KEY_ENV} (or pass --key-file) to sign")
        print(f"wrote {sign_sums(args.dist, _seed(text))}", file=sys.stderr)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", nargs="?", type=Path, default=ROOT / "dist")
    parser.add_argument("--dry-run", action="store_true", help="print the command only")
    args = parser.parse_args(argv)
    command = sign_command(sys.executable, artifacts(args.dist))
    print(" ".join(command), file=sys.stderr)
    if args.dry_run:
        return 0
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
