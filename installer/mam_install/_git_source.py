"""The `git+<url>@<commit>` source: clone into staging and prove `HEAD` is the pinned commit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._errors import IntegrityError, PlatformError, UsageError

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
_DEFAULT_TIMEOUT = 600.0

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
    timeout: float = _DEFAULT_TIMEOUT,
    git: str | None = None,
) -> GitCheckout:
    """Clone ``source`` into ``dest`` (a new directory in staging) and check out its rev.

    A rev that is not a full 40-hex commit is refused with `IntegrityError` unless
    ``allow_unpinned``. Whatever the rev, ``git rev-parse HEAD`` must afterwards equal the
    commit it resolved to (the pinned one, exactly). git runs with no terminal prompts, no
    hooks, no ``GIT_*`` variables inherited from the caller, and ``timeout`` seconds per
    command. On failure ``dest`` is removed and `IntegrityError` raised.
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
    runner = _Git(executable, dest, source, timeout)
    try:
        runner.run("clone", "--no-checkout", "--no-recurse-submodules", "--", source.url, str(dest))
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


def git_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without ``GIT_*`` and with every prompt switched off."""
    source = os.environ if base is None else base
    env = {key: value for key, value in source.items() if not key.startswith("GIT_")}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            # ssh must fail rather than ask for a passphrase or a host key confirmation.
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
            "GCM_INTERACTIVE": "never",
            "LC_ALL": "C",
        }
    )
    env.pop("SSH_ASKPASS", None)
    return env


class _Git:
    """Runs git for one fetch, turning every failure into a one-line `IntegrityError`."""

    def __init__(self, executable: str, dest: Path, source: GitSource, timeout: float) -> None:
        self._executable = executable
        self._dest = dest
        self._source = source
        self._timeout = timeout
        self._env = git_environment()

    def run(self, *args: str) -> str:
        argv: list[str] = [self._executable]
        for setting in _SAFE_CONFIG:
            argv += ["-c", setting]
        argv += list(args)
        try:
            done = subprocess.run(
                argv,
                env=self._env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise IntegrityError(
                f"{self._source.url}: `git {args[0] if args[0] != '-C' else args[2]}` took "
                f"longer than {self._timeout:g} s; check the network and the URL, then retry"
            ) from exc
        except OSError as exc:
            raise PlatformError(f"{self._executable} could not be run ({exc.strerror})") from exc
        if done.returncode != 0:
            raise IntegrityError(
                f"{self._source.url}: `{_show(args)}` failed: {_last_line(done.stderr)}; check "
                "the URL, your access to the repository and the revision"
            )
        return done.stdout

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


def _show(args: Sequence[str]) -> str:
    shown = list(args)
    if shown[:1] == ["-C"]:
        shown = shown[2:]
    return "git " + " ".join(shown)


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"
