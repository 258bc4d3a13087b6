"""The package is laid out by pipeline stage (DESIGN §3): layers that only look down, no cycles.

    base (errors, hashing, runner, feedback, the debug log, confirm; and, standard library
          only for the no-op check: inspect, the state dir's entries, where, the noop witness)
    < release < machine < engine < actions < scopes < commands < cli (and _cli_run, how it runs)
"""

from __future__ import annotations

import ast
from pathlib import Path

from workspaces import ROOT

PACKAGE = ROOT / "installer" / "mam_install"
LAYERS = ["release", "machine", "engine", "actions", "scopes", "commands"]
TOP = {
    "mam_install.cli", "mam_install._cli_run", "mam_install.__main__", "mam_install._entry",
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def rank(module: str) -> int:
    if module in TOP:
        return len(LAYERS) + 1
    parts = module.split(".")
    return LAYERS.index(parts[1]) + 1 if len(parts) > 1 and parts[1] in LAYERS else 0


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    if node.level:
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    if not target.startswith("mam_install"):
        return []
    named = [f"{target}.{alias.name}" for alias in node.names]
    return [n for n in named if n in MODULES] or [target]


def imports(module: str, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            found.update(_resolve(module, node))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mam_install"))
    return found - {module}


def test_every_module_sits_in_a_layer_or_in_the_small_base():
    base = sorted(m for m in MODULES if rank(m) == 0 and m.count(".") == 1)
    assert base == [
        "mam_install._confirm", "mam_install._debug_log", "mam_install._errors",
        "mam_install._feedback", "mam_install._hashing", "mam_install._inspect",
        "mam_install._noop", "mam_install._runner", "mam_install._state_entries",
        "mam_install._where",
    ]


def test_every_import_looks_down_the_pipeline():
    upward = [
        f"{module} imports {target}"
        for module in MODULES
        for target in imports(module)
        if rank(target) > rank(module)
    ]
    assert upward == []


def test_the_import_graph_has_no_cycle():
    graph = {m: imports(m, top_level_only=True) for m in MODULES}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(" -> ".join([*path[path.index(module):], module]))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_transaction_knows_no_concrete_action_and_commands_never_call_each_other():
    assert not {t for t in imports("mam_install.engine._transaction")
                if t.startswith("mam_install.actions")}
    for module in MODULES:
        if module.startswith("mam_install.commands._cmd_"):
            others = {t for t in imports(module) if t.startswith("mam_install.commands._cmd_")}
            assert others == set(), f"{module} calls {others}"
