"""manifests/manifest.schema.json describes what the builder writes and the parser accepts."""

from __future__ import annotations

import json
import sys

import pytest
from mam_install._errors import IntegrityError
from mam_install.release._manifest import parse_manifest
from workspaces import ROOT

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
SCHEMA = json.loads((ROOT / "manifests/manifest.schema.json").read_text())


def validator():  # type: ignore[no-untyped-def]
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator(SCHEMA)


def test_every_committed_manifest_matches_the_schema():
    committed = [p for p in (ROOT / "manifests").glob("*.json") if "schema" not in p.name]
    assert committed
    for path in committed:
        errors = list(validator().iter_errors(json.loads(path.read_text())))
        assert errors == [], (path.name, [e.message for e in errors])


def test_a_release_manifest_matches_the_schema(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from payload_archive import build_payload

    source = {"repository": "local", "ref": "main", "commit": "a" * 40}
    _, manifest = build_payload(ROOT / "payload", tmp_path, mtime=1_700_000_000, source=source)
    doc = json.loads(manifest.read_text())
    assert list(validator().iter_errors(doc)) == []
    parse_manifest(manifest.read_bytes(), manifest.name)  # and our own parser agrees


@pytest.mark.parametrize(
    "path", ["../AGENT.md", "/etc/passwd", ".agents/../x", "a//b", "a/./b", "dir/", "a\\b"]
)
def test_a_path_the_parser_refuses_is_refused_by_the_schema_too(path):
    doc = {
        "schema": 1,
        "name": "mam",
        "version": "1.0.0",
        "files": [
            {"path": path, "sha256": "a" * 64, "size": 1, "mode": "0644", "scope": "workspace"}
        ],
    }
    assert list(validator().iter_errors(doc)), path
    with pytest.raises(IntegrityError):
        parse_manifest(json.dumps(doc).encode(), "test")
