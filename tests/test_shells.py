"""Tests for machine._shells: the user's shell and the rc files the PATH block goes into."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mam_install._runner import RecordingRunner, SubprocessRunner
from mam_install.machine._shells import (
    ZDOTDIR_PROBE,
    RcFile,
    ShellInfo,
    detect_shell,
    plan_rc_files,
    shell_family,
)

BASH = ShellInfo(login="/bin/bash", env="/bin/bash", parent="bash")
ZSH = ShellInfo(login="/bin/zsh", env="/bin/zsh", parent="zsh")
FISH = ShellInfo(login="/usr/bin/fish", env="/usr/bin/fish", parent="fish")


def _names(files: tuple[RcFile, ...], home: Path) -> list[tuple[str, str]]:
    return [(str(rc.path.relative_to(home)), rc.family) for rc in files]


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("shell", "family"),
    [
        ("/bin/bash", "bash"),
        ("-bash", "bash"),
        ("/usr/local/bin/zsh", "zsh"),
        ("/opt/homebrew/bin/fish", "fish"),
        ("/bin/dash", "sh"),
        ("/bin/ksh", "sh"),
        ("sh", "sh"),
        ("/usr/bin/python3", None),
        ("", None),
        (None, None),
    ],
)
def test_shell_family_from_path_or_process_name(shell: str | None, family: str | None) -> None:
    assert shell_family(shell) == family


def test_login_shell_decides_the_family_and_any_witness_counts_as_used() -> None:
    shell = ShellInfo(login="/bin/bash", env="/bin/bash", parent="zsh")
    assert shell.family == "bash"
    assert shell.uses("zsh") and shell.uses("bash") and not shell.uses("fish")
    assert ShellInfo(None, "/bin/zsh", None).family == "zsh"
    assert shell.to_json() == {
        "login": "/bin/bash",
        "env": "/bin/bash",
        "parent": "zsh",
        "family": "bash",
    }


def test_parent_process_name_comes_from_proc_on_linux(tmp_path: Path) -> None:
    (tmp_path / "proc" / "4242").mkdir(parents=True)
    (tmp_path / "proc" / "4242" / "comm").write_text("zsh\n")
    env = {"SHELL": "/bin/bash"}
    found = detect_shell(login_shell="/bin/bash", env=env, system="linux", root=tmp_path, ppid=4242)
    assert found == ShellInfo("/bin/bash", "/bin/bash", "zsh")
    elsewhere = detect_shell(
        login_shell="/bin/zsh", env={}, system="darwin", root=tmp_path, ppid=4242
    )
    assert elsewhere == ShellInfo("/bin/zsh", None, None)


def test_bash_without_bash_profile_gets_profile_and_bashrc_only(home: Path) -> None:
    (home / ".bashrc").write_text("# mine\n")
    files = plan_rc_files(home, BASH, {"PATH": ""}, RecordingRunner())
    assert _names(files, home) == [(".profile", "sh"), (".bashrc", "bash")]
    assert not files[0].exists and files[1].exists
    assert not (home / ".bash_profile").exists(), "planning must never create .bash_profile"
    assert [rc.env_script for rc in files] == ["posix", "posix"]


def test_bash_with_bash_profile_includes_it(home: Path) -> None:
    (home / ".bash_profile").write_text(". ~/.bashrc\n")
    (home / ".bashrc").write_text("")
    (home / ".profile").write_text("")
    files = plan_rc_files(home, BASH, {"PATH": ""}, RecordingRunner())
    assert _names(files, home) == [
        (".profile", "sh"),
        (".bash_profile", "bash"),
        (".bashrc", "bash"),
    ]
    assert all(rc.exists for rc in files)


def test_bash_login_counts_only_without_bash_profile(home: Path) -> None:
    (home / ".bash_login").write_text("")
    files = plan_rc_files(home, BASH, {"PATH": ""}, RecordingRunner())
    assert _names(files, home) == [(".profile", "sh"), (".bash_login", "bash")]
    (home / ".bash_profile").write_text("")
    files = plan_rc_files(home, BASH, {"PATH": ""}, RecordingRunner())
    assert _names(files, home) == [(".profile", "sh"), (".bash_profile", "bash")]


def test_symlinked_bashrc_is_reported_as_a_symlink(home: Path, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "bashrc").write_text("")
    (home / ".bashrc").symlink_to(dotfiles / "bashrc")
    files = plan_rc_files(home, BASH, {"PATH": ""}, RecordingRunner())
    bashrc = files[-1]
    assert bashrc.path == home / ".bashrc" and bashrc.symlink and bashrc.exists


def test_zsh_user_with_zdotdir_in_the_environment(home: Path, tmp_path: Path) -> None:
    zdotdir = tmp_path / "zdot"
    runner = RecordingRunner()
    files = plan_rc_files(home, ZSH, {"PATH": "", "ZDOTDIR": str(zdotdir)}, runner)
    assert [(rc.path, rc.family, rc.exists) for rc in files] == [
        (home / ".profile", "sh", False),
        (zdotdir / ".zshrc", "zsh", False),
    ]
    assert runner.calls == [], "ZDOTDIR from the environment needs no zsh run"


def test_zsh_user_with_zdotdir_set_in_zshenv_is_asked_of_zsh(home: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake_zsh = bindir / "zsh"
    fake_zsh.write_text("#!/bin/sh\nexit 0\n")
    fake_zsh.chmod(0o755)
    runner = RecordingRunner()
    runner.answer([str(fake_zsh), "-c", ZDOTDIR_PROBE], stdout=f"{home}/.config/zsh")
    files = plan_rc_files(home, ZSH, {"PATH": str(bindir)}, runner)
    assert files[-1] == RcFile(home / ".config" / "zsh" / ".zshrc", "zsh", False, False)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_real_zsh_reports_zdotdir_from_the_users_zshenv(home: Path) -> None:
    (home / ".zshenv").write_text('export ZDOTDIR="$HOME/.config/zsh"\n')
    (home / ".config" / "zsh").mkdir(parents=True)
    (home / ".config" / "zsh" / ".zshrc").write_text("")
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    files = plan_rc_files(home, BASH, env, SubprocessRunner())
    assert (home / ".config" / "zsh" / ".zshrc", "zsh", True) in [
        (rc.path, rc.family, rc.exists) for rc in files
    ]


def test_bash_user_with_an_existing_zshrc_gets_it_too(home: Path) -> None:
    (home / ".zshrc").write_text("")
    files = plan_rc_files(home, BASH, {"PATH": ""}, RecordingRunner())
    assert _names(files, home) == [(".profile", "sh"), (".zshrc", "zsh")]


def test_bash_user_without_zsh_gets_no_zshrc(home: Path) -> None:
    files = plan_rc_files(home, BASH, {"PATH": ""}, RecordingRunner())
    assert _names(files, home) == [(".profile", "sh")]


def test_fish_user_gets_a_conf_d_file(home: Path) -> None:
    files = plan_rc_files(home, FISH, {"PATH": ""}, RecordingRunner())
    assert _names(files, home) == [(".profile", "sh"), (".config/fish/conf.d/mam.fish", "fish")]
    assert files[-1].env_script == "fish"


def test_fish_configured_but_not_the_login_shell_still_gets_conf_d(home: Path) -> None:
    (home / ".config" / "fish").mkdir(parents=True)
    files = plan_rc_files(home, BASH, {"PATH": ""}, RecordingRunner())
    assert (".config/fish/conf.d/mam.fish", "fish") in _names(files, home)


def test_fish_conf_d_follows_xdg_config_home(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "xdg"
    files = plan_rc_files(
        home, FISH, {"PATH": "", "XDG_CONFIG_HOME": str(config)}, RecordingRunner()
    )
    assert files[-1].path == config / "fish" / "conf.d" / "mam.fish"


def test_chatty_zshenv_output_before_zdotdir_is_ignored(home: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake_zsh = bindir / "zsh"
    fake_zsh.write_text("#!/bin/sh\nexit 0\n")
    fake_zsh.chmod(0o755)
    (home / ".zshenv").write_text("echo welcome\n")
    runner = RecordingRunner()
    runner.answer([str(fake_zsh), "-c", ZDOTDIR_PROBE], stdout=f"welcome\n{home}/zdot")
    (home / "zdot").mkdir()
    (home / "zdot" / ".zshrc").write_text("")
    files = plan_rc_files(home, BASH, {"PATH": str(bindir)}, runner)
    assert runner.calls == [(str(fake_zsh), "-c", ZDOTDIR_PROBE)], ".zshenv makes zsh relevant"
    assert [rc.path for rc in files] == [home / ".profile", home / "zdot" / ".zshrc"]
