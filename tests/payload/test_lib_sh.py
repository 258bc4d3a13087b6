"""lib.sh under each shell present: own path, workspace root, .env, session names, network fs."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.payload._support import LIB_SH, MQTT_DIR, SKILLS

# posh and BusyBox sh: pdksh-like and minimal userlands, where [[:space:]] and cksum can be missing.
SHELLS = ["bash", "zsh", "ksh", "dash", "posh", "busybox"]
# Shells that can tell a sourced file's own path (BASH_SOURCE, zsh %x, ksh93 .sh.file).
INTROSPECTING = ["bash", "zsh", "ksh"]


def shell_or_skip(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"),
           "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def sh(shell: str, script: str, tmp_path: Path, cwd: Path | None = None,
       **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in ``shell`` from a file that sources lib.sh, as a tool would."""
    runner = tmp_path / f"runner-{shell}.sh"
    runner.write_text(f'. "{LIB_SH}"\n{script}\n')
    argv = [shell_or_skip(shell), *(["sh"] if shell == "busybox" else []), str(runner)]
    return subprocess.run(argv, cwd=cwd or tmp_path,
                          env=clean_env(tmp_path, **extra), capture_output=True, text=True,
                          timeout=30)


def load_mqtt_common() -> ModuleType:
    sys.path.insert(0, str(MQTT_DIR))
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ inside payload/
    try:
        return importlib.import_module("mqtt_common")
    finally:
        sys.dont_write_bytecode = saved
        sys.path.remove(str(MQTT_DIR))


# --- its own path -------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", INTROSPECTING)
def test_script_dir_is_found_when_sourced_from_another_file(shell: str, tmp_path: Path) -> None:
    result = sh(shell, "mam_script_dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{SKILLS.resolve()}\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_script_dir_is_found_when_executed(shell: str, tmp_path: Path) -> None:
    argv = [shell_or_skip(shell), *(["sh"] if shell == "busybox" else [])]
    result = subprocess.run([*argv, str(LIB_SH), "mam_script_dir"],
                            env=clean_env(tmp_path), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{SKILLS.resolve()}\n"


def test_script_dir_fails_loudly_where_the_shell_cannot_know(tmp_path: Path) -> None:
    result = sh("dash", "mam_script_dir; echo rc=$?", tmp_path)
    assert result.stdout == "rc=1\n"
    assert "cannot tell where lib.sh lives; set MAM_LIB" in result.stderr
    hinted = sh("dash", "mam_script_dir", tmp_path, MAM_LIB=str(LIB_SH))
    assert hinted.stdout == f"{SKILLS.resolve()}\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_sourcing_runs_nothing_and_leaves_the_shell_alive(shell: str, tmp_path: Path) -> None:
    result = sh(shell, 'echo "still here $#"', tmp_path)
    assert result.returncode == 0
    assert result.stdout == "still here 0\n"
    assert result.stderr == ""


# --- workspace root -----------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "a" / "b" / "c").mkdir(parents=True)
    (ws / ".mam").mkdir()
    return ws


@pytest.mark.parametrize("shell", SHELLS)
def test_root_is_found_from_nested_directories(shell: str, workspace: Path,
                                               tmp_path: Path) -> None:
    deep = workspace / "a" / "b" / "c"
    result = sh(shell, 'mam_workspace_root; mam_workspace_root "$1"', tmp_path, cwd=deep)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(workspace.resolve())] * 2


@pytest.mark.parametrize("marker", [".git", ".env"])
def test_nearest_marker_wins(marker: str, workspace: Path, tmp_path: Path) -> None:
    inner = workspace / "a"
    (inner / marker).write_text("")
    result = sh("dash", f'mam_workspace_root "{inner / "b" / "c"}"', tmp_path)
    assert result.stdout == f"{inner.resolve()}\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_root_is_found_through_a_symlinked_directory(shell: str, workspace: Path,
                                                     tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "link").symlink_to(workspace / "a" / "b")
    result = sh(shell, "mam_workspace_root", tmp_path, cwd=outside / "link" / "c")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{workspace.resolve()}\n"


