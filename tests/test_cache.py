"""The content-addressed download cache: stored atomically, re-verified on use, evicted if bad."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from mam_install._errors import IntegrityError
from mam_install.release._cache import default_cache_root, lookup, restore, store

CONTENT = b"mam payload\n" * 1000
SHA = hashlib.sha256(CONTENT).hexdigest()
OTHER_SHA = hashlib.sha256(b"other").hexdigest()


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "staging" / "mam-payload-0.1.0.tar.gz"
    path.parent.mkdir()
    path.write_bytes(CONTENT)
    return path


def test_store_then_lookup_returns_the_verified_entry(tmp_path: Path, artifact: Path) -> None:
    root = tmp_path / "cache"
    entry = store(root, artifact, SHA)
    assert entry == root / SHA
    assert entry.read_bytes() == CONTENT
    assert lookup(root, SHA) == entry
    assert artifact.read_bytes() == CONTENT, "the staged original stays where it was"


def test_cache_dir_is_private_even_under_a_permissive_umask(tmp_path: Path, artifact: Path) -> None:
    old = os.umask(0)
    try:
        store(tmp_path / "cache", artifact, SHA)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700


def test_existing_world_readable_cache_dir_is_tightened(tmp_path: Path, artifact: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    store(root, artifact, SHA)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_store_refuses_a_file_that_does_not_match_its_key(tmp_path: Path, artifact: Path) -> None:
    root = tmp_path / "cache"
    with pytest.raises(IntegrityError, match="does not hash to"):
        store(root, artifact, OTHER_SHA)
    assert list(root.iterdir()) == [], "neither the entry nor a temp file is left behind"


def test_store_replaces_an_existing_entry_atomically(tmp_path: Path, artifact: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    (root / SHA).write_bytes(b"corrupt")
    store(root, artifact, SHA)
    assert (root / SHA).read_bytes() == CONTENT
    assert sorted(p.name for p in root.iterdir()) == [SHA]


def test_lookup_of_a_missing_entry_is_none(tmp_path: Path) -> None:
    assert lookup(tmp_path / "no-cache-yet", SHA) is None


def test_corrupt_entry_is_evicted_on_lookup(tmp_path: Path, artifact: Path) -> None:
    root = tmp_path / "cache"
    entry = store(root, artifact, SHA)
    entry.write_bytes(CONTENT[:-1] + b"X")
    assert lookup(root, SHA) is None
    assert not entry.exists()


def test_symlinked_entry_is_evicted_and_its_target_left_alone(
    tmp_path: Path, artifact: Path
) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    (root / SHA).symlink_to(artifact)
    assert lookup(root, SHA) is None
    assert not (root / SHA).is_symlink()
    assert artifact.read_bytes() == CONTENT
    (root / SHA).symlink_to(artifact)
    assert restore(root, SHA, tmp_path / "copy") is False
    assert not (root / SHA).is_symlink()
    assert not (tmp_path / "copy").exists()


def test_restore_copies_and_verifies_into_staging(tmp_path: Path, artifact: Path) -> None:
    root = tmp_path / "cache"
    store(root, artifact, SHA)
    dest = tmp_path / "staging2"
    dest.mkdir()
    assert restore(root, SHA, dest / "payload.tar.gz") is True
    assert (dest / "payload.tar.gz").read_bytes() == CONTENT


def test_restore_of_a_corrupt_entry_evicts_it_and_leaves_no_copy(
    tmp_path: Path, artifact: Path
) -> None:
    root = tmp_path / "cache"
    entry = store(root, artifact, SHA)
    entry.write_bytes(b"tampered")
    dest = tmp_path / "copy"
    assert restore(root, SHA, dest) is False
    assert not dest.exists()
    assert not entry.exists()


def test_restore_of_a_missing_entry_is_false(tmp_path: Path) -> None:
    assert restore(tmp_path / "cache", SHA, tmp_path / "copy") is False
    assert not (tmp_path / "copy").exists()


def test_directory_in_place_of_an_entry_is_evicted(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    (root / SHA).mkdir(parents=True)
    assert lookup(root, SHA) is None
    assert not (root / SHA).exists()


@pytest.mark.parametrize("key", ["", "../x", SHA.upper(), SHA[:-1], "/" + SHA[1:]])
def test_keys_must_be_sha256_hex(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        lookup(tmp_path, key)


def test_cache_root_that_is_a_file_is_refused(tmp_path: Path, artifact: Path) -> None:
    root = tmp_path / "cache"
    root.write_bytes(b"")
    with pytest.raises(IntegrityError, match="is not a directory"):
        store(root, artifact, SHA)


def test_cache_root_that_is_a_symlink_is_refused(tmp_path: Path, artifact: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    root = tmp_path / "cache"
    root.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(IntegrityError, match="is not a directory"):
        store(root, artifact, SHA)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_default_root_follows_platformdirs_and_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/xdg-cache-test")
    if sys.platform.startswith("linux"):
        assert default_cache_root() == Path("/tmp/xdg-cache-test/mam/sha256")
    assert default_cache_root().parts[-2:] == ("mam", "sha256")


def test_importing_the_module_does_not_import_platformdirs() -> None:
    code = "import sys, mam_install.release._cache; print('platformdirs' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(__file__).parents[1] / "installer")},
    )
    assert done.stdout.strip() == "False"
