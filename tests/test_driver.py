"""One driver for both scopes: per scope and verb, the dry run says what the real run does, the
JSON of both has one shape, read commands read, and the host has status and rollback too."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from clirun import checked, cli
from mam_install._feedback import ConsoleFeedback
from mam_install.engine._driver import RunOptions, drive
from mam_install.machine._host_layout import host_layout
from mam_install.scopes._host_scope import HostScope
from test_cmd_host import YES, home, install, runner, uninstall, with_rc  # noqa: F401 - fixtures
from test_host_planner import (  # noqa: F401 - host_release_fixture is the host_release fixture
    fake_host,
    host_release_fixture,
)
from workspaces import pinned, tree

RECEIPT = ".mam/install-receipt.json"


def ws_run(verb: str, ws: Path, *extra: str | Path) -> Any:
    done = cli("--json", verb, "--no-host", "--workspace", ws, *extra) if verb != "uninstall" \
        else cli("--json", verb, "--workspace", ws, *extra)
    assert done.exit_code == 0, done.stderr
    return done


def same_shape(dry: dict[str, Any], real: dict[str, Any]) -> None:
    assert set(dry) == set(real)
    for name in dry["scopes"]:
        assert set(dry["scopes"][name]) == set(real["scopes"][name])


# --- the dry run is the real run's plan, scope by scope and verb by verb ----------------------


def test_workspace_install_dry_run_lists_the_steps_the_real_install_takes(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    dry = ws_run("install", ws, "--dry-run", *pinned(releases["1.0.0"])).json()
    assert tree(ws) == {}
    real = ws_run("install", ws, "-y", *pinned(releases["1.0.0"])).json()
    same_shape(dry, real)
    assert dry["dry_run"] and not real["dry_run"]
    assert dry["scopes"]["workspace"]["steps"] == real["scopes"]["workspace"]["steps"]
    assert real["scopes"]["workspace"]["applied"] and real["scopes"]["workspace"]["steps"]


def test_workspace_upgrade_dry_run_lists_the_steps_the_real_upgrade_takes(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    ws_run("install", ws, "-y", *pinned(releases["1.0.0"]))
    (ws / "AGENT.md").write_bytes(b"mine\n")
    before = tree(ws)
    dry = ws_run("upgrade", ws, "--dry-run", *pinned(releases["2.0.0"])).json()
    assert tree(ws) == before
    real = ws_run("upgrade", ws, "-y", *pinned(releases["2.0.0"])).json()
    same_shape(dry, real)
    dry_ws, real_ws = dry["scopes"]["workspace"], real["scopes"]["workspace"]
    assert dry_ws["steps"] == real_ws["steps"] and dry_ws["changes"] == real_ws["changes"]
    assert real_ws["previous_version"] == "1.0.0" and real_ws["payload_version"] == "2.0.0"


def test_workspace_uninstall_dry_run_has_the_shape_and_steps_of_the_real_one(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    ws_run("install", ws, "-y", *pinned(releases["1.0.0"]))
    (ws / "AGENT.md").write_bytes(b"mine\n")
    before = tree(ws)
    dry = ws_run("uninstall", ws, "--dry-run").json()
    assert tree(ws) == before
    real = ws_run("uninstall", ws, "-y").json()
    same_shape(dry, real)
    assert dry["scopes"]["workspace"]["steps"] == real["scopes"]["workspace"]["steps"]
    assert dry["scopes"]["workspace"]["kept"] == real["scopes"]["workspace"]["kept"] != []
    assert tree(ws) == {"AGENT.md": b"mine\n"}


def _host_steps(document: dict[str, Any]) -> list[str]:
    return list(document["steps"])


def test_host_install_and_upgrade_dry_runs_list_the_steps_the_real_runs_take(
    host_release, home, runner  # noqa: F811
):
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    dry_options = dataclasses.replace(YES, dry_run=True)
    for version in ("1.0.0", "2.0.0"):
        before = tree(home)
        dry, _ = install(host_release[version], host, runner, dry_options)
        assert tree(home) == before
        real, _ = install(host_release[version], host, runner)
        assert set(dry) == set(real)
        assert _host_steps(dry) == _host_steps(real) != []
        assert dry["files"] == real["files"] and real["applied"]


def test_host_uninstall_dry_run_lists_the_steps_the_real_uninstall_takes(
    host_release, home, runner  # noqa: F811
):
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    install(host_release["1.0.0"], host, runner)
    before = tree(home)
    dry, _ = uninstall(host, runner, dry_run=True)
    assert tree(home) == before
    real, _ = uninstall(host, runner)
    assert set(dry) == set(real) and _host_steps(dry) == _host_steps(real) != []


# --- read commands read -------------------------------------------------------------------------


def _interrupt(receipt: Path) -> bytes:
    """Make the receipt look like a run killed after its last action (what a kill leaves)."""
    doc = json.loads(receipt.read_text())
    doc["run"]["status"] = "in-progress"
    receipt.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return receipt.read_bytes()


def test_read_commands_report_an_interrupted_run_with_exit_11_and_change_nothing(
    tmp_path, releases
):
    ws = tmp_path / "ws"
    ws.mkdir()
    ws_run("install", ws, "-y", *pinned(releases["1.0.0"]))
    receipt = _interrupt(ws / RECEIPT)
    before = tree(ws)
    for argv in (
        ("status",),
        ("plan", "--no-host", *pinned(releases["1.0.0"])),
        ("install", "--no-host", "--dry-run", *pinned(releases["1.0.0"])),
        ("uninstall", "--dry-run"),
    ):
        done = cli("--json", *argv, "--workspace", ws)
        assert done.exit_code == 11, (argv, done.stderr)
        assert "interrupted" in done.stderr and f"mam-install rollback --workspace {ws}" in (
            done.stderr
        )
        assert done.json()["error"].startswith("the run ")
        assert tree(ws) == before and (ws / RECEIPT).read_bytes() == receipt
    assert cli("rollback", "--workspace", ws).exit_code == 0  # undoes the interrupted run
    assert tree(ws) == {}


def test_status_takes_no_lock_and_writes_nothing_into_the_state_dir(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    ws_run("install", ws, "-y", *pinned(releases["1.0.0"]))
    (ws / ".mam/lock").unlink()
    listing = sorted(p.name for p in (ws / ".mam").iterdir())
    assert cli("status", "--workspace", ws).exit_code == 0
    assert sorted(p.name for p in (ws / ".mam").iterdir()) == listing


# --- the host scope has status and rollback ---------------------------------------------------


def _host_scope(home: Path, runner: Any) -> HostScope:  # noqa: F811
    return HostScope(host_layout(system="linux", home=home), runner=runner)


def test_status_host_reports_each_tool_unit_and_rc_block_by_its_check(
    host_release, home, runner  # noqa: F811
):
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    install(host_release["1.0.0"], host, runner)
    done = cli("--json", "status", "--host")
    assert done.exit_code == 0, done.stderr
    states = done.scope("host")["states"]
    tools = home / ".local/share/mam/bin"
    unit = home / ".config/systemd/user/mam-tmux-holder.service"
    assert states[str(tools / "lib.sh")] == states[str(unit)] == "pristine"
    assert states[str(home / ".profile")] == "pristine"
    (tools / "lib.sh").write_bytes(b"# mine\n")
    unit.unlink()
    (home / ".profile").write_bytes(b"x\n")  # the user took the block out
    before = tree(home)
    done = cli("--json", "status", "--host")
    assert done.exit_code == 4
    states = done.scope("host")["states"]
    assert states[str(tools / "lib.sh")] == "modified" and states[str(unit)] == "missing"
    assert states[str(home / ".profile")] == "modified"
    assert tree(home) == before
    assert f"modified  {tools / 'lib.sh'}" in cli("status", "--host").stderr


def test_rollback_host_returns_to_the_version_before_the_last_upgrade(
    host_release, home, runner  # noqa: F811
):
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    install(host_release["1.0.0"], host, runner)
    v1 = tree(home / ".local/share/mam/bin")
    install(host_release["2.0.0"], host, runner)
    assert tree(home / ".local/share/mam/bin") != v1
    feedback = ConsoleFeedback(verbosity=-1)
    result = drive(_host_scope(home, runner), "rollback", RunOptions(lock_timeout=5), feedback)
    assert (result.previous_version, result.payload_version) == ("2.0.0", "1.0.0")
    assert tree(home / ".local/share/mam/bin") == v1
    status = cli("--json", "status", "--host")
    assert status.exit_code == 0 and status.scope("host")["payload_version"] == "1.0.0"


def test_rollback_host_without_an_install_is_a_receipt_error_and_creates_nothing(home):  # noqa: F811
    done = cli("--json", "rollback", "--host")
    assert done.exit_code == 6 and "not installed" in done.stderr
    assert not (home / ".local/share/mam").exists()


def test_rollback_without_an_install_is_a_receipt_error_and_creates_nothing(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    done = cli("--json", "rollback", "--workspace", ws)
    assert done.exit_code == 6 and "not installed" in done.json()["error"]
    assert list(ws.iterdir()) == []


# --- uninstall --all ----------------------------------------------------------------------------


def test_uninstall_all_removes_both_scopes_extractions_and_logs_and_keeps_every_user_file(
    host_release, releases, home, runner, tmp_path, monkeypatch  # noqa: F811
):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_bytes(b"mine\n")
    ws_run("install", ws, "-y", *pinned(releases["1.0.0"]))
    install(host_release["1.0.0"], with_rc(home, fake_host(home), (".profile", "sh")), runner)
    shiv = tmp_path / "shiv"
    (shiv / "mam-install.pyz_0123/site-packages").mkdir(parents=True)
    (shiv / "other-tool.pyz_99").mkdir()
    monkeypatch.setenv("SHIV_ROOT", str(shiv))
    logs = home / ".local/state/mam/log"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "mam-mqtt-monitor.log").write_bytes(b"the units' log is the user's\n")
    (logs / "mam-install.log.1").write_bytes(b"an old run\n")
    bin_dir = tmp_path / "empty-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))  # no systemctl: nothing real is called
    done = cli("--json", "uninstall", "--all", "-y", "--workspace", ws)
    assert done.exit_code == 0, done.stderr
    doc = done.json()
    assert doc["scopes"]["workspace"]["applied"] and doc["scopes"]["host"]["applied"]
    assert tree(ws) == {"notes.txt": b"mine\n"}
    assert not (home / ".local/share/mam").exists()
    assert not (home / ".config/systemd/user/mam-tmux-holder.service").exists()
    assert sorted(p.name for p in shiv.iterdir()) == ["other-tool.pyz_99"]
    assert sorted(p.name for p in logs.iterdir()) == ["mam-mqtt-monitor.log"]
    assert str(logs / "mam-install.log.1") in doc["removed"]


def test_uninstall_all_where_nothing_is_installed_says_so_for_each_scope(tmp_path, home):  # noqa: F811
    ws = tmp_path / "ws"
    ws.mkdir()
    done = cli("--json", "uninstall", "--all", "-y", "--workspace", ws)
    assert done.exit_code == 0, done.stderr
    scopes = done.json()["scopes"]
    assert scopes["workspace"]["reason"] == scopes["host"]["reason"] == "not installed"


# --- every document follows the schema, failures and usage errors included ---------------------


def test_usage_errors_and_version_print_json_documents_too():
    usage = cli("--json", "install", "--no-such-option")
    assert usage.exit_code == 2
    doc = usage.json()
    assert doc["command"] == "install" and doc["ok"] is False and "--no-such-option" in doc["error"]
    version = cli("--version", "--json")
    assert version.exit_code == 0
    doc = version.json()
    assert doc["command"] == "version" and doc["ok"] and doc["installer_version"]
    assert cli("--json", "cache", "clean", "--dry-run").json()["command"] == "cache clean"


def test_a_failure_document_names_the_error_and_the_debug_log(tmp_path):
    done = cli("--json", "status", "--workspace", tmp_path)
    assert done.exit_code == 6
    doc = checked(json.loads(done.stdout))
    assert doc["log"] and Path(doc["log"]).is_file()
    assert f"the debug log is {doc['log']}" in done.stderr
    log = Path(doc["log"]).read_text()
    assert "==== " in log and "argv: ['--json', 'status'" in log and "Python " in log


def test_the_debug_log_rotates_and_keeps_a_header_per_run(tmp_path, monkeypatch):
    from mam_install import _debug_log

    monkeypatch.setattr(_debug_log, "MAX_BYTES", 600)
    for _ in range(4):
        assert cli("status", "--workspace", tmp_path).exit_code == 6
    logs = Path(_debug_log.log_path()).parent
    names = sorted(p.name for p in logs.iterdir())
    assert "mam-install.log" in names and "mam-install.log.1" in names
    for name in names:
        assert (logs / name).read_text().startswith("==== ")
