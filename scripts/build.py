#!/usr/bin/env python3
"""Build a release into dist/: mam-install.pyz, the payload archive and manifest, SHA256SUMS,
get-mam.py. Needs only Python >= 3.9 and pip's registry: build tools come from hash-locked
requirements in checksums/. Two builds of one commit are byte-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "installer"))

from locked_install import install_lock  # noqa: E402
from payload_archive import build_payload, read_version  # noqa: E402

PACKAGE = ROOT / "installer" / "mam_install"
# The build venv and the unpacked dependencies are cached here, keyed by the lock files' hashes;
# MAM_BUILD_DIR puts it elsewhere (any path: the bytes built do not depend on it).
BUILD = Path(os.environ.get("MAM_BUILD_DIR") or ROOT / "build")
ENTRY_POINT = "mam_install.cli:main"
SHEBANG = "/usr/bin/env python3"


def say(message: str) -> None:
    print(f"build: {message}", file=sys.stderr)


def git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH, else the commit time, else 1980-01-01 (the oldest a zip can hold)."""
    value = os.environ.get("SOURCE_DATE_EPOCH") or git("log", "-1", "--format=%ct")
    return max(int(value), 315532800) if value else 315532800


def source_info() -> dict[str, str] | None:
    commit = git("rev-parse", "HEAD")
    if not commit or len(commit) != 40:
        return None
    ref = git("describe", "--tags", "--exact-match") or git("rev-parse", "--abbrev-ref", "HEAD")
    if git("status", "--porcelain", "--", "payload", "installer", "scripts", "checksums"):
        ref = f"{ref}+dirty"  # the tree differs from the commit: say so rather than pretend
    repository = os.environ.get("MAM_RELEASE_REPOSITORY") or public_url(
        git("config", "--get", "remote.origin.url")
    )
    return {"repository": repository, "ref": ref or "HEAD", "commit": commit}


def public_url(remote: str | None) -> str:
    """The remote as it may be published: no credentials, no ".git" (a rebuilder's clone URL
    may differ from CI's only by that), and "local" for a path on this machine (which would
    also make two clones of one commit build different manifests)."""
    from urllib.parse import urlsplit, urlunsplit

    if not remote or "://" not in remote or remote.startswith("file://"):
        return "local" if not remote or "@" not in remote else remote.split("@", 1)[-1]
    parts = urlsplit(remote)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = parts.path.rstrip("/")
    path = path[: -len(".git")] if path.endswith(".git") else path
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def run(argv: list[str], **kwargs: object) -> None:
    subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]


def lock_digest(*names: str) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update((ROOT / "checksums" / name).read_bytes())
    return digest.hexdigest()[:16]


def build_venv() -> Path:
    """A venv with shiv from checksums/build-requirements.txt, kept while the lock is unchanged."""
    BUILD.mkdir(parents=True, exist_ok=True)
    path = BUILD / f"venv-{lock_digest('build-requirements.txt')}"
    installed = path / ".lock-installed"  # written last: a failed install is redone, not reused
    if not installed.exists():
        shutil.rmtree(path, ignore_errors=True)
        say(f"creating the build venv {path}")
        venv.EnvBuilder(with_pip=True).create(path)
        install_lock(path / "bin" / "python", ROOT / "checksums" / "build-requirements.txt")
        installed.touch()
    return path


def runtime_site(build_python: Path) -> Path:
    """The pyz's dependencies, from checksums/pyz-requirements.txt, hash-checked by pip and
    `pip check`ed on their own."""
    site = BUILD / f"site-{lock_digest('pyz-requirements.txt')}"
    if not site.is_dir():
        say("installing the pyz dependencies (hash-locked)")
        # Installed aside and renamed into place once checked: a failed or concurrent install
        # never leaves a half site to be reused.
        partial = Path(tempfile.mkdtemp(prefix=f"{site.name}.", dir=BUILD))
        try:
            install_lock(build_python, ROOT / "checksums" / "pyz-requirements.txt", target=partial)
            shutil.rmtree(partial / "bin", ignore_errors=True)  # scripts carry this venv's path
            partial.rename(site)
        except OSError:
            if not site.is_dir():
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return site


def write_embedded_data(target: Path, archive: Path, manifest: Path) -> None:
    """mam_install/_data: the release manifest, the archive and every released manifest."""
    shutil.rmtree(target, ignore_errors=True)
    (target / "manifests").mkdir(parents=True)
    shutil.copyfile(manifest, target / "manifest.json")
    shutil.copyfile(archive, target / archive.name)
    for released in sorted((ROOT / "manifests").glob("*.json")):
        if not released.name.endswith(".schema.json"):
            shutil.copyfile(released, target / "manifests" / released.name)
    shutil.copyfile(release_key_file(), target / "release-signing-key.pub")
    # Where `mam-install self update` looks for the newest release (the release workflow sets it).
    update_url = os.environ.get("MAM_RELEASE_UPDATE_URL") or "https://releases.mam.invalid/latest"
    (target / "update-url").write_text(update_url + "\n")


