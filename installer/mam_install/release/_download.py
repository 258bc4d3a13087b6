"""Fetch one URL into a staging file with hard limits on size, time and what counts as retryable."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from .. import __version__
from .._errors import IntegrityError, NetworkError, UsageError
from .._hashing import is_sha256_hex

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = ["DownloadSettings", "download"]

# Plain http is allowed only to this machine: tests and a local mirror. Anything fetched over
# the network must come over TLS, because SHA256SUMS and the manifest are fetched the same way.
_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True)
class DownloadSettings:
    """Limits for one `download`; every duration is in seconds.

    ``deadline`` bounds the whole call, retries and back-off included, so a server that trickles
    bytes just fast enough to dodge ``read_timeout`` still cannot hold the installer forever.
    ``retries`` is the number of attempts after the first one, made only after transient
    failures, waiting ``backoff_base * 2**n`` (at most ``backoff_max``) before attempt ``n + 1``.
    """

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 900.0
    retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    progress: bool | None = None  # None: a bar when stderr is a terminal; False with -q/--json

    @classmethod
    def for_command(cls, timeout: float | None, progress: bool | None) -> DownloadSettings:
        """``--timeout SECONDS`` bounds each download whole, its connect and read timeouts never
        longer than it; None keeps the defaults."""
        if timeout is None:
            return cls(progress=progress)
        return cls(
            connect_timeout=min(cls.connect_timeout, timeout),
            read_timeout=min(cls.read_timeout, timeout),
            deadline=timeout,
            progress=progress,
        )


class _Transient(Exception):
    """A failure worth another attempt: the next one may well succeed."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


def download(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    expected_sha256: str | None = None,
    progress: bool | None = None,
    settings: DownloadSettings = DownloadSettings(),
) -> str:
    """Download ``url`` into ``dest`` and return the body's SHA-256 hex digest.

    The body is streamed to ``dest`` and hashed on the way; the call aborts as soon as the body
    passes ``max_bytes`` or ``settings.deadline`` passes. Connect errors, timeouts, broken or
    truncated bodies, 5xx and 429 answers are retried with exponential back-off; other answers
    and a digest that differs from ``expected_sha256`` are not; nor is a name that does not
    resolve (a typo or no network: asking again only delays the answer). Proxies
    (``HTTPS_PROXY``, ``NO_PROXY``) come from the environment; certificates are trusted when the
    OS store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set) or certifi's bundle vouches for them.
    ``progress``: ``None`` draws a bar on stderr when it is a terminal, ``False`` never does
    (``-q``, ``--json``), ``True`` always does.

    Every failure removes ``dest`` and raises a one-line error: `NetworkError` (exit 10) when the
    bytes never arrived (DNS, refused, timeout, proxy, TLS, an HTTP error status),
    `IntegrityError` (exit 5) when the bytes that came are not the published ones.
    """
    _check_url(url)
    if expected_sha256 is not None and not is_sha256_hex(expected_sha256):
        raise ValueError(f"expected_sha256 is not 64 lowercase hex digits: {expected_sha256!r}")
    if max_bytes < 0:
        raise ValueError("max_bytes must not be negative")
    if progress is None:
        progress = settings.progress
    draw = sys.stderr.isatty() if progress is None else progress
    try:
        digest = _download_with_retries(url, dest, max_bytes, draw, settings)
        if expected_sha256 is not None and digest != expected_sha256:
            raise IntegrityError(
                f"{url} does not match its pinned SHA-256 (expected {expected_sha256}, got "
                f"{digest}); it was discarded: the mirror or the release is not the one published, "
                "so do not use it and report it"
            )
        return digest
    except BaseException:
        # A half-written file must never be mistaken for a verified one by a later step.
        _remove(dest)
        raise


def _download_with_retries(
    url: str, dest: Path, max_bytes: int, draw: bool, settings: DownloadSettings
) -> str:
    import httpx

    give_up_at = time.monotonic() + settings.deadline
    headers = {
        # A transparently compressed body would hash differently from the published file.
        "Accept-Encoding": "identity",
        "User-Agent": f"mam-install/{__version__}",
    }
    with httpx.Client(
        follow_redirects=True, trust_env=True, headers=headers, verify=trust_context()
    ) as client:
        attempt = 0
        while True:
            try:
                return _attempt(client, url, dest, max_bytes, draw, settings, give_up_at)
            except _Transient as failure:
                wait = _backoff(failure, attempt, settings)
                if attempt >= settings.retries or time.monotonic() + wait >= give_up_at:
                    tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
                    raise NetworkError(
                        f"download of {url} failed after {tries}: {failure}; check the network "
                        "and any proxy (HTTPS_PROXY, NO_PROXY), then try again",
                        failure.status,
                    ) from failure
                time.sleep(wait)
                attempt += 1


