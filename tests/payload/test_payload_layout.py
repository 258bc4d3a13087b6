"""payload/ holds exactly what lands: right modes, one source per file, known placeholders."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from tests.payload._support import HOST, HOST_TOOLS, PAYLOAD, WORKSPACE

WORKSPACE_FILES = {
    ".agents/skills/lib.sh": 0o755,
    ".agents/skills/tmux/send-message.sh": 0o755,
    ".agents/skills/tmux/agent-send.sh": 0o755,
    ".agents/skills/tmux/start-agent-session.sh": 0o755,
    ".agents/skills/mqtt/mqtt_common.py": 0o644,
    ".agents/skills/mqtt/mam_mqtt.py": 0o755,
    "AGENT.md": 0o644,
    ".env.example": 0o644,
}
HOST_FILES = {
    "tools/lib.sh": 0o755,
    "tools/send-message.sh": 0o755,
    "tools/agent-send.sh": 0o755,
    "tools/start-agent-session.sh": 0o755,
    "tools/mam-tmux-holder.sh": 0o755,
    "tools/mam-python.sh": 0o755,
    "tools/mam": 0o755,
    **{f"tools/mam_fleet/{name}": 0o644 for name in (
        "__init__.py", "adopt.py", "agent.py", "broker.py", "cli.py", "context.py",
        "envfiles.py", "errors.py", "fleet.py", "managers.py", "paths.py", "roster.py",
        "runner.py", "tmux.py", "verify.py", "roster.schema.json", "examples/minimal.json",
        "examples/team.json")},
    "tools/mqtt_common.py": 0o644,
    "tools/mam_mqtt.py": 0o755,
    "units/systemd/mam-tmux-holder.service": 0o644,
    "units/systemd/mam-agent@.service": 0o644,
    "units/systemd/mam-mqtt-monitor.service": 0o644,
    "units/launchd/org.mam.tmux-holder.plist": 0o644,
    "units/launchd/org.mam.agent.plist": 0o644,
    "units/launchd/org.mam.mqtt-monitor.plist": 0o644,
    "mosquitto/mam-broker.conf": 0o644,
    "mosquitto/mam-broker.acl": 0o644,
}
PLACEHOLDERS = {
    "MAM_TOOLS_DIR", "MAM_PYTHON", "MAM_TMUX", "MAM_TMUX_SOCKET", "MAM_STATE_DIR",
    "MAM_CONFIG_DIR", "MAM_HOME", "MAM_LOG_DIR",
    # launchd has no unit templates: the agent plist is rendered once per agent.
    "MAM_AGENT_NAME",
    # the broker's TLS port, for the mosquitto config
    "MAM_MQTT_PORT",
}


def files_under(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if not p.is_dir()}


def test_workspace_holds_exactly_the_allowlisted_runtime() -> None:
    found = files_under(WORKSPACE)
    assert set(found) == set(WORKSPACE_FILES)
    assert all(path.split("/")[0] in {".agents", "AGENT.md", ".env.example"} for path in found)


def test_host_holds_tools_units_and_broker_config() -> None:
    assert set(files_under(HOST)) == set(HOST_FILES)


def test_files_are_regular_with_the_modes_the_manifest_records() -> None:
    for root, expected in ((WORKSPACE, WORKSPACE_FILES), (HOST, HOST_FILES)):
        for rel, mode in expected.items():
            real = (root / rel).resolve()
            assert real.is_file(), rel
            assert stat.S_IMODE(real.stat().st_mode) == mode, rel


# The host's own tools; every other one is the workspace's, linked.
HOST_ONLY_TOOLS = {"mam-tmux-holder.sh", "mam-python.sh", "mam", "mam_fleet"}


def test_host_tools_shared_with_the_workspace_are_relative_links_inside_payload() -> None:
    for tool in HOST_TOOLS.iterdir():
        if tool.name in HOST_ONLY_TOOLS:
            assert not tool.is_symlink()
            continue
        assert tool.is_symlink(), tool.name
        target = os.readlink(tool)
        assert not os.path.isabs(target)
        assert tool.resolve().is_relative_to(WORKSPACE.resolve())
        assert tool.resolve().name == tool.name


def test_no_bytecode_or_stray_files_in_payload() -> None:
    names = {p.name for p in PAYLOAD.rglob("*")}
    assert "__pycache__" not in names
    assert not [n for n in names if n.endswith((".pyc", ".orig", ".rej", "~"))]


def test_templates_use_only_the_agreed_placeholders() -> None:
    used: set[str] = set()
    for path in HOST.rglob("*"):
        if path.is_file() and not path.is_symlink():
            used |= set(re.findall(r"@([A-Z_]+)@", path.read_text()))
    assert used <= PLACEHOLDERS
    assert {"MAM_TOOLS_DIR", "MAM_TMUX", "MAM_TMUX_SOCKET"} <= used


def test_scripts_are_portable_posix_sh() -> None:
    for path in [*WORKSPACE.rglob("*.sh"), *HOST_TOOLS.glob("mam*.sh")]:
        lines = path.read_text().splitlines()
        assert lines[0] == "#!/bin/sh", path
        assert "# shellcheck shell=dash" in lines[:3], path
        if path.name != "lib.sh":  # sourced into other shells: it must not change their options
            assert "set -u" in lines, path
            assert lines[-1] == 'main "$@" || exit $?', path
        assert "df --output" not in path.read_text()


# Set by the tools themselves, or seams for tests; documented in AGENT.md instead.
NOT_SETTINGS = {"MAM_AGENT_NAME", "MAM_LIB", "MAM_MOUNTINFO", "MAM_MOUNT_TABLE"}


def test_env_example_documents_every_setting_the_tools_read() -> None:
    code = [*WORKSPACE.rglob("*.sh"), *WORKSPACE.rglob("*.py"), *HOST_TOOLS.glob("mam*.sh")]
    read = set()
    for path in code:
        read |= set(re.findall(r"\b(MAM_[A-Z0-9_]*[A-Z0-9])\b", path.read_text()))
    read -= NOT_SETTINGS
    read = {name for name in read if not name.endswith("_")}
    documented = set(re.findall(r"\b(MAM_[A-Z0-9_]*[A-Z0-9])=", (WORKSPACE / ".env.example")
                                .read_text()))
    assert sorted(read - documented) == []
    agent_md = (WORKSPACE / "AGENT.md").read_text()
    assert all(name in agent_md for name in NOT_SETTINGS)


def test_env_example_parses_cleanly_and_defaults_to_a_private_tls_broker() -> None:
    import importlib
    import sys

    from tests.payload._support import MQTT_DIR

    sys.path.insert(0, str(MQTT_DIR))
    sys.dont_write_bytecode, saved = True, sys.dont_write_bytecode
    try:
        mqtt_common = importlib.import_module("mqtt_common")
    finally:
        sys.dont_write_bytecode = saved
        sys.path.remove(str(MQTT_DIR))
    values, bad = mqtt_common.parse_env_text((WORKSPACE / ".env.example").read_text(), "MAM_")
    assert bad == []
    assert values["MAM_MQTT_HOST"] == "localhost"
    assert values["MAM_MQTT_PORT"] == "8883"
    assert values["MAM_MQTT_TLS"] == "1"
    assert values["MAM_HMAC_KEY"] == ""  # a secret is never shipped
    settings = mqtt_common.BrokerSettings.from_env(values)
    assert settings.tls and settings.host == "localhost"
