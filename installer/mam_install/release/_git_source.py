"""The `git+<url>@<commit>` source: clone into staging and prove `HEAD` is the pinned commit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._errors import IntegrityError, NetworkError, PlatformError, UsageError

__all__ = ["GitCheckout", "GitSource", "fetch_git", "is_pinned_commit", "parse_git_source"]

_PREFIX = "git+"
_COMMIT = re.compile(r"[0-9a-f]{40}")
# A rev is a commit, tag or branch name; this is the subset of git's ref rules that cannot be
# mistaken for an option or a revision expression (`HEAD~1`, `@{u}`, `a..b`).
_REV = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/+-]*")
# Authenticated transports and local repositories only. `ext::` runs an arbitrary command and
# `fd::` reads a descriptor; plain http:// and git:// would let an unpinned rev be swapped.
_URL_SCHEMES = ("https://", "ssh://", "file://")
_SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/].*")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# --timeout bounds each git command whole; a stalled transfer is cut sooner: below
# _LOW_SPEED_LIMIT bytes/s for _STALL seconds over https, no answer for _STALL seconds over ssh.
_DEFAULT_TIMEOUT = 300.0
_STALL = 30
_LOW_SPEED_LIMIT = 1000
_TELL_EVERY = 5.0  # seconds between "still waiting" lines on a terminal

# `-c` settings that take precedence over any user or system config: no hook, no fsmonitor
# daemon, no transport that runs commands, and no submodules pulled in behind our back.
_SAFE_CONFIG = (
    "advice.detachedHead=false",
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "protocol.ext.allow=never",
    "protocol.fd.allow=never",
    "submodule.recurse=false",
)


@dataclass(frozen=True)
class GitSource:
    """A parsed ``git+<url>@<rev>`` spec; ``rev`` is a full commit unless the user chose less."""

    url: str
    rev: str

    @property
    def pinned(self) -> bool:
        return is_pinned_commit(self.rev)


@dataclass(frozen=True)
class GitCheckout:
    """What `fetch_git` checked out: ``commit`` is always the full hash of ``HEAD``.

    ``ref`` is the rev the user gave (the commit itself when pinned); ``pinned`` is False only
    when an unpinned rev was allowed, which the caller must warn about and record in the receipt.
    """

    path: Path
    commit: str
    ref: str
    pinned: bool


def is_pinned_commit(rev: str) -> bool:
    """True for a full 40-hex lowercase commit id: the only rev that names exactly one tree."""
    return _COMMIT.fullmatch(rev) is not None


def parse_git_source(spec: str) -> GitSource:
    """Split ``git+<url>@<rev>``; the rev is after the last ``@`` that follows the host part.

    ``git+ssh://git@host/repo.git@<commit>`` and ``git+git@host:repo.git@<commit>`` both work:
    an ``@`` inside the user part is never taken for the rev separator. URLs are https://,
    ssh://, file:// or scp-like ``user@host:path``; git's command-running ``ext::`` transport
    and the unauthenticated http:// and git:// ones are refused. Raises `UsageError`
    (exit 2) for a spec that is not of that form; whether the rev is pinned enough is decided
    later by `fetch_git`.
    """
    if not spec.startswith(_PREFIX):
        raise UsageError(f"{spec!r} is not a git source; write git+<url>@<40-hex commit>")
    rest = spec[len(_PREFIX) :]
    scheme = _SCHEME.match(rest)
    if scheme is not None and f"{scheme.group(1).lower()}://" not in _URL_SCHEMES:
        raise UsageError(
            f"{spec!r}: {scheme.group(1)}:// is not allowed for a git source (it is not "
            "authenticated, or it runs commands); use https://, ssh:// or file://"
        )
    url, sep, rev = rest.rpartition("@")
    # Without a rev, the last '@' is the one in user@host, and what is left of it is no URL.
    if not sep or not _looks_like_url(url):
        raise UsageError(
            f"{spec!r} names no revision; write git+<url>@<40-hex commit>, e.g. "
            "git+https://github.com/OWNER/REPO.git@<commit>"
        )
    if not _REV.fullmatch(rev) or ".." in rev or rev.endswith((".lock", "/", ".")):
        raise UsageError(f"{spec!r}: {rev!r} is not a commit, tag or branch name")
    return GitSource(url=url, rev=rev)


def fetch_git(
    source: GitSource,
    dest: Path,
    *,
    allow_unpinned: bool,
    timeout: float | None = None,
    git: str | None = None,
    tell: bool | None = None,
) -> GitCheckout:
    """Clone ``source`` into ``dest`` (a new directory in staging) and check out its rev.

    A rev that is not a full 40-hex commit is refused with `IntegrityError` unless
    ``allow_unpinned``. Whatever the rev, ``git rev-parse HEAD`` must afterwards equal the
    commit it resolved to (the pinned one, exactly). git runs with no terminal prompts, no
    hooks, no ``GIT_*`` variables inherited from the caller, and ``timeout`` seconds (default
    300) per command; a transfer that stalls is cut after 30 s. On a terminal (``tell`` None) or
    when ``tell``, it says what it is waiting for every few seconds. On failure ``dest`` is
    removed and `NetworkError` (the repository could not be fetched) or `IntegrityError` (it
    does not hold the pinned commit) raised.
    """
    if not source.pinned and not allow_unpinned:
        raise IntegrityError(
            f"{source.url}@{source.rev}: {source.rev!r} is not a full 40-hex commit, so what "
            "gets installed could change under you; pin the commit (git ls-remote "
            f"{source.url} {source.rev}) or pass --allow-unpinned"
        )
    executable = git or shutil.which("git")
    if executable is None:
        raise PlatformError("git is not installed; install git or use a release URL or archive")
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} must be a new or empty directory in staging")
    limit = _DEFAULT_TIMEOUT if timeout is None else timeout
    runner = _Git(executable, dest, source, limit, sys.stderr.isatty() if tell is None else tell)
    try:
        runner.run(
            "clone", "--no-checkout", "--no-recurse-submodules", "--", source.url, str(dest),
            network=True,
        )  # fmt: skip
        commit = runner.resolve(source.rev)
        runner.run("-C", str(dest), "checkout", "--detach", "--quiet", commit)
        head = runner.run("-C", str(dest), "rev-parse", "--verify", "HEAD").strip()
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    if head != commit or (source.pinned and head != source.rev):
        shutil.rmtree(dest, ignore_errors=True)
        raise IntegrityError(
            f"{source.url}: HEAD is {head} after checking out {source.rev}, not the pinned "
            f"commit; do not install from this repository"
        )
    return GitCheckout(path=dest, commit=head, ref=source.rev, pinned=source.pinned)


def _looks_like_url(url: str) -> bool:
    if url.startswith("-"):
        return False
    if url.startswith(_URL_SCHEMES):
        # host/path for https and ssh, /path for file: a bare "ssh://git" is a user, not a repo.
        after = url.split("://", 1)[1]
        return "/" in after and after.rstrip("/") != "" and not after.startswith("/" * 2)
    return _SCP_LIKE.fullmatch(url) is not None


def git_environment(base: Mapping[str, str] | None = None, stall: int = _STALL) -> dict[str, str]:
    """The caller's environment without ``GIT_*`` and with every prompt switched off."""
    source = os.environ if base is None else base
    env = {key: value for key, value in source.items() if not key.startswith("GIT_")}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            # ssh must fail rather than ask for a passphrase or a host key confirmation, and
            # give up on a host that does not answer or stops answering.
            "GIT_SSH_COMMAND": (
                f"ssh -o BatchMode=yes -o ConnectTimeout={stall} "
                f"-o ServerAliveInterval={max(stall // 3, 1)} -o ServerAliveCountMax=3"
            ),
            "GCM_INTERACTIVE": "never",
            "LC_ALL": "C",
        }
    )
    env.pop("SSH_ASKPASS", None)
    return env


