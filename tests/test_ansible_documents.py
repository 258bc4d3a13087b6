"""The collection's reading of mam-install's JSON documents (module_utils/mam_documents.py).

The module maps documents by their documented keys only; these tests pin that mapping on the
documents the built pyz prints today and on the shapes the receipt and engine work may bring
(a status entry list, new states, absent keys), which must degrade to "nothing to report".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ansible"))

from ansible_collections.mam.install.plugins.module_utils import (  # noqa: E402
    mam_documents as docs,
)

PYZ = ROOT / "dist" / "mam-install.pyz"


def pyz_json(*argv: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run([sys.executable, str(PYZ), "--json", *argv],
                          capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


@pytest.mark.pyz
def test_the_documents_of_the_built_pyz_map_onto_changed_decisions_and_states(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "AGENT.md").write_text("mine\n")
    args = ("--no-host", "--workspace", str(workspace))
    code, plan = pyz_json("plan", *args)
    assert code == 0 and docs.plan_would_change(plan)
    planned = docs.decisions_of(plan)
    assert any(d["decision"] == "beside" and d["path"] == "AGENT.md.mam-new" for d in planned)
    assert any(d["decision"] == "write" and d["path"] == ".env.example" for d in planned)

    code, first = pyz_json("install", "-y", *args)
    assert code == 0 and docs.result_changed(first)
    assert docs.mam_new_files(docs.decisions_of(first)) == ["AGENT.md.mam-new"]
    code, second = pyz_json("install", "-y", *args)
    assert code == 0 and not docs.result_changed(second)
    code, replan = pyz_json("plan", *args)
    assert code == 0 and not docs.plan_would_change(replan)

    code, status = pyz_json("status", "--workspace", str(workspace))
    states = docs.file_states(status)
    assert states["AGENT.md"] == "pending" and states[".env.example"] == "pristine"

    code, dry = pyz_json("uninstall", "-y", "--dry-run", "--workspace", str(workspace))
    assert code == 0 and docs.plan_would_change(dry) and not docs.result_changed(dry)
    code, gone = pyz_json("uninstall", "-y", "--workspace", str(workspace))
    assert code == 0 and docs.result_changed(gone)
    code, missing = pyz_json("uninstall", "-y", "--workspace", str(workspace))
    assert code == 6 and docs.missing_receipt(missing, lambda p: Path(p).exists())


def test_a_status_as_a_list_of_entries_with_new_states_is_read_too() -> None:
    document = {"files": [{"path": "AGENT.md", "state": "deleted"},
                          {"path": ".env.example", "status": "modified"}, {"bogus": 1}]}
    assert docs.file_states(document) == {"AGENT.md": "deleted", ".env.example": "modified"}
    assert docs.file_states({"files": {"a": {"state": "resolved"}}}) == {"a": "resolved"}
    assert docs.file_states({"files": "nonsense"}) == {} and docs.file_states([]) == {}


def test_documents_without_the_documented_keys_report_no_change_and_no_decision() -> None:
    for document in ({}, {"applied": "yes"}, {"changes": ["write"]}, {"actions": "x"}, None, []):
        assert docs.result_changed(document) is False
        assert docs.plan_would_change(document) is False
        assert docs.decisions_of(document) == []


def test_a_dry_run_result_never_counts_as_changed() -> None:
    document = {"dry_run": True, "applied": False, "changes": {"write": ["AGENT.md"]},
                "steps": ["Write `AGENT.md`"]}
    assert docs.result_changed(document) is False
    assert docs.plan_would_change(document) is True


def test_a_host_result_nested_in_an_install_result_counts_and_is_scoped() -> None:
    document = {"applied": False, "changes": {"write": []},
                "host": {"scope": "host", "applied": True,
                         "changes": {"write": ["/h/.config/systemd/user/x.service"],
                                     "commands": ["systemctl --user daemon-reload"]}}}
    assert docs.result_changed(document) is True
    assert docs.decisions_of(document) == [
        {"scope": "host", "path": None, "decision": "run",
         "reason": "systemctl --user daemon-reload"},
        {"scope": "host", "path": "/h/.config/systemd/user/x.service", "decision": "write",
         "reason": None},
    ]


def test_a_plans_detected_machine_record_is_not_taken_for_a_host_scope() -> None:
    plan = {"host": {"platform": "linux", "python": "3.11.2"}, "actions": [
        {"tag": "keep_file", "path": "AGENT.md", "reason": "up-to-date", "state": "completed"}]}
    assert docs.scope_documents(plan) == [("workspace", plan)]
    assert docs.plan_would_change(plan) is False and docs.decisions_of(plan) == []


def test_host_plan_paths_are_joined_to_their_base() -> None:
    plan = {"actions": [], "host_plan": {"actions": [
        {"tag": "write_file", "path": "home/u/.local/share/mam/env.sh", "base": "/",
         "state": "uncompleted", "reason": "new file"}]}}
    assert docs.decisions_of(plan) == [{"scope": "host", "path": "/home/u/.local/share/mam/env.sh",
                                        "decision": "write", "reason": "new file"}]


def test_only_a_documented_missing_receipt_that_is_truly_missing_means_not_installed() -> None:
    error = {"error": "no receipt at /w/.mam/install-receipt.json: mam is not installed in /w"}
    assert docs.missing_receipt(error, lambda p: False) is True
    # The same words about a receipt that exists (unreadable, tampered) are a failure.
    assert docs.missing_receipt(error, lambda p: True) is False
    assert docs.missing_receipt({"error": "receipt is corrupt"}, lambda p: False) is False
    relative = {"error": "no receipt at relative/path: x"}
    assert docs.missing_receipt(relative, lambda p: False) is False


def test_the_diff_text_names_every_decision_or_says_there_is_nothing_to_do() -> None:
    decisions = [{"scope": "workspace", "path": "AGENT.md", "decision": "keep",
                  "reason": "yours kept (user-edited); ours goes to AGENT.md.mam-new"}]
    text = docs.render_diff(decisions, "mam present /w")
    assert text.splitlines()[1].split()[:3] == ["workspace", "keep", "AGENT.md"]
    assert docs.render_diff([], "mam present /w").endswith("nothing to do\n")


def test_files_left_unchanged_are_no_decision() -> None:
    document = {"applied": False, "changes": {"unchanged": ["AGENT.md"], "write": []}}
    assert docs.decisions_of(document) == [] and docs.result_changed(document) is False
