"""Host install and uninstall end to end, HOME in a temp dir: real files, a recording runner."""

from __future__ import annotations

import dataclasses
import json
import os
import plistlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mam_install._errors import ActionFailed, IntegrityError, ReceiptError, UsageError
from mam_install._feedback import ConsoleFeedback
from mam_install._runner import Completed, RecordingRunner
from mam_install.actions._host_actions import BLOCK_BEGIN
from mam_install.engine._driver import RunOptions, drive
from mam_install.machine._detect import Host, WorkspaceInfo
from mam_install.machine._shells import RcFile
from mam_install.release._lazy_source import LazyStaged
from mam_install.scopes._host_options import HostOptions
from mam_install.scopes._host_scope import HostScope
from test_host_planner import (  # noqa: F401 - host_release_fixture is the host_release fixture
    fake_host,
    host_release_fixture,
    point_home_at,
    staged,
)
from workspaces import tree

RELOAD = ("systemctl", "--user", "daemon-reload")
ENABLE = ("systemctl", "--user", "enable", "--now", "mam-tmux-holder.service")
DISABLE = ("systemctl", "--user", "disable", "--now", "mam-tmux-holder.service")
YES = HostOptions(assume_yes=True, lock_timeout=5)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = point_home_at(tmp_path / "home", monkeypatch)
    (home / ".local/share").mkdir(parents=True)  # as on any account that ran a desktop app
    return home


@pytest.fixture
def runner() -> RecordingRunner:
    runner = RecordingRunner()
    for argv in (RELOAD, ENABLE, DISABLE):
        runner.answer(argv)
    return runner


def with_rc(home: Path, host: Host, *names: tuple[str, str]) -> Host:
    rc = tuple(RcFile(home / n, f, os.path.lexists(home / n), (home / n).is_symlink())
               for n, f in names)
    return dataclasses.replace(host, rc_files=rc)


def install(release: Path, host: Host, runner: RecordingRunner,
            options: HostOptions = YES) -> tuple[dict[str, Any], ConsoleFeedback]:
    """The host scope's install through the driver, as `install` runs it."""
    feedback = ConsoleFeedback(verbosity=-1)
    run = RunOptions(dry_run=options.dry_run, assume_yes=options.assume_yes,
                     allow_downgrade=options.allow_downgrade, lock_timeout=options.lock_timeout)
    with staged(release) as (stage, staging):
        scope = HostScope.for_install(
            host, feedback, source=LazyStaged.of(stage, staging, feedback), options=options,
            runner=runner, render_dir=staging.path / "host-rendered",
        )
        return drive(scope, "install", run, feedback).to_json(), feedback


def uninstall(
    host: Host, runner: RecordingRunner, *, dry_run: bool = False, assume_yes: bool = True
) -> tuple[dict[str, Any], ConsoleFeedback]:
    feedback = ConsoleFeedback(verbosity=-1)
    scope = HostScope.for_install(host, feedback, runner=runner)
    run = RunOptions(dry_run=dry_run, assume_yes=assume_yes, lock_timeout=5)
    return drive(scope, "uninstall", run, feedback).to_json(), feedback


def said(feedback: ConsoleFeedback) -> str:
    return "\n".join(feedback._log_lines)


