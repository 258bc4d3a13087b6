#!/usr/bin/env python3
"""Sign a built release with sigstore (the release job's signing step; needs an OIDC identity,
which CI provides): one `<artifact>.sigstore.json` bundle per artifact in SHA256SUMS, and one for
SHA256SUMS itself. Run `python3 scripts/build.py` first; `mam-install verify dist/ --identity …
--issuer … --require-signature` checks the result.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "installer"))


def artifacts(dist: Path) -> list[Path]:
    """Everything SHA256SUMS lists (parsed strictly), then SHA256SUMS itself."""
    from mam_install._sums import parse_sums

    sums = dist / "SHA256SUMS"
    names = sorted(parse_sums(sums.read_bytes(), str(sums)))
    return [dist / name for name in names] + [sums]


def sign_command(python: str, files: list[Path]) -> list[str]:
    # --overwrite: a re-run of the job replaces the bundles of the previous attempt.
    return [python, "-m", "sigstore", "sign", "--overwrite", *map(str, files)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", nargs="?", type=Path, default=ROOT / "dist")
    parser.add_argument("--dry-run", action="store_true", help="print the command only")
    args = parser.parse_args()
    command = sign_command(sys.executable, artifacts(args.dist))
    print(" ".join(command), file=sys.stderr)
    if args.dry_run:
        return 0
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