def test_no_marker_anywhere_is_an_error_naming_the_directory(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    result = sh("dash", 'mam_workspace_root "$PWD"; echo "rc=$?"', tmp_path, cwd=bare)
    if result.stdout != "rc=1\n":
        pytest.skip("a parent of the temporary directory holds .mam, .git or .env")
    assert f"no .mam, .git or .env in {bare}" in result.stderr


# --- .env ---------------------------------------------------------------------------------------

ENV_TEXT = """\
# a comment, then a blank line

MAM_PLAIN=plain value   # trailing comment
export MAM_EXPORTED=exported
MAM_DOUBLE="a # not a comment"
MAM_SINGLE='$(touch {canary}) `touch {canary}`'
MAM_SUBST=$(touch {canary})
MAM_BACKTICK=`touch {canary}`
MAM_SEMI=x; touch {canary}
MAM_EMPTY=
  MAM_SPACED = spaced out
MAM_CRLF=windows\r
$(touch {canary})
rm -rf ~
MAM_UNTERMINATED="oops
MAM_ALREADY=from file
1BAD=x
OTHER_VAR=not ours
IFS=x
MAM_DANGER=$(rm -rf ~)
$(rm -rf ~)
"""

EXPECTED_ENV = {
    "MAM_PLAIN": "plain value",
    "MAM_EXPORTED": "exported",
    "MAM_DOUBLE": "a # not a comment",
    "MAM_SINGLE": "$(touch {canary}) `touch {canary}`",
    "MAM_SUBST": "$(touch {canary})",
    "MAM_BACKTICK": "`touch {canary}`",
    "MAM_SEMI": "x; touch {canary}",
    "MAM_EMPTY": "",
    "MAM_SPACED": "spaced out",
    "MAM_CRLF": "windows",
    "MAM_ALREADY": "from the environment",
    "MAM_DANGER": "$(rm -rf ~)",
}


def env_workspace(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    # HOME is tmp_path/home in every run here: a parser that ran `rm -rf ~` would delete this.
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "home" / "sentinel").write_text("still here")
    canary = tmp_path / "canary"
    (ws / ".env").write_text(ENV_TEXT.format(canary=canary))
    expected = {k: v.format(canary=canary) for k, v in EXPECTED_ENV.items()}
    return ws, canary, expected


def dumped(stdout: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in stdout.splitlines() if line.startswith("MAM_"))
    return {k: v for k, v in pairs if k not in {"MAM_WORKSPACE", "MAM_LIB"}}


@pytest.mark.parametrize("shell", SHELLS)
def test_env_is_parsed_never_executed(shell: str, tmp_path: Path) -> None:
    ws, canary, expected = env_workspace(tmp_path)
    result = sh(shell, "mam_load_env; env", tmp_path, cwd=ws / "sub",
                MAM_ALREADY="from the environment", MAM_WORKSPACE=str(ws / "sub"))
    assert result.returncode == 0, result.stderr
    assert dumped(result.stdout) == expected
    assert not canary.exists()
    assert (tmp_path / "home" / "sentinel").exists()
    assert "OTHER_VAR" not in result.stdout
    warnings = result.stderr.splitlines()
    for number in (13, 14, 15, 17, 21):
        assert any(f".env:{number}: ignored a line that is not KEY=VALUE" in w for w in warnings)


def test_settings_files_cannot_set_shell_internals(tmp_path: Path) -> None:
    settings = tmp_path / "agent.env"
    settings.write_text("IFS=x\nLD_PRELOAD=/tmp/evil.so\nAPI_TOKEN=t0k3n\n")
    script = f'mam_load_env_file "{settings}"; echo "[$IFS|${{LD_PRELOAD-unset}}|$API_TOKEN]"'
    result = sh("dash", script, tmp_path)
    assert result.stdout == "[ \t\n|unset|t0k3n]\n"
    assert "IFS is not settable" in result.stderr
    assert "LD_PRELOAD is not settable" in result.stderr


def test_env_is_loaded_once(tmp_path: Path) -> None:
    ws, _, _ = env_workspace(tmp_path)
    script = (f'mam_load_env 2>/dev/null; echo "MAM_PLAIN=changed" > "{ws}/.env"; '
              'mam_load_env; echo "$MAM_PLAIN"')
    result = sh("dash", script, tmp_path, cwd=ws, MAM_WORKSPACE=str(ws))
    assert result.stdout == "plain value\n"


def test_env_file_setting_overrides_the_workspace_env(tmp_path: Path) -> None:
    ws, _, _ = env_workspace(tmp_path)
    explicit = tmp_path / "mqtt.env"
    explicit.write_text("MAM_PLAIN=from MAM_ENV_FILE\n")
    result = sh("dash", 'mam_load_env; echo "$MAM_PLAIN"', tmp_path, cwd=ws,
                MAM_ENV_FILE=str(explicit), MAM_WORKSPACE=str(ws))
    assert result.stdout == "from MAM_ENV_FILE\n"


def test_shell_and_python_read_the_same_values(tmp_path: Path) -> None:
    ws, canary, expected = env_workspace(tmp_path)
    mqtt_common = load_mqtt_common()
    environ = {"MAM_ALREADY": "from the environment"}
    loaded = mqtt_common.load_env(environ, start=ws / "sub")
    assert loaded == ws / ".env"
    assert environ == expected
    values, bad = mqtt_common.parse_env_text((ws / ".env").read_text(), prefix="MAM_")
    assert values == {k: v for k, v in expected.items() if k != "MAM_ALREADY"} | {
        "MAM_ALREADY": "from file"}
    assert sorted(bad) == [13, 14, 15, 17, 21]
    assert not canary.exists()


# --- session names ------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_session_names_of_same_named_directories_differ(shell: str, tmp_path: Path) -> None:
    script = ('mam_session_name /a/src; mam_session_name /b/src; mam_session_name /a/src; '
              'mam_session_name "/x/My Project.v2"; mam_session_name /')
    result = sh(shell, script, tmp_path)
    assert result.returncode == 0, result.stderr
    a, b, a_again, spaced, root = result.stdout.splitlines()
    assert a != b
    assert a == a_again
    assert a.startswith("src-") and b.startswith("src-")
    assert spaced.startswith("My-Project-v2-")
    assert root.startswith("root-")
    for name in (a, b, spaced, root):
        assert len(name) <= 33
        assert all(ch.isalnum() or ch in "_-" for ch in name), name


def busybox_userland(tmp_path: Path, without: set[str]) -> Path:
    """A PATH directory of BusyBox applets only, minus ``without``."""
    busybox = shell_or_skip("busybox")
    listed = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    bin_dir = tmp_path / "busybox-bin"
    bin_dir.mkdir()
    for applet in listed.stdout.split():
        if applet not in without:
            (bin_dir / applet).symlink_to(busybox)
    return bin_dir


def name_in(bin_dir: Path, directory: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "sh"), str(LIB_SH), "mam_session_name", directory],
                          env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30)


