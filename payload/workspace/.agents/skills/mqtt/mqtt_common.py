"""Signed job-event envelopes, replay-proof sequence numbers and broker settings for mam tools."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# The lock strategy is chosen here, once, and there is no unlocked fallback: a platform with
# neither fcntl nor msvcrt fails at import instead of silently racing on sequence numbers.
if sys.platform == "win32":
    import msvcrt

    LOCK_STRATEGY = "msvcrt"
else:
    import fcntl

    LOCK_STRATEGY = "fcntl"

__all__ = [
    "DEFAULT_PORT",
    "LOCK_STRATEGY",
    "TERMINAL_EVENTS",
    "BrokerSettings",
    "ConfigError",
    "Envelope",
    "EnvelopeError",
    "FileLock",
    "SequenceStore",
    "check_job_id",
    "envelope_topic",
    "hmac_key_from_env",
    "job_from_topic",
    "load_env",
    "parse_env_text",
    "sign_envelope",
    "state_dir_from_env",
    "verify_envelope",
]

DEFAULT_PORT = 8883
TERMINAL_EVENTS = frozenset({"done", "failed", "cancelled"})
MIN_KEY_BYTES = 16
DEFAULT_MAX_SKEW_SECONDS = 600

_SIGNING_DOMAIN = b"mam-envelope-v1\n"
_JOB_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_EVENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENVELOPE_FIELDS = frozenset({"job", "seq", "ts", "event", "data", "sig"})
_RESERVED_ENV = frozenset(
    {"IFS", "PS1", "PS2", "PS4", "ENV", "BASH_ENV", "CDPATH", "OPTIND", "OPTARG", "SHELLOPTS",
     "BASHOPTS"}
)

# Brokers anyone can connect to; a job's events must never travel through them by accident.
PUBLIC_BROKERS = frozenset(
    {
        "test.mosquitto.org",
        "broker.hivemq.com",
        "broker.emqx.io",
        "mqtt.eclipseprojects.io",
        "mqtt.eclipse.org",
        "iot.eclipse.org",
        "public.mqtthq.com",
        "test.mosca.io",
        "broker.mqttdashboard.com",
        "mqtt.flespi.io",
        "public.cloud.shiftr.io",
    }
)


class ConfigError(Exception):
    """A setting is missing or unsafe; the message names the variable and the fix."""


class EnvelopeError(Exception):
    """A message was rejected: malformed, badly signed, replayed or stale."""


# --- settings files -----------------------------------------------------------------------------


# --- the paho-mqtt fix, in the same words as `mam-install doctor` (a test holds them equal) ----

_PACKAGE_MANAGERS = {
    "linux": ("apt-get", "dnf", "yum", "zypper", "pacman", "apk"),
    "darwin": ("brew", "port"),
    "freebsd": ("pkg",),
}
_INSTALL_COMMANDS = {
    "apt-get": ("apt-get install {}", True), "dnf": ("dnf install {}", True),
    "yum": ("yum install {}", True), "zypper": ("zypper install {}", True),
    "pacman": ("pacman -S {}", True), "apk": ("apk add {}", True),
    "brew": ("brew install {}", False), "port": ("port install {}", True),
    "pkg": ("pkg install {}", True),
}
# Distribution packages of paho-mqtt, for interpreters that refuse pip (PEP 668).
_PAHO_PACKAGES = {
    "apt-get": "python3-paho-mqtt", "dnf": "python3-paho-mqtt", "yum": "python3-paho-mqtt",
    "zypper": "python3-paho-mqtt", "pacman": "python-paho-mqtt", "apk": "py3-paho-mqtt",
}


def paho_install_hint(
    executable: str, *, in_venv: bool, externally_managed: bool, package_manager: str | None,
    uid: int,
) -> str:
    """How to make paho-mqtt importable by ``executable``, the way that Python allows."""
    distro_package = _PAHO_PACKAGES.get(package_manager or "")
    if in_venv:
        return f"{executable} -m pip install paho-mqtt"
    if externally_managed and distro_package is not None and package_manager is not None:
        template, needs_root = _INSTALL_COMMANDS[package_manager]
        command = template.format(distro_package)
        return f"sudo {command}" if needs_root and uid != 0 else command
    if externally_managed:
        return f"{executable} -m pip install --user --break-system-packages paho-mqtt"
    return f"{executable} -m pip install --user paho-mqtt"


def paho_install_hint_here() -> str:
    """The hint for the Python running this tool, on this machine."""
    import shutil
    import sysconfig

    system = "freebsd" if sys.platform.startswith("freebsd") else sys.platform
    system = "linux" if system.startswith("linux") else system
    manager = next((name for name in _PACKAGE_MANAGERS.get(system, ())
                    if shutil.which(name) is not None), None)
    stdlib = sysconfig.get_path("stdlib")
    # pyvenv.cfg too: under `python -S` a venv's sys.prefix is its base's.
    venv_cfg = os.path.join(os.path.dirname(os.path.dirname(sys.executable)), "pyvenv.cfg")
    return paho_install_hint(
        sys.executable,
        in_venv=sys.prefix != getattr(sys, "base_prefix", sys.prefix) or os.path.exists(venv_cfg),
        externally_managed=os.path.exists(os.path.join(stdlib, "EXTERNALLY-MANAGED")),
        package_manager=manager,
        uid=os.getuid() if hasattr(os, "getuid") else 0,
    )


# Exactly the blanks lib.sh strips (str.strip() would also take Unicode spaces).
_BLANKS = " \t\v\f\r"


def parse_env_text(text: str, prefix: str = "") -> tuple[dict[str, str], list[int]]:
    """Parse KEY=VALUE lines exactly as lib.sh does; return (values, numbers of bad lines).

    Nothing is expanded or executed: quotes are stripped, ``$(...)`` stays literal text.
    """
    values: dict[str, str] = {}
    bad: list[int] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        line = line.lstrip(_BLANKS)
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip(_BLANKS)
        if "=" not in line:
            bad.append(number)
            continue
        key, _, value = line.partition("=")
        key = key.rstrip(_BLANKS)
        value = value.lstrip(_BLANKS)
        if not _KEY_RE.match(key) or not key.isascii():
            bad.append(number)
            continue
        if value[:1] in ('"', "'"):
            quote = value[0]
            value = value.rstrip(_BLANKS)
            if len(value) < 2 or not value.endswith(quote):
                bad.append(number)
                continue
            value = value[1:-1]
        else:
            comment = re.search(r"[ \t\v\f\r]#", value)
            if comment:
                value = value[: comment.start()]
            value = value.rstrip(_BLANKS)
        if not key.startswith(prefix) or key in _RESERVED_ENV or key.startswith(("LD_", "DYLD_")):
            continue
        values[key] = value
    return values, bad


def _find_workspace_root(start: Path) -> Path | None:
    current = start.resolve()
    for candidate in (current, *current.parents):
        if any((candidate / marker).exists() for marker in (".mam", ".git", ".env")):
            return candidate
    return None


def load_env(
    environ: MutableMapping[str, str] | None = None, start: Path | None = None
) -> Path | None:
    """Load MAM_* settings from $MAM_ENV_FILE or <workspace>/.env; variables already set win.

    The workspace is found as lib.sh finds it: from $MAM_WORKSPACE, else from this file's
    install location (``<ws>/.agents/skills/mqtt``), else from the current directory.
    """
    env = os.environ if environ is None else environ
    explicit = env.get("MAM_ENV_FILE")
    if explicit:
        env_file = Path(explicit)
    else:
        if env.get("MAM_WORKSPACE"):
            begin = Path(env["MAM_WORKSPACE"])
        elif start is not None:
            begin = start
        else:
            here = Path(__file__).resolve().parent
            installed = here.parent.parent
            is_installed = here.name == "mqtt" and installed.name == ".agents"
            begin = installed.parent if is_installed else Path.cwd()
        root = _find_workspace_root(begin)
        if root is None:
            return None
        env_file = root / ".env"
    if not env_file.is_file():
        return None
    try:
        text = env_file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(
            f"cannot read settings file {env_file}: {exc.strerror}; check its permissions"
        ) from exc
    values, bad = parse_env_text(text, prefix="MAM_")
    for number in bad:
        print(f"mam: warning: {env_file}:{number}: ignored a line that is not KEY=VALUE",
              file=sys.stderr)
    for key, value in values.items():
        env.setdefault(key, value)
    return env_file


def state_dir_from_env(environ: Mapping[str, str]) -> Path:
    """Where sequence numbers live: $MAM_STATE_DIR, $XDG_STATE_HOME/mam or ~/.local/state/mam."""
    explicit = environ.get("MAM_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "mam"


def hmac_key_from_env(environ: Mapping[str, str]) -> bytes:
    """The shared signing key; refuses to run without one or with one too short to be a secret."""
    key = environ.get("MAM_HMAC_KEY", "")
    if not key:
        raise ConfigError(
            "MAM_HMAC_KEY is not set; put a shared secret in .env or ~/.config/mam/mqtt.env, "
            "e.g. from: python3 -c 'import secrets; print(secrets.token_hex(32))'"
        )
    raw = key.encode("utf-8")
    if len(raw) < MIN_KEY_BYTES:
        raise ConfigError(
            f"MAM_HMAC_KEY is {len(raw)} bytes, fewer than {MIN_KEY_BYTES}; generate one with: "
            "python3 -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return raw


# --- broker settings ----------------------------------------------------------------------------


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _is_private_address(address: str) -> bool:
    # Not routable on the internet: loopback, RFC 1918, link-local, ULA, CGNAT (Tailscale), ...
    return not ipaddress.ip_address(address.split("%", 1)[0]).is_global


def _host_is_public(host: str) -> bool:
    name = host.strip().rstrip(".").lower()
    if name in PUBLIC_BROKERS:
        return True
    if name == "localhost" or name.endswith(".localhost"):
        return False
    try:
        return not _is_private_address(name)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(
            f"cannot resolve MAM_MQTT_HOST={host}: {exc}; check the name or use 127.0.0.1"
        ) from exc
    return any(not _is_private_address(str(info[4][0])) for info in infos)


@dataclass(frozen=True)
class BrokerSettings:
    """How to reach the broker; built from the environment by :meth:`from_env`."""

    host: str
    port: int
    tls: bool
    ca_file: str | None
    username: str | None
    password: str | None
    topic_prefix: str
    client_id_prefix: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BrokerSettings:
        host = environ.get("MAM_MQTT_HOST", "").strip() or "localhost"
        port_text = environ.get("MAM_MQTT_PORT", "").strip() or str(DEFAULT_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"MAM_MQTT_PORT={port_text} is not a TCP port; use e.g. 8883")
        tls_text = environ.get("MAM_MQTT_TLS", "1")
        tls = tls_text.strip() == "" or _truthy(tls_text)
        public = _host_is_public(host)
        if public and not _truthy(environ.get("MAM_MQTT_ALLOW_PUBLIC_BROKER")):
            raise ConfigError(
                f"MAM_MQTT_HOST={host} is a public address; run a private broker (see "
                "mam-broker.conf) or set MAM_MQTT_ALLOW_PUBLIC_BROKER=1 if you really mean it"
            )
        if not tls and public:
            raise ConfigError(
                f"MAM_MQTT_TLS=0 with the non-local broker {host} would send secrets in clear; "
                "turn TLS back on"
            )
        ca_file = environ.get("MAM_MQTT_CA_FILE") or None
        if ca_file is not None and not Path(ca_file).is_file():
            raise ConfigError(f"MAM_MQTT_CA_FILE={ca_file} does not exist; point it at the CA cert")
        username = environ.get("MAM_MQTT_USERNAME") or None
        prefix = environ.get("MAM_MQTT_TOPIC_PREFIX", "").strip().strip("/")
        if not prefix:
            prefix = f"mam/{username}" if username else "mam"
        if any(ch in prefix for ch in "+#") or "\x00" in prefix:
            raise ConfigError(f"MAM_MQTT_TOPIC_PREFIX={prefix} must not hold + or #")
        return cls(
            host=host,
            port=int(port_text),
            tls=tls,
            ca_file=ca_file,
            username=username,
            password=environ.get("MAM_MQTT_PASSWORD") or None,
            topic_prefix=prefix,
            client_id_prefix=environ.get("MAM_MQTT_CLIENT_ID_PREFIX", "mam"),
        )


def check_job_id(job: str) -> str:
    """A job id is also a tmux session name and a topic level: keep it to [A-Za-z0-9_-]."""
    if not _JOB_RE.match(job):
        raise EnvelopeError(
            f"job id {job!r} must be 1-64 letters, digits, _ or -, starting with a letter or digit"
        )
    return job


def envelope_topic(prefix: str, job: str) -> str:
    return f"{prefix}/jobs/{check_job_id(job)}/events"


def job_from_topic(prefix: str, topic: str) -> str | None:
    head = f"{prefix}/jobs/"
    if not topic.startswith(head) or not topic.endswith("/events"):
        return None
    job = topic[len(head) : -len("/events")]
    return job if _JOB_RE.match(job) else None


# --- envelopes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """One job event: ``{job, seq, ts, event, data, sig}`` on the wire."""

    job: str
    seq: int
    ts: float
    event: str
    data: Any
    sig: str

    @property
    def terminal(self) -> bool:
        return self.event in TERMINAL_EVENTS

    def to_json(self) -> str:
        return json.dumps(
            {"job": self.job, "seq": self.seq, "ts": self.ts, "event": self.event,
             "data": self.data, "sig": self.sig},
            sort_keys=True,
            separators=(",", ":"),
        )


def _canonical(job: str, seq: int, ts: float, event: str, data: Any) -> bytes:
    body = json.dumps(
        {"job": job, "seq": seq, "ts": ts, "event": event, "data": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )
    return _SIGNING_DOMAIN + body.encode("ascii")


def _signature(key: bytes, job: str, seq: int, ts: float, event: str, data: Any) -> str:
    return hmac.new(key, _canonical(job, seq, ts, event, data), hashlib.sha256).hexdigest()


def sign_envelope(key: bytes, job: str, seq: int, event: str, data: Any, ts: float) -> Envelope:
    check_job_id(job)
    if not _EVENT_RE.match(event):
        raise EnvelopeError(f"event name {event!r} must be 1-64 letters, digits, _ . : or -")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise EnvelopeError(f"sequence number {seq!r} must be a positive integer")
    try:
        sig = _signature(key, job, seq, ts, event, data)
    except (TypeError, ValueError) as exc:
        raise EnvelopeError(f"event data is not plain JSON: {exc}") from exc
    return Envelope(job=job, seq=seq, ts=ts, event=event, data=data, sig=sig)


def verify_envelope(
    key: bytes,
    payload: bytes,
    now: float,
    max_skew: float = DEFAULT_MAX_SKEW_SECONDS,
) -> Envelope:
    """Parse and authenticate one message; raise EnvelopeError saying why it was rejected."""
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EnvelopeError("malformed: not UTF-8 JSON") from exc
    if not isinstance(obj, dict) or set(obj) != _ENVELOPE_FIELDS:
        raise EnvelopeError("malformed: expected exactly the fields job, seq, ts, event, data, sig")
    job, seq, ts, event, sig = obj["job"], obj["seq"], obj["ts"], obj["event"], obj["sig"]
    if not isinstance(job, str) or not _JOB_RE.match(job):
        raise EnvelopeError("malformed: bad job id")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise EnvelopeError("malformed: seq must be a positive integer")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise EnvelopeError("malformed: ts must be a number")
    if not isinstance(event, str) or not _EVENT_RE.match(event):
        raise EnvelopeError("malformed: bad event name")
    if not isinstance(sig, str) or not re.fullmatch(r"[0-9a-f]{64}", sig):
        raise EnvelopeError("malformed: sig must be 64 lowercase hex digits")
    try:
        expected = _signature(key, job, seq, ts, event, obj["data"])
    except ValueError as exc:
        raise EnvelopeError("malformed: data is not plain JSON") from exc
    if not hmac.compare_digest(expected, sig):
        raise EnvelopeError("bad signature")
    if abs(now - float(ts)) > max_skew:
        raise EnvelopeError(f"stale: timestamp is more than {max_skew:.0f} s from now")
    return Envelope(job=job, seq=seq, ts=float(ts), event=event, data=obj["data"], sig=sig)


# --- locking and sequence numbers ---------------------------------------------------------------


class FileLock:
    """An exclusive lock held for a ``with`` block: fcntl on POSIX, msvcrt on Windows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(self.path, "a+b")
        try:
            if sys.platform == "win32":
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            else:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except OSError:
            handle.close()
            raise
        self._handle = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            if sys.platform == "win32":
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        finally:
            handle.close()


