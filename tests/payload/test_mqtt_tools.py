"""The MQTT tools: envelopes, sequence state and settings, then against a real TLS mosquitto."""

from __future__ import annotations

import importlib
import json
import os
import queue
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.payload._fixtures import tls_broker, tmux_server
from tests.payload._support import HMAC_KEY, MQTT_DIR, PYTHON, Broker, Tmux, tool_env

MAM_MQTT = MQTT_DIR / "mam_mqtt.py"
KEY = HMAC_KEY.encode()

tmux = pytest.fixture(name="tmux")(tmux_server)
broker = pytest.fixture(name="broker", scope="module")(tls_broker)


def _load_common() -> ModuleType:
    sys.path.insert(0, str(MQTT_DIR))
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ inside payload/
    try:
        return importlib.import_module("mqtt_common")
    finally:
        sys.dont_write_bytecode = saved
        sys.path.remove(str(MQTT_DIR))


mc = _load_common()


# --- envelopes ----------------------------------------------------------------------------------


def signed(job: str = "j1", seq: int = 1, event: str = "started", data: Any = None,
           key: bytes = KEY, ts: float | None = None) -> Any:
    return mc.sign_envelope(key, job, seq, event, data, time.time() if ts is None else ts)


def test_a_signed_envelope_verifies_and_keeps_its_fields() -> None:
    envelope = signed(data={"files": ["a.py"], "ok": True})
    back = mc.verify_envelope(KEY, envelope.to_json().encode(), time.time())
    assert back == envelope
    assert set(json.loads(envelope.to_json())) == {"job", "seq", "ts", "event", "data", "sig"}


def test_verification_does_not_depend_on_key_order_on_the_wire() -> None:
    envelope = signed(data={"b": 1, "a": [1, 2]})
    reordered = json.dumps(dict(reversed(list(json.loads(envelope.to_json()).items()))),
                           indent=2)
    assert mc.verify_envelope(KEY, reordered.encode(), time.time()).seq == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"data": {"ok": False}}, "bad signature"),
        ({"event": "done"}, "bad signature"),
        ({"seq": 2}, "bad signature"),
        ({"job": "j2"}, "bad signature"),
        ({"sig": "0" * 64}, "bad signature"),
        ({"sig": "XYZ"}, "malformed"),
        ({"seq": True}, "malformed"),
        ({"ts": "now"}, "malformed"),
        ({"job": "../etc"}, "malformed"),
        ({"extra": 1}, "malformed"),
    ],
)
def test_tampered_envelopes_are_rejected(change: dict[str, Any], reason: str) -> None:
    wire = json.loads(signed(data={"ok": True}).to_json())
    wire.update(change)
    with pytest.raises(mc.EnvelopeError, match=reason):
        mc.verify_envelope(KEY, json.dumps(wire).encode(), time.time())


def test_an_envelope_signed_with_another_key_is_rejected() -> None:
    forged = signed(key=b"some-other-key-0123456789abcdef")
    with pytest.raises(mc.EnvelopeError, match="bad signature"):
        mc.verify_envelope(KEY, forged.to_json().encode(), time.time())


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe", b"[1, 2]", b"{}", b"null"])
def test_malformed_payloads_are_rejected(payload: bytes) -> None:
    with pytest.raises(mc.EnvelopeError, match="malformed"):
        mc.verify_envelope(KEY, payload, time.time())


def test_a_stale_envelope_is_rejected() -> None:
    old = signed(ts=time.time() - 3600)
    with pytest.raises(mc.EnvelopeError, match="stale"):
        mc.verify_envelope(KEY, old.to_json().encode(), time.time())


# --- sequence numbers and the lock --------------------------------------------------------------


def test_publish_sequence_numbers_survive_a_restart(tmp_path: Path) -> None:
    assert [mc.SequenceStore(tmp_path, "publish").next("j1") for _ in range(3)] == [1, 2, 3]
    assert mc.SequenceStore(tmp_path, "publish").next("j1") == 4
    assert mc.SequenceStore(tmp_path, "publish").next("other") == 1
    assert (tmp_path / "mqtt" / "publish" / "j1.seq").read_text() == "4\n"


