"""Runs on one workspace are serialised by the lock: racing installs end in one install."""

from __future__ import annotations

import json
import subprocess

from subproc import command, environment
from workspaces import V1_FILES, expected_tree, pinned, tree


def test_four_installs_at_once_end_in_one_consistent_install(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    procs = [
        subprocess.Popen(
            command("install", "-y", "--workspace", ws, *pinned(releases["1.0.0"])),
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    installs = [err for _, err in results if "installed mam 1.0.0" in err]
    assert len(installs) == 1, results
    assert tree(ws) == expected_tree(V1_FILES)
    receipt = json.loads((ws / ".mam/install-receipt.json").read_text())
    assert receipt["run"]["status"] == "complete"


def test_a_second_run_waits_then_gives_up_with_exit_9(tmp_path, releases):
    ws = tmp_path / "ws"
    (ws / ".mam").mkdir(parents=True)
    holder = subprocess.Popen(
        [
            "python3", "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)",
            str(ws / ".mam/lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        done = subprocess.run(
            command("install", "-y", "--lock-timeout", "0.5", "--workspace", ws,
                    *pinned(releases["1.0.0"])),
            env=environment(), capture_output=True, text=True, timeout=60,
        )
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 9
    assert str(ws / ".mam/lock") in done.stderr
    assert sorted(p.name for p in ws.iterdir()) == [".mam"]