def test_without_cksum_names_still_differ_per_directory(tmp_path: Path) -> None:
    bin_dir = busybox_userland(tmp_path, without={"cksum"})
    result, other = name_in(bin_dir, "/a/src"), name_in(bin_dir, "/b/src")
    assert (result.returncode, other.returncode) == (0, 0), result.stderr + other.stderr
    names = {result.stdout.strip(), other.stdout.strip()}
    assert len(names) == 2
    assert "src-00000000" not in names
    assert all(len(name) == len("src-") + 8 for name in names)


def test_without_any_checksum_tool_naming_fails_loudly(tmp_path: Path) -> None:
    bin_dir = busybox_userland(
        tmp_path, without={"cksum", "sha256sum", "shasum", "openssl", "md5sum", "sha1sum"})
    result = name_in(bin_dir, "/a/src")
    assert result.returncode == 69
    assert result.stdout == ""
    assert "no working checksum tool" in result.stderr


def test_session_name_is_the_same_across_shells_and_through_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real" / "src"
    real.mkdir(parents=True)
    (tmp_path / "alias").symlink_to(real)
    names = set()
    for shell in SHELLS:
        if shutil.which(shell) is None:
            continue
        for path in (real, tmp_path / "alias"):
            names.add(sh(shell, f'mam_session_name "{path}"', tmp_path).stdout)
    assert len(names) == 1


# --- network filesystems ------------------------------------------------------------------------


def fake_mounts(tmp_path: Path) -> dict[str, Path]:
    dirs = {name: tmp_path / "mnt" / name
            for name in ("nfs", "smb share", "sshfs", "fuse", "plain", "auto")}
    dirs["nfs/local"] = dirs["nfs"] / "local"
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return dirs


