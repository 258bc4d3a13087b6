"""AddRcBlock, RemoveRcBlock and RunCommand on real files: exact bytes in, exact bytes out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mam_install._errors import ActionFailed, ConflictError
from mam_install._feedback import ConsoleFeedback
from mam_install._runner import Completed, RecordingRunner
from mam_install.actions import _host_actions
from mam_install.actions._host_actions import (
    BLOCK_BEGIN,
    BLOCK_END,
    AddRcBlock,
    RemoveRcBlock,
    RunCommand,
    rc_block,
)
from mam_install.engine._action import Context, action_from_json


@pytest.fixture
def env_script(tmp_path: Path) -> Path:
    return tmp_path / "data dir" / "env.sh"


def ctx_for(tmp_path: Path, runner: RecordingRunner | None = None) -> Context:
    feedback = ConsoleFeedback(verbosity=-1)
    return Context(root=tmp_path, runner=runner or RecordingRunner(), feedback=feedback)


def add_block(rc: Path, env_script: Path, ctx: Context) -> AddRcBlock:
    action = AddRcBlock.plan(rc, env_script, family="bash")
    assert action.state == "uncompleted", action.reason
    action.execute(ctx)
    action.state = "completed"
    return action


@pytest.mark.parametrize(
    "original",
    [b"export A=1\n", b"export A=1", b"", b"# ends with blank lines\n\n\n", b"\xff\xfe binary\n"],
    ids=["newline", "no-trailing-newline", "empty", "blank-lines", "not-utf8"],
)
def test_block_is_added_once_and_revert_restores_the_file_byte_for_byte(
    tmp_path: Path, env_script: Path, original: bytes
) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(original)
    ctx = ctx_for(tmp_path)
    action = add_block(rc, env_script, ctx)
    data = rc.read_bytes()
    assert data.startswith(original)
    assert data.count(BLOCK_BEGIN.encode()) == 1 and data.endswith(f"{BLOCK_END}\n".encode())
    assert data.count(b"\n" + BLOCK_BEGIN.encode()) == (1 if original else 0)
    action.revert(ctx)
    assert rc.read_bytes() == original


def test_a_missing_rc_file_is_created_for_the_block_and_deleted_again(
    tmp_path: Path, env_script: Path
) -> None:
    rc = tmp_path / ".profile"
    ctx = ctx_for(tmp_path)
    action = add_block(rc, env_script, ctx)
    assert action.created
    assert rc.read_bytes() == rc_block(str(env_script)).encode()
    assert rc.stat().st_mode & 0o777 == 0o644
    action.revert(ctx)
    assert not rc.exists()


def test_the_block_sources_the_env_script_with_its_path_quoted(
    tmp_path: Path, env_script: Path
) -> None:
    block = rc_block(str(env_script))
    assert f"'{env_script}'" in block  # "data dir" has a space


def test_the_files_mode_is_kept_when_the_block_is_added_and_removed(
    tmp_path: Path, env_script: Path
) -> None:
    rc = tmp_path / ".zshrc"
    rc.write_bytes(b"setopt x\n")
    rc.chmod(0o600)
    ctx = ctx_for(tmp_path)
    action = add_block(rc, env_script, ctx)
    assert rc.stat().st_mode & 0o777 == 0o600
    action.revert(ctx)
    assert rc.stat().st_mode & 0o777 == 0o600
    assert rc.read_bytes() == b"setopt x\n"


def test_a_symlinked_rc_file_is_skipped_and_its_target_untouched(
    tmp_path: Path, env_script: Path
) -> None:
    target = tmp_path / "dotfiles" / "bashrc"
    target.parent.mkdir()
    target.write_bytes(b"# mine\n")
    rc = tmp_path / ".bashrc"
    rc.symlink_to(target)
    action = AddRcBlock.plan(rc, env_script)
    assert action.state == "skipped"
    assert "symlink" in action.reason
    assert "symlink" in action.describe_execute()
    assert target.read_bytes() == b"# mine\n" and rc.is_symlink()


def test_an_rc_file_that_is_not_writable_is_skipped(
    tmp_path: Path, env_script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rc = tmp_path / ".profile"
    rc.write_bytes(b"x\n")
    rc.chmod(0o444)
    # The suite runs as root here, for whom access() always says yes; ask as a user would.
    monkeypatch.setattr(_host_actions.os, "access", lambda p, m: os.fspath(p) != str(rc))
    action = AddRcBlock.plan(rc, env_script)
    assert action.state == "skipped" and "not writable" in action.reason
    assert rc.read_bytes() == b"x\n"


def test_a_file_already_holding_the_exact_block_is_completed_and_carried(
    tmp_path: Path, env_script: Path
) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(b"a\n\n" + rc_block(str(env_script)).encode())
    action = AddRcBlock.plan(rc, env_script)
    assert (action.state, action.carried) == ("completed", True)
    assert not action.needs_execute


def test_the_previous_receipts_block_is_carried_with_its_separator(
    tmp_path: Path, env_script: Path
) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(b"no newline")
    ctx = ctx_for(tmp_path)
    first = add_block(rc, env_script, ctx)
    again = AddRcBlock.plan(rc, env_script, previous=first)
    assert (again.state, again.carried, again.separator) == ("completed", True, "\n\n")
    again.revert(ctx)
    assert rc.read_bytes() == b"no newline"


def test_a_different_mam_block_is_left_alone(tmp_path: Path, env_script: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(f"{BLOCK_BEGIN}\n. /old/env.sh\n{BLOCK_END}\n".encode())
    action = AddRcBlock.plan(rc, env_script)
    assert action.state == "skipped" and BLOCK_BEGIN in action.reason


def test_lines_added_after_the_block_survive_its_removal(tmp_path: Path, env_script: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(b"export A=1")
    ctx = ctx_for(tmp_path)
    action = add_block(rc, env_script, ctx)
    with rc.open("ab") as stream:
        stream.write(b"# >>> conda >>>\nconda init\n")
    action.revert(ctx)
    assert rc.read_bytes() == b"export A=1\n# >>> conda >>>\nconda init\n"


def test_an_edited_block_is_kept_with_a_warning(tmp_path: Path, env_script: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(b"a\n")
    ctx = ctx_for(tmp_path)
    action = add_block(rc, env_script, ctx)
    edited = rc.read_bytes().replace(b"if [ -f", b"if [ -r")
    rc.write_bytes(edited)
    action.revert(ctx)
    assert rc.read_bytes() == edited
    assert any("by hand" in w for w in ctx.feedback.warnings)  # type: ignore[attr-defined]


def test_a_block_pasted_twice_is_not_guessed_at(tmp_path: Path, env_script: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(b"a\n")
    ctx = ctx_for(tmp_path)
    action = add_block(rc, env_script, ctx)
    doubled = rc.read_bytes() + rc_block(str(env_script)).encode()
    rc.write_bytes(doubled)
    action.revert(ctx)
    assert rc.read_bytes() == doubled
    assert AddRcBlock.plan(rc, env_script).state == "skipped"


def test_execute_refuses_a_file_that_changed_since_the_plan(
    tmp_path: Path, env_script: Path
) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(b"a\n")
    action = AddRcBlock.plan(rc, env_script)
    rc.write_bytes(b"a")  # the separator planned for "a\n" would now glue lines together
    with pytest.raises(ConflictError):
        action.execute(ctx_for(tmp_path))
    assert rc.read_bytes() == b"a"


def test_execute_after_a_killed_run_does_not_add_a_second_block(
    tmp_path: Path, env_script: Path
) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(b"a\n")
    ctx = ctx_for(tmp_path)
    action = AddRcBlock.plan(rc, env_script)
    action.execute(ctx)
    action.execute(ctx)
    assert rc.read_bytes().count(BLOCK_BEGIN.encode()) == 1
    action.revert(ctx)
    action.revert(ctx)
    assert rc.read_bytes() == b"a\n"


def test_remove_rc_block_undoes_an_add_and_its_revert_puts_it_back(
    tmp_path: Path, env_script: Path
) -> None:
    rc = tmp_path / ".profile"
    rc.write_bytes(b"umask 022\n")
    ctx = ctx_for(tmp_path)
    added = add_block(rc, env_script, ctx)
    with_block = rc.read_bytes()
    remove = RemoveRcBlock.undoing(added)
    assert remove.tag == "remove_rc_block" and remove.state == "uncompleted"
    remove.execute(ctx)
    assert rc.read_bytes() == b"umask 022\n" and remove.outcome == "removed"
    remove.revert(ctx)
    assert rc.read_bytes() == with_block


def test_undoing_a_remove_that_found_no_block_adds_none(tmp_path: Path, env_script: Path) -> None:
    rc = tmp_path / ".profile"
    rc.write_bytes(b"umask 022\n")
    ctx = ctx_for(tmp_path)
    added = add_block(rc, env_script, ctx)
    rc.write_bytes(b"umask 022\n")  # the user took the block out by hand
    remove = RemoveRcBlock.undoing(added)
    remove.execute(ctx)
    remove.revert(ctx)
    assert remove.outcome == "absent" and rc.read_bytes() == b"umask 022\n"


def test_rc_actions_read_back_from_a_receipt_unchanged(tmp_path: Path, env_script: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(b"x")
    added = add_block(rc, env_script, ctx_for(tmp_path))
    for action in (added, RemoveRcBlock.undoing(added)):
        again = action_from_json(action.to_json(), "receipt")
        assert type(again) is type(action)
        assert again.to_json() == action.to_json()


def test_run_command_runs_its_argv_through_the_runner(tmp_path: Path) -> None:
    runner = RecordingRunner()
    runner.answer(["systemctl", "--user", "daemon-reload"])
    action = RunCommand(argv=["systemctl", "--user", "daemon-reload"],
                        revert_argv=["systemctl", "--user", "daemon-reload"])
    action.execute(ctx_for(tmp_path, runner))
    action.revert(ctx_for(tmp_path, runner))
    assert runner.calls == [("systemctl", "--user", "daemon-reload")] * 2
    assert action.describe_execute() == "Run `systemctl --user daemon-reload`"


def test_a_failing_command_fails_the_action_with_what_it_said(tmp_path: Path) -> None:
    runner = RecordingRunner()
    argv = ("systemctl", "--user", "enable", "--now", "mam-tmux-holder.service")
    runner.answers[argv] = Completed(argv, 1, "", "Failed to enable unit: Unit file is masked.\n")
    with pytest.raises(ActionFailed) as info:
        RunCommand(argv=list(argv)).execute(ctx_for(tmp_path, runner))
    assert "exited 1" in str(info.value) and "masked" in str(info.value)


def test_a_command_that_may_fail_only_warns(tmp_path: Path) -> None:
    runner = RecordingRunner()  # answers nothing: every command "cannot be started"
    ctx = ctx_for(tmp_path, runner)
    action = RunCommand(argv=["systemctl", "--user", "daemon-reload"],
                        revert_argv=["systemctl", "--user", "daemon-reload"],
                        on_revert_failure="warn")
    action.revert(ctx)
    assert any("could not be started" in w for w in ctx.feedback.warnings)  # type: ignore[attr-defined]
    with pytest.raises(ActionFailed):
        action.execute(ctx)


def test_a_timed_out_command_says_so(tmp_path: Path) -> None:
    runner = RecordingRunner()
    argv = ("launchctl", "bootstrap", "gui/501", "/x.plist")
    runner.answers[argv] = Completed(argv, 124, "", "", timed_out=True)
    with pytest.raises(ActionFailed, match="timed out after 5s"):
        RunCommand(argv=list(argv), timeout=5).execute(ctx_for(tmp_path, runner))


def test_a_command_without_revert_argv_reverts_to_nothing(tmp_path: Path) -> None:
    runner = RecordingRunner()
    RunCommand(argv=["true"]).revert(ctx_for(tmp_path, runner))
    assert runner.calls == []


def test_run_command_reads_back_from_a_receipt(tmp_path: Path) -> None:
    action = RunCommand(argv=["a", "b"], revert_argv=["c"], description="d", timeout=3.0,
                        on_revert_failure="warn")
    again = action_from_json(action.to_json(), "receipt")
    assert isinstance(again, RunCommand) and again.to_json() == action.to_json()
