"""`mam broker init`: the private TLS broker's CA, server certificate, users and user unit.

mam-install renders the broker's config (mosquitto.conf, mam-broker.acl) from the payload's
templates into ~/.config/mam/broker/. This command makes what a template cannot ship: a private
CA, a server certificate for the names given, a password per user, the client settings file
(mqtt.env) the MQTT tools read, and a user unit that runs mosquitto. Keys and files that exist
are never overwritten: they are kept and reported.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from .context import Fleet, Report
from .errors import ConflictError, PlatformError, UsageError
from .roster import NAME

CA_DAYS, SERVER_DAYS = 3650, 825
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_UNIT_SAFE = re.compile(r"^[A-Za-z0-9_./@+-]+$")


def conf_settings(conf: Path) -> dict[str, str]:
    """The settings of mosquitto.conf mam needs (first value of each)."""
    found: dict[str, str] = {}
    for line in conf.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and not words[0].startswith("#"):
            found.setdefault(words[0], " ".join(words[1:]))
    return found


def _openssl(fleet: Fleet, *args: str) -> None:
    done = fleet.runner.run(["openssl", *args], timeout=120)
    if not done.ok:
        raise PlatformError(f"`openssl {args[0]}` failed: {done.said()}")


def _private_file(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(data)


def _san(hosts: list[str]) -> str:
    entries = []
    for host in hosts:
        try:
            entries.append(f"IP:{ipaddress.ip_address(host)}")
        except ValueError:
            if not _HOST.match(host):
                raise UsageError(f"--host {host!r} is not a host name or address") from None
            entries.append(f"DNS:{host}")
    return ",".join(entries)


def make_ca(fleet: Fleet, key: Path, cert: Path) -> str:
    if key.exists() and cert.exists():
        return "kept"
    if key.exists() or cert.exists():
        raise ConflictError(f"only one of {key} and {cert} exists; mam never overwrites a key. "
                            "Move both away to make a new CA, or put the missing one back")
    _openssl(fleet, "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", str(CA_DAYS), "-subj", "/CN=mam private broker CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(key, 0o600)
    return "made"


def make_server_cert(fleet: Fleet, ca: tuple[Path, Path], key: Path, cert: Path,
                     hosts: list[str]) -> str:
    if key.exists():
        return "kept"
    work = key.parent
    ext = work / "server.ext"
    ext.write_text(f"subjectAltName={_san(hosts)}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    csr = work / "server.csr"
    _openssl(fleet, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
             str(csr), "-subj", f"/CN={hosts[0]}")
    os.chmod(key, 0o600)
    _openssl(fleet, "x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey", str(ca[0]),
             "-CAcreateserial", "-out", str(cert), "-days", str(SERVER_DAYS), "-extfile",
             str(ext))
    csr.unlink()
    ext.unlink()
    return "made"


def password_line(user: str, password: str) -> str:
    """mosquitto 2's own format ($7$: PBKDF2-SHA512, 101 rounds), so no password is ever
    passed to mosquitto_passwd on a command line that every user can read in `ps`."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    return f"{user}:$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}\n"


def add_users(passwd: Path, users: list[str]) -> dict[str, str | None]:
    """New users get a random password (returned); existing ones are kept (None)."""
    existing = set()
    if passwd.exists():
        existing = {line.split(":", 1)[0] for line in passwd.read_text().splitlines() if line}
    made: dict[str, str | None] = {}
    for user in users:
        if user in existing:
            made[user] = None
            continue
        password = secrets.token_urlsafe(24)
        fd = os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_APPEND
                     | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "a") as stream:
            stream.write(password_line(user, password))
        made[user] = password
    return made


def client_settings(host: str, port: str, ca: Path, user: str, password: str) -> str:
    return ("# mam: settings of the MQTT tools, written by `mam broker init` (mode 0600).\n"
            f"MAM_MQTT_HOST={host}\nMAM_MQTT_PORT={port}\nMAM_MQTT_TLS=1\n"
            f"MAM_MQTT_CA_FILE={ca}\nMAM_MQTT_USERNAME={user}\nMAM_MQTT_PASSWORD={password}\n"
            f"MAM_MQTT_TOPIC_PREFIX=mam/{user}\nMAM_HMAC_KEY={secrets.token_hex(32)}\n")


def broker_unit(mosquitto: str, conf: Path, port: str) -> str:
    for value in (mosquitto, str(conf)):
        if not _UNIT_SAFE.match(value):
            raise PlatformError(f"{value!r} cannot be written unquoted into a systemd unit; "
                                "use paths without spaces or quotes")
    return ("# mam: the private MQTT broker (TLS only), written by `mam broker init`.\n"
            f"[Unit]\nDescription=mam private MQTT broker (TLS, port {port})\n\n"
            f"[Service]\nType=simple\nExecStart={mosquitto} -c {conf}\n"
            "Restart=on-failure\nRestartSec=5\n\n[Install]\nWantedBy=default.target\n")