def mountinfo(dirs: dict[str, Path]) -> str:
    def esc(path: Path) -> str:
        return str(path).replace("\\", "\\134").replace(" ", "\\040")

    return (
        "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"30 22 0:40 / {esc(dirs['nfs'])} rw,relatime shared:9 - nfs4 srv:/export rw,vers=4.2\n"
        f"31 30 8:2 / {esc(dirs['nfs/local'])} rw - ext4 /dev/sdb1 rw\n"
        f"32 22 0:41 / {esc(dirs['smb share'])} rw master:3 - cifs //srv/share rw\n"
        f"33 22 0:42 / {esc(dirs['sshfs'])} rw - fuse.sshfs me@far:/ rw\n"
        f"34 22 0:43 / {esc(dirs['fuse'])} rw - fuse.mystery thing rw\n"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_network_fs_is_detected_from_mountinfo(shell: str, tmp_path: Path) -> None:
    dirs = fake_mounts(tmp_path)
    table = tmp_path / "mountinfo"
    table.write_text(mountinfo(dirs))
    cases = {
        dirs["nfs"] / "not-yet" / "created": 0,
        dirs["smb share"]: 0,
        dirs["sshfs"]: 0,
        dirs["nfs/local"]: 1,
        dirs["plain"]: 1,
        dirs["fuse"]: 2,
    }
    script = "\n".join(f'mam_is_network_fs "{path}"; echo $?' for path in cases)
    result = sh(shell, script, tmp_path, MAM_MOUNTINFO=str(table))
    assert result.stdout.split() == [str(code) for code in cases.values()], result.stderr


def test_network_fs_is_detected_from_bsd_mount_output(tmp_path: Path) -> None:
    dirs = fake_mounts(tmp_path)
    table = tmp_path / "mount.out"
    table.write_text(
        "/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)\n"
        f"srv:/export on {dirs['nfs']} (nfs, nodev, nosuid, mounted by me)\n"
        f"/dev/disk4 on {dirs['nfs/local']} (apfs, local, nodev, nosuid)\n"
        f"//me@srv/share on {dirs['smb share']} (smbfs, nodev, nosuid, mounted by me)\n"
        f"map auto_home on {dirs['auto']} (autofs, automounted, nobrowse)\n"
    )
    cases = {dirs["nfs"]: 0, dirs["smb share"]: 0, dirs["nfs/local"]: 1, dirs["plain"]: 1,
             dirs["auto"]: 2}
    script = "\n".join(f'mam_is_network_fs "{path}"; echo $?' for path in cases)
    result = sh("dash", script, tmp_path, MAM_MOUNT_TABLE=str(table))
    assert result.stdout.split() == [str(code) for code in cases.values()], result.stderr


def test_network_fs_reads_the_real_mount_table(tmp_path: Path) -> None:
    if not Path("/proc/self/mountinfo").exists():
        pytest.skip("no /proc/self/mountinfo on this system")
    result = subprocess.run(["sh", str(LIB_SH), "mam_is_network_fs", "/proc"],
                            env=clean_env(tmp_path), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr


def test_network_fs_detection_never_uses_df() -> None:
    text = LIB_SH.read_text()
    assert "df " not in text
    assert "--output" not in text


@pytest.mark.parametrize(
    ("check", "name", "valid"),
    [
        ("mam_valid_name", "agent-1_x", True),
        ("mam_valid_name", "a" * 64, True),
        ("mam_valid_name", "a" * 65, False),
        ("mam_valid_name", "a.b", False),
        ("mam_valid_name", "a:b", False),
        ("mam_valid_name", "-a", False),
        ("mam_valid_name", "", False),
        ("mam_valid_name", "a b", False),
        ("mam_valid_name", "é", False),
        ("mam_valid_socket_name", "mam.v2", True),
        ("mam_valid_socket_name", "-L", False),
        ("mam_valid_socket_name", "a/b", False),
        ("mam_valid_socket_name", "a;b", False),
    ],
)
def test_names_that_reach_tmux_and_ssh_are_checked(check: str, name: str, valid: bool,
                                                   tmp_path: Path) -> None:
    result = subprocess.run(["sh", str(LIB_SH), check, name], env=clean_env(tmp_path),
                            capture_output=True, text=True, timeout=30)
    assert (result.returncode == 0) is valid
