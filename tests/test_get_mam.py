"""The get-mam.py bootstrap: rendered from its template, then piped into `python3 -` for real."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipapp
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.render_get_mam import PLACEHOLDERS, TEMPLATE, main, render_get_mam
from tests.release_server import ReleaseServer, running_server

pytestmark = pytest.mark.timeout(60)

SHA = "ab" * 32
# Stands in for mam-install.pyz: reports its argv and SHIV_ROOT, exits with the code it is given.
STAND_IN_MAIN = """\
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "shiv_root": os.environ.get("SHIV_ROOT")}))
sys.exit(int(os.environ.get("STAND_IN_EXIT", "0")))
"""


def _interpreters() -> list[str]:
    """This Python, plus the oldest and newest supported ones where pyenv has them."""
    found = [sys.executable]
    for version in ("3.9", "3.13"):
        # pyenv's real binaries first: its shims fail unless that version is selected.
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        for candidate in (
            *sorted(pyenv.glob(f"{version}.*/bin/python{version}")),
            shutil.which(f"python{version}"),
        ):
            if candidate and os.access(candidate, os.X_OK):
                found.append(str(candidate))
                break
    return found


@pytest.fixture(scope="module")
def stand_in_pyz(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    source = tmp_path_factory.mktemp("stand-in")
    (source / "__main__.py").write_text(STAND_IN_MAIN)
    target = tmp_path_factory.mktemp("built") / "mam-install.pyz"
    zipapp.create_archive(source, target)
    return target.read_bytes()


@pytest.fixture
def server(stand_in_pyz: bytes) -> Iterator[ReleaseServer]:
    with running_server() as running:
        running.routes["/v1/mam-install.pyz"] = running.ok(stand_in_pyz)
        yield running


def _render(base_url: str, pyz_sha256: str) -> str:
    return render_get_mam(
        TEMPLATE.read_text(), version="1.2.3", pyz_sha256=pyz_sha256, base_url=base_url
    )


def _pipe(
    script: str,
    args: list[str],
    env: dict[str, str],
    python: str = sys.executable,
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` exactly as `curl ... | python3 - ARGS` would: from stdin, no file."""
    return subprocess.run(
        [python, "-", *args],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    env.update(extra)
    return env


@pytest.mark.parametrize("python", _interpreters(), ids=lambda path: Path(path).name)
def test_piped_script_runs_the_verified_pyz_with_args_and_its_exit_code(
    server: ReleaseServer, stand_in_pyz: bytes, tmp_path: Path, python: str
) -> None:
    script = _render(server.url("/v1"), hashlib.sha256(stand_in_pyz).hexdigest())
    args = ["install", "-y", "--workspace", "a b"]
    done = _pipe(script, args, _env(tmp_path, STAND_IN_EXIT="7"), python)
    assert done.returncode == 7, done.stderr
    report = json.loads(done.stdout)
    assert report["argv"] == args
    assert report["shiv_root"] is None, "a writable HOME leaves SHIV_ROOT to shiv's default"
    assert server.hits("/v1/mam-install.pyz") == 1


def test_wrong_hash_refuses_with_exit_5_and_runs_nothing(
    server: ReleaseServer, tmp_path: Path
) -> None:
    script = _render(server.url("/v1"), SHA)
    done = _pipe(script, ["install"], _env(tmp_path))
    assert done.returncode == 5
    assert done.stdout == "", "the stand-in printed: it was run despite the mismatch"
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert "does not match the SHA-256 pinned in get-mam.py 1.2.3" in lines[0]
    assert f"expected {SHA}" in lines[0]


def test_mam_release_url_overrides_the_built_in_base(
    server: ReleaseServer, stand_in_pyz: bytes, tmp_path: Path
) -> None:
    # Nothing listens on port 9: the built-in URL must not be used.
    script = _render("http://127.0.0.1:9/nowhere", hashlib.sha256(stand_in_pyz).hexdigest())
    done = _pipe(script, ["plan"], _env(tmp_path, MAM_RELEASE_URL=server.url("/v1/")))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["argv"] == ["plan"]


@pytest.mark.parametrize("home", [None, "/nonexistent/home"])
def test_shiv_root_is_a_private_directory_when_home_is_unusable(
    server: ReleaseServer, stand_in_pyz: bytes, tmp_path: Path, home: str | None
) -> None:
    script = _render(server.url("/v1"), hashlib.sha256(stand_in_pyz).hexdigest())
    env = _env(tmp_path, TMPDIR=str(tmp_path))
    if home is None:
        del env["HOME"]
    else:
        env["HOME"] = home
    done = _pipe(script, [], env)
    assert done.returncode == 0, done.stderr
    shiv_root = Path(json.loads(done.stdout)["shiv_root"])
    assert shiv_root.parent == tmp_path
    info = shiv_root.lstat()
    assert stat.S_ISDIR(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == os.getuid()


def test_shared_shiv_root_open_to_others_is_not_used(
    server: ReleaseServer, stand_in_pyz: bytes, tmp_path: Path
) -> None:
    planted = tmp_path / f"mam-shiv-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)
    script = _render(server.url("/v1"), hashlib.sha256(stand_in_pyz).hexdigest())
    env = _env(tmp_path, TMPDIR=str(tmp_path))
    del env["HOME"]
    done = _pipe(script, [], env)
    assert done.returncode == 0, done.stderr
    shiv_root = Path(json.loads(done.stdout)["shiv_root"])
    assert shiv_root != planted
    assert stat.S_IMODE(shiv_root.stat().st_mode) == 0o700


def test_missing_release_is_refused_with_one_line(server: ReleaseServer, tmp_path: Path) -> None:
    script = _render(server.url("/v2"), SHA)
    done = _pipe(script, [], _env(tmp_path))
    assert done.returncode == 5
    assert done.stderr.count("\n") == 1
    assert "answered 404" in done.stderr


def test_500_then_200_is_retried(
    server: ReleaseServer, stand_in_pyz: bytes, tmp_path: Path
) -> None:
    server.routes["/v1/mam-install.pyz"] = server.sequence(
        [server.status(500), server.ok(stand_in_pyz)]
    )
    script = _render(server.url("/v1"), hashlib.sha256(stand_in_pyz).hexdigest())
    done = _pipe(script, ["status"], _env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert server.hits("/v1/mam-install.pyz") == 2


def test_endless_body_is_cut_at_the_size_cap(server: ReleaseServer, tmp_path: Path) -> None:
    server.routes["/v1/mam-install.pyz"] = server.endless(chunk=b"\0" * (1 << 20))
    done = _pipe(_render(server.url("/v1"), SHA), [], _env(tmp_path))
    assert done.returncode == 5
    assert "sent more than 67108864 bytes" in done.stderr
    assert done.stdout == ""


def test_plain_http_to_another_host_is_refused(tmp_path: Path) -> None:
    script = _render("https://releases.example.invalid/1.2.3", SHA)
    done = _pipe(script, [], _env(tmp_path, MAM_RELEASE_URL="http://releases.example.invalid"))
    assert done.returncode == 5
    assert "only https:// URLs are allowed" in done.stderr


def test_unrendered_template_refuses_to_run(tmp_path: Path) -> None:
    done = _pipe(TEMPLATE.read_text(), [], _env(tmp_path))
    assert done.returncode == 5
    assert "carries no pinned SHA-256" in done.stderr


def test_render_fills_every_placeholder() -> None:
    rendered = _render("https://example.com/releases/1.2.3/", SHA)
    assert 'VERSION = "1.2.3"' in rendered
    assert f'PYZ_SHA256 = "{SHA}"' in rendered
    assert 'DEFAULT_BASE_URL = "https://example.com/releases/1.2.3"' in rendered
    assert "@MAM_" not in rendered
    compile(rendered, "get-mam.py", "exec")


def test_rendered_script_is_lint_clean(tmp_path: Path) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not os.access(ruff, os.X_OK):
        pytest.skip("ruff is not installed")
    target = tmp_path / "get-mam.py"
    target.write_text(_render("https://example.com/r", SHA))
    config = Path(__file__).parents[1] / "pyproject.toml"
    done = subprocess.run(
        [ruff, "check", "--config", str(config), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"version": '1.2.3"; import os'}, "version"),
        ({"version": ""}, "version"),
        ({"pyz_sha256": SHA.upper()}, "pyz_sha256"),
        ({"pyz_sha256": SHA[:-2]}, "pyz_sha256"),
        ({"base_url": "http://example.com/r"}, "must be https://"),
        ({"base_url": "https://example.com/r\"+__import__('os')+\""}, "characters"),
        ({"base_url": "https://example.com/r\\"}, "characters"),
        ({"base_url": "ftp://example.com/r"}, "must be https://"),
    ],
)
def test_render_refuses_bad_values(kwargs: dict[str, str], what: str) -> None:
    values = {"version": "1.2.3", "pyz_sha256": SHA, "base_url": "https://example.com/r"}
    values.update(kwargs)
    with pytest.raises(ValueError, match=what):
        render_get_mam(TEMPLATE.read_text(), **values)


def test_render_refuses_a_leftover_or_missing_placeholder() -> None:
    template = TEMPLATE.read_text()
    with pytest.raises(ValueError, match="@MAM_SIGNER@"):
        _render_with(template + "\n# @MAM_SIGNER@\n")
    for placeholder in PLACEHOLDERS:
        with pytest.raises(ValueError, match=placeholder):
            _render_with(template.replace(placeholder, "x"))


def _render_with(template: str) -> str:
    return render_get_mam(template, version="1", pyz_sha256=SHA, base_url="https://x.test")


def test_command_line_writes_the_rendered_file(tmp_path: Path) -> None:
    out = tmp_path / "get-mam.py"
    args = ["--version", "1.2.3", "--pyz-sha256", SHA, "--base-url", "https://x.test/r"]
    code = main([*args, "--output", str(out)])
    assert code == 0
    assert out.read_bytes() == _render("https://x.test/r", SHA).encode()
    assert b"\r\n" not in out.read_bytes()
    assert main(["--version", "1", "--pyz-sha256", "nope", "--base-url", "https://x.test"]) == 2


@pytest.fixture(scope="module")
def built_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from workspaces import ROOT

    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(ROOT / "scripts/build.py"), "--out", str(out)], check=True)
    return out / "mam-install.pyz"


