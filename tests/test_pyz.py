"""The built mam-install.pyz, run for real on every CPython 3.9-3.13 found on this machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from workspaces import ROOT, pinned, tree

pytestmark = pytest.mark.pyz


def _pythons(versions: range) -> list[tuple[str, Path]]:
    found: dict[str, Path] = {}
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"]
    for base in roots:
        for minor in versions:
            for candidate in sorted(base.glob(f"3.{minor}.*/bin/python3")) if minor >= 3 else []:
                found.setdefault(f"3.{minor}", candidate)
    for minor in versions:
        for path in (Path(f"/usr/bin/python3.{minor}"), Path(f"/usr/local/bin/python3.{minor}")):
            if path.exists():
                found.setdefault(f"3.{minor}", path)
    return sorted(found.items())


SUPPORTED = _pythons(range(9, 14))
TOO_OLD = _pythons(range(6, 9)) + [
    (p.parent.parent.name, p)
    for p in sorted(
        (Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions").glob(
            "2.7.*/bin/python"
        )
    )
]


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(ROOT / "scripts/build.py"), "--out", str(out)], check=True)
    return out / "mam-install.pyz"


@pytest.fixture(scope="session")
def shiv_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shiv")


def run_pyz(
    python: Path,
    pyz: Path,
    *args: str | Path,
    env: dict[str, str] | None = None,
    shiv_root: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ if env is None else env)
    if shiv_root is not None:
        environment["SHIV_ROOT"] = str(shiv_root)
    return subprocess.run(
        [str(python), str(pyz), *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=180,
    )


def in_workspace(
    python: Path, pyz: Path, command: str, ws: Path, *args: str | Path, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """`COMMAND -y --no-host --workspace WS ARGS...` of the pyz (the workspace scope alone)."""
    return run_pyz(python, pyz, command, "-y", "--no-host", "--workspace", ws, *args, **kwargs)


def test_at_least_two_supported_pythons_are_present():
    # The matrix below is only meaningful when it is a matrix.
    assert len(SUPPORTED) >= 2, f"found only {SUPPORTED}"


@pytest.mark.parametrize(("version", "python"), SUPPORTED, ids=[v for v, _ in SUPPORTED])
def test_version_and_workspace_round_trip(version, python, pyz, shiv_root, tmp_path):
    shown = run_pyz(python, pyz, "--version", shiv_root=shiv_root)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("mam-install ") and f"Python {version}." in shown.stdout
    assert "payload " in shown.stdout
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "AGENT.md").write_bytes(b"mine\n")
    installed = in_workspace(python, pyz, "install", ws, shiv_root=shiv_root)
    assert installed.returncode == 0, installed.stderr
    assert (ws / "AGENT.md").read_bytes() == b"mine\n"
    assert (ws / "AGENT.md.mam-new").is_file()
    assert (ws / ".agents/skills/lib.sh").is_file()
    again = in_workspace(python, pyz, "install", ws, shiv_root=shiv_root)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    status = run_pyz(python, pyz, "status", "--workspace", ws, shiv_root=shiv_root)
    assert status.returncode == 0, status.stderr
    removed = run_pyz(python, pyz, "uninstall", "--workspace", ws, shiv_root=shiv_root)
    assert removed.returncode == 0, removed.stderr
    assert tree(ws) == {"AGENT.md": b"mine\n"}


@pytest.mark.parametrize(("version", "python"), TOO_OLD, ids=[v for v, _ in TOO_OLD])
def test_older_pythons_get_one_line_and_exit_3(version, python, pyz):
    done = run_pyz(python, pyz, "--version")
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "needs Python 3.9 or newer" in done.stderr


@pytest.fixture
def read_only_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    if os.geteuid() != 0:
        home.chmod(0o555)
        yield home
        home.chmod(0o755)
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(home)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def test_works_with_a_read_only_home(pyz, read_only_home, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIV_", "XDG_"))}
    env["HOME"] = str(read_only_home)
    ws = tmp_path / "ws"
    done = in_workspace(Path(sys.executable), pyz, "install", ws, env=env)
    assert done.returncode == 0, done.stderr
    assert (ws / "AGENT.md").is_file()
    assert list(read_only_home.iterdir()) == []


def test_works_with_home_unset(pyz, tmp_path, shiv_root):
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    done = run_pyz(Path(sys.executable), pyz, "--version", env=env, shiv_root=shiv_root)
    assert done.returncode == 0, done.stderr


def test_unwritable_shiv_root_is_one_clear_line(pyz, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    env = dict(os.environ, SHIV_ROOT=str(blocker / "sub"))
    done = run_pyz(Path(sys.executable), pyz, "--version", env=env)
    assert done.returncode == 3
    assert "SHIV_ROOT" in done.stderr and "Traceback" not in done.stderr


def test_cache_clean_removes_only_stale_extractions(pyz, tmp_path):
    root = tmp_path / "shiv"
    root.mkdir()
    stale = root / "mam-install.pyz_0123456789abcdef"
    (stale / "site-packages").mkdir(parents=True)
    unrelated = root / "other-tool.pyz_abc"
    unrelated.mkdir()
    env = dict(os.environ, SHIV_ROOT=str(root))
    assert run_pyz(Path(sys.executable), pyz, "--version", env=env).returncode == 0
    current = [p for p in root.iterdir() if p.name.startswith("mam-install") and p != stale]
    done = run_pyz(Path(sys.executable), pyz, "cache", "clean", env=env)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    assert unrelated.exists()
    assert all(p.exists() for p in current if p.is_dir())


@pytest.fixture(scope="module")
def next_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release 99.0.0 of the real payload: AGENT.md and lib.sh changed, one tool added, one
    (start-agent-session.sh) dropped."""
    from payload_archive import build_payload

    base = tmp_path_factory.mktemp("next")
    payload = base / "payload-next"
    shutil.copytree(ROOT / "payload", payload, symlinks=True)
    (payload / "VERSION").write_text("99.0.0\n")
    for rel in ("workspace/AGENT.md", "workspace/.agents/skills/lib.sh"):
        path = payload / rel
        path.write_bytes(path.read_bytes() + b"\n# New in 99.0.0.\n")
    (payload / "workspace/.agents/skills/new-tool.sh").write_text("#!/bin/sh\necho new\n")
    (payload / "workspace/.agents/skills/tmux/start-agent-session.sh").unlink()
    (payload / "host/tools/start-agent-session.sh").unlink()
    release = base / "release-99"
    build_payload(payload, release, mtime=1_700_000_000)
    return release