def test_accepted_sequence_numbers_survive_a_restart(tmp_path: Path) -> None:
    store = mc.SequenceStore(tmp_path, "accept")
    assert store.accept("j1", 5)
    assert not store.accept("j1", 5)
    assert not store.accept("j1", 3)
    restarted = mc.SequenceStore(tmp_path, "accept")
    assert not restarted.accept("j1", 5)
    assert restarted.accept("j1", 6)
    assert mc.SequenceStore(tmp_path, "publish").next("j1") == 1  # roles kept apart


def test_a_corrupt_sequence_file_is_an_error_naming_it(tmp_path: Path) -> None:
    store = mc.SequenceStore(tmp_path, "accept")
    store.accept("j1", 1)
    (tmp_path / "mqtt" / "accept" / "j1.seq").write_text("garbage")
    with pytest.raises(mc.ConfigError, match=r"j1\.seq is corrupt"):
        store.accept("j1", 2)


def test_the_lock_strategy_is_explicit_and_excludes_other_processes(tmp_path: Path) -> None:
    expected_strategy = "msvcrt" if sys.platform == "win32" else "fcntl"
    assert expected_strategy == mc.LOCK_STRATEGY
    lock_path = tmp_path / "x.lock"
    probe = ("import fcntl, sys\n"
             "f = open(sys.argv[1], 'a+b')\n"
             "try:\n    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
             "except BlockingIOError:\n    sys.exit(3)\n")
    with mc.FileLock(lock_path):
        held = subprocess.run([PYTHON, "-c", probe, str(lock_path)], timeout=30)
    free = subprocess.run([PYTHON, "-c", probe, str(lock_path)], timeout=30)
    assert (held.returncode, free.returncode) == (3, 0)


# --- settings -----------------------------------------------------------------------------------


def test_broker_settings_default_to_tls_on_localhost_8883() -> None:
    settings = mc.BrokerSettings.from_env({})
    assert (settings.host, settings.port, settings.tls) == ("localhost", 8883, True)
    assert settings.topic_prefix == "mam"
    assert mc.BrokerSettings.from_env({"MAM_MQTT_USERNAME": "ann"}).topic_prefix == "mam/ann"


@pytest.mark.parametrize("host", ["test.mosquitto.org", "broker.hivemq.com", "8.8.8.8",
                                  "2001:4860:4860::8888"])
def test_a_public_broker_is_refused_unless_allowed(host: str) -> None:
    with pytest.raises(mc.ConfigError, match="public address"):
        mc.BrokerSettings.from_env({"MAM_MQTT_HOST": host})
    allowed = mc.BrokerSettings.from_env({"MAM_MQTT_HOST": host,
                                          "MAM_MQTT_ALLOW_PUBLIC_BROKER": "1"})
    assert allowed.host == host
    with pytest.raises(mc.ConfigError, match="in clear"):
        mc.BrokerSettings.from_env({"MAM_MQTT_HOST": host, "MAM_MQTT_ALLOW_PUBLIC_BROKER": "1",
                                    "MAM_MQTT_TLS": "0"})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.9", "::1",
                                  "100.101.102.103", "fd00::1"])
def test_private_broker_hosts_are_accepted(host: str) -> None:
    assert mc.BrokerSettings.from_env({"MAM_MQTT_HOST": host}).host == host


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({}, "MAM_HMAC_KEY is not set"),
        ({"MAM_HMAC_KEY": "short"}, "fewer than 16"),
    ],
)
def test_no_usable_hmac_key_means_no_start(environ: dict[str, str], needle: str) -> None:
    with pytest.raises(mc.ConfigError, match=needle):
        mc.hmac_key_from_env(environ)


