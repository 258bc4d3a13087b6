"""doctor's look at the private broker: its config, its certificates' expiry, and a TLS answer.

Reads only: the files `mam broker init` and the installer wrote under the config dir, and one
TLS handshake with the listener the config names (bounded by a timeout, never a public host).
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BrokerState", "broker_state"]

_WARN_DAYS = 30


@dataclass(frozen=True)
class BrokerState:
    configured: bool
    conf: str
    port: int | None = None
    certificates: tuple[tuple[str, str, int | None], ...] = ()  # (name, path, days left)
    answers: bool | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        expiring = any(days is None or days < _WARN_DAYS for _, _, days in self.certificates)
        return self.configured and self.answers is True and not expiring


def _settings(conf: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in conf.read_text(errors="replace").splitlines():
        words = line.split()
        if len(words) >= 2 and not words[0].startswith("#"):
            found.setdefault(words[0], " ".join(words[1:]))
    return found


def _days_left(path: Path) -> int | None:
    """Days until the certificate's notAfter, or None when it cannot be read."""
    try:
        # The ssl module's own decoder (CPython 3.9-3.13); no openssl process needed.
        decoded = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
        not_after = ssl.cert_time_to_seconds(decoded["notAfter"])
    except (OSError, ssl.SSLError, KeyError, ValueError, AttributeError):
        return None
    return int((not_after - time.time()) // 86400)


def _answers(host: str, port: int, cafile: Path, timeout: float) -> tuple[bool, str | None]:
    try:
        context = ssl.create_default_context(cafile=str(cafile))
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            return True, f"{tls.version()}"
    except (OSError, ssl.SSLError, ValueError) as exc:
        return False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def broker_state(config_dir: Path, timeout: float = 2.0) -> BrokerState:
    conf = config_dir / "broker" / "mosquitto.conf"
    if not conf.is_file():
        return BrokerState(False, str(conf))
    settings = _settings(conf)
    listener = settings.get("listener", "").split()
    if not listener or not listener[0].isdigit():
        return BrokerState(True, str(conf), problem="no `listener PORT ADDRESS` line")
    port = int(listener[0])
    address = listener[1] if len(listener) > 1 else "127.0.0.1"
    address = "127.0.0.1" if address in ("0.0.0.0", "::") else address
    certificates = tuple(
        (name, settings[name], _days_left(Path(settings[name])) if os.path.exists(settings[name])
         else None)
        for name in ("cafile", "certfile") if name in settings
    )
    missing = [path for _, path, _ in certificates if not os.path.exists(path)]
    if missing or "cafile" not in settings:
        return BrokerState(True, str(conf), port, certificates,
                           problem=f"missing {', '.join(missing) or 'cafile setting'}")
    answers, said = _answers(address, port, Path(settings["cafile"]), timeout)
    return BrokerState(True, str(conf), port, certificates, answers,
                       None if answers else f"no TLS answer on {address}:{port} ({said})")