def release_key_file() -> Path:
    """The Ed25519 release keys the pyz trusts; MAM_RELEASE_PUBKEY names another file (tests
    build a pyz that trusts a test key; a release build must use the committed one)."""
    override = os.environ.get("MAM_RELEASE_PUBKEY")
    return Path(override) if override else ROOT / "checksums" / "release-signing-key.pub"


def drop_outside_records(site: Path) -> None:
    """Drop the RECORD rows of files installed outside the site (the console scripts in bin/,
    deleted above): their hashes cover the build venv's absolute path in each script's shebang,
    and shiv's build_id hashes every file, so they would tie the pyz to the build directory."""
    for record in sorted(site.glob("*.dist-info/RECORD")):
        lines = record.read_bytes().splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith(b"../")]
        if kept != lines:
            record.write_bytes(b"".join(kept))


def normalize_modes(tree: Path) -> None:
    """0644, or 0755 where any execute bit is set: shiv stores each file's mode in the zip, and
    a clone's modes follow the umask of whoever cloned it."""
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)


def assemble_site(site: Path, archive: Path, manifest: Path) -> Path:
    # A fresh directory per build, so concurrent builds sharing MAM_BUILD_DIR never collide.
    staging = Path(tempfile.mkdtemp(prefix="pyz-site-", dir=BUILD))
    shutil.copytree(site, staging, dirs_exist_ok=True)
    shutil.copytree(
        PACKAGE, staging / "mam_install", ignore=shutil.ignore_patterns("__pycache__", "_data")
    )
    write_embedded_data(staging / "mam_install" / "_data", archive, manifest)
    drop_outside_records(staging)
    normalize_modes(staging)
    return staging


# The interpreters the pyz ships bytecode for (DESIGN §1.5): on any of them a first run imports
# precompiled modules instead of compiling ~220 of them before anything runs.
SUPPORTED_MINORS = range(9, 14)
DATA = "mam_install/_data/"  # the payload: unpacked as files by the entry, never zipped again


def supported_pythons() -> list[Path]:
    """One working interpreter per supported 3.x on this machine (pyenv's, then PATH's)."""
    found = []
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for minor in SUPPORTED_MINORS:
        candidates = sorted(pyenv.glob(f"3.{minor}.*/bin/python3.{minor}"))
        which = shutil.which(f"python3.{minor}")
        candidates += [Path(which)] if which else []
        want = f"3.{minor}"
        python = next((p for p in candidates if _python_version(p) == want), None)
        if python is None:
            say(f"no python{want} here: the pyz will unpack its sources on a first run there")
        else:
            found.append(python)
    return found


