"""A real HTTP(S) server on 127.0.0.1 that serves release files and misbehaves on request."""

from __future__ import annotations

import contextlib
import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

Behaviour = Callable[["_Handler", "ReleaseServer"], None]


@dataclass
class ReleaseServer:
    """Routes paths to behaviours; ``requests`` records every request target, in order."""

    base_url: str = ""
    routes: dict[str, Behaviour] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return self.base_url + path

    def hits(self, path: str) -> int:
        return sum(1 for target in self.requests if urlsplit(target).path == path)

    # Behaviours, each installed with ``server.routes[path] = server.<name>(...)``.

    @staticmethod
    def ok(body: bytes, headers: dict[str, str] | None = None) -> Behaviour:
        def behave(handler: _Handler, server: ReleaseServer) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)

        return behave

    @staticmethod
    def status(code: int, headers: dict[str, str] | None = None) -> Behaviour:
        def behave(handler: _Handler, server: ReleaseServer) -> None:
            body = f"status {code}\n".encode()
            handler.send_response(code)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)

        return behave

    @staticmethod
    def sequence(behaviours: Sequence[Behaviour]) -> Behaviour:
        """The n-th request gets the n-th behaviour; the last one repeats."""
        count = [0]

        def behave(handler: _Handler, server: ReleaseServer) -> None:
            index = min(count[0], len(behaviours) - 1)
            count[0] += 1
            behaviours[index](handler, server)

        return behave

    @staticmethod
    def truncated(body: bytes, claimed: int) -> Behaviour:
        """Announce ``claimed`` bytes, send ``body`` and close the connection."""

        def behave(handler: _Handler, server: ReleaseServer) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", str(claimed))
            handler.end_headers()
            handler.wfile.write(body)
            handler.wfile.flush()
            handler.close_connection = True

        return behave

    @staticmethod
    def endless(chunk: bytes = b"\0" * 65536, interval: float = 0.0) -> Behaviour:
        """A body with no length that never ends (``interval`` > 0: a trickle)."""

        def behave(handler: _Handler, server: ReleaseServer) -> None:
            handler.send_response(200)
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.close_connection = True
            with contextlib.suppress(OSError):
                while not server.closing.is_set():
                    handler.wfile.write(chunk)
                    handler.wfile.flush()
                    if interval:
                        server.closing.wait(interval)

        return behave

    @staticmethod
    def stall(seconds: float, head: bytes = b"", claimed: int = 1000) -> Behaviour:
        """Send the headers and ``head``, then go silent for ``seconds``."""

        def behave(handler: _Handler, server: ReleaseServer) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", str(claimed))
            handler.end_headers()
            handler.wfile.write(head)
            handler.wfile.flush()
            server.closing.wait(seconds)
            handler.close_connection = True

        return behave


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "release-server/1"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        state: ReleaseServer = self.server.state  # type: ignore[attr-defined]
        state.requests.append(self.path)
        # A proxied request carries the absolute URL; route on its path all the same.
        behaviour = state.routes.get(urlsplit(self.path).path)
        if behaviour is None:
            ReleaseServer.status(404)(self, state)
            return
        behaviour(self, state)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hang up on the endless and stalling behaviours on purpose


@contextlib.contextmanager
def running_server(tls: tuple[Path, Path] | None = None) -> Iterator[ReleaseServer]:
    """Serve on an ephemeral port of 127.0.0.1 (over TLS with ``(cert, key)``) until exit."""
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    state = ReleaseServer(base_url=f"{scheme}://127.0.0.1:{httpd.server_address[1]}")
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        state.closing.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make_self_signed_cert(directory: Path) -> tuple[Path, Path] | None:
    """A certificate for IP 127.0.0.1 made with the openssl CLI, or None when it is absent."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
