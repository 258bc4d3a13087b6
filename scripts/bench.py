#!/usr/bin/env python3
"""Benchmarks of DESIGN §9, each side by side with its peer in one run (compare the ratios).

1. `mam-install.pyz --version` vs `python -c "import click"`;
2. a full install of the payload vs the unverified shell peer the original install.sh was
   (mktemp -d, tar -x, a find loop of `[ -e "$dst" ] || cp`), and a no-op re-install vs the same;
3. an install into a workspace holding 50,000 unrelated files vs an empty one;
4. streaming SHA-256 of a 256 MiB file (mam_install._hashing) vs hashlib on bytes in memory.
Run after `python3 scripts/build.py`; prints a table with medians and ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "installer"))

SHELL_PEER = r"""
set -eu
archive=$1 ws=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$archive" -C "$tmp"
cd "$tmp/workspace"
find . -type f | while IFS= read -r f; do
  dst="$ws/${f#./}"
  [ -e "$dst" ] && continue
  mkdir -p "$(dirname "$dst")"
  cp -p -- "$f" "$dst"
done
"""


def median_seconds(
    action: Callable[[], None], runs: int, setup: Callable[[], None] | None = None
) -> float:
    samples = []
    for _ in range(runs):
        if setup is not None:
            setup()
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(argv: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def row(name: str, ours: float, peer: float, peer_name: str, budget: str) -> str:
    return (
        f"| {name} | {ours * 1000:.1f} ms | {peer_name} {peer * 1000:.1f} ms | "
        f"{ours / peer:.2f}x | {budget} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    # The Python a person already has: the system one where there is one.
    system = "/usr/bin/python3"
    parser.add_argument(
        "--python", default=system if os.path.exists(system) else os.path.realpath(sys.executable)
    )
    args = parser.parse_args()
    pyz = args.dist / "mam-install.pyz"
    archive = next(args.dist.glob("mam-payload-*.tar.gz"))
    python = args.python
    work = Path(tempfile.mkdtemp(prefix="mam-bench-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["SHIV_ROOT"] = str(work / "shiv")
    site = next((ROOT / "build").glob("site-*"))
    click_env = dict(env, PYTHONPATH=str(site))
    run([python, str(pyz), "--version"], env)  # first run extracts; we measure warm starts
    rows = []

    version = median_seconds(lambda: run([python, str(pyz), "--version"], env), args.runs)
    click = median_seconds(lambda: run([python, "-c", "import click"], click_env), args.runs)
    rows.append(row("`--version`", version, click, "`import click`", "light (click + CLI only)"))

    ws = work / "ws"

    def fresh() -> None:
        shutil.rmtree(ws, ignore_errors=True)
        ws.mkdir()

    install = [python, str(pyz), "install", "-y", "--no-host", "--workspace", str(ws)]
    shell = ["sh", "-c", SHELL_PEER, "sh", str(archive), str(ws)]
    ours = median_seconds(lambda: run(install, env), args.runs, fresh)
    peer = median_seconds(lambda: run(shell, env), args.runs, fresh)
    rows.append(row("full install", ours, peer, "shell peer", "<= 1.5x"))

    fresh()
    run(install, env)
    ours_noop = median_seconds(lambda: run(install, env), args.runs)
    peer_noop = median_seconds(lambda: run(shell, env), args.runs)
    rows.append(row("no-op re-install", ours_noop, peer_noop, "shell peer", "< 1.0x"))

    big = work / "big"

    def fresh_big() -> None:
        shutil.rmtree(big / ".agents", ignore_errors=True)
        shutil.rmtree(big / ".mam", ignore_errors=True)
        for name in ("AGENT.md", ".env.example"):
            (big / name).unlink(missing_ok=True)

    for i in range(50_000):
        directory = big / "src" / f"d{i // 500}"
        if i % 500 == 0:
            directory.mkdir(parents=True)
        (directory / f"f{i}.txt").write_bytes(b"x")
    big_install = [python, str(pyz), "install", "-y", "--no-host", "--workspace", str(big)]
    crowded = median_seconds(lambda: run(big_install, env), args.runs, fresh_big)
    rows.append(row("install, 50,000 unrelated files", crowded, ours, "empty workspace", "<= 1.1x"))

    from mam_install._hashing import sha256_file

    blob = work / "blob"
    data = os.urandom(1 << 20) * 256
    blob.write_bytes(data)
    streamed = median_seconds(lambda: sha256_file(blob), 3)
    in_memory = median_seconds(lambda: hashlib.sha256(data).hexdigest(), 3)
    rows.append(
        row(
            "sha256 of 256 MiB",
            streamed,
            in_memory,
            "hashlib in memory",
            ">= 80% throughput (<= 1.25x)",
        )
    )

    shutil.rmtree(work, ignore_errors=True)
    version_of = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"Python {version_of} ({python}), {args.runs} runs each, medians")
    print("| measure | mam-install | peer | ratio | budget |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
