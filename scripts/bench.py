#!/usr/bin/env python3
"""Benchmarks of DESIGN §9, each side by side with its peer in one run: compare the ratios.

Every pair is interleaved (ours, peer, peer, ours, ...) so that load from elsewhere on the
machine falls on both sides; each cell is the median wall time with the median CPU time (user +
system of the child) beside it. Rows:

1. `--version` vs `python -c "import click"`, the path to click set after start-up (so .pth
   hooks of the interpreter run on both sides), and `python -c pass`;
2. the scale curve: a fresh install and a no-op re-install of pyzs built by scripts/build.py
   from synthetic payloads of 8, 100, 1,000 and 4,000 files, vs the unverified shell peer the
   original install.sh was (mktemp -d, tar -x, a find loop of `[ -e "$dst" ] || cp`);
3. the first run of a fresh pyz (empty SHIV_ROOT) vs a warm run, per Python;
4. get-mam.py end to end (download from a local HTTP server, check, first run, install);
5. `verify` per archive member and its peak memory at 8 and 4,000 files; streamed SHA-256 vs
   hashlib in memory; an install into a workspace of 50,000 unrelated files vs an empty one.

`--smoke` runs every kind of row once, at 8 and 30 files (a test runs it, so it cannot rot).
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "installer"))
sys.path.insert(0, str(ROOT))

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


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child
    rss: int  # peak resident set of the child, KiB


def measure(argv: Sequence[str | Path], env: dict[str, str]) -> Sample:
    """Run ``argv`` to completion (exit 0 required) and return its cost."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(a) for a in argv], env=env, stdout=subprocess.DEVNULL, stderr=errors,
            stdin=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            errors.seek(0)
            raise SystemExit(f"bench: {argv} exited {proc.returncode}: {errors.read().decode()}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


@dataclass(frozen=True)
class Cell:
    wall: float
    cpu: float
    rss: int

    @staticmethod
    def of(samples: list[Sample]) -> Cell:
        return Cell(
            statistics.median(s.wall for s in samples),
            statistics.median(s.cpu for s in samples),
            max(s.rss for s in samples),
        )

    def text(self) -> str:
        return f"{self.wall * 1000:,.0f} ms (cpu {self.cpu * 1000:,.0f})"


Step = Callable[[], Sample]


def interleaved(sides: Sequence[tuple[Callable[[], None], Step]], runs: int) -> list[Cell]:
    """Run each (setup, step) ``runs`` times, alternating the order every round."""
    samples: list[list[Sample]] = [[] for _ in sides]
    for round_ in range(runs):
        order = range(len(sides)) if round_ % 2 == 0 else reversed(range(len(sides)))
        for i in order:
            setup, step = sides[i]
            setup()
            samples[i].append(step())
    return [Cell.of(s) for s in samples]


def nothing() -> None:
    return None


@dataclass
class Table:
    rows: list[str]

    def add(self, name: str, ours: Cell, peer: Cell, peer_name: str, budget: str, met: bool | None
            ) -> None:
        verdict = "—" if met is None else ("met" if met else "**not met**")
        self.rows.append(
            f"| {name} | {ours.text()} | {peer_name}: {peer.text()} | "
            f"{ours.wall / peer.wall:.2f}x | {budget} | {verdict} |"
        )


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.python = args.python
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["SHIV_ROOT"] = str(work / "shiv")
        self.table = Table([])

    def runs(self, files: int) -> int:
        if self.args.smoke:
            return 1
        if files >= 4000:  # each round is a minute of the shell peer on a loaded 2-core box
            return 2
        return self.args.runs if files <= 100 else 3

    # -- building releases -------------------------------------------------------------------

    def release(self, files: int, pythons: list[str]) -> Path:
        """dist/ of scripts/build.py for a synthetic payload of ``files`` workspace files."""
        payload = self.work / f"payload-{files}"
        (payload / "workspace/.agents/skills/gen").mkdir(parents=True)
        (payload / "VERSION").write_text("1.0.0\n")
        (payload / "workspace/AGENT.md").write_text("# agents\n" * 40)
        body = "".join(f"echo line {i}\n" for i in range(60))  # ~1 KiB, like the real tools
        for i in range(files - 1):
            path = payload / f"workspace/.agents/skills/gen/d{i // 100:03d}/tool{i:05d}.sh"
            path.parent.mkdir(exist_ok=True)
            path.write_text(f"#!/bin/sh\n# tool {i}\n{body}")
        out = self.work / f"dist-{files}"
        # A base URL on this machine (get-mam.py is pointed at the local server anyway): verify
        # refuses a release whose bootstrap downloads from the build's placeholder.
        argv = [sys.executable, str(ROOT / "scripts/build.py"), "--payload", str(payload),
                "--out", str(out), "--base-url", "http://127.0.0.1:9/mam/{version}"]
        for python in pythons:
            argv += ["--bytecode-for", python]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return out

    def ours(self, dist: Path, *args: str | Path, python: str | None = None,
             env: dict[str, str] | None = None) -> Step:
        argv = [python or self.python, dist / "mam-install.pyz", *args]
        return lambda: measure(argv, env or self.env)

    # -- rows ----------------------------------------------------------------------------------

    def start_up(self, dist: Path) -> None:
        click_site = self.work / "click-site"
        shutil.copytree(next((ROOT / "build").glob("site-*")) / "click", click_site / "click")
        subprocess.run([self.python, "-m", "compileall", "-q", str(click_site)], check=True)
        peer = [self.python, "-c", f"import sys; sys.path.insert(0, {str(click_site)!r}); "
                "import click"]
        bare = [self.python, "-c", "pass"]
        version, click, empty = interleaved(
            [(nothing, self.ours(dist, "--version")),
             (nothing, lambda: measure(peer, self.env)),
             (nothing, lambda: measure(bare, self.env))],
            self.runs(8),
        )
        self.empty = empty
        self.table.add("`--version`", version, click, "`import click`", "<= 1.5x",
                       version.wall <= 1.5 * click.wall)
        self.table.add("`python -c pass`", empty, click, "`import click`", "(start-up floor)",
                       None)

    def scale(self, files: int, dist: Path) -> None:
        ws = self.work / "ws"
        archive = next(dist.glob("mam-payload-*.tar.gz"))

        def fresh() -> None:
            shutil.rmtree(ws, ignore_errors=True)
            ws.mkdir()

        install = self.ours(dist, "install", "-y", "--no-host", "--workspace", ws)
        shell = ["sh", "-c", SHELL_PEER, "sh", str(archive), str(ws)]
        peer: Step = lambda: measure(shell, self.env)  # noqa: E731
        ours, theirs = interleaved([(fresh, install), (fresh, peer)], self.runs(files))
        bound = 2.0 if files <= 8 else 0.5
        self.table.add(f"fresh install, {files:,} files", ours, theirs, "shell peer",
                       f"<= {bound}x" if files in (8, 1000, 4000) else "(curve)",
                       ours.wall <= bound * theirs.wall if files in (8, 1000, 4000) else None)
        fresh()
        install()
        ours, theirs = interleaved([(nothing, install), (nothing, peer)], self.runs(files))
        if files <= 8:
            limit = self.empty.wall + 0.030
            self.table.add(f"no-op re-install, {files:,} files", ours, theirs, "shell peer",
                           f"<= `python -c pass` + 30 ms ({limit * 1000:.0f} ms)",
                           ours.wall <= limit)
        else:
            self.table.add(f"no-op re-install, {files:,} files", ours, theirs, "shell peer",
                           "<= 0.2x" if files == 1000 else "(curve)",
                           ours.wall <= 0.2 * theirs.wall if files == 1000 else None)
        shutil.rmtree(ws, ignore_errors=True)

    def first_run(self, dist: Path, python: str) -> None:
        ws = self.work / "ws"
        env = dict(self.env)
        count = iter(range(10**6))

        def fresh_root() -> None:
            env["SHIV_ROOT"] = str(self.work / f"shiv-first-{next(count)}")
            shutil.rmtree(ws, ignore_errors=True)
            ws.mkdir()

        def fresh_ws() -> None:
            shutil.rmtree(ws, ignore_errors=True)
            ws.mkdir()

        install = self.ours(dist, "install", "-y", "--no-host", "--workspace", ws,
                            python=python, env=env)
        first, warm = [], []
        for _ in range(self.runs(8)):  # a first run, then a warm run of that extraction
            fresh_root()
            first.append(install())
            fresh_ws()
            warm.append(install())
        version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        ours, theirs = Cell.of(first), Cell.of(warm)
        self.table.add(f"first run (empty SHIV_ROOT), install, Python {version}", ours, theirs,
                       "warm run", "<= 1.5x", ours.wall <= 1.5 * theirs.wall)

    def bootstrap(self, dist: Path) -> None:
        from tests.release_server import ReleaseServer, running_server

        ws = self.work / "ws"
        env = {k: v for k, v in self.env.items() if "proxy" not in k.lower()}
        count = iter(range(10**6))

        def fresh_root() -> None:
            env["SHIV_ROOT"] = str(self.work / f"shiv-boot-{next(count)}")
            shutil.rmtree(ws, ignore_errors=True)
            ws.mkdir()

        args = ["install", "-y", "--no-host", "--workspace", ws]
        first = self.ours(dist, *args, env=env)
        with running_server() as server:
            server.routes["/rel/mam-install.pyz"] = ReleaseServer.ok(
                (dist / "mam-install.pyz").read_bytes()
            )
            env["MAM_RELEASE_URL"] = server.url("/rel")
            get_mam = [self.python, dist / "get-mam.py", *args]
            ours, theirs = interleaved(
                [(fresh_root, lambda: measure(get_mam, env)), (fresh_root, first)],
                self.runs(8),
            )
        self.table.add("get-mam.py from a local server, install", ours, theirs,
                       "the pyz's first run", "(download + check + first run)", None)

    def verify(self, small: Path, large: Path, files: int) -> None:
        if large == small:
            return
        ours, theirs = interleaved(
            # --allow-dirty: a benchmark's builds are local test builds, often of a dirty tree.
            [(nothing, self.ours(large, "verify", "--allow-dirty", large)),
             (nothing, self.ours(small, "verify", "--allow-dirty", small))],
            self.runs(files),
        )
        per_member = (ours.wall - theirs.wall) / (files - 8)
        self.table.add(f"`verify`, {files:,} vs 8 files", ours, theirs, "8 files",
                       f"<= 0.2 ms per member ({per_member * 1000:.3f} ms)",
                       per_member <= 0.0002)
        self.table.rows.append(
            f"| `verify` peak memory, {files:,} vs 8 files | {ours.rss:,} KiB | "
            f"8 files: {theirs.rss:,} KiB | {ours.rss / theirs.rss:.2f}x | constant (<= 1.2x) | "
            f"{'met' if ours.rss <= 1.2 * theirs.rss else '**not met**'} |"
        )

    def hashing(self) -> None:
        from mam_install._hashing import sha256_file

        blob = self.work / "blob"
        data = os.urandom(1 << 20) * (16 if self.args.smoke else 256)
        blob.write_bytes(data)

        def timed(action: Callable[[], object]) -> Step:
            def step() -> Sample:
                start, cpu = time.perf_counter(), time.process_time()
                action()
                return Sample(time.perf_counter() - start, time.process_time() - cpu, 0)
            return step

        ours, theirs = interleaved(
            [(nothing, timed(lambda: sha256_file(blob))),
             (nothing, timed(lambda: hashlib.sha256(data).hexdigest()))],
            1 if self.args.smoke else 5,
        )
        self.table.add(f"sha256 of {len(data) >> 20} MiB, streamed", ours, theirs,
                       "hashlib in memory", ">= 80% throughput (<= 1.25x)",
                       ours.wall <= 1.25 * theirs.wall)

    def crowded(self, dist: Path) -> None:
        big = self.work / "big"
        empty = self.work / "empty"
        count = 2_000 if self.args.smoke else 50_000
        for i in range(count):
            directory = big / "src" / f"d{i // 500}"
            if i % 500 == 0:
                directory.mkdir(parents=True)
            (directory / f"f{i}.txt").write_bytes(b"x")

        def clean(ws: Path) -> Callable[[], None]:
            def setup() -> None:
                for name in (".agents", ".mam"):
                    shutil.rmtree(ws / name, ignore_errors=True)
                for name in ("AGENT.md", ".env.example"):
                    (ws / name).unlink(missing_ok=True)
                ws.mkdir(exist_ok=True)
            return setup

        ours, theirs = interleaved(
            [(clean(big), self.ours(dist, "install", "-y", "--no-host", "--workspace", big)),
             (clean(empty), self.ours(dist, "install", "-y", "--no-host", "--workspace", empty))],
            self.runs(8),
        )
        self.table.add(f"install, {count:,} unrelated files", ours, theirs, "empty workspace",
                       "<= 1.1x", ours.wall <= 1.1 * theirs.wall)


def other_pythons() -> list[str]:
    """The oldest and newest supported CPythons, when installed (pyenv), for the first-run rows."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for minor in (9, 13):
        matches = sorted(pyenv.glob(f"3.{minor}.*/bin/python3.{minor}"))
        if matches:
            found.append(str(matches[-1]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="rounds of the small rows")
    parser.add_argument("--sizes", default="8,100,1000,4000", help="payload sizes, in files")
    parser.add_argument("--smoke", action="store_true", help="each row once, at 8 and 30 files")
    # The Python a person already has: the system one where there is one.
    system = "/usr/bin/python3"
    parser.add_argument(
        "--python", default=system if os.path.exists(system) else os.path.realpath(sys.executable)
    )
    args = parser.parse_args()
    sizes = [8, 30] if args.smoke else sorted(int(s) for s in args.sizes.split(","))
    work = Path(tempfile.mkdtemp(prefix="mam-bench-"))
    bench = Bench(args, work)
    try:
        pythons = [args.python] + ([] if args.smoke else other_pythons())
        dists = {n: bench.release(n, pythons if n == 8 else [args.python]) for n in sizes}
        small = dists[sizes[0]]
        measure([args.python, small / "mam-install.pyz", "--version"], bench.env)  # unpack once
        bench.start_up(small)
        for files, dist in dists.items():
            measure([args.python, dist / "mam-install.pyz", "--version"], bench.env)
            bench.scale(files, dist)
        for python in pythons:
            bench.first_run(small, python)
        bench.bootstrap(small)
        bench.verify(small, dists[sizes[-1]], sizes[-1])
        bench.hashing()
        bench.crowded(small)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run(
        [args.python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    print(f"Python {version} ({args.python}); {os.cpu_count()} CPUs; medians of {args.runs} "
          "interleaved rounds (3 at 1,000 files, 2 at 4,000); wall (cpu) per cell")
    print("| measure | mam-install | peer | ratio (wall) | budget | |")
    print("|---|---|---|---|---|---|")
    print("\n".join(bench.table.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
