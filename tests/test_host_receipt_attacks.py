"""The host receipt is parsed as strictly as the workspace one: a crafted entry is exit 6."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from mam_install._errors import ReceiptError
from test_cmd_host import home, install, runner, uninstall, with_rc  # noqa: F401 - fixtures
from test_host_planner import (  # noqa: F401 - host_release_fixture is the host_release fixture
    fake_host,
    host_release_fixture,
)
from test_receipt_attacks import snapshot

VICTIM = b"the user's notes\n"


def crafted(home_dir: Path, change: Any) -> Path:
    receipt = home_dir / ".local/share/mam/install-receipt.json"
    doc = json.loads(receipt.read_text())
    change(doc)
    receipt.write_text(json.dumps(doc))
    return receipt


def victim_entry(rel: str) -> dict[str, Any]:
    return {
        "tag": "write_file", "state": "completed", "carried": False, "path": rel,
        "sha256": hashlib.sha256(VICTIM).hexdigest(), "mode": 0o644, "source": "x",
        "for_path": rel, "base": "/",
    }


@pytest.mark.parametrize("where", ["notes.txt", "Documents/../notes.txt"])
def test_a_host_file_outside_the_host_directories_is_refused_by_uninstall(
    host_release, home, runner, where  # noqa: F811
):
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    install(host_release["1.0.0"], host, runner)
    (home / "notes.txt").write_bytes(VICTIM)
    rel = str(home / where)[1:]
    crafted(home, lambda doc: doc["actions"].append(victim_entry(rel)))
    before = snapshot(home)
    with pytest.raises(ReceiptError, match=r"allowlist|plain relative") as info:
        uninstall(host, runner)
    assert info.value.exit_code == 6
    assert snapshot(home) == before


def test_a_host_command_that_is_not_a_service_manager_call_is_refused(
    host_release, home, runner  # noqa: F811
):
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    install(host_release["1.0.0"], host, runner)
    entry = {"tag": "run_command", "state": "completed", "carried": False,
             "argv": ["true"], "revert_argv": ["rm", "-rf", str(home)]}
    crafted(home, lambda doc: doc["actions"].append(entry))
    before, calls = snapshot(home), list(runner.calls)
    with pytest.raises(ReceiptError, match="service manager"):
        uninstall(host, runner)
    assert snapshot(home) == before
    assert runner.calls == calls  # nothing was run