@pytest.mark.pyz
@pytest.mark.timeout(300)
def test_the_bootstrap_leaves_mam_install_runnable_from_every_shell(
    built_pyz: Path, tmp_path: Path
) -> None:
    """`curl … | python3 -` with no arguments installs, and the verified pyz stays on PATH as
    `mam-install` for bash, zsh, dash and fish users (a HOME as theirs looks: the rc files they
    have), with a fresh shell and nothing else of ours in its environment."""
    shells = {"bash": ["-lc"], "zsh": ["-ic"], "dash": ["-lc"], "fish": ["-c"]}
    for name in shells:
        assert shutil.which(name), f"{name} is one of the shells scripts/test.py installs"
    home = tmp_path / "home"
    (home / ".config" / "fish").mkdir(parents=True)
    for rc in (".zshrc", ".bashrc"):
        (home / rc).write_text("# the user's own\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    clean = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "TERM": "dumb"}
    with running_server() as server:
        server.routes["/r/mam-install.pyz"] = server.ok(built_pyz.read_bytes())
        script = _render(server.url("/r"), hashlib.sha256(built_pyz.read_bytes()).hexdigest())
        done = subprocess.run(
            [sys.executable, "-"], input=script, capture_output=True, text=True, cwd=ws,
            env={**clean, "SHELL": "/bin/bash"}, timeout=240, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "next steps:" in done.stderr and ".env.example" in done.stderr
    installed = home / ".local/share/mam/bin/mam-install"
    assert installed.read_bytes() == built_pyz.read_bytes()
    assert (ws / ".agents/skills/lib.sh").is_file()
    for name, flags in shells.items():
        ran = subprocess.run(
            [name, *flags, "mam-install --version"], capture_output=True, text=True, env=clean,
            cwd=ws, timeout=120, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, f"{name}: {ran.stderr}"
        assert ran.stdout.startswith("mam-install "), f"{name}: {ran.stdout!r} {ran.stderr!r}"
