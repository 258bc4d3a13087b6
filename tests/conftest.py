"""Shared fixtures; the helpers they use live in workspaces.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from workspaces import V1_FILES, V2_FILES, make_release


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("releases")
    return {
        "1.0.0": make_release(base, V1_FILES, "1.0.0"),
        "2.0.0": make_release(base, V2_FILES, "2.0.0"),
    }


@pytest.fixture(autouse=True)
def _isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Keep every test away from the real home: rc files, ~/.local, ~/.cache, ~/.config."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_CONFIG_HOME", ".config"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("MAM_INSTALL_TEST_KILL_AT", raising=False)
    yield
