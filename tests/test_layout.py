"""Finding the workspace: --workspace, else the nearest .mam/ or .git, else here."""

from __future__ import annotations

from mam_install.machine._layout import find_workspace, workspace_layout


def test_explicit_workspace_wins(tmp_path):
    assert find_workspace(tmp_path / "a", tmp_path / "b") == tmp_path / "b"


def test_nearest_ancestor_with_mam_or_git_is_the_workspace(tmp_path):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    nested = project / "src" / "deep"
    nested.mkdir(parents=True)
    assert find_workspace(nested) == project
    (project / "src" / ".mam").mkdir()
    assert find_workspace(nested) == project / "src"


def test_without_markers_the_start_directory_is_the_workspace(tmp_path):
    start = tmp_path / "plain"
    start.mkdir()
    assert find_workspace(start) in (start, *start.parents)
    layout = workspace_layout(start)
    assert layout.receipt == start / ".mam" / "install-receipt.json"
    assert layout.relative(layout.backup_dir("r1")) == "backup/r1"