def test_upgrade_and_rollback_through_the_built_pyz(pyz, shiv_root, tmp_path, next_release):
    """The table's rows on the real pyz: pristine replaced, edit kept, deletion kept, dropped
    file removed, symlinked dir never written through, downgrade refused, rollback exact."""
    release = next_release
    python = Path(sys.executable)
    ws = tmp_path / "ws"
    assert in_workspace(python, pyz, "install", ws, shiv_root=shiv_root).returncode == 0
    (ws / ".env.example").write_text("# my own settings\n")
    (ws / ".agents/skills/tmux/send-message.sh").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(str(ws / ".agents/skills/mqtt"), str(elsewhere / "mqtt"))
    (ws / ".agents/skills/mqtt").symlink_to(elsewhere / "mqtt")
    outside = tree(elsewhere)
    before = tree(ws)
    up = in_workspace(
        python,
        pyz,
        "upgrade",
        ws,
        *pinned(release),
        shiv_root=shiv_root,
    )
    assert up.returncode == 0, up.stderr
    assert (ws / "AGENT.md").read_bytes().endswith(b"New in 99.0.0.\n")
    assert (ws / ".env.example").read_text() == "# my own settings\n"
    assert (ws / ".agents/skills/new-tool.sh").is_file()
    assert not (ws / ".agents/skills/send-message.sh").exists()  # deleted by the user: stays so
    assert not (ws / ".agents/skills/tmux/send-message.sh").exists()
    assert not (ws / ".agents/skills/tmux/start-agent-session.sh").exists()  # dropped, pristine
    assert tree(elsewhere) == outside  # never written through the symlinked mqtt/
    down = in_workspace(python, pyz, "install", ws, shiv_root=shiv_root)
    assert down.returncode == 5 and "downgrade" in down.stderr
    back = run_pyz(python, pyz, "rollback", "--workspace", ws, shiv_root=shiv_root)
    assert back.returncode == 0, back.stderr
    assert tree(ws) == before


