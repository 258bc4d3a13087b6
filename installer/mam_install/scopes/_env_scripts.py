"""The PATH snippets the rc blocks source: one per shell family, idempotent, quoted safely."""

from __future__ import annotations

from pathlib import Path

__all__ = ["env_fish", "env_sh", "fish_conf"]


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def env_sh(tools_dir: Path) -> bytes:
    quoted = _sh_quote(str(tools_dir))
    return (
        "# mam: puts mam's per-user tools on PATH, once. Written by mam-install and sourced by\n"
        "# the `# >>> mam >>>` block in your shell rc files; `mam-install uninstall --host`\n"
        "# removes both.\n"
        "# shellcheck shell=sh\n"
        'case ":${PATH-}:" in\n'
        f"    *:{quoted}:*) ;;\n"
        f'    *) PATH={quoted}${{PATH:+":$PATH"}}; export PATH ;;\n'
        "esac\n"
    ).encode()


def env_fish(tools_dir: Path) -> bytes:
    quoted = _fish_quote(str(tools_dir))
    return (
        "# mam: puts mam's per-user tools on PATH, once. Written by mam-install;\n"
        "# `mam-install uninstall --host` removes it.\n"
        f"if not contains -- {quoted} $PATH\n"
        f"    set -gx PATH {quoted} $PATH\n"
        "end\n"
    ).encode()


def fish_conf(env_script: Path) -> bytes:
    quoted = _fish_quote(str(env_script))
    return (
        "# mam: puts mam's per-user tools on PATH. Written by mam-install;\n"
        "# `mam-install uninstall --host` removes it.\n"
        f"if test -f {quoted}\n"
        f"    source {quoted}\n"
        "end\n"
    ).encode()