def broker_init(fleet: Fleet, hosts: list[str], users: list[str]) -> Report:
    paths = fleet.paths
    conf = paths.broker_dir / "mosquitto.conf"
    if not conf.is_file():
        raise PlatformError(f"{conf} is missing: `mam-install install` renders it from the "
                            "payload's template; run it first")
    if shutil.which("openssl", path=fleet.env.get("PATH")) is None:
        raise PlatformError("openssl is not installed; install it (apt-get install openssl)")
    settings = conf_settings(conf)
    port = (settings.get("listener") or "8883").split()[0]
    me = fleet.env.get("USER") or getpass.getuser()
    users = users or [me]
    for user in users:
        if not NAME.match(user):
            raise UsageError(f"--user {user!r} is not a safe name (letters, digits, _ and -)")
    hosts = hosts or ["localhost", "127.0.0.1"]
    os.makedirs(paths.broker_dir, mode=0o700, exist_ok=True)
    ca = (Path(settings["cafile"]).with_suffix(".key"), Path(settings["cafile"]))
    server = (Path(settings["keyfile"]), Path(settings["certfile"]))
    done: dict[str, Any] = {"conf": str(conf), "port": int(port)}
    done["ca"] = make_ca(fleet, *ca)
    done["server_certificate"] = make_server_cert(fleet, ca, *server, hosts)
    made = add_users(Path(settings["password_file"]), users)
    done["users"] = {u: "made" if p else "kept" for u, p in made.items()}
    if settings.get("persistence_location"):
        Path(settings["persistence_location"]).mkdir(parents=True, exist_ok=True)
    lines = [f"CA {done['ca']}: {ca[1]}",
             f"server certificate {done['server_certificate']}: {server[1]} (for "
             f"{', '.join(hosts) if done['server_certificate'] == 'made' else 'its names'})"]
    lines += [f"user {u}: {state}" for u, state in done["users"].items()]
    done["mqtt_env"] = _place_client_settings(fleet, hosts[0], port, ca[1], me, made, lines)
    done["unit"] = _install_unit(fleet, conf, port, lines)
    return Report(done, lines)


def _place_client_settings(fleet: Fleet, host: str, port: str, ca: Path, me: str,
                           made: dict[str, str | None], lines: list[str]) -> str:
    target = fleet.paths.mqtt_env
    for user, password in made.items():
        if password is None:
            continue
        text = client_settings(host, port, ca, user, password)
        path = target if user == me else fleet.paths.broker_dir / "clients" / f"{user}.env"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists():
            path = path.with_name(path.name + ".mam-new")
            path.unlink(missing_ok=True)
            lines.append(f"kept {target}: the new settings for {user} are in {path}")
        _private_file(path, text)
        lines.append(f"wrote {path} (the MQTT tools' settings for {user})")
    return str(target)


def _install_unit(fleet: Fleet, conf: Path, port: str, lines: list[str]) -> str:
    mosquitto = shutil.which("mosquitto", path=fleet.env.get("PATH", "") + ":/usr/sbin:/sbin")
    if mosquitto is None:
        lines.append("mosquitto is not installed (apt-get install mosquitto): no unit written")
        return "none"
    if fleet.paths.system == "darwin":
        return _install_plist(fleet, mosquitto, conf, lines)
    unit = fleet.paths.systemd_units_dir / "mam-broker.service"
    text = broker_unit(mosquitto, conf, port)
    if unit.exists() and unit.read_text() != text:
        lines.append(f"kept {unit}: it differs from what mam would write")
        return str(unit)
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(text)
    from .managers import manager_kind

    if manager_kind(fleet.manager_choice, fleet.runner, fleet.paths, None) == "systemd":
        for argv in (["systemctl", "--user", "daemon-reload"],
                     ["systemctl", "--user", "enable", "--now", "mam-broker.service"]):
            result = fleet.runner.run(argv)
            if not result.ok:
                lines.append(f"`{' '.join(argv)}` failed: {result.said()}")
                return str(unit)
        lines.append(f"started mam-broker.service on port {port}")
    else:
        lines.append(f"wrote {unit}; no user manager runs here: start the broker with "
                     f"`{mosquitto} -c {conf}`")
    return str(unit)


BROKER_LABEL = "org.mam.broker"


def broker_plist(mosquitto: str, conf: Path, log_dir: Path) -> bytes:
    import plistlib

    return plistlib.dumps({
        "Label": BROKER_LABEL, "ProgramArguments": [mosquitto, "-c", str(conf)],
        "RunAtLoad": True, "KeepAlive": {"SuccessfulExit": False}, "ThrottleInterval": 10,
        "StandardOutPath": str(log_dir / "broker.log"),
        "StandardErrorPath": str(log_dir / "broker.log"),
    }, sort_keys=True)


def _install_plist(fleet: Fleet, mosquitto: str, conf: Path, lines: list[str]) -> str:
    plist = fleet.paths.launch_agents_dir / f"{BROKER_LABEL}.plist"
    data = broker_plist(mosquitto, conf, fleet.paths.state_dir)
    if plist.exists() and plist.read_bytes() != data:
        lines.append(f"kept {plist}: it differs from what mam would write")
        return str(plist)
    plist.parent.mkdir(parents=True, exist_ok=True)
    plist.write_bytes(data)
    domain = f"gui/{os.getuid()}"
    if fleet.runner.run(["launchctl", "print", f"{domain}/{BROKER_LABEL}"]).ok:
        argv = ["launchctl", "kickstart", "-k", f"{domain}/{BROKER_LABEL}"]
    else:
        argv = ["launchctl", "bootstrap", domain, str(plist)]
    result = fleet.runner.run(argv)
    lines.append(f"started {BROKER_LABEL}" if result.ok
                 else f"`{' '.join(argv)}` failed: {result.said()}")
    return str(plist)