def test_get_mam_piped_into_python_downloads_checks_and_runs_the_real_pyz(pyz, tmp_path, shiv_root):
    from tests.release_server import ReleaseServer, running_server

    bootstrap = (pyz.parent / "get-mam.py").read_bytes()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["SHIV_ROOT"] = str(shiv_root)
    with running_server() as server:
        server.routes["/rel/mam-install.pyz"] = ReleaseServer.ok(pyz.read_bytes())
        env["MAM_RELEASE_URL"] = server.url("/rel")
        done = subprocess.run(
            [sys.executable, "-", "--version"],
            input=bootstrap,
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(b"mam-install ")
        server.routes["/rel/mam-install.pyz"] = ReleaseServer.ok(pyz.read_bytes() + b"\0")
        tampered = subprocess.run(
            [sys.executable, "-", "--version"],
            input=bootstrap,
            env=env,
            capture_output=True,
            timeout=120,
        )
    assert tampered.returncode == 5
    assert b"mam-install " not in tampered.stdout


@pytest.mark.parametrize(
    "python",
    sorted({SUPPORTED[0][1], Path(sys.executable)}) if SUPPORTED else [Path(sys.executable)],
)
def test_host_scope_round_trip_through_the_built_pyz(python, pyz, shiv_root, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    rc_files = {".profile": b"# my profile\nexport EDITOR=vi\n", ".bashrc": b"alias ll='ls -l'"}
    for name, data in rc_files.items():
        (home / name).write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "SHIV_"))}
    env.update(HOME=str(home), SHELL="/bin/bash", SHIV_ROOT=str(shiv_root))
    env.pop("ZDOTDIR", None)
    ws = tmp_path / "ws"
    for _ in range(2):
        done = run_pyz(python, pyz, "install", "-y", "--workspace", ws, env=env)
        assert done.returncode == 0, done.stderr
    profile = (home / ".profile").read_bytes()
    assert profile.startswith(rc_files[".profile"]) and profile.count(b"# >>> mam >>>") == 1
    units = home / ".config/systemd/user"
    assert (units / "mam-tmux-holder.service").is_file()
    assert b"@MAM_" not in (units / "mam-tmux-holder.service").read_bytes()
    tools = home / ".local/share/mam/bin"
    assert os.access(tools / "send-message.sh", os.X_OK)
    removed = run_pyz(python, pyz, "uninstall", "--host", env=env)
    assert removed.returncode == 0, removed.stderr
    for name, data in rc_files.items():
        assert (home / name).read_bytes() == data, name
    assert not (units / "mam-tmux-holder.service").exists()
    assert not tools.exists()
    assert run_pyz(python, pyz, "uninstall", "--workspace", ws, env=env).returncode == 0


def test_hand_made_install_is_adopted_by_the_built_pyz(pyz, shiv_root, tmp_path, next_release):
    """What the old install.sh left (the 0.1.0 files copied in, no receipt, one edited)."""
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "payload/workspace", ws)
    lib = ROOT / "payload/workspace/.agents/skills/lib.sh"
    (ws / "AGENT.md").write_text("# my own agent notes\n")
    done = in_workspace(
        Path(sys.executable),
        pyz,
        "upgrade",
        ws,
        *pinned(next_release),
        shiv_root=shiv_root,
    )
    assert done.returncode == 0, done.stderr
    assert (ws / ".agents/skills/lib.sh").read_bytes() == lib.read_bytes() + b"\n# New in 99.0.0.\n"
    assert (ws / "AGENT.md").read_text() == "# my own agent notes\n"
    assert (ws / "AGENT.md.mam-new").read_bytes().endswith(b"# New in 99.0.0.\n")
    receipt = json.loads((ws / ".mam/install-receipt.json").read_text())
    adopted = {a["path"] for a in receipt["actions"] if a.get("adopted")}
    assert ".agents/skills/lib.sh" in adopted and "AGENT.md" not in adopted


