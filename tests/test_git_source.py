"""The git+<url>@<commit> source against real local repositories."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from mam_install._errors import ExitCode, IntegrityError, NetworkError, UsageError
from mam_install.release._git_source import (
    GitSource,
    fetch_git,
    git_environment,
    is_pinned_commit,
    parse_git_source,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

AUTHOR = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, **AUTHOR}
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class Upstream:
    """A repository with two commits on main, a tag on the first and a branch on the second."""

    def __init__(self, root: Path) -> None:
        self.path = root / "upstream"
        self.path.mkdir()
        _git(self.path, "init", "-q", "-b", "main")
        (self.path / "AGENT.md").write_text("v1\n")
        _git(self.path, "add", "AGENT.md")
        _git(self.path, "commit", "-q", "-m", "v1")
        self.first = _git(self.path, "rev-parse", "HEAD")
        _git(self.path, "tag", "-a", "v1.0.0", "-m", "release 1")
        (self.path / "AGENT.md").write_text("v2\n")
        _git(self.path, "commit", "-q", "-am", "v2")
        self.second = _git(self.path, "rev-parse", "HEAD")
        _git(self.path, "branch", "next")
        self.url = self.path.as_uri()


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return Upstream(tmp_path)


def test_pinned_commit_is_checked_out_exactly(upstream: Upstream, tmp_path: Path) -> None:
    dest = tmp_path / "staging" / "git"
    source = parse_git_source(f"git+{upstream.url}@{upstream.first}")
    checkout = fetch_git(source, dest, allow_unpinned=False)
    assert checkout.commit == upstream.first
    assert checkout.ref == upstream.first
    assert checkout.pinned is True
    assert checkout.path == dest
    assert (dest / "AGENT.md").read_text() == "v1\n", "the pinned commit, not the newest"
    assert _git(dest, "rev-parse", "HEAD") == upstream.first


def test_commit_that_is_not_in_the_repository_is_refused(
    upstream: Upstream, tmp_path: Path
) -> None:
    dest = tmp_path / "git"
    wrong = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(IntegrityError) as caught:
        fetch_git(GitSource(upstream.url, wrong), dest, allow_unpinned=False)
    assert f"no commit {wrong}" in str(caught.value)
    assert caught.value.exit_code == ExitCode.INTEGRITY
    assert not dest.exists(), "a refused clone leaves nothing in staging"


def test_tag_alone_is_refused_without_touching_the_network(
    upstream: Upstream, tmp_path: Path
) -> None:
    dest = tmp_path / "git"
    with pytest.raises(IntegrityError) as caught:
        fetch_git(GitSource(upstream.url, "v1.0.0"), dest, allow_unpinned=False)
    message = str(caught.value)
    assert "is not a full 40-hex commit" in message
    assert "--allow-unpinned" in message
    assert "\n" not in message
    assert not dest.exists()


def test_tag_with_allow_unpinned_resolves_and_says_it_is_unpinned(
    upstream: Upstream, tmp_path: Path
) -> None:
    checkout = fetch_git(GitSource(upstream.url, "v1.0.0"), tmp_path / "git", allow_unpinned=True)
    assert checkout.pinned is False
    assert checkout.ref == "v1.0.0"
    assert checkout.commit == upstream.first, "an annotated tag resolves to its commit"
    assert (checkout.path / "AGENT.md").read_text() == "v1\n"


def test_branch_with_allow_unpinned_resolves_to_its_tip(upstream: Upstream, tmp_path: Path) -> None:
    checkout = fetch_git(GitSource(upstream.url, "next"), tmp_path / "git", allow_unpinned=True)
    assert (checkout.commit, checkout.pinned) == (upstream.second, False)


def test_short_hash_is_refused_even_when_unpinned_is_allowed(
    upstream: Upstream, tmp_path: Path
) -> None:
    short = GitSource(upstream.url, upstream.first[:12])
    with pytest.raises(IntegrityError, match="no commit"):
        fetch_git(short, tmp_path / "g", allow_unpinned=True)
    with pytest.raises(IntegrityError, match="not a full 40-hex commit"):
        fetch_git(short, tmp_path / "g", allow_unpinned=False)


def test_unreachable_repository_is_a_network_error(tmp_path: Path) -> None:
    missing = (tmp_path / "nowhere").as_uri()
    with pytest.raises(NetworkError) as caught:
        fetch_git(GitSource(missing, "a" * 40), tmp_path / "git", allow_unpinned=False)
    assert "git clone" in str(caught.value)
    assert not (tmp_path / "git").exists()


def test_user_hooks_and_caller_git_variables_are_not_honoured(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "hook-ran"
    hook = hooks / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f"[core]\n\thooksPath = {hooks}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    # A GIT_DIR left in the environment would point every command at another repository.
    monkeypatch.setenv("GIT_DIR", str(upstream.path / ".git"))
    checkout = fetch_git(
        GitSource(upstream.url, upstream.first), tmp_path / "git", allow_unpinned=False
    )
    assert checkout.commit == upstream.first
    assert not marker.exists(), "a hook from the user's config ran during the checkout"


def test_git_that_hangs_is_stopped_by_the_timeout(upstream: Upstream, tmp_path: Path) -> None:
    slow_git = tmp_path / "slow-git"
    slow_git.write_text("#!/bin/sh\nexec sleep 10\n")
    slow_git.chmod(0o755)
    with pytest.raises(NetworkError, match=r"took longer than 0\.3 s"):
        fetch_git(
            GitSource(upstream.url, upstream.first),
            tmp_path / "git",
            allow_unpinned=False,
            timeout=0.3,
            git=str(slow_git),
        )


def test_environment_is_scrubbed_and_prompts_are_off() -> None:
    env = git_environment(
        {"PATH": "/bin", "GIT_DIR": "/x", "GIT_CONFIG_PARAMETERS": "'core.x=y'", "SSH_ASKPASS": "a"}
    )
    assert env["PATH"] == "/bin"
    assert "GIT_DIR" not in env
    assert "GIT_CONFIG_PARAMETERS" not in env
    assert "SSH_ASKPASS" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert "BatchMode=yes" in env["GIT_SSH_COMMAND"]
    assert "ConnectTimeout=30" in env["GIT_SSH_COMMAND"]  # a host that never answers


def test_a_git_server_that_never_answers_is_cut_at_the_timeout_and_the_wait_is_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket
    import time

    # A real TCP listener that accepts and never says a word (not even a TLS handshake).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/mam.git"
        started = time.monotonic()
        with pytest.raises(NetworkError) as caught:
            fetch_git(
                GitSource(url, "a" * 40), tmp_path / "git", allow_unpinned=False,
                timeout=5.5, tell=True,
            )  # fmt: skip
        elapsed = time.monotonic() - started
    assert caught.value.exit_code == ExitCode.NETWORK
    assert "took longer than 5.5 s" in str(caught.value) and "--timeout" in str(caught.value)
    assert 5.5 <= elapsed < 9
    told = capsys.readouterr().err
    assert "waiting for `git clone" in told and "of at most 5.5 s" in told
    assert not (tmp_path / "git").exists()


@pytest.mark.parametrize("scheme", ["http", "git", "ftp"])
def test_an_unauthenticated_scheme_is_refused_for_its_scheme_not_for_a_missing_revision(
    scheme: str,
) -> None:
    with pytest.raises(UsageError) as caught:
        parse_git_source(f"git+{scheme}://example.com/r.git@" + "a" * 40)
    message = str(caught.value)
    assert f"{scheme}:// is not allowed" in message and "no revision" not in message


@pytest.mark.parametrize(
    ("spec", "url", "rev"),
    [
        ("git+https://github.com/o/r.git@" + "a" * 40, "https://github.com/o/r.git", "a" * 40),
        ("git+ssh://git@github.com/o/r.git@" + "b" * 40, "ssh://git@github.com/o/r.git", "b" * 40),
        ("git+git@github.com:o/r.git@v1.2.3", "git@github.com:o/r.git", "v1.2.3"),
        ("git+file:///srv/mam.git@feature/x", "file:///srv/mam.git", "feature/x"),
    ],
)
def test_specs_split_at_the_revision_separator(spec: str, url: str, rev: str) -> None:
    assert parse_git_source(spec) == GitSource(url, rev)


@pytest.mark.parametrize(
    "spec",
    [
        "https://github.com/o/r.git@" + "a" * 40,  # no git+ prefix
        "git+https://github.com/o/r.git",  # no rev
        "git+ssh://git@github.com/o/r.git",  # the only '@' is the user's
        "git+git@github.com:o/r.git",
        "git+ext::sh -c touch% /tmp/pwned@" + "a" * 40,
        "git+http://example.com/r.git@" + "a" * 40,
        "git+git://example.com/r.git@" + "a" * 40,
        "git+--upload-pack=touch /tmp/x@" + "a" * 40,
        "git+https://github.com/o/r.git@HEAD~1",
        "git+https://github.com/o/r.git@a..b",
        "git+https://github.com/o/r.git@-x",
        "git+https://github.com/o/r.git@",
    ],
)
def test_malformed_or_dangerous_specs_are_refused(spec: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_git_source(spec)
    assert caught.value.exit_code == ExitCode.USAGE


def test_pinned_means_exactly_40_lowercase_hex() -> None:
    assert is_pinned_commit("0123456789abcdef0123456789abcdef01234567")
    assert not is_pinned_commit("0123456789ABCDEF0123456789abcdef01234567")
    assert not is_pinned_commit("0123456789abcdef")
    assert not is_pinned_commit("v1.0.0")