def test_installed_units_are_rendered_and_pass_systemd_analyze_verify_silently(
    host_release, home, runner, tmp_path
):
    install(host_release["1.0.0"], fake_host(home), runner)
    units = home / ".config/systemd/user"
    names = sorted(os.listdir(units))
    assert names == sorted(os.listdir(Path(__file__).parent.parent / "payload/host/units/systemd"))
    for name in names:
        assert b"@MAM_" not in (units / name).read_bytes()
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (it comes with systemd)")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), SYSTEMD_UNIT_PATH=f"{units}:")
    targets = [str(units / n) for n in names if not n.endswith("@.service")]
    targets += [n.replace("@.", "@alice.") for n in names if n.endswith("@.service")]
    result = subprocess.run([analyze, "verify", "--user", *targets], env=env,
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_rc_block_appears_once_after_two_installs_and_the_second_is_a_noop(
    host_release, home, runner
):
    (home / ".bashrc").write_bytes(b"alias ll='ls -l'\n")
    host = with_rc(home, fake_host(home), (".profile", "sh"), (".bashrc", "bash"))
    first, _ = install(host_release["1.0.0"], host, runner)
    receipt = (home / ".local/share/mam/install-receipt.json").read_bytes()
    second, feedback = install(host_release["1.0.0"], host, runner)
    for name in (".profile", ".bashrc"):
        assert (home / name).read_bytes().count(BLOCK_BEGIN.encode()) == 1
    assert first["applied"] and not second["applied"]
    assert "nothing to do" in said(feedback)
    assert (home / ".local/share/mam/install-receipt.json").read_bytes() == receipt
    assert runner.calls.count(RELOAD) == 1


def test_uninstall_restores_every_rc_file_byte_for_byte_and_removes_all_it_made(
    host_release, home, runner
):
    (home / ".profile").write_bytes(b"export EDITOR=vi")  # no trailing newline
    (home / ".bashrc").write_bytes(b"# bashrc\n\n")
    (home / ".zdot").mkdir()
    before = tree(home)
    host = with_rc(home, fake_host(home), (".profile", "sh"), (".bashrc", "bash"),
                   (".zdot/.zshrc", "zsh"))
    fish = home / ".config/fish/conf.d/mam.fish"
    host = dataclasses.replace(host, rc_files=(*host.rc_files, RcFile(fish, "fish", False, False)))
    document, _ = install(host_release["1.0.0"], host, runner)
    assert set(document["changes"]["rc_files"]) == {
        str(home / ".profile"), str(home / ".bashrc"), str(home / ".zdot/.zshrc")
    }
    assert document["files"][str(home / ".zdot/.zshrc")] == "block added"
    assert fish.is_file() and (home / ".zdot/.zshrc").is_file()
    removed, feedback = uninstall(host, runner)
    assert tree(home) == before
    assert f"changed {home / '.bashrc'}: removed" in said(feedback)
    assert removed["applied"] and str(home / ".profile") in removed["changes"]["rc_files"]


def test_a_symlinked_bashrc_is_left_alone_and_the_output_says_so(
    host_release, home, runner, tmp_path
):
    target = tmp_path / "dotfiles" / "bashrc"
    target.parent.mkdir()
    target.write_bytes(b"# managed by my dotfiles\n")
    (home / ".bashrc").symlink_to(target)
    host = with_rc(home, fake_host(home), (".profile", "sh"), (".bashrc", "bash"))
    document, feedback = install(host_release["1.0.0"], host, runner)
    assert target.read_bytes() == b"# managed by my dotfiles\n"
    assert (home / ".bashrc").is_symlink()
    assert f"{home / '.bashrc'} was left alone" in "\n".join(feedback.warnings)
    assert str(home / ".bashrc") not in document["files"]
    uninstall(host, runner)
    assert target.read_bytes() == b"# managed by my dotfiles\n"


def test_no_modify_path_touches_no_rc_file(host_release, home, runner):
    (home / ".profile").write_bytes(b"umask 022\n")
    (home / ".bashrc").write_bytes(b"# b\n")
    stamps = {n: (home / n).stat().st_mtime_ns for n in (".profile", ".bashrc")}
    host = with_rc(home, fake_host(home), (".profile", "sh"), (".bashrc", "bash"))
    options = dataclasses.replace(YES, no_modify_path=True)
    document, _ = install(host_release["1.0.0"], host, runner, options)
    assert (home / ".profile").read_bytes() == b"umask 022\n"
    assert (home / ".bashrc").read_bytes() == b"# b\n"
    assert {n: (home / n).stat().st_mtime_ns for n in stamps} == stamps
    assert (home / ".local/share/mam/env.sh").is_file()  # to source by hand (issue 13)
    assert document["changes"]["rc_files"] == []
    assert (home / ".local/share/mam/bin/lib.sh").is_file()


def test_a_tool_the_user_edited_survives_uninstall(host_release, home, runner):
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    install(host_release["1.0.0"], host, runner)
    edited = home / ".local/share/mam/bin/send-message.sh"
    edited.write_bytes(b"#!/bin/sh\n# my fix\n")
    _, feedback = uninstall(host, runner)
    assert edited.read_bytes() == b"#!/bin/sh\n# my fix\n"
    assert not (home / ".local/share/mam/bin/lib.sh").exists()
    assert any("send-message.sh" in w for w in feedback.warnings)
    assert not (home / ".local/share/mam/install-receipt.json").exists()


@pytest.mark.parametrize("usable", [True, False])
def test_daemon_reload_runs_only_where_the_systemd_user_manager_works(
    host_release, home, runner, usable
):
    host = fake_host(home, systemd_user_usable=usable, init_reason=None if usable else "no bus")
    _, feedback = install(host_release["1.0.0"], host, runner)
    uninstall(host, runner)
    assert runner.calls == ([RELOAD, RELOAD] if usable else [])
    assert (home / ".config/systemd/user").exists() is False
    if not usable:
        assert "systemctl --user daemon-reload && systemctl --user enable --now" in said(feedback)


def test_enable_units_starts_the_holder_and_uninstall_stops_it_first(host_release, home, runner):
    host = fake_host(home)
    document, _ = install(host_release["1.0.0"], host, runner,
                          dataclasses.replace(YES, enable_units=True))
    assert runner.calls == [RELOAD, ENABLE]
    assert document["changes"]["commands"] == [
        "Run `systemctl --user daemon-reload` (make the user manager read mam's units)",
        "Run `systemctl --user enable --now mam-tmux-holder.service` "
        "(start mam's tmux server now and at every login)",
    ]
    again, _ = install(host_release["1.0.0"], host, runner)  # no flag: stays enabled
    assert not again["applied"]
    runner.calls.clear()
    uninstall(host, runner)
    assert runner.calls == [DISABLE, RELOAD]


def test_a_failing_command_rolls_the_host_scope_back(host_release, home, tmp_path):
    (home / ".profile").write_bytes(b"export A=1\n")
    before = tree(home)
    runner = RecordingRunner()
    runner.answer(RELOAD)
    runner.answer(DISABLE)
    runner.answers[ENABLE] = Completed(ENABLE, 1, "", "Failed to start: unit masked\n")
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    with pytest.raises(ActionFailed) as info:
        install(host_release["1.0.0"], host, runner, dataclasses.replace(YES, enable_units=True))
    assert "masked" in str(info.value)
    assert tree(home) == before
    # A half-done enable is undone too, then the reload by reloading without the units.
    assert runner.calls == [RELOAD, ENABLE, DISABLE, RELOAD]
    assert not (home / ".local/share/mam").exists()


def test_an_upgrade_replaces_pristine_tools_and_keeps_an_edited_one(host_release, home, runner):
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    install(host_release["1.0.0"], host, runner)
    tools = home / ".local/share/mam/bin"
    (tools / "lib.sh").write_bytes(b"# my lib\n")
    holder_v1 = (tools / "mam-tmux-holder.sh").read_bytes()
    document, _feedback = install(host_release["2.0.0"], host, runner)
    assert (tools / "mam-tmux-holder.sh").read_bytes() == holder_v1 + b"# v2\n"
    assert (tools / "lib.sh").read_bytes() == b"# my lib\n"
    assert document["files"][str(tools / "mam-tmux-holder.sh")] == "replaced"
    # lib.sh is the same in both versions: the user's edit stands and there is nothing to offer.
    assert not (tools / "lib.sh.mam-new").exists()
    assert (home / ".profile").read_bytes().count(BLOCK_BEGIN.encode()) == 1


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_host_downgrade_is_refused_with_exit_5_by_the_dry_run_and_the_real_run_alike(
    host_release, home, runner, dry_run
):
    host = fake_host(home)
    install(host_release["1.0.0"], host, runner)
    before = tree(home)
    with pytest.raises(IntegrityError) as refused:
        install(host_release["0.9.0"], host, runner, dataclasses.replace(YES, dry_run=dry_run))
    assert refused.value.exit_code == 5
    assert "refusing to downgrade" in str(refused.value) and "--allow-downgrade" in str(
        refused.value
    )
    assert tree(home) == before
    allowed = dataclasses.replace(YES, allow_downgrade=True)
    document, _ = install(host_release["0.9.0"], host, runner, allowed)
    assert document["applied"] and document["payload_version"] == "0.9.0"


def test_a_dry_run_changes_nothing_and_lists_the_steps(host_release, home, runner):
    (home / ".profile").write_bytes(b"x\n")
    before = tree(home)
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    document, _ = install(host_release["1.0.0"], host, runner,
                          dataclasses.replace(YES, dry_run=True))
    assert tree(home) == before and runner.calls == []
    assert not document["applied"] and document["reason"] == "dry run"
    assert any(step.startswith(f"Append to `{home / '.profile'}`") for step in document["steps"])
    assert any(step.startswith(f"Write `{home}/.local/share/mam/bin/lib.sh` (0755")
               for step in document["steps"])
    assert "Run `systemctl --user daemon-reload` (make the user manager read mam's units)" in (
        document["steps"]
    )


def test_the_receipt_records_the_host_and_the_state_dir(host_release, home, runner):
    install(host_release["1.0.0"], fake_host(home), runner)
    receipt = json.loads((home / ".local/share/mam/install-receipt.json").read_bytes())
    assert receipt["scope"] == "host" and receipt["run"]["status"] == "complete"
    assert receipt["settings"]["state_dir"] == str(home / ".local/state/mam")
    assert receipt["settings"]["workspace_network_fs"] is False
    assert receipt["host"]["init"] == "systemd-user"


def test_an_interrupted_run_is_undone_before_the_next_install(host_release, home, runner):
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    install(host_release["1.0.0"], host, runner)
    path = home / ".local/share/mam/install-receipt.json"
    receipt = json.loads(path.read_bytes())
    receipt["run"]["status"] = "in-progress"  # as if killed before it could finish
    path.write_text(json.dumps(receipt))
    _, feedback = install(host_release["1.0.0"], host, runner)
    assert "was interrupted" in "\n".join(feedback.warnings)
    assert (home / ".profile").read_bytes().count(BLOCK_BEGIN.encode()) == 1
    assert json.loads(path.read_bytes())["run"]["status"] == "complete"


def test_uninstall_without_a_host_receipt_is_a_receipt_error(home, runner):
    with pytest.raises(ReceiptError, match=r"no receipt at .*mam is not installed"):
        uninstall(fake_host(home), runner)


def test_a_macos_install_writes_plists_that_parse(host_release, home, runner):
    host = fake_host(home, os="darwin", init="launchd", systemd_user_usable=False,
                     launchd_domain="gui/501")
    _, feedback = install(host_release["1.0.0"], host, runner)
    agents = home / "Library/LaunchAgents"
    for plist in agents.iterdir():
        data = plistlib.loads(plist.read_bytes())
        assert data["Label"].startswith("org.mam.")
    assert "launchctl bootstrap gui/501" in said(feedback)
    assert runner.calls == []
    assert (home / "Library/Logs/mam").is_dir()  # launchd does not create StandardOutPath's dir
    uninstall(host, runner)
    assert not agents.exists()
    assert not (home / "Library/Application Support/mam").exists()


def test_a_payload_without_host_files_leaves_the_host_alone(releases, home, runner):
    document, _ = install(releases["1.0.0"], fake_host(home), runner)
    assert not document["applied"]
    assert not (home / ".local/share/mam").exists() and not (home / ".config").exists()


def test_state_moved_off_a_network_workspace_stays_local_for_later_installs(
    host_release, home, runner, tmp_path, monkeypatch
):
    runtime = tmp_path / "run-user-1000"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    nfs = WorkspaceInfo(str(tmp_path / "nfs"), "nfs4", True, "/mnt", "mountinfo")
    install(host_release["1.0.0"], fake_host(home, workspace=nfs), runner)
    unit = home / ".config/systemd/user/mam-mqtt-monitor.service"
    assert f"Environment=MAM_STATE_DIR={runtime}/mam\n".encode() in unit.read_bytes()
    second, feedback = install(host_release["1.0.0"], fake_host(home), runner)  # local workspace
    assert not second["applied"]
    assert f"keeping mam's locks and sequence numbers in {runtime}/mam" in said(feedback)


def test_no_units_on_a_later_run_keeps_and_updates_the_units_an_earlier_run_installed(
    host_release, home, runner
):
    host = fake_host(home)
    install(host_release["1.0.0"], host, runner)
    unit = home / ".config/systemd/user/mam-tmux-holder.service"
    document, feedback = install(host_release["2.0.0"], host, runner,
                                 dataclasses.replace(YES, no_units=True))
    assert document["applied"] and unit.is_file()
    assert "--no-units: the units an earlier install put in" in said(feedback)
    uninstall(host, runner)
    assert not unit.exists()


def test_blocks_of_an_earlier_run_are_carried_by_no_modify_path_and_removed_by_uninstall(
    host_release, home, runner
):
    (home / ".profile").write_bytes(b"export A=1")
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    install(host_release["1.0.0"], host, runner)
    with_block = (home / ".profile").read_bytes()
    # A later run that neither modifies PATH nor even detects the rc file any more.
    later = dataclasses.replace(host, rc_files=())
    document, _ = install(host_release["2.0.0"], later, runner,
                          dataclasses.replace(YES, no_modify_path=True))
    assert document["applied"] and document["changes"]["rc_files"] == []
    assert (home / ".profile").read_bytes() == with_block
    assert (home / ".local/share/mam/env.sh").is_file()  # the carried block still sources it
    uninstall(later, runner)
    assert (home / ".profile").read_bytes() == b"export A=1"


def test_enable_units_with_no_units_is_a_usage_error(host_release, home, runner):
    options = dataclasses.replace(YES, enable_units=True, no_units=True)
    with pytest.raises(UsageError, match="contradict"):
        install(host_release["1.0.0"], fake_host(home), runner, options)
    assert not (home / ".local/share/mam").exists()


def test_uninstall_keeps_an_edited_block_and_says_how_to_remove_it(host_release, home, runner):
    (home / ".profile").write_bytes(b"umask 022\n")
    host = with_rc(home, fake_host(home), (".profile", "sh"))
    install(host_release["1.0.0"], host, runner)
    edited = (home / ".profile").read_bytes().replace(b"if [ -f", b"if [ -r")
    (home / ".profile").write_bytes(edited)
    _, feedback = uninstall(host, runner)
    assert (home / ".profile").read_bytes() == edited
    assert any("by hand" in w and ".profile" in w for w in feedback.warnings)
    assert f"changed {home / '.profile'}" not in said(feedback)
    assert not (home / ".local/share/mam").exists()