def test_tools_refuse_to_start_without_a_key(tmp_path: Path) -> None:
    result = subprocess.run([PYTHON, str(MAM_MQTT), "monitor"], env=tool_env(tmp_path),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 78
    assert result.stderr.count("\n") == 1
    assert "MAM_HMAC_KEY is not set" in result.stderr


def test_missing_paho_is_one_line_naming_pip_install(tmp_path: Path) -> None:
    # -S skips site-packages, where paho lives; the standard library is still there.
    result = subprocess.run([PYTHON, "-S", str(MAM_MQTT), "publish", "--job", "j", "--event", "e"],
                            env=tool_env(tmp_path, MAM_HMAC_KEY=HMAC_KEY),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 69
    assert result.stderr.count("\n") == 1
    assert "pip install paho-mqtt" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("manager", [None, "apt-get", "apk", "pacman", "brew", "pkg"])
@pytest.mark.parametrize("in_venv", [False, True])
@pytest.mark.parametrize("managed", [False, True])
@pytest.mark.parametrize("uid", [0, 1000])
def test_the_paho_hint_is_the_one_doctor_gives(
    manager: str | None, in_venv: bool, managed: bool, uid: int
) -> None:
    from mam_install.machine._doctor import paho_hint

    facts = {"in_venv": in_venv, "externally_managed": managed, "package_manager": manager,
             "uid": uid}
    assert mc.paho_install_hint("/usr/bin/python3", **facts) == paho_hint(
        "/usr/bin/python3", **facts)


def test_the_missing_paho_message_names_doctors_fix_for_this_python(tmp_path: Path) -> None:
    from mam_install.machine._detect import detect
    from mam_install.machine._doctor import paho_install_command

    result = subprocess.run([PYTHON, "-S", str(MAM_MQTT), "publish", "--job", "j", "--event", "e"],
                            env=tool_env(tmp_path, MAM_HMAC_KEY=HMAC_KEY),
                            capture_output=True, text=True, timeout=30)
    fix = paho_install_command(detect())
    assert fix is not None and result.stderr.rstrip().endswith(f"install it with: {fix}")


def test_topics_name_the_job_and_nothing_else() -> None:
    assert mc.envelope_topic("mam/ann", "j1") == "mam/ann/jobs/j1/events"
    assert mc.job_from_topic("mam/ann", "mam/ann/jobs/j1/events") == "j1"
    assert mc.job_from_topic("mam/ann", "mam/ann/jobs/a/b/events") is None
    assert mc.job_from_topic("mam/ann", "mam/bob/jobs/j1/events") is None


# --- against a real broker ----------------------------------------------------------------------


class Monitor:
    """mam_mqtt.py monitor as a subprocess, its output lines collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen([PYTHON, str(MAM_MQTT), *args], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.messages: queue.Queue[str] = queue.Queue()
        self.pumps = [threading.Thread(target=self._pump, args=(stream, handler), daemon=True)
                      for stream, handler in ((self.process.stdout, self._event),
                                              (self.process.stderr, self.messages.put))]
        for pump in self.pumps:
            pump.start()
        line = self.next_message()
        assert line.startswith("mam_mqtt: listening on"), line

    @staticmethod
    def _pump(stream: Any, handler: Any) -> None:
        for line in stream:
            handler(line.rstrip("\n"))

    def _event(self, line: str) -> None:
        self.events.put(json.loads(line))

    def next_event(self, timeout: float = 10) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def next_message(self, timeout: float = 10) -> str:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"monitor said nothing (exit {self.process.returncode})") from None

    def assert_no_event(self) -> None:
        """Stop the monitor and read its output to the end first: an event still in the pipe
        when we looked would otherwise go unseen."""
        self.stop()
        for pump in self.pumps:
            pump.join(timeout=10)
            assert not pump.is_alive(), "the monitor's output did not end"
        assert self.events.empty(), self.events.get()

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=10)


@pytest.fixture
def mqtt_env(broker: Broker, tmp_path: Path, tmux: Tmux) -> dict[str, str]:
    (tmp_path / "home").mkdir()
    return tool_env(tmp_path, **broker.env(tmp_path / "state"),
                    MAM_TMUX_SOCKET=tmux.socket_name)


@pytest.fixture
def monitor(mqtt_env: dict[str, str]) -> Iterator[Monitor]:
    started = Monitor(["monitor"], mqtt_env)
    yield started
    started.stop()


def publish(env: dict[str, str], job: str, event: str,
            data: str | None = None) -> subprocess.CompletedProcess[str]:
    args = [PYTHON, str(MAM_MQTT), "publish", "--job", job, "--event", event]
    if data is not None:
        args += ["--data", data]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)


def raw_publish(broker: Broker, topic: str, payload: bytes, username: str = "alice",
                password: str | None = None) -> None:
    """Put bytes on the broker directly, as an attacker with broker access could."""
    import paho.mqtt.client as mqtt

    if hasattr(mqtt, "CallbackAPIVersion"):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    else:
        client = mqtt.Client()
    client.username_pw_set(username, password or broker.password)
    client.tls_set_context(ssl.create_default_context(cafile=str(broker.ca_file)))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


TOPIC = "mam/alice/jobs/{}/events"


def test_a_signed_event_is_accepted_and_printed(mqtt_env: dict[str, str],
                                                monitor: Monitor) -> None:
    result = publish(mqtt_env, "j1", "started", '{"files": 2}')
    assert result.returncode == 0, result.stderr
    event = monitor.next_event()
    assert (event["job"], event["seq"], event["event"], event["data"]) == (
        "j1", 1, "started", {"files": 2})
    assert json.loads(result.stdout) == event
    assert publish(mqtt_env, "j1", "progress").returncode == 0
    assert monitor.next_event()["seq"] == 2


def test_forged_tampered_and_malformed_messages_are_dropped_and_reported(
    broker: Broker, monitor: Monitor
) -> None:
    forged = signed(job="j2", key=b"attacker-key-0123456789abcdef")
    raw_publish(broker, TOPIC.format("j2"), forged.to_json().encode())
    assert "bad signature" in monitor.next_message()
    wire = json.loads(signed(job="j2", data={"ok": True}).to_json())
    wire["data"] = {"ok": False}
    raw_publish(broker, TOPIC.format("j2"), json.dumps(wire).encode())
    assert "bad signature" in monitor.next_message()
    raw_publish(broker, TOPIC.format("j2"), b"{not json")
    assert "malformed" in monitor.next_message()
    moved = signed(job="j3")
    raw_publish(broker, TOPIC.format("j2"), moved.to_json().encode())
    assert "another job's topic" in monitor.next_message()
    monitor.assert_no_event()


def test_a_replayed_event_is_rejected_also_after_a_monitor_restart(
    broker: Broker, mqtt_env: dict[str, str]
) -> None:
    envelope = signed(job="j4", seq=7).to_json().encode()
    first = Monitor(["monitor", "--job", "j4"], mqtt_env)
    try:
        raw_publish(broker, TOPIC.format("j4"), envelope)
        assert first.next_event()["seq"] == 7
        raw_publish(broker, TOPIC.format("j4"), envelope)
        assert "replay" in first.next_message()
    finally:
        assert first.stop() == 0
    second = Monitor(["monitor", "--job", "j4"], mqtt_env)
    try:
        raw_publish(broker, TOPIC.format("j4"), envelope)
        assert "replay" in second.next_message()
        second.assert_no_event()
    finally:
        second.stop()


def test_terminal_event_kills_exactly_the_jobs_session_and_a_forged_one_nothing(
    broker: Broker, mqtt_env: dict[str, str], tmux: Tmux
) -> None:
    for name in ("job7", "job70", "other"):
        tmux.new_session(name, "sleep", "120")
    watcher = Monitor(["monitor", "--on-terminal", "kill-session"], mqtt_env)
    try:
        forged = signed(job="job7", event="done", key=b"attacker-key-0123456789abcdef")
        raw_publish(broker, TOPIC.format("job7"), forged.to_json().encode())
        assert "bad signature" in watcher.next_message()
        assert tmux.sessions() == {"job7", "job70", "other"}
        assert publish(mqtt_env, "job7", "progress").returncode == 0
        assert watcher.next_event()["event"] == "progress"
        assert tmux.sessions() == {"job7", "job70", "other"}
        assert publish(mqtt_env, "job7", "done").returncode == 0
        assert watcher.next_event()["event"] == "done"
        assert "killed tmux session =job7" in watcher.next_message()
        assert tmux.sessions() == {"job70", "other"}
    finally:
        watcher.stop()


def test_subscribe_exits_0_after_the_jobs_terminal_event(
    broker: Broker, mqtt_env: dict[str, str]
) -> None:
    waiter = Monitor(["subscribe", "--job", "j9", "--timeout", "30"], mqtt_env)
    assert publish(mqtt_env, "j9", "failed", '{"why": "tests"}').returncode == 0
    assert waiter.next_event()["event"] == "failed"
    assert waiter.process.wait(timeout=10) == 0


def test_another_user_cannot_read_or_write_alices_topics(
    broker: Broker, mqtt_env: dict[str, str], monitor: Monitor
) -> None:
    as_bob = dict(mqtt_env, MAM_MQTT_USERNAME="bob", MAM_MQTT_PASSWORD="bob-password-1",
                  MAM_MQTT_TOPIC_PREFIX="mam/alice", MAM_STATE_DIR=mqtt_env["MAM_STATE_DIR"] + "b")
    bob = Monitor(["monitor", "--timeout", "2"], as_bob)
    assert publish(mqtt_env, "j5", "for-alice").returncode == 0
    assert monitor.next_event()["event"] == "for-alice"
    raw_publish(broker, TOPIC.format("j5"), signed(job="j5", seq=99).to_json().encode(),
                username="bob", password="bob-password-1")
    assert publish(mqtt_env, "j5", "marker").returncode == 0
    assert monitor.next_event()["event"] == "marker"  # bob's seq 99 never arrived
    assert bob.process.wait(timeout=10) == 0
    bob.assert_no_event()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"MAM_MQTT_PASSWORD": "wrong"}, "refused us"),
        ({"MAM_MQTT_CA_FILE": "SERVER_CERT"}, "TLS with the MQTT broker"),
        ({"MAM_MQTT_PORT": "FREE_PORT"}, "cannot reach the MQTT broker"),
    ],
)
def test_connection_problems_are_one_clear_line(
    change: dict[str, str], needle: str, broker: Broker, mqtt_env: dict[str, str]
) -> None:
    from tests.payload._support import free_port

    values = {k: v.replace("SERVER_CERT", str(broker.ca_file.with_name("server.crt")))
              .replace("FREE_PORT", str(free_port())) for k, v in change.items()}
    result = publish(dict(mqtt_env, **values), "j6", "x")
    assert result.returncode == 1
    assert needle in result.stderr
    assert result.stderr.count("\n") == 1


def other_pythons() -> list[str]:
    """CPython 3.9+ interpreters installed by pyenv, besides the one running the tests."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for candidate in sorted(root.glob("3.*/bin/python3")):
        minor = candidate.parent.parent.name.split(".")[1]
        if minor.isdigit() and int(minor) >= 9 and candidate.is_file():
            found.append(str(candidate))
    return [p for p in found if Path(p).resolve() != Path(sys.executable).resolve()]


def test_the_tools_run_on_every_python_present(tmp_path: Path) -> None:
    pythons = other_pythons()
    if not pythons:
        pytest.skip("no other CPython installed under pyenv")
    check = ("import time, mqtt_common as mc\n"
             "e = mc.sign_envelope(b'k' * 16, 'j', 1, 'done', {'x': [1.5, 'é']}, time.time())\n"
             "assert mc.verify_envelope(b'k' * 16, e.to_json().encode(), time.time()).terminal\n")
    for python in pythons:
        ran = subprocess.run([python, "-B", "-c", check], cwd=MQTT_DIR, env=tool_env(tmp_path),
                             capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, (python, ran.stderr)
        cli = subprocess.run([python, str(MAM_MQTT), "publish", "--job", "j", "--event", "e"],
                             env=tool_env(tmp_path), capture_output=True, text=True, timeout=60)
        # 69: that Python lacks paho-mqtt (one line, no traceback); 78: it has paho, no key.
        assert cli.returncode in (69, 78), (python, cli.stderr)
        assert "Traceback" not in cli.stderr