def _attempt(
    client: httpx.Client,
    url: str,
    dest: Path,
    max_bytes: int,
    draw: bool,
    settings: DownloadSettings,
    give_up_at: float,
) -> str:
    import httpx

    # No single wait may outlast the overall deadline, or a stall would overshoot it.
    remaining = max(give_up_at - time.monotonic(), 0.001)
    timeout = httpx.Timeout(
        connect=min(settings.connect_timeout, remaining),
        read=min(settings.read_timeout, remaining),
        write=min(settings.read_timeout, remaining),
        pool=min(settings.connect_timeout, remaining),
    )
    bar: _ProgressBar | None = None
    try:
        with client.stream("GET", url, timeout=timeout) as response:
            _check_response(url, response, max_bytes)
            declared = _content_length(response)
            digest = hashlib.sha256()
            received = 0
            bar = _ProgressBar(url, declared) if draw else None
            with _open_dest(url, dest) as out:
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > max_bytes:
                        _fail(
                            url,
                            f"the body is larger than the {max_bytes} bytes allowed",
                            "the server is not serving the published release; use another "
                            "mirror or report it",
                        )
                    if time.monotonic() > give_up_at:
                        _network_failure(
                            url,
                            f"it took longer than the {settings.deadline:g} s deadline",
                            "try again on a faster connection, from a closer mirror, or with a "
                            "longer --timeout",
                        )
                    digest.update(chunk)
                    _write(url, dest, out, chunk)
                    if bar is not None:
                        bar.update(received)
    except httpx.TimeoutException as exc:
        raise _Transient(f"timed out ({type(exc).__name__})") from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        if _is_certificate_failure(exc):
            _network_failure(
                url,
                "the server's TLS certificate is not trusted by the OS store or certifi",
                "if a proxy re-signs TLS here, point SSL_CERT_FILE (or SSL_CERT_DIR) at its CA",
                exc,
            )
        if _is_name_resolution_failure(exc):
            host = urlsplit(url).hostname
            _network_failure(
                url,
                f"the name {host} does not resolve ({_describe(exc)})",
                "check the URL for a typo, the network and DNS; not retried",
                exc,
            )
        raise _Transient(f"the connection failed ({_describe(exc)})") from exc
    except httpx.HTTPError as exc:
        _network_failure(url, _describe(exc), "check the URL and any proxy settings", exc)
    finally:
        if bar is not None:
            bar.finish()
    if declared is not None and received != declared:
        raise _Transient(f"the body ended after {received} of {declared} bytes")
    return digest.hexdigest()


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return
    raise UsageError(
        f"refusing to download {url}: only https:// URLs (or http:// to this machine) are "
        "allowed; use the https:// address of the release"
    )


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_response(url: str, response: httpx.Response, max_bytes: int) -> None:
    if urlsplit(url).scheme == "https" and response.url.scheme != "https":
        _fail(url, f"it redirected to plain http ({response.url})", "use an https:// mirror")
    status = response.status_code
    if status >= 500 or status == 429:
        retry_after = response.headers.get("Retry-After", "")
        raise _Transient(
            f"the server answered {status} {response.reason_phrase}",
            float(retry_after) if retry_after.isdigit() else None,
            status,
        )
    if status == 404 or status == 410:
        _network_failure(
            url,
            f"the server answered {status} {response.reason_phrase}",
            "check the release URL and version",
            status=status,
        )
    if not 200 <= status < 300:
        _network_failure(
            url,
            f"the server answered {status} {response.reason_phrase}",
            "check the URL and that the release is public",
            status=status,
        )
    declared = _content_length(response)
    if declared is not None and declared > max_bytes:
        _fail(
            url,
            f"it announces {declared} bytes, more than the {max_bytes} allowed",
            "the server is not serving the published release; use another mirror or report it",
        )


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _backoff(failure: _Transient, attempt: int, settings: DownloadSettings) -> float:
    wait = min(settings.backoff_base * (2.0**attempt), settings.backoff_max)
    if failure.retry_after is not None:
        # Honour the server's pace, but never let it stretch a wait past our own cap.
        wait = min(max(wait, failure.retry_after), settings.backoff_max)
    return wait


def trust_context() -> ssl.SSLContext:
    """TLS trust as both the bootstrap and the OS see it: the OS store (which honours
    ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``) plus certifi's bundle, so a corporate CA installed
    in the OS passes here as it passed `get-mam.py`, and a bare container still has roots."""
    import ssl

    context = ssl.create_default_context()  # loads the OS store and verifies host names
    try:
        import certifi

        context.load_verify_locations(cafile=certifi.where())
    except (ImportError, OSError):
        pass  # the OS store alone: what the bootstrap trusted
    return context


def _is_name_resolution_failure(exc: BaseException) -> bool:
    import socket

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_certificate_failure(exc: BaseException) -> bool:
    import ssl

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _open_dest(url: str, dest: Path) -> IO[bytes]:
    try:
        return open(dest, "wb")
    except OSError as exc:
        _fail(url, f"{dest} could not be written ({exc.strerror})", "check the staging dir", exc)


def _write(url: str, dest: Path, out: IO[bytes], chunk: bytes) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        _fail(url, f"{dest} could not be written ({exc.strerror})", "free some disk space", exc)


def _remove(dest: Path) -> None:
    try:
        os.unlink(dest)
    except FileNotFoundError:
        pass


def _fail(url: str, what: str, fix: str, cause: BaseException | None = None) -> NoReturn:
    """The bytes that came are not the published ones: exit 5."""
    raise IntegrityError(f"download of {url} failed: {what}; {fix}") from cause


def _network_failure(
    url: str, what: str, fix: str, cause: BaseException | None = None, status: int | None = None
) -> NoReturn:
    """The bytes never came: exit 10, never 5."""
    raise NetworkError(f"download of {url} failed: {what}; {fix}", status) from cause


class _ProgressBar:
    """click's progress bar on stderr (the pyz carries click); drawn only when asked (a
    terminal without -q or --json) and only when the server said how long the body is."""

    def __init__(self, url: str, total: int | None) -> None:
        import click

        name = urlsplit(url).path.rsplit("/", 1)[-1] or url
        self._done = 0
        self._bar: Any = None  # click.progressbar's ProgressBar
        if total:
            self._bar = click.progressbar(
                length=total, label=name, file=sys.stderr, width=30, show_eta=True
            )
            self._bar.__enter__()

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._done)
        self._done = done

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
