"""The no-op re-install answered before click or the engine is imported (_entry, _noop), tested
against the engine itself on the built pyz.

Every case below runs the same command line twice from the same state: once as a user would
(the front door may answer), once with the witness gone (the engine decides). Both must leave
the same bytes everywhere in the workspace, print the same text and exit with the same code;
whether the front door answered is read from ``python -X importtime`` (click imported or not),
never from a hook of the installer's.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest
from test_pyz import SUPPORTED, run_pyz
from workspaces import ROOT

sys.path.insert(0, str(ROOT / "installer"))

from mam_install import _where
from mam_install._entry import _parse

ARGS = ("install", "-y", "--no-host", "--workspace")
PYTHON = Path(sys.executable)


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(ROOT / "scripts/build.py"), "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out / "mam-install.pyz"


class Run:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        lines = done.stderr.splitlines()
        self.answered_early = not any(re.search(r"\|\s+click$", line) for line in lines)
        self.stderr = "\n".join(line for line in lines if not line.startswith("import time:"))
        self.stdout = done.stdout
        self.code = done.returncode


def run(pyz: Path, shiv: Path, *args: str | Path, python: Path = PYTHON,
        cwd: Path | None = None) -> Run:
    env = {**os.environ, "SHIV_ROOT": str(shiv)}
    done = subprocess.run([str(python), "-X", "importtime", str(pyz), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=cwd)
    return Run(done)


RUN_ID = re.compile(r"\d{8}T\d{6}Z-\d+")


def everything(root: Path) -> dict[str, bytes | str]:
    """Every entry below ``root``, .mam/ included: bytes, mode and links as they are. Two runs
    differ only in their run's id and times: those are left out."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = RUN_ID.sub("RUN", str(path.relative_to(root)))
            if rel.startswith(".mam/") and rel.endswith(".json") and not path.is_symlink():
                doc = json.loads(path.read_bytes())
                doc.pop("run", None)
                out[rel] = json.dumps(doc, sort_keys=True)
            elif path.is_symlink():
                out[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                out[rel] = f"dir {path.stat().st_mode & 0o7777:o}"
            else:
                out[rel] = path.read_bytes() + f" mode {path.stat().st_mode & 0o7777:o}".encode()
    return out


def witnesses(shiv: Path, pyz: Path | None = None) -> list[Path]:
    """The witnesses under ``shiv``: every build's, or only ``pyz``'s."""
    build = "*"
    if pyz is not None:
        with zipfile.ZipFile(pyz) as archive:
            build = f"*_{json.loads(archive.read('environment.json'))['build_id']}"
    return sorted(shiv.glob(f"{build}/noop/*.json"))


@pytest.fixture
def installed(pyz: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A workspace that the pyz installed and then found up to date once: (workspace, SHIV_ROOT)."""
    ws, shiv = tmp_path / "ws", tmp_path / "shiv"
    ws.mkdir()
    first = run(pyz, shiv, *ARGS, ws)
    assert first.code == 0, first.stderr
    assert not first.answered_early  # nothing to remember yet: the engine installed
    assert len(witnesses(shiv)) == 1  # ...and left the witness of what it then saw
    return ws, shiv


def both_ways(pyz: Path, ws: Path, shiv: Path, *args: str | Path) -> tuple[Run, Run]:
    """The same command from the same state: first with this pyz's witness gone (the engine
    decides), then as the user runs it, whose run the sequence goes on from."""
    saved = ws.parent / "saved"
    shutil.copytree(ws, saved / "ws", symlinks=True)
    shutil.copytree(shiv, saved / "shiv", symlinks=True)
    for witness in witnesses(shiv, pyz):
        witness.unlink()
    engine = run(pyz, shiv, *args)
    engine_tree = everything(ws)
    for path in (ws, shiv):
        shutil.rmtree(path)
        shutil.copytree(saved / path.name, path, symlinks=True)
    shutil.rmtree(saved)
    user = run(pyz, shiv, *args)
    assert not engine.answered_early
    assert (user.code, user.stdout, user.stderr) == (engine.code, engine.stdout, engine.stderr)
    assert everything(ws) == engine_tree
    return user, engine


def test_a_re_install_with_nothing_to_do_is_answered_before_click_and_says_what_the_engine_says(
    pyz, installed
):
    ws, shiv = installed
    before = everything(ws)
    user, _ = both_ways(pyz, ws, shiv, *ARGS, ws)
    assert user.answered_early
    assert user.code == 0
    assert user.stderr == f"mam 0.1.0 is already installed in {ws}; nothing to do"
    assert everything(ws) == before
    # upgrade, -q, --workspace=DIR and the default workspace (cwd) are the same command line
    assert run(pyz, shiv, "upgrade", "--no-host", "--workspace", ws).answered_early
    quiet = run(pyz, shiv, "-q", "install", "--no-host", f"--workspace={ws}")
    assert (quiet.answered_early, quiet.code, quiet.stderr) == (True, 0, "")
    here = run(pyz, shiv, "install", "--no-host", "-y", cwd=ws / ".agents" / "skills")
    assert (here.answered_early, here.code) == (True, 0)
    assert here.stderr == f"mam 0.1.0 is already installed in {ws}; nothing to do"


def _edit(rel: str) -> Callable[[Path], None]:
    return lambda ws: (ws / rel).write_bytes((ws / rel).read_bytes() + b"# mine\n")


def _unlink(rel: str) -> Callable[[Path], None]:
    return lambda ws: (ws / rel).unlink()


def _to_symlink(rel: str) -> Callable[[Path], None]:
    """Put a symlink to an identical copy where ``rel`` was: same bytes, never followed."""
    def change(ws: Path) -> None:
        copy = ws.parent / f"copy-of-{rel.replace('/', '_')}"
        path = ws / rel
        if path.is_dir():
            shutil.copytree(path, copy)
            shutil.rmtree(path)
        else:
            shutil.copy2(path, copy)
            path.unlink()
        path.symlink_to(copy)
    return change


def _receipt_respaced(ws: Path) -> None:
    receipt = ws / ".mam/install-receipt.json"
    receipt.write_bytes(receipt.read_bytes().replace(b"\n", b"\n ", 1))


def _link_in_state_dir(rel: str) -> Callable[[Path], None]:
    def change(ws: Path) -> None:
        path = ws / ".mam" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        path.symlink_to("/etc/hostname")
    return change


# Each changes what the engine would see, or would refuse: the front door must not answer.
ENGINE_DECIDES = {
    "an edited file": _edit("AGENT.md"),
    "a deleted file": _unlink(".env.example"),
    "a deleted directory": lambda ws: shutil.rmtree(ws / ".agents/skills/tmux"),
    "a directory turned into a symlink": _to_symlink(".agents/skills"),
    "a file turned into a symlink to the same bytes": _to_symlink(".agents/skills/lib.sh"),
    "a receipt with other bytes, same meaning": _receipt_respaced,
    "a symlinked receipt": _link_in_state_dir("install-receipt.json"),
    "a symlinked lock": _link_in_state_dir("lock"),
    "a symlink in a backup": _link_in_state_dir("backup/x"),
    "a deleted .mam/.gitignore": _unlink(".mam/.gitignore"),
    "a deleted lock file": _unlink(".mam/lock"),
    "a lock file of a network filesystem's run": lambda ws: (ws / ".mam/lock.excl").write_text(
        "elsewhere 1\n"),
}
# Each leaves the engine's plan as it was: the front door answers, and says the same.
FRONT_DOOR_ANSWERS = {
    "a new file of the user's": lambda ws: (ws / ".agents/skills/mine.sh").write_text("x\n"),
    "a .mam-new the user made": lambda ws: (ws / "AGENT.md.mam-new").write_text("x\n"),
    "a changed mode": lambda ws: (ws / "AGENT.md").chmod(0o600),
    "a changed mtime": lambda ws: os.utime(ws / "AGENT.md", (1, 1)),
}


@pytest.mark.parametrize("change", sorted(ENGINE_DECIDES))
def test_any_change_the_engine_would_see_goes_to_the_engine(pyz, installed, change):
    ws, shiv = installed
    ENGINE_DECIDES[change](ws)
    user, _ = both_ways(pyz, ws, shiv, *ARGS, ws)
    assert not user.answered_early


@pytest.mark.parametrize("change", sorted(FRONT_DOOR_ANSWERS))
def test_changes_the_engine_ignores_are_answered_early_with_its_answer(pyz, installed, change):
    ws, shiv = installed
    FRONT_DOOR_ANSWERS[change](ws)
    user, engine = both_ways(pyz, ws, shiv, *ARGS, ws)
    assert user.answered_early
    assert engine.stderr == f"mam 0.1.0 is already installed in {ws}; nothing to do"


@pytest.mark.parametrize("argv", [
    ("--json", *ARGS), (*ARGS[:1], "-v", *ARGS[1:]), ("install", "-y", "--workspace"),
    ("install", "-y", "--no-host", "--on-conflict", "keep", "--workspace"),
    ("install", "-y", "--no-host", "--dry-run", "--workspace"),
    ("plan", "--no-host", "--workspace"),
])
def test_other_command_lines_go_to_the_engine(pyz, installed, argv):
    ws, shiv = installed
    if "--no-host" not in argv:  # a host install here would write to this test's HOME only
        assert _parse([*argv, str(ws)]) is None
        return
    assert not run(pyz, shiv, *argv, ws).answered_early


def test_a_witness_that_is_not_this_users_own_is_ignored(pyz, installed):
    ws, shiv = installed
    (witness,) = witnesses(shiv)
    witness.chmod(0o666)
    assert not run(pyz, shiv, *ARGS, ws).answered_early  # and the engine writes a good one
    (witness,) = witnesses(shiv)
    witness.write_bytes(witness.read_bytes()[:-10])
    done = run(pyz, shiv, *ARGS, ws)
    assert (done.answered_early, done.code) == (False, 0)
    assert run(pyz, shiv, *ARGS, ws).answered_early


def test_a_run_holding_the_lock_is_waited_for_by_the_engine(pyz, installed):
    ws, shiv = installed
    fd = os.open(ws / ".mam/lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    env = {**os.environ, "SHIV_ROOT": str(shiv)}
    proc = subprocess.Popen([sys.executable, "-X", "importtime", str(pyz), *ARGS, str(ws)],
                            stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(1.0)
    assert proc.poll() is None  # waiting for the lock, not answering
    os.close(fd)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert any(re.search(r"\|\s+click$", line) for line in stderr.splitlines())


def test_uninstall_and_rollback_drop_the_witness_and_a_witness_dir_in_the_way_fails_nothing(
    pyz, installed
):
    ws, shiv = installed
    assert run(pyz, shiv, "uninstall", "-y", "--workspace", ws).code == 0
    assert witnesses(shiv) == []
    (noop,) = [d.parent for d in shiv.glob("*/_data")]
    (noop / "noop").rmdir()
    (noop / "noop").write_text("in the way\n")
    assert run(pyz, shiv, *ARGS, ws).code == 0
    again = run(pyz, shiv, *ARGS, ws)
    assert (again.answered_early, again.code) == (False, 0)
    assert again.stderr.endswith("nothing to do")


@pytest.mark.parametrize("version,python", SUPPORTED, ids=[v for v, _ in SUPPORTED])
def test_every_supported_python_answers_a_no_op_early(version, python, pyz, tmp_path):
    ws, shiv = tmp_path / "ws", tmp_path / "shiv"
    ws.mkdir()
    assert run_pyz(python, pyz, *ARGS, ws, shiv_root=shiv).returncode == 0
    again = run(pyz, shiv, *ARGS, ws, python=python)
    assert (again.answered_early, again.code) == (True, 0), again.stderr


@pytest.mark.parametrize("given", [
    "ws", "./ws/", "ws//sub/.", "../x/./y", "/abs//path/", "//net/share", "///abs", "a/../b",
])
def test_the_workspace_is_named_as_pathlib_names_it(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _where.find_workspace(os.getcwd(), given) == str(Path(given).expanduser().absolute())
    assert _where.path_text(given) == str(PurePosixPath(given))


def test_the_default_workspace_is_the_engines(tmp_path, monkeypatch):
    from mam_install.machine._layout import find_workspace

    deep = tmp_path / "repo/a/b"
    deep.mkdir(parents=True)
    (tmp_path / "repo/.git").write_text("gitdir: elsewhere\n")
    for start in (deep, tmp_path / "repo", tmp_path):
        assert _where.find_workspace(str(start)) == str(find_workspace(start))
    assert _where.find_workspace(str(deep)) == str(tmp_path / "repo")
    (tmp_path / "repo/a/.mam").mkdir()
    assert _where.find_workspace(str(deep)) == str(tmp_path / "repo/a")


@pytest.mark.parametrize("argv,parsed", [
    (["install", "--no-host"], (None, False)),
    (["-q", "upgrade", "-y", "--no-host", "--workspace", "w"], ("w", True)),
    (["install", "--no-host", "--workspace=w", "--quiet"], ("w", True)),
    (["install", "--no-host", "-yq"], None),
    (["install", "--no-host", "--workspace"], None),
    (["install", "--no-host", "--workspace", "~/w"], None),
    (["install", "--no-host", "--workspace="], None),
    (["install", "--no-host", "--", "x"], None),
    (["--json", "install", "--no-host"], None),
    (["install"], None),
    (["status", "--no-host"], None),
])
def test_the_front_door_reads_only_the_command_lines_it_can_answer(argv, parsed):
    assert _parse(argv) == parsed


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The pyzs of 0.1.0 (the real payload) and 0.2.0 (AGENT.md changed), built by build.py."""
    base = tmp_path_factory.mktemp("versions")
    payload = base / "payload-0.2.0"
    shutil.copytree(ROOT / "payload", payload, symlinks=True)
    (payload / "VERSION").write_text("0.2.0\n")
    agent = payload / "workspace/AGENT.md"
    agent.write_bytes(agent.read_bytes() + b"\n# New in 0.2.0.\n")
    pyzs = []
    for name, extra in (("one", []), ("two", ["--payload", str(payload)])):
        subprocess.run([sys.executable, str(ROOT / "scripts/build.py"), "--out", str(base / name),
                        "--bytecode-for", sys.executable, *extra],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pyzs.append(base / name / "mam-install.pyz")
    return pyzs[0], pyzs[1]


def test_a_sequence_of_versions_answers_early_only_where_the_engine_would_do_nothing(
    two_versions, tmp_path
):
    """install 0.1.0, again, upgrade to 0.2.0, 0.1.0 again (a downgrade), 0.2.0 again,
    rollback, 0.1.0 again, an edit, 0.1.0 again: each pyz keeps its own witness, and each
    answer is checked against the engine's from the same state."""
    one, two = two_versions
    ws, shiv = tmp_path / "ws", tmp_path / "shiv"
    ws.mkdir()
    shiv.mkdir()
    agent = ws / "AGENT.md"

    def step(pyz: Path, *args: str | Path, early: bool, code: int = 0) -> Run:
        user, _ = both_ways(pyz, ws, shiv, *args)
        assert (user.answered_early, user.code) == (early, code), user.stderr
        return user

    step(one, *ARGS, ws, early=False)
    first = agent.read_bytes()
    assert step(one, *ARGS, ws, early=True).stderr.endswith("nothing to do")
    assert "upgraded mam 0.1.0 \u2192 0.2.0" in step(two, "upgrade", "-y", "--no-host",
                                                       "--workspace", ws, early=False).stderr
    assert agent.read_bytes().endswith(b"# New in 0.2.0.\n")
    assert "refusing to downgrade" in step(one, *ARGS, ws, early=False, code=5).stderr
    assert step(two, *ARGS, ws, early=True).stderr == (
        f"mam 0.2.0 is already installed in {ws}; nothing to do")
    step(two, "rollback", "--workspace", ws, early=False)
    assert agent.read_bytes() == first
    # Back to the very state 0.1.0's witness was taken of: the engine agrees it has nothing to do.
    assert step(one, *ARGS, ws, early=True).stderr.endswith("nothing to do")
    agent.write_bytes(first + b"# mine\n")
    step(one, *ARGS, ws, early=False)
    assert agent.read_bytes() == first + b"# mine\n"
    status = run(one, shiv, "--json", "status", "--workspace", ws)
    assert json.loads(status.stdout)["scopes"]["workspace"]["states"]["AGENT.md"] == "modified"
    assert not run(one, shiv, *ARGS, ws).answered_early  # an edit is never answered early
