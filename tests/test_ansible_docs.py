"""docs/fleet-rollout.md's commands work as written: the collection builds and installs from
the commands shown, and every ansible-playbook command parses with the doc's own inventory
(run with --syntax-check and --list-hosts: the doc's hosts are examples; the playbooks'
real runs are tests/test_ansible_rollout.py's)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from ansible_env import ROOT, ensure_ansible_venv

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "fleet-rollout.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.MULTILINE | re.DOTALL)


def test_the_fleet_rollout_doc_commands_work_as_written(tmp_path: Path) -> None:
    try:
        bin_dir = ensure_ansible_venv()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    commands = [line for block in blocks("sh") for line in block.splitlines()
                if line.startswith(("ansible-galaxy ", "ansible-playbook "))]
    assert len(commands) >= 6, commands
    (inventory,) = blocks("ini")
    (tmp_path / "inventory.ini").write_text(inventory)
    (tmp_path / "ansible").symlink_to(ROOT / "ansible")  # run from "a checkout"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", ANSIBLE_HOME=str(tmp_path / "home"),
               ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"), NO_COLOR="1")
    for command in commands:
        if command.startswith("ansible-playbook "):
            checks = [f"{command} --syntax-check", f"{command} --list-hosts"]
        else:
            checks = [command]
        for check in checks:
            done = subprocess.run(["bash", "-c", check], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, (check, done.stdout, done.stderr)
            if check.endswith("--list-hosts"):
                assert {"build1", "build2", "gpu1"} <= set(done.stdout.split()), done.stdout
    assert (tmp_path / "dist" / "mam-install-0.1.0.tar.gz").is_file()
    assert (tmp_path / "collections" / "ansible_collections" / "mam" / "install" /
            "MANIFEST.json").is_file()
