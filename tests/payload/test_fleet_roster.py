"""The roster: strict parsing of a hostile file, the published schema, and the two examples."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.payload._fleet_support import load_fleet_module, make_machine
from tests.payload._support import HOST_TOOLS

FLEET = HOST_TOOLS / "mam_fleet"
SCHEMA = json.loads((FLEET / "roster.schema.json").read_text())
EXAMPLES = sorted((FLEET / "examples").glob("*.json"))
roster_module = load_fleet_module("roster")
errors = load_fleet_module("errors")

VALID: dict[str, Any] = json.loads((FLEET / "examples" / "minimal.json").read_text())


def test_the_examples_are_the_two_profiles() -> None:
    assert [p.name for p in EXAMPLES] == ["minimal.json", "team.json"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_each_example_is_valid_by_the_schema_and_the_parser(example: Path) -> None:
    document = json.loads(example.read_text())
    jsonschema.validate(document, SCHEMA)
    roster = roster_module.parse_roster(document, example, Path("/home/u"))
    assert roster.transport == "tmux" and roster.agents


def test_the_team_example_has_the_classes_of_a_review_pipeline() -> None:
    team = json.loads((FLEET / "examples" / "team.json").read_text())
    classes = [a["class"] for a in team["agents"]]
    assert classes.count("orchestrator") == 1 and classes.count("final-reviewer") == 1
    assert classes.count("implementer") >= 2 and classes.count("reviewer") >= 2
    resets = {r.get("reset_command") for r in team["runtimes"].values()}
    assert resets == {"/clear", "/new", None}


def test_paths_expand_home_and_resolve_against_the_default() -> None:
    document = copy.deepcopy(VALID)
    document["defaults"]["working_directory"] = "~/src"
    document["agents"][0]["working_directory"] = "wt1"
    document["agents"][1]["working_directory"] = "/abs/path"
    roster = roster_module.parse_roster(document, Path("/r.json"), Path("/home/u"))
    assert [str(a.working_directory) for a in roster.agents] == ["/home/u/src/wt1", "/abs/path"]


def mutated(path: str, value: Any) -> dict[str, Any]:
    """VALID with the value at a dotted path (list indexes as numbers) set; "DELETE" removes."""
    document = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value == "DELETE":
        del node[key]
    else:
        node[key] = value
    return document


HOSTILE = [
    ("agents.0.name", "a:b", "agents[0].name"),
    ("agents.0.name", "../../etc/passwd", "agents[0].name"),
    ("agents.0.name", "-t", "agents[0].name"),
    ("agents.0.name", "a.b", "agents[0].name"),
    ("agents.0.name", "x" * 65, "agents[0].name"),
    ("agents.0.name", "agent-2", "agents[1].name"),  # duplicate, named at the second
    ("agents.0.name", "mam-holder", "agents[0].name"),  # the holder's session
    ("agents.0.name", 7, "agents[0].name"),
    ("agents.0.runtime", "nope", "agents[0].runtime"),
    ("agents.0.class", "a b", "agents[0].class"),
    ("agents.0.persistent_persona", "yes", "agents[0].persistent_persona"),
    ("agents.0.reset_between_tasks", 1, "agents[0].reset_between_tasks"),
    ("agents.0.working_directory", "relative/$(rm -rf ~)'", "agents[0].working_directory"),
    ("agents.0.model_hint", "x\ny", "agents[0].model_hint"),
    ("agents.0.kickstart", {"text": "a", "file": "b"}, "agents[0].kickstart"),
    ("agents.0.colour", "blue", "agents[0].colour"),
    ("agents.0.name", "DELETE", "agents[0].name"),
    ("agents", [], "agents"),
    ("agents", {"name": "x"}, "agents"),
    ("transport", "ssh", "transport"),
    ("tmux.socket_name", "-Lx", "tmux.socket_name"),
    ("tmux.socket_name", "a/b", "tmux.socket_name"),
    ("tmux.holder_session", "a:b", "tmux.holder_session"),
    ("tmux.extra", 1, "tmux.extra"),
    ("runtimes.claude.reset_command", "/exit", "runtimes.claude.reset_command"),
    ("runtimes.claude.command", "claude '--x'", "runtimes.claude.command"),
    ("runtimes.claude.command", "", "runtimes.claude.command"),
    ("runtimes.claude.command", "DELETE", "runtimes.claude.command"),
    ("defaults.working_directory", "relative", "defaults.working_directory"),
    ("surprise", True, "surprise"),
]


@pytest.mark.parametrize(("path", "value", "field"), HOSTILE,
                         ids=[f"{p}={v!r}"[:40] for p, v, _ in HOSTILE])
def test_an_invalid_roster_is_refused_naming_the_file_and_the_field(
    path: str, value: Any, field: str, tmp_path: Path
) -> None:
    roster = tmp_path / "fleet.json"
    roster.write_text(json.dumps(mutated(path, value)))
    with pytest.raises(errors.RosterError) as caught:
        roster_module.load_roster(roster, tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{roster}: {field}: "), message
    assert "\n" not in message
    assert caught.value.code == 6
    with pytest.raises(jsonschema.ValidationError):  # the schema says the same
        if path == "agents.0.name" and value in ("agent-2", "mam-holder"):
            raise jsonschema.ValidationError("uniqueness is beyond JSON Schema")
        if path == "agents.0.runtime":
            raise jsonschema.ValidationError("a defined runtime is beyond JSON Schema")
        jsonschema.validate(mutated(path, value), SCHEMA)


@pytest.mark.parametrize(("content", "needle"), [
    (b'{"agents": [], "agents": []}', "appears twice"),
    (b"[1, 2]", "must be an object"),
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b" " * (1024 * 1024 + 1), "larger than"),
])
def test_a_file_that_is_not_a_roster_is_refused_whole(
    content: bytes, needle: str, tmp_path: Path
) -> None:
    roster = tmp_path / "fleet.json"
    roster.write_bytes(content)
    with pytest.raises(errors.RosterError, match=needle):
        roster_module.load_roster(roster, tmp_path)


def test_a_symlinked_roster_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text(json.dumps(VALID))
    link = tmp_path / "fleet.json"
    link.symlink_to(real)
    with pytest.raises(errors.RosterError, match="if it is a symlink, pass --roster"):
        roster_module.load_roster(link, tmp_path)
    assert roster_module.load_roster(real, tmp_path).agents


def test_the_command_exits_6_with_the_field_named(tmp_path: Path) -> None:
    machine = make_machine(tmp_path)
    roster = tmp_path / "bad.json"
    roster.write_text(json.dumps(mutated("agents.1.name", "x;rm")))
    done = machine.mam("agent", "roster", "--roster", str(roster))
    assert done.returncode == 6
    assert done.stderr == f"mam: error: {roster}: agents[1].name: 'x;rm' is not a safe name: " \
        "1-64 letters, digits, '_' or '-', starting with a letter or digit\n"
    as_json = machine.mam("agent", "roster", "--roster", str(roster), "--json")
    assert json.loads(as_json.stdout)["error"]["code"] == 6


YAML_ROSTER = """\
tmux:
  socket_name: mam-yaml
runtimes:
  claude: {command: claude, reset_command: /clear}
agents:
  - {name: solo, runtime: claude, class: implementer}
"""


def pythons() -> list[str]:
    found = [sys.executable]
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system and os.path.realpath(system) != os.path.realpath(sys.executable):
        found.append(system)
    return found


@pytest.mark.parametrize("python", pythons())
def test_yaml_is_read_where_pyyaml_is_importable_and_refused_clearly_elsewhere(
    python: str, tmp_path: Path
) -> None:
    machine = make_machine(tmp_path)
    roster = tmp_path / "fleet.yaml"
    roster.write_text(YAML_ROSTER)
    has_yaml = subprocess.run([python, "-c", "import yaml"], capture_output=True).returncode == 0
    done = machine.mam("agent", "roster", "--roster", str(roster), "--json", python=python)
    if has_yaml:
        assert done.returncode == 0, done.stderr
        assert [a["name"] for a in json.loads(done.stdout)["agents"]] == ["solo"]
    else:
        assert done.returncode == 6
        assert "YAML rosters need PyYAML" in done.stderr
