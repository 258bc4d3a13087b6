"""The command-runner port: a missing program, a hang and a failure are results, not crashes."""

from __future__ import annotations

import sys

from mam_install._runner import RecordingRunner, SubprocessRunner


def test_a_real_command_is_captured():
    done = SubprocessRunner().run([sys.executable, "-c", "print('hi'); raise SystemExit(3)"])
    assert (done.returncode, done.stdout, done.ok) == (3, "hi\n", False)


def test_a_missing_program_is_exit_127_not_an_exception():
    done = SubprocessRunner().run(["/nonexistent/mam-no-such-tool"])
    assert done.returncode == 127 and not done.ok


def test_a_hung_command_times_out_as_124():
    done = SubprocessRunner().run(
        [sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.3
    )
    assert done.timed_out and done.returncode == 124 and not done.ok


def test_the_recording_fake_answers_from_its_table_and_refuses_the_rest():
    runner = RecordingRunner()
    runner.answer(["systemctl", "--user", "is-system-running"], 1, "degraded\n")
    answered = runner.run(["systemctl", "--user", "is-system-running"])
    assert (answered.returncode, answered.stdout) == (1, "degraded\n")
    assert runner.run(["rm", "-rf", "/"]).returncode == 127
    assert runner.calls == [("systemctl", "--user", "is-system-running"), ("rm", "-rf", "/")]
