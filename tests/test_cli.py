"""The command line itself: light start-up, versions, usage errors, global options."""

from __future__ import annotations

import subprocess
import sys

from clirun import cli
from subproc import environment
from workspaces import pinned

HEAVY = ("httpx", "httpcore", "anyio", "packaging", "platformdirs", "tarfile", "hashlib")


def imported_after(*argv: str) -> set[str]:
    code = (
        "import sys\n"
        f"sys.argv = ['mam-install', *{list(argv)!r}]\n"
        "from mam_install.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment(), capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_version_and_help_import_only_click_and_the_cli():
    for argv in (["--version"], ["--help"], ["install", "--help"]):
        modules = imported_after(*argv)
        heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
        assert heavy == [], f"{argv} imported {heavy}"
        ours = sorted(m for m in modules if m.startswith("mam_install."))
        light = {"mam_install.cli", "mam_install._cli_run", "mam_install._errors",
                 "mam_install.release",
                 "mam_install.release._embedded"}
        assert set(ours) <= light


def test_a_fresh_workspace_install_imports_neither_logging_nor_platformdirs(tmp_path):
    """The debug log is appended by hand, in a directory worked out by hand."""
    modules = imported_after("install", "-y", "-q", "--no-host", "--workspace", str(tmp_path))
    assert (tmp_path / ".mam/install-receipt.json").is_file()
    assert "mam_install.commands._cmd_install" in modules and "mam_install._debug_log" in modules
    assert {"logging", "platformdirs"} & modules == set()


def test_version_names_installer_and_payload_versions():
    run = cli("--version")
    assert run.exit_code == 0
    assert run.stdout.startswith("mam-install 0.") and "payload" in run.stdout


def test_unknown_option_is_a_usage_error_with_exit_2():
    run = cli("install", "--no-such-option")
    assert run.exit_code == 2
    assert "--no-such-option" in run.stderr


def test_bad_sha256_is_a_usage_error(tmp_path):
    run = cli("install", "-y", "--workspace", tmp_path, "--from", "-", "--sha256", "abc")
    assert run.exit_code == 2
    assert "--sha256" in run.stderr


def test_json_error_document_carries_the_exit_code(tmp_path):
    run = cli("--json", "status", "--workspace", tmp_path)
    assert run.exit_code == 6
    doc = run.json()
    assert doc["ok"] is False and doc["exit_code"] == 6 and "receipt" in doc["error"]


def test_quiet_keeps_warnings_and_drops_progress(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "AGENT.md").write_text("mine\n")
    run = cli("-q", "install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert run.exit_code == 0
    assert "installed mam" not in run.stderr
    assert "AGENT.md.mam-new" in run.stderr  # the warning about the kept file stays


def test_a_workspace_only_install_names_the_host_install_as_the_next_step(tmp_path):
    run = cli("install", "-y", "--no-host", "--workspace", tmp_path)
    assert run.exit_code == 0, run.stderr
    steps = run.stderr[run.stderr.index("next steps:") :]
    assert ".env.example" in steps and "without --no-host" in steps
    assert "as said above" not in steps  # nothing above said how to start the holder
