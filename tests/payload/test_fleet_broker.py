"""`mam broker init` against a real mosquitto over TLS on 127.0.0.1, and doctor's view of it."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.payload._fleet_support import Machine, make_machine
from tests.payload._support import HOST, MQTT_DIR, free_port, render

MAM_MQTT = MQTT_DIR / "mam_mqtt.py"


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                          if Path("/usr/sbin/mosquitto").exists() else None)
    if found is None or shutil.which("openssl") is None:
        pytest.skip("mosquitto and openssl are not installed (apt-get install mosquitto openssl)")
    return found


def install_broker_config(machine: Machine, port: int) -> Path:
    """What `mam-install install` lays down: the config and ACL rendered from the templates."""
    broker_dir = machine.config / "broker"
    broker_dir.mkdir(parents=True)
    values = {"MAM_CONFIG_DIR": str(machine.config), "MAM_MQTT_PORT": str(port),
              "MAM_STATE_DIR": str(machine.home / ".local" / "state" / "mam")}
    conf = render((HOST / "mosquitto" / "mam-broker.conf").read_text(), values)
    if os.geteuid() == 0:
        # mosquitto started by root drops to the "mosquitto" user, which cannot read our keys;
        # a real user's broker runs as that user already.
        conf += f"\nuser {getpass.getuser()}\n"
    (broker_dir / "mosquitto.conf").write_text(conf)
    shutil.copy(HOST / "mosquitto" / "mam-broker.acl", broker_dir / "mam-broker.acl")
    return broker_dir


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    machine = make_machine(tmp_path)
    machine.env["USER"] = "alice"
    return machine


@pytest.fixture
def running_broker(machine: Machine) -> Iterator[tuple[Machine, int]]:
    mosquitto = mosquitto_binary()
    port = free_port()
    broker_dir = install_broker_config(machine, port)
    done = machine.mam("broker", "init", "--manager", "direct")
    assert done.returncode == 0, done.stderr
    log = machine.root / "mosquitto.log"
    with log.open("wb") as out:
        process = subprocess.Popen([mosquitto, "-c", str(broker_dir / "mosquitto.conf")],
                                   stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"mosquitto did not start: {log.read_text(errors='replace')}")
            time.sleep(0.05)
    try:
        yield machine, port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_init_makes_a_private_ca_a_server_certificate_a_user_and_the_client_settings(
    running_broker: tuple[Machine, int]
) -> None:
    machine, port = running_broker
    broker = machine.config / "broker"
    for key in ("ca.key", "server.key", "passwd"):
        assert stat.S_IMODE((broker / key).stat().st_mode) == 0o600, key
    assert (broker / "passwd").read_text().startswith("alice:$7$101$")
    settings = machine.config / "mqtt.env"
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    text = settings.read_text()
    assert f"MAM_MQTT_PORT={port}\n" in text and f"MAM_MQTT_CA_FILE={broker}/ca.crt\n" in text
    # The server certificate verifies against the private CA for the names asked for.
    context = ssl.create_default_context(cafile=str(broker / "ca.crt"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_the_mqtt_tools_reach_it_with_the_settings_it_wrote(
    running_broker: tuple[Machine, int]
) -> None:
    machine, _ = running_broker
    env = dict(machine.env, MAM_ENV_FILE=str(machine.config / "mqtt.env"),
               MAM_STATE_DIR=str(machine.root / "mqtt-state"))
    waiter = subprocess.Popen([sys.executable, str(MAM_MQTT), "subscribe", "--job", "j1",
                               "--timeout", "30"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert waiter.stderr is not None
    assert waiter.stderr.readline().startswith("mam_mqtt: listening on mam/alice/jobs/j1")
    published = subprocess.run([sys.executable, str(MAM_MQTT), "publish", "--job", "j1",
                                "--event", "done"], env=env, capture_output=True, text=True,
                               timeout=60)
    assert published.returncode == 0, published.stderr
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0
    assert json.loads(out)["event"] == "done"


def test_a_second_init_keeps_every_key_and_user(running_broker: tuple[Machine, int]) -> None:
    machine, _ = running_broker
    broker = machine.config / "broker"
    before = {name: (broker / name).read_bytes() for name in
              ("ca.key", "ca.crt", "server.key", "server.crt", "passwd")}
    settings = (machine.config / "mqtt.env").read_bytes()
    again = machine.mam("broker", "init", "--manager", "direct", "--json")
    assert again.returncode == 0, again.stderr
    assert {name: (broker / name).read_bytes() for name in before} == before
    assert (machine.config / "mqtt.env").read_bytes() == settings
    assert '"alice": "kept"' in again.stdout and '"ca": "kept"' in again.stdout


def test_the_broker_unit_passes_systemd_analyze_verify(
    running_broker: tuple[Machine, int], tmp_path: Path
) -> None:
    machine, _ = running_broker
    unit = machine.config.parent / "systemd" / "user" / "mam-broker.service"
    assert f"-c {machine.config}/broker/mosquitto.conf" in unit.read_text()
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (it comes with systemd)")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    done = subprocess.run([analyze, "verify", "--user", str(unit)],
                          env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)),
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_init_refuses_half_a_ca_and_changes_nothing(machine: Machine) -> None:
    mosquitto_binary()
    broker_dir = install_broker_config(machine, free_port())
    (broker_dir / "ca.crt").write_text("a certificate without its key\n")
    done = machine.mam("broker", "init", "--manager", "direct")
    assert done.returncode == 4
    assert "mam never overwrites a key" in done.stderr
    assert not (broker_dir / "ca.key").exists() and not (broker_dir / "passwd").exists()


def test_init_without_the_installed_config_says_to_install(machine: Machine) -> None:
    done = machine.mam("broker", "init", "--manager", "direct")
    assert done.returncode == 3
    assert "mam-install install" in done.stderr


def doctor_broker(machine: Machine) -> dict:
    from tests.payload._support import REPO

    env = dict(machine.env, PYTHONPATH=str(REPO / "installer"))
    done = subprocess.run([sys.executable, "-m", "mam_install", "--json", "doctor"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=machine.root)
    findings = {f["name"]: f for f in json.loads(done.stdout)["findings"]}
    return findings["broker"]


def test_doctor_reports_the_broker_answering_on_tls_and_its_certificates(
    running_broker: tuple[Machine, int]
) -> None:
    machine, port = running_broker
    found = doctor_broker(machine)
    assert found["ok"] is True, found
    assert f"answers on TLS port {port}" in found["detail"]
    assert "cafile expires in 36" in found["detail"]  # 3650 days
    assert "certfile expires in 82" in found["detail"]  # 825 days


def test_doctor_says_when_the_broker_does_not_answer(machine: Machine) -> None:
    mosquitto_binary()
    port = free_port()
    install_broker_config(machine, port)
    assert machine.mam("broker", "init", "--manager", "direct").returncode == 0
    found = doctor_broker(machine)
    assert found["ok"] is False
    assert f"no TLS answer on 127.0.0.1:{port}" in found["detail"]
    assert found["fix"] == "systemctl --user start mam-broker.service"


def test_doctor_without_a_broker_says_none_is_configured(machine: Machine) -> None:
    found = doctor_broker(machine)
    assert (found["ok"], found["level"]) == (True, "info")
    assert "no private broker configured" in found["detail"]
