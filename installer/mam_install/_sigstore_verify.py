"""Offline verification of sigstore bundles, when the optional `sigstore` package is installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import IntegrityError, PlatformError
from ._hashing import sha256_file

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot

__all__ = ["INSTALL_HINT", "sigstore_available", "verify_bundle"]

INSTALL_HINT = "pip install 'mam-install[sigstore]'"

# sigstore-python keeps its embedded copy of the public-good trusted root under this TUF URL.
_PRODUCTION_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"


def sigstore_available() -> bool:
    """True when `sigstore` can be imported; finding it does not import it."""
    try:
        return importlib.util.find_spec("sigstore") is not None
    except (ImportError, ValueError):
        return False


def verify_bundle(
    artifact: Path,
    bundle: Path,
    *,
    identity: str,
    issuer: str,
    trusted_root: Path | None,
) -> None:
    """Check that ``bundle`` signs ``artifact`` for ``identity`` from ``issuer``, offline.

    The signature, the certificate chain up to the trusted root's Fulcio CA, the transparency
    log inclusion proof and the signer's identity and OIDC issuer are all checked, without any
    network access. ``trusted_root`` pins the root of trust; without it the public-good root
    embedded in the installed sigstore release is used (read from the package, not from a TUF
    cache under $HOME). The artifact is hashed in streaming fashion, so size costs no memory.

    Raises `PlatformError` (exit 3) when sigstore is not installed, and `IntegrityError`
    (exit 5) for everything else: unreadable or malformed bundle or root, bad signature,
    wrong identity or issuer.
    """
    try:
        from sigstore.hashes import Hashed
        from sigstore.models import Bundle
        from sigstore.verify import Verifier
        from sigstore.verify.policy import Identity
        from sigstore_models.common.v1 import HashAlgorithm
    except ImportError as exc:
        raise PlatformError(
            f"cannot check {bundle}: the sigstore package is not installed; run "
            f"`{INSTALL_HINT}` and verify again"
        ) from exc

    try:
        bundle_json = bundle.read_bytes()
        digest = bytes.fromhex(sha256_file(artifact))
    except OSError as exc:
        raise IntegrityError(
            f"cannot check {bundle}: {exc.filename} could not be read ({exc.strerror}); "
            "make sure the artifact and its .sigstore.json bundle are both present"
        ) from exc

    try:
        root = _load_trusted_root(trusted_root)
        parsed = Bundle.from_json(bundle_json)
        verifier = Verifier(trusted_root=root)
        verifier.verify_artifact(
            Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest),
            parsed,
            Identity(identity=identity, issuer=issuer),
        )
    except IntegrityError:
        raise
    except Exception as exc:
        # Fail closed: whatever sigstore or its parsers raise on hostile input means "not verified".
        raise IntegrityError(
            f"{bundle} does not verify {artifact.name} for identity {identity!r} and issuer "
            f"{issuer!r}: {_one_line(exc)}; do not use this artifact, or check the identity "
            "and issuer you expect"
        ) from exc


def _load_trusted_root(path: Path | None) -> TrustedRoot:
    from sigstore.models import TrustedRoot

    if path is not None:
        try:
            return TrustedRoot.from_file(str(path))
        except Exception as exc:
            raise IntegrityError(
                f"the trusted root {path} could not be loaded ({_one_line(exc)}); pass the "
                "trusted_root.json of the sigstore instance that signed the release"
            ) from exc
    try:
        from sigstore._utils import read_embedded  # private, but stable across 3.x and 4.x
        from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootMessage

        embedded = read_embedded("trusted_root.json", _PRODUCTION_TUF_URL)
        return TrustedRoot(TrustedRootMessage.from_json(embedded))
    except Exception as exc:
        raise IntegrityError(
            f"the installed sigstore release carries no embedded trusted root ({_one_line(exc)});"
            " pass the trusted_root.json to pin explicitly"
        ) from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
