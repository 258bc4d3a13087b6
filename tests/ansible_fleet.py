"""Three managed hosts on this machine: an OpenSSH server on 127.0.0.1 and three users.

Each user (mamt<pid>1..3: named per run, so two runs on one machine never share an account)
has its own HOME (made by useradd from /etc/skel) and a workspace in it, logs in only with a
key this helper made, and is reached the way Ansible reaches any host: ssh with a pinned host
key. Needs root (useradd, an sshd that can switch users); CI runs so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_USER_PREFIX = "mamt"
USERS = tuple(f"{_USER_PREFIX}{os.getpid()}{suffix}" for suffix in "123")
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass
class ManagedHost:
    name: str
    user: str
    home: Path
    workspace: Path
    remote_tmp: Path


@dataclass
class Fleet:
    base: Path
    port: int
    key: Path
    known_hosts: Path
    hosts: list[ManagedHost]

    def host(self, name: str) -> ManagedHost:
        return next(h for h in self.hosts if h.name == name)

    def inventory(self, path: Path, host_vars: dict[str, dict[str, Any]] | None = None,
                  group_vars: dict[str, Any] | None = None) -> Path:
        """A YAML (here: JSON) inventory of the three hosts in the group `mam_fleet`."""
        ssh_args = (f"-F /dev/null -o UserKnownHostsFile={self.known_hosts} "
                    "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes")
        hosts = {}
        for host in self.hosts:
            hosts[host.name] = {
                "ansible_user": host.user,
                "ansible_remote_tmp": str(host.remote_tmp),
                "mam_install_workspaces": [str(host.workspace)],
                **(host_vars or {}).get(host.name, {}),
            }
        group = {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_python_interpreter": SYSTEM_PYTHON,
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": ssh_args,
            **(group_vars or {}),
        }
        doc = {"all": {"children": {"mam_fleet": {"hosts": hosts, "vars": group}}}}
        path.write_text(json.dumps(doc, indent=2))
        return path


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _uid_processes(uids: set[int]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid in uids:
                    pids.append(int(entry.name))
    return pids


def _remove_user(user: str) -> None:
    with contextlib.suppress(KeyError):
        pwd.getpwnam(user)
        subprocess.run(["userdel", "--force", "--remove", user], capture_output=True)


def _remove_users_of_dead_runs() -> None:
    """Accounts a killed run left behind: its pid is in the name and no longer alive."""
    for entry in pwd.getpwall():
        digits = entry.pw_name[len(_USER_PREFIX) : -1]
        if not (entry.pw_name.startswith(_USER_PREFIX) and digits.isdigit()):
            continue
        try:
            os.kill(int(digits), 0)
        except ProcessLookupError:
            _remove_user(entry.pw_name)
        except PermissionError:
            pass


def _add_user(user: str, home: Path, public_key: str) -> ManagedHost:
    _remove_user(user)  # left over by a killed run whose pid this run now has
    # '*' and not useradd's default '!': sshd without PAM refuses a locked account.
    _run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh",
          "--user-group", "--password", "*", user])
    entry = pwd.getpwnam(user)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "authorized_keys").write_text(public_key)
    workspace = home / "project"
    workspace.mkdir()
    (workspace / "README.md").write_text(f"{user}'s project\n")
    remote_tmp = home.parent.parent / "remote-tmp" / user
    remote_tmp.mkdir(parents=True, mode=0o700)
    keys = ssh_dir / "authorized_keys"
    for path in (ssh_dir, keys, workspace, workspace / "README.md", remote_tmp):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    (ssh_dir / "authorized_keys").chmod(0o600)
    return ManagedHost(f"host{user[-1]}", user, home, workspace, remote_tmp)


def _start_sshd(base: Path, port: int) -> subprocess.Popen[bytes]:
    host_key = base / "ssh_host_ed25519_key"
    if not host_key.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)])
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {base / 'sshd.pid'}\n"
        "AuthorizedKeysFile .ssh/authorized_keys\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"PermitRootLogin no\nAllowUsers {' '.join(USERS)}\nStrictModes yes\n"
        "MaxSessions 50\nMaxStartups 50\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    _run(["/usr/sbin/sshd", "-t", "-f", str(config)])
    log = open(base / "sshd.log", "wb")  # noqa: SIM115 - lives as long as the server
    server = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                              stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # ready when it greets, not when the process exists
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as c:
            if c.recv(64).startswith(b"SSH-2.0-"):
                return server
        if server.poll() is not None:
            break
        time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"sshd did not start: {(base / 'sshd.log').read_text()}")


@contextlib.contextmanager
def running_fleet() -> Iterator[Fleet]:
    """Make the users and the server; on exit end every session and remove the users."""
    base = Path(tempfile.mkdtemp(prefix="mam-ansible-"))
    base.chmod(0o755)  # the users must reach their homes under it
    (base / "home").mkdir(mode=0o755)
    key = base / "controller_key"
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mam-ansible-test", "-f", str(key)])
    public_key = (base / "controller_key.pub").read_text()
    server = None
    hosts: list[ManagedHost] = []
    try:
        _remove_users_of_dead_runs()
        hosts = [_add_user(user, base / "home" / user, public_key) for user in USERS]
        for attempt in range(3):  # another process may take the free port before sshd binds
            port = _free_port()
            try:
                server = _start_sshd(base, port)
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        host_key = (base / "ssh_host_ed25519_key.pub").read_text().split()
        known_hosts = base / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        yield Fleet(base, port, key, known_hosts, hosts)
    finally:
        _stop(base, server, [h.user for h in hosts])


def _stop(base: Path, server: subprocess.Popen[bytes] | None, users: list[str]) -> None:
    for socket_path in (base / "cp").glob("*"):  # Ansible's ssh ControlPersist masters
        subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "x"],
                       capture_output=True, timeout=10)
    if server is not None:
        server.terminate()
        server.wait(timeout=10)
    uids = set()
    for user in users:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(user).pw_uid)
    deadline = time.monotonic() + 10
    while (pids := _uid_processes(uids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:  # sessions of our test users that outlived the server: ours to end
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for user in users:
        _remove_user(user)
    subprocess.run(["rm", "-rf", "--", str(base)], check=False)


def snapshot(root: Path, ignore: frozenset[str] = frozenset()) -> dict[str, str]:
    """Every entry under root: its kind, mode, owner and content hash (or link target)."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if rel in ignore:
                continue
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                what = "link " + os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                what = "file " + hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                what = "dir"
            found[rel] = f"{what} {stat.S_IMODE(info.st_mode):o} {info.st_uid}"
    return found
