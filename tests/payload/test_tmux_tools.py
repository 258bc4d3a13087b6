"""The tmux tools against a real tmux server on a private -L socket."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.payload._fixtures import tmux_server
from tests.payload._support import HOST_TOOLS, TMUX_DIR, Tmux, copy_tools, tool_env
from tests.waiting import BOUND, read_text, wait_for, wait_for_line, wait_until

SEND = TMUX_DIR / "send-message.sh"
AGENT_SEND = TMUX_DIR / "agent-send.sh"
START = TMUX_DIR / "start-agent-session.sh"
HOLDER = HOST_TOOLS / "mam-tmux-holder.sh"
FAKE_TUI = Path(__file__).with_name("fake_tui.py")

tmux = pytest.fixture(name="tmux")(tmux_server)


def run(cmd: list[str], env: dict[str, str], stdin: str | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=60,
                          cwd=cwd, stdin=None if stdin is not None else subprocess.DEVNULL)


def read_lines(path: Path) -> list[str]:
    """The complete (newline-terminated) lines of ``path``: a line still being written is not
    one yet."""
    text = read_text(path)
    return text[: text.rfind("\n") + 1].splitlines()


def wait_for_lines(path: Path, expected: list[str]) -> None:
    wait_until(lambda: read_lines(path), expected.__eq__, what=f"{expected!r} in {path.name}")


def submissions(path: Path) -> list[str]:
    return [json.loads(line) for line in read_lines(path)]


def wait_for_submissions(path: Path, expected: list[str], timeout: float = BOUND) -> None:
    wait_until(lambda: submissions(path), expected.__eq__, timeout=timeout,
               what=f"the expected {len(expected)} submission(s) in {path.name}")


@pytest.fixture
def env(tmp_path: Path, tmux: Tmux) -> dict[str, str]:
    (tmp_path / "home").mkdir()
    return tool_env(tmp_path, MAM_TMUX_SOCKET=tmux.socket_name, MAM_SEND_VERIFY_DELAY="0.3")


def start_tee(tmux: Tmux, name: str, out: Path) -> None:
    tmux.new_session(name, "tee", str(out))


def start_tui(tmux: Tmux, name: str, log: Path, ignored_enters: int) -> None:
    tmux.new_session(name, sys.executable, str(FAKE_TUI), str(log), str(ignored_enters))
    wait_for(lambda: ">" in tmux.capture(name), what=f"the prompt of {name}")


# --- send-message.sh ----------------------------------------------------------------------------


def test_message_is_delivered_into_the_pane_and_visible_in_capture(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "agent.out"
    start_tee(tmux, "agent", out)
    result = run([str(SEND), "-t", "agent", "-m", "hello from the test"], env)
    assert result.returncode == 0, result.stderr
    wait_for_lines(out, ["hello from the test"])
    assert "hello from the test" in tmux.capture("agent")


def test_multi_line_message_arrives_whole_through_stdin(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "agent.out"
    start_tee(tmux, "agent", out)
    result = run([str(SEND), "-L", tmux.socket_name, "-t", "=agent"], env,
                 stdin="first line\nsecond 'quoted' $HOME line\n\n")
    assert result.returncode == 0, result.stderr
    wait_for_lines(out, ["first line", "second 'quoted' $HOME line"])


def test_file_and_base64_sources_deliver_the_same_bytes(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "agent.out"
    start_tee(tmux, "agent", out)
    message = tmp_path / "msg.txt"
    message.write_text("from a file; with `backticks` and \"quotes\"\n")
    assert run([str(SEND), "-t", "agent", "-f", str(message)], env).returncode == 0
    encoded = base64.b64encode(b"via base64 $(not run)").decode()
    assert run([str(SEND), "-t", "agent", "-b", encoded], env).returncode == 0
    wait_for_lines(out, [
        'from a file; with `backticks` and "quotes"', "via base64 $(not run)"])


def test_exact_target_never_hits_a_session_whose_name_extends_it(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    out0 = tmp_path / "agent0.out"
    start_tee(tmux, "agent0", out0)
    missing = run([str(SEND), "-t", "agent", "-m", "for agent only"], env)
    assert missing.returncode == 1
    assert "no tmux pane agent" in missing.stderr
    out = tmp_path / "agent.out"
    start_tee(tmux, "agent", out)
    assert run([str(SEND), "-t", "=agent", "-m", "for agent only"], env).returncode == 0
    wait_for_lines(out, ["for agent only"])
    # A marker sent to agent0 after that send returned lands behind anything misdelivered there.
    assert run([str(SEND), "-t", "=agent0", "-m", "marker"], env).returncode == 0
    wait_for_lines(out0, ["marker"])


def test_message_is_sent_as_a_bracketed_paste_and_submitted_once(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "tui.log"
    start_tui(tmux, "tui", log, ignored_enters=0)
    result = run([str(SEND), "-t", "tui", "-m", "line one\nline two"], env)
    assert result.returncode == 0, result.stderr
    wait_for_submissions(log, ["line one\nline two"])
    raw = Path(str(log) + ".raw").read_bytes()
    assert b"\x1b[200~line one\nline two\x1b[201~" in raw


def test_enter_is_pressed_again_while_the_text_still_sits_unsent(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "tui.log"
    start_tui(tmux, "busy", log, ignored_enters=2)
    result = run([str(SEND), "-t", "busy", "-m", "please submit me", "-v"], env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("pressing Enter again") == 2
    wait_for_submissions(log, ["please submit me"])


def test_text_that_never_submits_exits_2_after_the_retries(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "tui.log"
    start_tui(tmux, "stuck", log, ignored_enters=-1)
    result = run([str(SEND), "-t", "stuck", "-m", "never sent", "-r", "1"], env)
    assert result.returncode == 2
    assert "still unsent after 1 extra Enter" in result.stderr
    assert submissions(log) == []


def test_a_one_line_message_over_128_kib_arrives_intact(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    # 200 KiB on one line: more than one argument or environment string may hold (E2BIG).
    log = tmp_path / "tui.log"
    start_tui(tmux, "big", log, ignored_enters=0)
    message = "".join(f"{i:07d} " for i in range(200 * 1024 // 8)) + "THE-END"
    result = run([str(SEND), "-t", "big"], env, stdin=message)
    assert (result.returncode, result.stderr) == (0, "")
    wait_for_submissions(log, [message], timeout=60)


@pytest.mark.parametrize("source", ["-m", "-f", "stdin"])
def test_a_message_over_the_limit_is_refused_whole_with_exit_5(
    source: str, tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "tui.log"
    start_tui(tmux, "capped", log, ignored_enters=0)
    message = "x" * 1001
    body = tmp_path / "body.txt"
    body.write_text(message)
    args = {"-m": ["-m", message], "-f": ["-f", str(body)], "stdin": []}[source]
    result = run([str(SEND), "-t", "capped", *args], dict(env, MAM_SEND_MAX_BYTES="1000"),
                 stdin=message if source == "stdin" else None)
    assert result.returncode == 5
    assert "larger than 1000 bytes (MAM_SEND_MAX_BYTES); nothing was sent" in result.stderr
    assert Path(str(log) + ".raw").read_bytes() == b""
    exact = run([str(SEND), "-t", "capped", "-m", message[:1000]],
                dict(env, MAM_SEND_MAX_BYTES="1000"))
    assert exact.returncode == 0, exact.stderr
    wait_for_submissions(log, [message[:1000]])


def test_an_unreadable_pane_is_never_reported_delivered(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    # A tmux that pastes but cannot be asked where the cursor is: exit 2, not 0.
    real = shutil.which("tmux")
    wrapper = tmp_path / "tmux-no-cursor"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case $a in *cursor_y*) exit 1 ;; esac; done\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    log = tmp_path / "tui.log"
    start_tui(tmux, "blind", log, ignored_enters=0)
    result = run([str(SEND), "-t", "blind", "-m", "hello"], dict(env, MAM_TMUX=str(wrapper)))
    assert result.returncode == 2
    assert "could not be read back" in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-m", "x"], "no target"),
        (["-t", "a", "-m", "x", "-f", "y"], "only one of"),
        (["-t", "a", "-b", "not base64!"], "base64"),
        (["-t", "a", "-m", ""], "empty"),
        (["-t", "a", "-r", "many", "-m", "x"], "whole number"),
        (["-t", "a", "-f", "/nonexistent/file"], "cannot read"),
        (["-t", "a", "-x"], "unknown option"),
    ],
)
def test_usage_errors_exit_3_with_a_reason(
    args: list[str], needle: str, env: dict[str, str]
) -> None:
    result = run([str(SEND), *args], env)
    assert result.returncode == 3
    assert needle in result.stderr


def test_missing_tmux_exits_69(env: dict[str, str]) -> None:
    result = run([str(SEND), "-t", "a", "-m", "x"], dict(env, MAM_TMUX="/nonexistent/tmux"))
    assert result.returncode == 69
    assert "tmux not found" in result.stderr


# --- agent-send.sh ------------------------------------------------------------------------------


def test_agent_send_prefixes_provenance_and_delivers_locally(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "bob.out"
    start_tee(tmux, "bob", out)
    result = run([str(AGENT_SEND), "-s", "bob", "-n", "hostA", "-S", "alice", "-m", "ping"], env)
    assert result.returncode == 0, result.stderr
    wait_for_lines(out, ["[from hostA:alice] ping"])


def test_agent_send_names_the_sending_tmux_session_by_default(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "bob.out"
    start_tee(tmux, "bob", out)
    tmux.new_session("carol", "sleep", "60")
    tmux_env = tmux("display-message", "-p", "-t", "=carol:", "#{socket_path},#{pid},0").stdout
    result = run([str(AGENT_SEND), "-s", "bob", "-n", "h"], dict(env, TMUX=tmux_env.strip()),
                 stdin="who am i")
    assert result.returncode == 0, result.stderr
    (line,) = wait_until(lambda: read_lines(out), bool, what="the message in bob's pane")
    assert line.startswith("[from h:")
    assert line.endswith("] who am i")


def test_agent_send_ships_send_message_over_ssh_with_a_base64_body(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    # Stands in for ssh the way sshd behaves: the command words are joined and run by a shell,
    # with our stdin (the shipped script) as its stdin.
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(
        "#!/bin/sh\n"
        'while [ $# -gt 0 ]; do case $1 in --) shift; break ;; -o) shift 2 ;; -*) shift ;;'
        " *) break ;; esac; done\n"
        'printf "%s\\n" "$1" >"$FAKE_SSH_LOG"; shift\n'
        'cd "$HOME" && exec sh -c "$*"\n'
    )
    fake_ssh.chmod(0o755)
    out = tmp_path / "remote.out"
    start_tee(tmux, "remote", out)
    message = "it's \"quoted\"; $(echo not run) `nor this`\nsecond line"
    result = run(
        [str(AGENT_SEND), "-s", "remote", "-H", "user@far-host", "-n", "near", "-S", "me"],
        dict(env, MAM_SSH=str(fake_ssh), FAKE_SSH_LOG=str(tmp_path / "ssh.log")),
        stdin=message,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ssh.log").read_text() == "user@far-host\n"
    wait_for_lines(out, [
        "[from near:me] it's \"quoted\"; $(echo not run) `nor this`", "second line"])


def test_agent_send_refuses_a_body_too_big_for_one_ssh_argument_with_exit_5(
    env: dict[str, str], tmp_path: Path
) -> None:
    called = tmp_path / "ssh-called"
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(f"#!/bin/sh\ntouch {called}\ncat >/dev/null\n")
    fake_ssh.chmod(0o755)
    result = run([str(AGENT_SEND), "-s", "x", "-H", "far", "-n", "h", "-S", "me"],
                 dict(env, MAM_SSH=str(fake_ssh)), stdin="y" * (100 * 1024))
    assert result.returncode == 5
    assert "larger than 96 KiB" in result.stderr
    assert not called.exists()


def test_agent_send_passes_the_local_size_limit_on_as_exit_5(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "bob.out"
    start_tee(tmux, "bob", out)
    result = run([str(AGENT_SEND), "-s", "bob", "-n", "h", "-S", "me"],
                 dict(env, MAM_SEND_MAX_BYTES="100"), stdin="z" * 200)
    assert result.returncode == 5
    assert read_lines(out) == []


def test_agent_send_reports_an_ssh_failure_as_exit_4(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    fail_ssh = tmp_path / "fail-ssh"
    fail_ssh.write_text("#!/bin/sh\ncat >/dev/null\nexit 255\n")
    fail_ssh.chmod(0o755)
    result = run([str(AGENT_SEND), "-s", "x", "-H", "nowhere", "-m", "hi"],
                 dict(env, MAM_SSH=str(fail_ssh)))
    assert result.returncode == 4
    assert "ssh to nowhere failed" in result.stderr


@pytest.mark.parametrize("session", ["", "a:b", "a.b", "-x", "a b"])
def test_agent_send_refuses_unsafe_session_names(session: str, env: dict[str, str]) -> None:
    result = run([str(AGENT_SEND), "-s", session, "-m", "hi"], env)
    assert result.returncode == 3


def test_agent_send_refuses_an_ssh_target_that_looks_like_an_option(env: dict[str, str]) -> None:
    result = run([str(AGENT_SEND), "-s", "a", "-H", "-oProxyCommand=x", "-m", "hi"], env)
    assert result.returncode == 3


# --- start-agent-session.sh ---------------------------------------------------------------------


def test_start_creates_the_session_in_the_workdir_running_the_command(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    workdir = tmp_path / "project"
    workdir.mkdir()
    command = 'printf "%s|%s|%s\\n" "$MAM_AGENT_NAME" "$PWD" "$MAM_SECRET" > seen; exec cat'
    result = run([str(START), "alice"], dict(env, MAM_AGENT_WORKDIR=str(workdir),
                                             MAM_AGENT_COMMAND=command,
                                             MAM_SECRET="it's $(secret)"))
    assert result.returncode == 0, result.stderr
    assert "alice" in tmux.sessions()
    assert wait_for_line(workdir / "seen") == f"alice|{workdir}|it's $(secret)\n"
    # The private hand-over file is read and removed by the pane.
    assert not list(tmp_path.glob("mam-agent-env.*"))


def test_start_is_idempotent(tmux: Tmux, env: dict[str, str], tmp_path: Path) -> None:
    env = dict(env, MAM_AGENT_COMMAND="exec cat", MAM_AGENT_WORKDIR=str(tmp_path))
    assert run([str(START), "alice"], env).returncode == 0
    pane = tmux("display-message", "-p", "-t", "=alice:", "#{pane_pid}").stdout
    again = run([str(START), "alice"], env)
    assert again.returncode == 0
    assert "already running" in again.stderr
    assert tmux("display-message", "-p", "-t", "=alice:", "#{pane_pid}").stdout == pane
    assert tmux.sessions() == {"alice"}


def test_replace_ends_the_running_session_and_starts_a_fresh_one(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    tmux.new_session("alice0", "sleep", "60")
    env = dict(env, MAM_AGENT_COMMAND="exec cat", MAM_AGENT_WORKDIR=str(tmp_path))
    assert run([str(START), "alice"], env).returncode == 0
    before = tmux("display-message", "-p", "-t", "=alice:", "#{pane_pid}").stdout
    sibling = tmux("display-message", "-p", "-t", "=alice0:", "#{pane_pid}").stdout
    for flag in ("--replace", "-r"):
        result = run([str(START), flag, "alice"], env)
        assert result.returncode == 0, result.stderr
        assert "ended the running agent session alice to replace it" in result.stderr
        now = tmux("display-message", "-p", "-t", "=alice:", "#{pane_pid}").stdout
        assert now != before
        before = now
    assert tmux("display-message", "-p", "-t", "=alice0:", "#{pane_pid}").stdout == sibling


@pytest.mark.parametrize("option", ["--bogus", "--replace=yes", "-x"])
def test_an_unknown_option_is_named_whole_and_exits_64(
    option: str, env: dict[str, str], tmux: Tmux
) -> None:
    result = run([str(START), option, "alice"], env)
    assert result.returncode == 64
    assert f"unknown option {option}" in result.stderr
    assert tmux.sessions() == set()


def test_stop_ends_exactly_the_session_on_the_socket_its_env_file_names(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    # The unit's ExecStop runs `start-agent-session.sh -k NAME`: the socket comes from the
    # agent's env file, as for a start.
    config = tmp_path / "config"
    (config / "agents").mkdir(parents=True)
    (config / "agents" / "eve.env").write_text(f"MAM_TMUX_SOCKET={tmux.socket_name}\n")
    tmux.new_session("eve", "sleep", "60")
    tmux.new_session("eve2", "sleep", "60")
    env = {k: v for k, v in env.items() if k != "MAM_TMUX_SOCKET"}
    result = run([str(START), "--stop", "eve"], dict(env, MAM_CONFIG_DIR=str(config)))
    assert result.returncode == 0, result.stderr
    assert tmux.sessions() == {"eve2"}


def test_start_does_not_mistake_a_longer_name_for_the_agent(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    tmux.new_session("alice0", "sleep", "60")
    env = dict(env, MAM_AGENT_COMMAND="exec cat", MAM_AGENT_WORKDIR=str(tmp_path))
    result = run([str(START), "alice"], env)
    assert result.returncode == 0
    assert "started" in result.stderr
    assert tmux.sessions() == {"alice", "alice0"}


def test_start_reads_the_agents_env_file_without_running_it(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    (config / "agents").mkdir(parents=True)
    workdir = tmp_path / "w"
    workdir.mkdir()
    (config / "agents" / "dave.env").write_text(
        f"MAM_AGENT_WORKDIR={workdir}\n"
        "MAM_AGENT_COMMAND='echo \"$API_TOKEN\" > token; exec cat'\n"
        "API_TOKEN=$(touch pwned)\n"
    )
    result = run([str(START), "dave"], dict(env, MAM_CONFIG_DIR=str(config)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The pane creates `token` before echo writes to it: wait for the line, not the file.
    assert wait_for_line(workdir / "token") == "$(touch pwned)\n"
    assert not (workdir / "pwned").exists()
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("args", "extra", "code", "needle"),
    [
        ([], {}, 64, "no agent name"),
        (["bad:name"], {}, 64, "must be"),
        (["a", "b"], {}, 64, "no agent name"),
        (["ok"], {"MAM_TMUX": "/nonexistent/tmux"}, 69, "tmux not found"),
        (["ok"], {"MAM_AGENT_WORKDIR": "/nonexistent/dir"}, 66, "not a directory"),
        (["ok"], {"MAM_AGENT_RUNTIME": "no-such-runtime"}, 78, "unknown MAM_AGENT_RUNTIME"),
    ],
)
def test_start_exit_codes_are_clear(
    args: list[str], extra: dict[str, str], code: int, needle: str,
    env: dict[str, str], tmux: Tmux,
) -> None:
    result = run([str(START), *args], dict(env, **extra))
    assert result.returncode == code
    assert needle in result.stderr
    assert tmux.sessions() == set()


def test_wait_mode_exits_1_when_the_session_ends_and_kills_it_on_sigterm(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(env, MAM_AGENT_COMMAND="exec cat", MAM_AGENT_WORKDIR=str(tmp_path),
               MAM_AGENT_POLL_SECONDS="0.2")
    waiter = subprocess.Popen([str(START), "-w", "alice"], env=env, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True)
    wait_for(lambda: "alice" in tmux.sessions(), what="the session alice")
    tmux("kill-session", "-t", "=alice")
    assert waiter.wait(timeout=10) == 1
    tmux.new_session("alice0", "sleep", "60")
    waiter = subprocess.Popen([str(START), "-w", "alice"], env=env, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True)
    wait_for(lambda: "alice" in tmux.sessions(), what="the session alice")
    waiter.send_signal(signal.SIGTERM)
    assert waiter.wait(timeout=10) == 0
    assert tmux.sessions() == {"alice0"}


# --- mam-tmux-holder.sh and the flat host tools dir ---------------------------------------------


def test_holder_keeps_an_empty_server_and_stopping_it_kills_only_that_server(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    tools = copy_tools(tmp_path / "bin")
    other = Tmux(tmux.socket_name + "-other", tmux.binary)
    other.new_session("bystander", "sleep", "60")
    try:
        holder = subprocess.Popen([str(tools / "mam-tmux-holder.sh")],
                                  env=dict(env, MAM_HOLDER_POLL_SECONDS="0.2"),
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        ready = run([str(tools / "mam-tmux-holder.sh"), "-w", "10"], env)
        assert ready.returncode == 0, ready.stderr
        assert tmux("list-sessions", check=False).returncode == 0  # up, with no sessions
        started = run([str(tools / "start-agent-session.sh"), "agent"],
                      dict(env, MAM_AGENT_COMMAND="exec cat", MAM_AGENT_WORKDIR=str(tmp_path)))
        assert started.returncode == 0, started.stderr
        holder.send_signal(signal.SIGTERM)
        assert holder.wait(timeout=10) == 0
        assert tmux("list-sessions", check=False).returncode != 0
        assert other.sessions() == {"bystander"}
    finally:
        other("kill-server", check=False)


def test_holder_exits_1_when_its_server_dies(tmux: Tmux, env: dict[str, str]) -> None:
    holder = subprocess.Popen([str(HOLDER), "-L", tmux.socket_name],
                              env=dict(env, MAM_HOLDER_POLL_SECONDS="0.2"),
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert run([str(HOLDER), "-w", "10"], env).returncode == 0
    tmux("kill-server")
    assert holder.wait(timeout=10) == 1


def test_holder_refuses_to_hold_the_default_server(env: dict[str, str]) -> None:
    result = run([str(HOLDER)], {k: v for k, v in env.items() if k != "MAM_TMUX_SOCKET"})
    assert result.returncode == 64
    assert "MAM_TMUX_SOCKET" in result.stderr


def test_copied_host_tools_deliver_messages_from_their_flat_directory(
    tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    tools = copy_tools(tmp_path / "bin")
    assert not any(p.is_symlink() for p in tools.iterdir())
    out = tmp_path / "x.out"
    start_tee(tmux, "x", out)
    result = run([str(tools / "agent-send.sh"), "-s", "x", "-n", "h", "-S", "s", "-m", "flat"],
                 dict(env, PATH=f"{tools}{os.pathsep}{env['PATH']}"))
    assert result.returncode == 0, result.stderr
    wait_for_lines(out, ["[from h:s] flat"])


# /bin/sh is dash on Debian, bash in POSIX mode on macOS, ksh on some BSDs: run the tools in each.
@pytest.mark.parametrize("shell", [["bash", "--posix"], ["ksh"], ["dash"]])
def test_the_tools_work_under_each_system_sh(
    shell: list[str], tmux: Tmux, env: dict[str, str], tmp_path: Path
) -> None:
    if shutil.which(shell[0]) is None:
        pytest.skip(f"{shell[0]} is not installed")
    started = run([*shell, str(START), "agent"],
                  dict(env, MAM_AGENT_COMMAND=f"exec tee {tmp_path / 'out'}",
                       MAM_AGENT_WORKDIR=str(tmp_path)))
    assert started.returncode == 0, started.stderr
    sent = run([*shell, str(AGENT_SEND), "-s", "agent", "-n", "h", "-S", "me"], env,
               stdin="two\nlines")
    assert sent.returncode == 0, sent.stderr
    wait_for_lines(tmp_path / "out", ["[from h:me] two", "lines"])