@pytest.mark.parametrize("point", [3, 8, 13])
def test_a_killed_upgrade_of_the_built_pyz_is_finished_by_the_next_run(
    pyz, shiv_root, tmp_path, next_release, point
):
    python = Path(sys.executable)
    ws = tmp_path / "ws"
    assert in_workspace(python, pyz, "install", ws, shiv_root=shiv_root).returncode == 0
    env = dict(os.environ, MAM_INSTALL_TEST_KILL_AT=str(point), SHIV_ROOT=str(shiv_root))
    killed = in_workspace(
        python,
        pyz,
        "upgrade",
        ws,
        *pinned(next_release),
        env=env,
    )
    assert killed.returncode == -9, killed.stderr
    again = in_workspace(
        python,
        pyz,
        "upgrade",
        ws,
        *pinned(next_release),
        shiv_root=shiv_root,
    )
    assert again.returncode == 0, again.stderr
    fresh = tmp_path / "fresh"
    assert (
        in_workspace(
            python,
            pyz,
            "install",
            fresh,
            *pinned(next_release),
            shiv_root=shiv_root,
        ).returncode
        == 0
    )
    assert tree(ws) == tree(fresh)


def _tag(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import sys; print(sys.implementation.cache_tag)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(("version", "python"), SUPPORTED, ids=[v for v, _ in SUPPORTED])
def test_first_run_unpacks_one_bytecode_zip_and_the_payload_and_compiles_nothing(
    version, python, pyz, tmp_path
):
    """The first run of a fresh pyz writes this Python's bytecode zip and the payload data (a
    handful of files, not the ~300 shiv unpacked), and no module is compiled on any run; the
    install leaves its no-op witness beside them (_noop)."""
    import zipfile

    root = tmp_path / "shiv"
    ws = tmp_path / "ws"
    assert run_pyz(python, pyz, "--version", shiv_root=root).returncode == 0
    assert in_workspace(python, pyz, "install", ws, shiv_root=root).returncode == 0
    assert (ws / ".agents/skills/lib.sh").is_file()
    (extraction,) = root.iterdir()
    assert extraction.name.startswith("mam-install.pyz_")
    tag = _tag(python)
    files = _files(extraction)
    assert f"{tag}/lib.zip" in files
    assert "_data/manifest.json" in files
    assert all(f == f"{tag}/lib.zip" or f.startswith(("_data/", "noop/")) for f in files), files
    assert len([f for f in files if f.startswith("noop/")]) == 1
    assert len(files) < 11
    with zipfile.ZipFile(extraction / tag / "lib.zip") as lib:
        names = lib.namelist()
        assert "mam_install/cli.pyc" in names and "click/core.pyc" in names
        assert not [n for n in names if n.endswith(".py")]
        flags = int.from_bytes(lib.read("mam_install/cli.pyc")[4:8], "little")
        assert flags == 0b01  # PEP 552 unchecked hash: reproducible, never revalidated


def test_a_python_without_shipped_bytecode_unpacks_the_sources_and_still_runs(pyz, tmp_path):
    """What a future CPython (no bytecode of its tag in the pyz) gets: the sources, compiled
    lazily into __pycache__ as they are imported."""
    import zipfile

    python = Path(sys.executable)
    tag = _tag(python)
    stripped = tmp_path / "mam-install.pyz"
    with zipfile.ZipFile(pyz) as src, zipfile.ZipFile(stripped, "w") as out:
        for info in src.infolist():
            if info.filename != f"bytecode/{tag}.zip":
                out.writestr(info, src.read(info))
    root = tmp_path / "shiv"
    ws = tmp_path / "ws"
    done = in_workspace(python, stripped, "install", ws, shiv_root=root)
    assert done.returncode == 0, done.stderr
    assert (ws / ".agents/skills/lib.sh").is_file()
    (extraction,) = root.iterdir()
    assert (extraction / "sources/site-packages/mam_install/cli.py").is_file()
    assert not (extraction / tag).exists()


def test_two_first_runs_at_once_both_work_and_leave_one_extraction(pyz, tmp_path):
    root = tmp_path / "shiv"
    env = dict(os.environ, SHIV_ROOT=str(root))
    procs = [
        subprocess.Popen(
            [sys.executable, str(pyz), "--version"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert all(out.startswith("mam-install ") for out, _ in outputs)
    (extraction,) = root.iterdir()  # no partial copies left behind
    assert sorted(p.name for p in extraction.iterdir()) == ["_data", _tag(Path(sys.executable))]