def _python_version(python: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def compile_bytecode(site: Path, pythons: list[Path]) -> list[str]:
    """Write ``__pycache__/*.<tag>.pyc`` beside every module, for each supported Python; return
    the cache tags written.

    Unchecked-hash pycs (PEP 552): no timestamp in them, so the build stays reproducible.
    Filenames are recorded as ``site-packages/...``, as a traceback should show them.
    """
    tags = []
    # A fixed hash seed: 3.9 and 3.10 marshal a constant frozenset in iteration order.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for python in pythons:
        run(
            [str(python), "-m", "compileall", "-q", "-f", "--invalidation-mode",
             "unchecked-hash", "-s", str(site), "-p", "site-packages", str(site)],
            stdout=subprocess.DEVNULL,
            env=env,
        )
        tag = subprocess.run(
            [str(python), "-c", "import sys; print(sys.implementation.cache_tag)"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        tags.append(tag)
    return tags


def bytecode_zip(site: Path, tag: str, date_time: tuple[int, int, int, int, int, int]) -> bytes:
    """The packages for one Python as a zip zipimport reads: each module as a sourceless
    ``.pyc``, every other file (certifi's CA bundle, metadata) as it is, the payload left out.

    Stored, not deflated: the pyz around it is compressed, and zipimport then reads each module
    without inflating it. One file to unpack on a first run, instead of 300.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as lib:
        for path in sorted(site.rglob("*")):
            rel = path.relative_to(site).as_posix()
            if path.is_dir() or "__pycache__" in path.parts or rel.startswith(DATA):
                continue
            content = path.read_bytes()
            if path.suffix == ".py":
                pyc = path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc"
                if pyc.is_file():
                    rel, content = rel[:-3] + ".pyc", pyc.read_bytes()
            info = zipfile.ZipInfo(rel, date_time=date_time)
            info.external_attr = 0o644 << 16
            lib.writestr(info, content)
    return out.getvalue()


def bytecode_entries(site: Path, epoch: int, pythons: list[Path]) -> list[tuple[str, bytes]]:
    date_time = time.gmtime(epoch)[:6]
    return [
        (f"bytecode/{tag}.zip", bytecode_zip(site, tag, date_time))
        for tag in compile_bytecode(site, pythons)
    ]


def replace_main(pyz: Path, extra: list[tuple[str, bytes]]) -> None:
    """Swap shiv's __main__.py for ours (version check, writable SHIV_ROOT, its own extraction)
    and add ``extra`` entries (the bytecode), keeping every other entry as shiv wrote it."""
    data = pyz.read_bytes()
    prefix_end = data.index(b"\n") + 1  # the shebang line
    with zipfile.ZipFile(io.BytesIO(data)) as old:
        entries = [(info, old.read(info)) for info in old.infolist()]
        build_id = json.loads(old.read("environment.json"))["build_id"]
    main_py = (HERE / "pyz_main.py").read_bytes().replace(b"@SHIV_BUILD_ID@", build_id.encode())
    template = next(info for info, _ in entries if info.filename == "__main__.py")
    out = io.BytesIO()
    out.write(data[:prefix_end])
    with zipfile.ZipFile(out, "w") as new:
        for info, content in entries:
            if info.filename == "__main__.py":
                content = main_py
            new.writestr(info, content)
        for name, content in extra:
            info = zipfile.ZipInfo(name, date_time=template.date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = template.external_attr
            info.create_system = template.create_system
            new.writestr(info, content)
    pyz.write_bytes(out.getvalue())
    pyz.chmod(0o755)


def build_pyz(
    build: Path, site: Path, out: Path, epoch: int, pythons: list[Path] | None = None
) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    out.unlink(missing_ok=True)
    # No --compile-pyc: it compiles every module in a process pool on the first run.
    run(
        [
            str(build / "bin" / "shiv"),
            "--reproducible",
            "--compressed",
            "--site-packages",
            str(site),
            "-e",
            ENTRY_POINT,
            "-p",
            SHEBANG,
            "-o",
            str(out),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    replace_main(out, bytecode_entries(site, epoch, pythons or supported_pythons()))


def write_sums(dist: Path, names: list[str]) -> None:
    from mam_install.release._sums import format_sums

    entries = {n: hashlib.sha256((dist / n).read_bytes()).hexdigest() for n in names}
    (dist / "SHA256SUMS").write_bytes(format_sums(entries))


def write_get_mam(dist: Path, version: str, pyz: Path, base_url: str) -> str | None:
    template = HERE / "get-mam.py.in"
    if not template.is_file():
        return None
    from render_get_mam import render_get_mam

    text = render_get_mam(
        template.read_text(),
        version=version,
        pyz_sha256=hashlib.sha256(pyz.read_bytes()).hexdigest(),
        base_url=base_url,
    )
    (dist / "get-mam.py").write_text(text)
    return "get-mam.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output dir (dist/)")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("MAM_RELEASE_BASE_URL", "https://releases.mam.invalid/{version}"),
        help="where get-mam.py downloads the pyz from ({version} is filled in)",
    )
    parser.add_argument(
        "--payload", type=Path, default=ROOT / "payload", help="payload dir (tests build others)"
    )
    parser.add_argument(
        "--bytecode-for",
        type=Path,
        action="append",
        help="ship bytecode for this Python only (repeatable; default: every supported one "
        "found; benchmarks use it to build faster)",
    )
    args = parser.parse_args()
    os.umask(0o022)
    official = args.payload.resolve() == (ROOT / "payload").resolve()
    if (
        official
        and subprocess.run([sys.executable, str(HERE / "manifest.py"), "--check"]).returncode
    ):
        return 1
    version = read_version(args.payload)
    epoch = source_date_epoch()
    dist: Path = args.out
    dist.mkdir(parents=True, exist_ok=True)
    archive, manifest = build_payload(args.payload, dist, mtime=epoch, source=source_info())
    if official and "MAM_RELEASE_PUBKEY" not in os.environ:
        # Lets the source tree run too; a test build of another payload or key leaves it alone.
        write_embedded_data(PACKAGE / "_data", archive, manifest)
    build = build_venv()
    site = assemble_site(runtime_site(build / "bin" / "python"), archive, manifest)
    pyz = dist / "mam-install.pyz"
    try:
        build_pyz(build, site, pyz, epoch, args.bytecode_for)
    finally:
        shutil.rmtree(site, ignore_errors=True)
    names = [pyz.name, archive.name, manifest.name]
    get_mam = write_get_mam(dist, version, pyz, args.base_url.format(version=version))
    if get_mam:
        names.append(get_mam)
    write_sums(dist, sorted(names))
    say(f"wrote {dist}: {', '.join(sorted(names))}, SHA256SUMS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
