"""The scopes a command names: the workspace (found from --workspace or the current
directory), the host, or both."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ..engine._driver import Scope
from ..machine._layout import find_workspace
from ._workspace_scope import WorkspaceScope

Which = Literal["workspace", "host", "all"]


def host_scope() -> Scope:
    from ..machine._host_layout import host_layout
    from ._host_scope import HostScope

    return HostScope(host_layout())


def scopes_for(workspace: Path | None, which: Which) -> list[Scope]:
    scopes: list[Scope] = []
    if which in ("workspace", "all"):
        scopes.append(WorkspaceScope(find_workspace(Path.cwd(), workspace)))
    if which in ("host", "all"):
        scopes.append(host_scope())
    return scopes
