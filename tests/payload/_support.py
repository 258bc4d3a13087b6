"""Paths and helpers shared by the payload tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = REPO / "payload"
WORKSPACE = PAYLOAD / "workspace"
SKILLS = WORKSPACE / ".agents" / "skills"
LIB_SH = SKILLS / "lib.sh"
TMUX_DIR = SKILLS / "tmux"
MQTT_DIR = SKILLS / "mqtt"
HOST = PAYLOAD / "host"
HOST_TOOLS = HOST / "tools"

HMAC_KEY = "test-key-0123456789abcdef0123456789"


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill each @NAME@ placeholder; fail on any left (the installer has the real renderer)."""
    for name, value in values.items():
        template = template.replace(f"@{name}@", value)
    leftover = re.findall(r"@MAM_[A-Z_]+@", template)
    assert not leftover, f"unfilled placeholders: {leftover}"
    return template


def copy_tools(dest: Path) -> Path:
    """Copy host/tools flat into ``dest`` as the installer does: symlinks become regular files."""
    dest.mkdir(parents=True, exist_ok=True)
    for tool in sorted(HOST_TOOLS.iterdir()):
        if tool.is_dir():
            shutil.copytree(tool, dest / tool.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(tool.resolve(), dest / tool.name)
    return dest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Tmux:
    """A tmux server of our own on a private -L socket."""

    socket_name: str
    binary: str

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-L", self.socket_name, *args],
            capture_output=True, text=True, check=check, timeout=20,
        )

    def sessions(self) -> set[str]:
        result = self("list-sessions", "-F", "#{session_name}", check=False)
        return set(result.stdout.split()) if result.returncode == 0 else set()

    def new_session(self, name: str, *command: str) -> None:
        self("new-session", "-d", "-s", name, "-x", "120", "-y", "30", *command)

    def capture(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", f"={name}:").stdout


def tool_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment that cannot pick up the developer's own settings."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "MAM_WORKSPACE": str(tmp_path / "no-workspace"),
    }
    env.update(extra)
    return env


@dataclass
class Broker:
    """A mosquitto on 127.0.0.1 with TLS from a CA made for the test, and password auth."""

    port: int
    ca_file: Path
    username: str
    password: str
    process: subprocess.Popen[bytes]
    log: Path

    def env(self, state_dir: Path, **extra: str) -> dict[str, str]:
        values = {
            "MAM_MQTT_HOST": "127.0.0.1",
            "MAM_MQTT_PORT": str(self.port),
            "MAM_MQTT_CA_FILE": str(self.ca_file),
            "MAM_MQTT_USERNAME": self.username,
            "MAM_MQTT_PASSWORD": self.password,
            "MAM_HMAC_KEY": HMAC_KEY,
            "MAM_STATE_DIR": str(state_dir),
        }
        values.update(extra)
        return values


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_tls_files(directory: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost, signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "2", "-subj", "/CN=mam test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=localhost", cwd=directory)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
             cwd=directory)


PYTHON = sys.executable
