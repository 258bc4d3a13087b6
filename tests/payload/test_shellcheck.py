"""shellcheck over every *.sh in the repository, tracked or new, not only the payload."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.payload._support import REPO


def shell_scripts() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout; the scripts cannot be listed")
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard",
         "-z", "--", "*.sh"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split("\0")
    # A tracked file deleted in the working tree is not ours to check.
    return sorted({path for path in listed if path and (REPO / path).is_file()})


def test_the_payload_scripts_are_among_those_checked() -> None:
    scripts = shell_scripts()
    assert "payload/workspace/.agents/skills/lib.sh" in scripts
    assert "payload/host/tools/mam-tmux-holder.sh" in scripts


def test_every_shell_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    scripts = shell_scripts()
    result = subprocess.run([shellcheck, "-x", "--format=gcc", *scripts], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