def _read_int(path: Path) -> int:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return 0
    if not text.isdigit():
        raise ConfigError(f"sequence file {path} is corrupt ({text[:20]!r}); delete it to reset")
    return int(text)


def _write_int_atomically(path: Path, value: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(f"{value}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class SequenceStore:
    """Per-job sequence numbers on disk, so restarts neither reuse nor re-accept a number.

    Publishers and subscribers keep separate files (``role``), so one host can be both.
    """

    def __init__(self, state_dir: Path, role: str) -> None:
        if role not in {"publish", "accept"}:
            raise ValueError(f"unknown sequence role {role!r}")
        self.directory = state_dir / "mqtt" / role

    def _paths(self, job: str) -> tuple[Path, Path]:
        check_job_id(job)
        return self.directory / f"{job}.seq", self.directory / f"{job}.lock"

    @contextlib.contextmanager
    def _locked(self, job: str) -> Iterator[Path]:
        seq_path, lock_path = self._paths(job)
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            with FileLock(lock_path):
                yield seq_path
        except OSError as exc:
            raise ConfigError(
                f"cannot use sequence state in {self.directory}: {exc.strerror}; "
                "check MAM_STATE_DIR is a writable local directory"
            ) from exc

    def last(self, job: str) -> int:
        with self._locked(job) as seq_path:
            return _read_int(seq_path)

    def next(self, job: str) -> int:
        """Reserve and return the next number to publish for ``job``."""
        with self._locked(job) as seq_path:
            value = _read_int(seq_path) + 1
            _write_int_atomically(seq_path, value)
            return value

    def accept(self, job: str, seq: int) -> bool:
        """Record ``seq`` if it is newer than any accepted for ``job``; False means a replay."""
        with self._locked(job) as seq_path:
            if seq <= _read_int(seq_path):
                return False
            _write_int_atomically(seq_path, seq)
            return True
