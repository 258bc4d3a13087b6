"""Fixtures for the payload tests: a private tmux server and a TLS mosquitto broker.

Test modules register them under their own names, e.g. ``tmux = pytest.fixture(name="tmux")(
tmux_server)``. They are not in a tests/payload/conftest.py: without __init__.py files every
conftest is imported as the module ``conftest``, and a second one would shadow tests/conftest.py
for the ``from conftest import ...`` in the other test modules.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.payload._support import HOST, Broker, Tmux, free_port, make_tls_files, render


def tmux_server(tmp_path: Path) -> Iterator[Tmux]:
    """A tmux server on a private socket, killed afterwards."""
    binary = shutil.which("tmux")
    if binary is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    server = Tmux(f"mamtest-{os.getpid()}-{tmp_path.name[-12:]}", binary)
    try:
        yield server
    finally:
        server("kill-server", check=False)


def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """mosquitto from the payload's config template on a free 127.0.0.1 port, then stopped."""
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    passwd_tool, openssl = shutil.which("mosquitto_passwd"), shutil.which("openssl")
    for tool, found in (("mosquitto", mosquitto), ("mosquitto_passwd", passwd_tool),
                        ("openssl", openssl)):
        if found is None:
            pytest.skip(f"{tool} is not installed (apt-get install mosquitto openssl)")
    assert mosquitto is not None
    root = tmp_path_factory.mktemp("broker")
    config_dir, state_dir = root / "config", root / "state"
    broker_dir = config_dir / "broker"
    make_tls_files(broker_dir)
    (state_dir / "broker").mkdir(parents=True)
    shutil.copy(HOST / "mosquitto" / "mam-broker.acl", broker_dir / "mam-broker.acl")
    username, password = "alice", "alice-password-1"
    passwd = broker_dir / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), username, password],
                   check=True, capture_output=True, timeout=30)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "bob", "bob-password-1"],
                   check=True, capture_output=True, timeout=30)
    port = free_port()
    conf = render(
        (HOST / "mosquitto" / "mam-broker.conf").read_text(),
        {"MAM_CONFIG_DIR": str(config_dir), "MAM_STATE_DIR": str(state_dir),
         "MAM_MQTT_PORT": str(port)},
    )
    if os.geteuid() == 0:
        # mosquitto run as root drops to the "mosquitto" user, which cannot read tmp_path.
        conf += f"\nuser {getpass.getuser()}\n"
    (broker_dir / "mosquitto.conf").write_text(conf)
    log = root / "mosquitto.log"
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
        yield Broker(port, broker_dir / "ca.crt", username, password, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