class _Git:
    """Runs git for one fetch, turning every failure into a one-line error."""

    def __init__(
        self, executable: str, dest: Path, source: GitSource, timeout: float, tell: bool
    ) -> None:
        self._executable = executable
        self._dest = dest
        self._source = source
        self._timeout = timeout
        self._tell = tell
        stall = max(min(_STALL, int(timeout)), 1)
        self._env = git_environment(stall=stall)
        # A transfer slower than 1 kB/s for `stall` seconds is a stall (curl's low-speed limit).
        self._config = (
            *_SAFE_CONFIG,
            f"http.lowSpeedLimit={_LOW_SPEED_LIMIT}",
            f"http.lowSpeedTime={stall}",
        )

    def run(self, *args: str, network: bool = False) -> str:
        argv: list[str] = [self._executable]
        for setting in self._config:
            argv += ["-c", setting]
        argv += list(args)
        try:
            process = subprocess.Popen(
                argv,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                # Its own process group: git clone runs git-remote-https and ssh as children,
                # which would hold the pipes open after git itself is killed.
                start_new_session=True,
            )
        except OSError as exc:
            raise PlatformError(f"{self._executable} could not be run ({exc.strerror})") from exc
        try:
            stdout, stderr = self._wait(process, args)
        except BaseException:
            _kill_group(process)  # Ctrl-C reaches only us: git is in its own session
            raise
        if process.returncode != 0:
            error = NetworkError if network else IntegrityError
            raise error(
                f"{self._source.url}: `{_show(args)}` failed: {_last_line(stderr)}; check "
                "the URL, the network, your access to the repository and the revision"
            )
        return stdout

    def _wait(self, process: subprocess.Popen[str], args: Sequence[str]) -> tuple[str, str]:
        """Wait for git within the deadline, saying on a terminal what it is waiting for."""
        started = time.monotonic()
        deadline = started + self._timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                return process.communicate(timeout=max(min(_TELL_EVERY, remaining), 0.01))
            except subprocess.TimeoutExpired:
                if time.monotonic() < deadline:
                    if self._tell:
                        waited = time.monotonic() - started
                        sys.stderr.write(
                            f"waiting for `{_show(args)}` from {self._source.url} "
                            f"({waited:.0f} s of at most {self._timeout:g} s; --timeout sets it)\n"
                        )
                    continue
                _kill_group(process)
                raise NetworkError(
                    f"{self._source.url}: `{_show(args)}` took longer than {self._timeout:g} s; "
                    "check the network and the URL, then retry (or raise --timeout)"
                ) from None

    def resolve(self, rev: str) -> str:
        """The full commit ``rev`` names in the fresh clone (a commit, tag or remote branch)."""
        candidates: Sequence[str]
        if is_pinned_commit(rev):
            candidates = (rev,)
        else:
            # Only names the remote published; a local short hash is ambiguous by nature.
            candidates = (f"refs/tags/{rev}", f"refs/remotes/origin/{rev}")
        for candidate in candidates:
            try:
                out = self.run(
                    "-C", str(self._dest), "rev-parse", "--verify", "--quiet",
                    "--end-of-options", f"{candidate}^{{commit}}",
                )  # fmt: skip
            except IntegrityError:
                continue
            return out.strip()
        raise IntegrityError(
            f"{self._source.url}: no commit {rev} in the repository; check the commit (it may "
            "have been force-pushed away) or the URL"
        )


def _kill_group(process: subprocess.Popen[str]) -> None:
    import signal

    if process.returncode is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            process.kill()
    process.communicate()


def _show(args: Sequence[str]) -> str:
    shown = list(args)
    if shown[:1] == ["-C"]:
        shown = shown[2:]
    return "git " + " ".join(shown)


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"
