"""Downloads against a real local server that misbehaves on purpose."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mam_install._errors import ExitCode, IntegrityError, MamError, NetworkError, UsageError
from mam_install.release._download import DownloadSettings, download

from tests.release_server import ReleaseServer, make_self_signed_cert, running_server

# A hang here is a bug in the limits under test; fail fast instead of waiting for the suite.
pytestmark = pytest.mark.timeout(30)

BODY = bytes(range(256)) * 1000
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()
FAST = DownloadSettings(
    connect_timeout=1.0, read_timeout=0.3, deadline=3.0, retries=2, backoff_base=0.01
)


@pytest.fixture
def server() -> Iterator[ReleaseServer]:
    with running_server() as running:
        yield running


@pytest.fixture(autouse=True)
def no_proxy_from_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


def _refused(url: str, dest: Path, error: type[MamError] = NetworkError, **kwargs: object) -> str:
    """The download fails with ``error`` (network failures exit 10, wrong bytes 5), one line
    naming the URL, and no partial file."""
    with pytest.raises(MamError) as caught:
        download(url, dest, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert type(caught.value) is error, message
    assert (
        caught.value.exit_code
        == {
            NetworkError: ExitCode.NETWORK,
            IntegrityError: ExitCode.INTEGRITY,
            UsageError: ExitCode.USAGE,
        }[error]
    )
    assert "\n" not in message
    assert url in message
    assert not dest.exists(), "a failed download must not leave a partial file"
    return message


def test_good_body_lands_in_dest_and_its_sha256_is_returned(
    server: ReleaseServer, tmp_path: Path
) -> None:
    server.routes["/mam-payload-0.1.0.tar.gz"] = server.ok(BODY)
    dest = tmp_path / "payload.tar.gz"
    digest = download(
        server.url("/mam-payload-0.1.0.tar.gz"),
        dest,
        max_bytes=len(BODY),
        expected_sha256=BODY_SHA256,
        settings=FAST,
    )
    assert digest == BODY_SHA256
    assert dest.read_bytes() == BODY


def test_wrong_bytes_are_refused_and_not_retried(server: ReleaseServer, tmp_path: Path) -> None:
    server.routes["/a"] = server.ok(BODY[:-1] + b"X")
    message = _refused(
        server.url("/a"),
        tmp_path / "a",
        IntegrityError,
        max_bytes=len(BODY),
        expected_sha256=BODY_SHA256,
        settings=FAST,
    )
    assert f"expected {BODY_SHA256}" in message
    assert server.hits("/a") == 1


def test_truncated_body_is_retried_then_refused(server: ReleaseServer, tmp_path: Path) -> None:
    server.routes["/a"] = server.truncated(BODY[:1000], claimed=len(BODY))
    message = _refused(server.url("/a"), tmp_path / "a", max_bytes=len(BODY), settings=FAST)
    assert "after 3 attempts" in message
    assert server.hits("/a") == 3


def test_truncated_body_then_a_whole_one_succeeds(server: ReleaseServer, tmp_path: Path) -> None:
    server.routes["/a"] = server.sequence(
        [server.truncated(BODY[:1000], claimed=len(BODY)), server.ok(BODY)]
    )
    assert download(server.url("/a"), tmp_path / "a", max_bytes=len(BODY), settings=FAST) == (
        BODY_SHA256
    )
    assert (tmp_path / "a").read_bytes() == BODY


def test_endless_body_is_cut_at_the_size_cap(server: ReleaseServer, tmp_path: Path) -> None:
    server.routes["/a"] = server.endless()
    started = time.monotonic()
    message = _refused(
        server.url("/a"), tmp_path / "a", IntegrityError, max_bytes=1 << 20, settings=FAST
    )
    assert "larger than the 1048576 bytes allowed" in message
    assert server.hits("/a") == 1
    assert time.monotonic() - started < 2


def test_announced_oversize_body_is_refused_before_reading(
    server: ReleaseServer, tmp_path: Path
) -> None:
    server.routes["/a"] = server.ok(BODY)
    message = _refused(
        server.url("/a"), tmp_path / "a", IntegrityError, max_bytes=100, settings=FAST
    )
    assert f"announces {len(BODY)} bytes" in message


def test_trickling_body_is_cut_at_the_overall_deadline(
    server: ReleaseServer, tmp_path: Path
) -> None:
    # One byte every 20 ms never trips the read timeout; only the deadline stops it.
    server.routes["/a"] = server.endless(chunk=b"x", interval=0.02)
    settings = DownloadSettings(read_timeout=0.3, deadline=0.6, retries=0)
    started = time.monotonic()
    message = _refused(server.url("/a"), tmp_path / "a", max_bytes=1 << 30, settings=settings)
    assert "0.6 s deadline" in message
    assert time.monotonic() - started < 1.5


def test_stall_past_the_read_timeout_is_retried_then_refused(
    server: ReleaseServer, tmp_path: Path
) -> None:
    server.routes["/a"] = server.stall(5.0, head=b"partial")
    settings = DownloadSettings(read_timeout=0.2, deadline=3.0, retries=1, backoff_base=0.01)
    started = time.monotonic()
    message = _refused(server.url("/a"), tmp_path / "a", max_bytes=10_000, settings=settings)
    assert "timed out (ReadTimeout)" in message
    assert server.hits("/a") == 2
    assert time.monotonic() - started < 2


def test_stall_cannot_outlast_the_deadline_even_with_a_long_read_timeout(
    server: ReleaseServer, tmp_path: Path
) -> None:
    server.routes["/a"] = server.stall(5.0)
    settings = DownloadSettings(read_timeout=30.0, deadline=0.5, retries=5, backoff_base=0.01)
    started = time.monotonic()
    _refused(server.url("/a"), tmp_path / "a", max_bytes=10_000, settings=settings)
    assert time.monotonic() - started < 1.5


def test_500_then_200_is_retried_and_succeeds(server: ReleaseServer, tmp_path: Path) -> None:
    server.routes["/a"] = server.sequence([server.status(500), server.ok(BODY)])
    digest = download(
        server.url("/a"), tmp_path / "a", max_bytes=len(BODY), expected_sha256=BODY_SHA256,
        settings=FAST,
    )  # fmt: skip
    assert digest == BODY_SHA256
    assert server.hits("/a") == 2


def test_429_with_retry_after_is_retried(server: ReleaseServer, tmp_path: Path) -> None:
    server.routes["/a"] = server.sequence(
        [server.status(429, {"Retry-After": "0"}), server.ok(BODY)]
    )
    assert download(server.url("/a"), tmp_path / "a", max_bytes=len(BODY), settings=FAST) == (
        BODY_SHA256
    )
    assert server.hits("/a") == 2


def test_persistent_503_gives_up_after_the_retries(server: ReleaseServer, tmp_path: Path) -> None:
    server.routes["/a"] = server.status(503)
    message = _refused(server.url("/a"), tmp_path / "a", max_bytes=10, settings=FAST)
    assert "503 Service Unavailable" in message
    assert server.hits("/a") == 3


@pytest.mark.parametrize("code", [403, 404])
def test_client_errors_are_not_retried(server: ReleaseServer, tmp_path: Path, code: int) -> None:
    server.routes["/a"] = server.status(code)
    with pytest.raises(NetworkError) as caught:
        download(server.url("/a"), tmp_path / "a", max_bytes=10, settings=FAST)
    assert f"answered {code}" in str(caught.value)
    assert caught.value.status == code  # lets an optional artifact be absent on 404
    assert server.hits("/a") == 1


def test_a_name_that_does_not_resolve_is_a_network_error_and_not_retried(tmp_path: Path) -> None:
    # .invalid never resolves (RFC 2606); retrying a typo only makes the user wait.
    settings = DownloadSettings(connect_timeout=5.0, retries=3, backoff_base=2.0, deadline=20.0)
    url = "https://releases.mam.invalid/mam-install.pyz"
    started = time.monotonic()
    message = _refused(url, tmp_path / "a", max_bytes=10, settings=settings)
    assert "does not resolve" in message and "not retried" in message
    assert time.monotonic() - started < 1.9  # no back-off wait (the first one is 2 s)


def test_timeout_bounds_the_whole_download(server: ReleaseServer, tmp_path: Path) -> None:
    server.routes["/a"] = server.endless(chunk=b"x", interval=0.02)
    settings = DownloadSettings.for_command(0.5, progress=False)
    assert (settings.deadline, settings.connect_timeout, settings.read_timeout) == (0.5, 0.5, 0.5)
    started = time.monotonic()
    message = _refused(server.url("/a"), tmp_path / "a", max_bytes=1 << 30, settings=settings)
    assert "0.5 s deadline" in message and "--timeout" in message
    assert time.monotonic() - started < 1.5


def test_connection_refused_is_retried_then_refused(tmp_path: Path) -> None:
    with running_server() as gone:
        url = gone.url("/a")
    message = _refused(url, tmp_path / "a", max_bytes=10, settings=FAST)
    assert "after 3 attempts" in message
    assert "connection failed" in message


def test_existing_dest_is_replaced_and_removed_on_failure(
    server: ReleaseServer, tmp_path: Path
) -> None:
    dest = tmp_path / "a"
    dest.write_bytes(b"stale")
    server.routes["/a"] = server.status(404)
    _refused(server.url("/a"), dest, max_bytes=10, settings=FAST)


@pytest.mark.parametrize(
    "url",
    ["http://example.com/mam-install.pyz", "ftp://127.0.0.1/x", "file:///etc/passwd", "https://"],
)
def test_only_https_or_loopback_http_is_accepted(url: str, tmp_path: Path) -> None:
    message = _refused(url, tmp_path / "a", UsageError, max_bytes=10, settings=FAST)
    assert "only https://" in message


def test_http_proxy_from_the_environment_is_used(
    server: ReleaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The "proxy" is our server: it sees the absolute URL of a host it is not.
    server.routes["/via-proxy"] = server.ok(BODY)
    monkeypatch.setenv("HTTP_PROXY", server.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    url = "http://localhost:9/via-proxy"
    assert download(url, tmp_path / "a", max_bytes=len(BODY), settings=FAST) == BODY_SHA256
    assert server.requests == [url]


def test_no_proxy_bypasses_the_proxy(
    server: ReleaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/a"] = server.ok(BODY)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert download(server.url("/a"), tmp_path / "a", max_bytes=len(BODY), settings=FAST) == (
        BODY_SHA256
    )
    assert server.requests == ["/a"]


def test_https_with_ssl_cert_file_trusts_that_ca_and_refuses_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = make_self_signed_cert(tmp_path)
    if tls is None:
        pytest.skip("the openssl command is not installed, so no test certificate can be made")
    with running_server(tls=tls) as https:
        https.routes["/a"] = https.ok(BODY)
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        message = _refused(https.url("/a"), tmp_path / "a", max_bytes=len(BODY), settings=FAST)
        assert "SSL_CERT_FILE" in message
        monkeypatch.setenv("SSL_CERT_FILE", str(tls[0]))
        digest = download(https.url("/a"), tmp_path / "a", max_bytes=len(BODY), settings=FAST)
        assert digest == BODY_SHA256


def test_redirect_is_followed(server: ReleaseServer, tmp_path: Path) -> None:
    server.routes["/old"] = server.status(302, {"Location": "/new"})
    server.routes["/new"] = server.ok(BODY)
    assert download(server.url("/old"), tmp_path / "a", max_bytes=len(BODY), settings=FAST) == (
        BODY_SHA256
    )


def test_progress_bar_is_drawn_on_request_and_not_when_stderr_is_no_terminal(
    server: ReleaseServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/mam-install.pyz"] = server.ok(BODY)
    url = server.url("/mam-install.pyz")
    download(url, tmp_path / "a", max_bytes=len(BODY), progress=None, settings=FAST)
    download(url, tmp_path / "b", max_bytes=len(BODY), progress=False, settings=FAST)
    assert capsys.readouterr().err == ""
    quiet = DownloadSettings(progress=False)  # what -q and --json pass
    download(url, tmp_path / "d", max_bytes=len(BODY), settings=quiet)
    assert capsys.readouterr().err == ""
    download(url, tmp_path / "c", max_bytes=len(BODY), progress=True, settings=FAST)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "mam-install.pyz" in captured.err  # click.progressbar's label


def test_importing_the_module_does_not_import_httpx() -> None:
    code = "import sys, mam_install.release._download; print('httpx' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(__file__).parents[1] / "installer")},
    )
    assert done.stdout.strip() == "False"
