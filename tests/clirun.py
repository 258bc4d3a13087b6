"""Run the mam-install command line in-process (click's CliRunner) for tests.

Every ``--json`` document a test reads is checked against manifests/result.schema.json, so each
command's output is held to the published contract wherever a test looks at it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from click.testing import CliRunner
from mam_install.cli import main

RESULT_SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "manifests/result.schema.json").read_text()
)


def checked(document: Any) -> Any:
    """``document``, after checking it against the published schema of --json documents."""
    jsonschema.validate(document, RESULT_SCHEMA)
    return document


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        document = checked(json.loads(self.stdout))
        assert document["exit_code"] == self.exit_code, "the document says how the run ended"
        return document

    def scope(self, name: str = "workspace") -> Any:
        """The result of one scope of a --json run (install, uninstall, status, ...)."""
        return self.json()["scopes"][name]


def cli(*args: str | Path) -> Run:
    runner = CliRunner(mix_stderr=False)
    result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)
