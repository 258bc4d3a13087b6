#!/usr/bin/env python3
"""Install a hash-locked requirements file exactly as written, then prove it complete with
`pip check`. The one way every lock in checksums/ is installed: by scripts/test.py (the test
venv), scripts/build.py (the build venv and the pyz's site), the release workflow (signing) and
tests/test_locks.py.

Why `--no-deps`: pip before 23.3 (the pip bundled with CPython 3.9-3.12, in Debian's and macOS's
venvs) resolves a requirement with extras, such as sigstore-rekor-types' `pydantic[email]`,
apart from the lock's own `pydantic==` pin, takes the newest release, and hash mode then refuses
it (pypa/pip#9644): a lock that installed yesterday breaks when someone publishes a package.
With `--no-deps` nothing is resolved; the lock alone decides, and `pip check` then fails if it
misses a dependency or pins one that does not fit. `--only-binary=:all:` runs no build code.

usage: locked_install.py [--python BASE] [--target DIR] VENV LOCK
  creates VENV with BASE's bundled pip unless it exists, then installs LOCK into it, or with
  --target into DIR with VENV's pip (as scripts/build.py installs the pyz's dependencies)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

PIP_INSTALL = ("install", "-q", "--no-deps", "--require-hashes", "--only-binary=:all:")


def _run(argv: list[str]) -> None:
    print("$ " + " ".join(argv), file=sys.stderr, flush=True)
    subprocess.run(argv, check=True)


def create_venv(path: Path, base: str = sys.executable) -> Path:
    """A fresh venv with the pip that `base` bundles; returns its python."""
    _run([base, "-m", "venv", str(path)])
    return path / "bin" / "python"


def install_lock(python: str | Path, lock: Path, *, target: Path | None = None) -> None:
    """Install `lock` into `python`'s environment, or into the directory `target` (the pyz's
    site), then `pip check` exactly what was installed. Raises CalledProcessError."""
    pip = [str(python), "-m", "pip"]
    if target is None:
        _run([*pip, *PIP_INSTALL, "-r", str(lock)])
        _run([*pip, "check"])
        return
    _run([*pip, *PIP_INSTALL, "--no-compile", "--target", str(target), "-r", str(lock)])
    check_target(python, target)


def check_target(python: str | Path, target: Path) -> None:
    """`pip check` of the directory alone: a venv without pip whose only site is `target`,
    checked with `python`'s pip through `--python` (pip >= 22.3; the build lock pins pip), so
    neither the build venv's packages nor pip's own can hide a missing dependency."""
    with tempfile.TemporaryDirectory(prefix="pip-check-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True)
        checker = venv / "bin" / "python"
        code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        purelib = subprocess.run(
            [str(checker), "-c", code], check=True, capture_output=True, text=True
        ).stdout.strip()
        (Path(purelib) / "locked-site.pth").write_text(f"{target.resolve()}\n")
        _run([str(python), "-m", "pip", "--python", str(checker), "check"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv", type=Path, help="created if it has no bin/python")
    parser.add_argument("lock", type=Path)
    parser.add_argument("--python", default=sys.executable, help="the venv's base interpreter")
    parser.add_argument("--target", type=Path, help="install into this directory instead")
    args = parser.parse_args()
    python = args.venv / "bin" / "python"
    try:
        if not python.exists():
            create_venv(args.venv, args.python)
        install_lock(python, args.lock, target=args.target)
    except subprocess.CalledProcessError as error:
        print(f"locked_install: {args.lock} did not install: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
