"""The strict manifest parser and its allowlist: any doubt about a manifest is exit 5."""

from __future__ import annotations

import copy
import json
import posixpath
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mam_install._errors import ExitCode, IntegrityError
from mam_install.release._manifest import (
    MAX_FILE_SIZE,
    MAX_FILES,
    ArchiveRef,
    Manifest,
    ManifestFile,
    SourceRef,
    check_allowed,
    check_relative_path,
    parse_manifest,
)

from scripts.payload_archive import (
    PayloadFile,
    archive_bytes,
    build_payload,
    content_manifest,
    release_manifest,
)

ORIGIN = "dist/manifest-0.1.0.json"
SHA_A = "a" * 64
SHA_B = "0123456789abcdef" * 4
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def valid_doc() -> dict[str, Any]:
    """A release manifest exercising every field, both scopes and both modes."""
    return {
        "schema": 1,
        "name": "mam",
        "version": "0.1.0",
        "source": {"repository": "https://example.org/mam.git", "ref": "v0.1.0", "commit": COMMIT},
        "archive": {"name": "mam-payload-0.1.0.tar.gz", "sha256": SHA_B, "size": 4096},
        "files": [
            {"path": "AGENT.md", "sha256": SHA_A, "size": 10, "mode": "0644", "scope": "workspace"},
            {"path": ".env.example", "sha256": SHA_A, "size": 0, "mode": "0644",
             "scope": "workspace"},
            {"path": ".agents/skills/lib.sh", "sha256": SHA_B, "size": 99, "mode": "0755",
             "scope": "workspace"},
            {"path": "tools/mam-tmux-holder.sh", "sha256": SHA_B, "size": 5, "mode": "0755",
             "scope": "host"},
            {"path": "units/systemd/mam-agent@.service", "sha256": SHA_A, "size": 7,
             "mode": "0644", "scope": "host"},
        ],
    }


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def with_file(**fields: Any) -> dict[str, Any]:
    """``valid_doc()`` reduced to its first file entry, with ``fields`` overridden."""
    doc = valid_doc()
    doc["files"] = [dict(doc["files"][0], **fields)]
    return doc


def refused(data: bytes, origin: str = ORIGIN) -> str:
    """Parse ``data``, demand an IntegrityError with exit 5 naming ``origin``; return the text."""
    with pytest.raises(IntegrityError) as caught:
        parse_manifest(data, origin)
    assert caught.value.exit_code is ExitCode.INTEGRITY
    assert int(caught.value.exit_code) == 5
    message = str(caught.value)
    assert origin in message
    assert "\n" not in message, "a user-facing message is one line"
    return message


# --- what is accepted ------------------------------------------------------------------------


def test_valid_manifest_parses_into_typed_fields() -> None:
    manifest = parse_manifest(encode(valid_doc()), ORIGIN)
    assert manifest.schema == 1
    assert (manifest.name, manifest.version) == ("mam", "0.1.0")
    assert manifest.source == SourceRef("https://example.org/mam.git", "v0.1.0", COMMIT)
    assert manifest.archive == ArchiveRef("mam-payload-0.1.0.tar.gz", SHA_B, 4096)
    assert manifest.files[2] == ManifestFile(".agents/skills/lib.sh", SHA_B, 99, 0o755, "workspace")
    assert manifest.files[2].member == "workspace/.agents/skills/lib.sh"
    assert [f.path for f in manifest.in_scope("host")] == [
        "tools/mam-tmux-holder.sh",
        "units/systemd/mam-agent@.service",
    ]
    assert set(manifest.by_member()) == {f"{f.scope}/{f.path}" for f in manifest.files}


def test_valid_manifest_round_trips_through_dumps() -> None:
    manifest = parse_manifest(encode(valid_doc()), ORIGIN)
    text = manifest.dumps()
    assert text.endswith("}\n")
    assert parse_manifest(text.encode(), ORIGIN) == manifest
    assert json.loads(text) == valid_doc()


def test_manifest_without_source_or_archive_round_trips() -> None:
    doc = valid_doc()
    del doc["source"], doc["archive"]
    manifest = parse_manifest(encode(doc), ORIGIN)
    assert manifest.source is None and manifest.archive is None
    assert parse_manifest(manifest.dumps().encode(), ORIGIN) == manifest
    assert "source" not in json.loads(manifest.dumps())


def test_manifests_built_by_the_release_scripts_parse_and_round_trip(tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    (payload / "workspace" / ".agents" / "skills").mkdir(parents=True)
    (payload / "host" / "units" / "launchd").mkdir(parents=True)
    (payload / "VERSION").write_text("2.0.0rc1\n")
    (payload / "workspace" / "AGENT.md").write_text("# agents\n")
    tool = payload / "workspace" / ".agents" / "skills" / "lib.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (payload / "host" / "units" / "launchd" / "org.mam.plist").write_text("<plist/>\n")
    source = {"repository": "https://example.org/mam.git", "ref": "v2", "commit": COMMIT}
    archive, manifest_path = build_payload(payload, tmp_path / "dist", mtime=0, source=source)

    manifest = parse_manifest(manifest_path.read_bytes(), str(manifest_path))
    assert manifest.version == "2.0.0rc1"
    assert manifest.archive is not None
    assert manifest.archive.name == archive.name
    assert manifest.archive.size == archive.stat().st_size
    assert {f.member: f.mode for f in manifest.files} == {
        "host/units/launchd/org.mam.plist": 0o644,
        "workspace/.agents/skills/lib.sh": 0o755,
        "workspace/AGENT.md": 0o644,
    }
    assert parse_manifest(manifest.dumps().encode(), "again") == manifest


@pytest.mark.parametrize(
    ("scope", "path"),
    [
        ("workspace", "AGENT.md"),
        ("workspace", ".env.example"),
        ("workspace", ".agents/x"),
        ("workspace", ".agents/skills/mqtt/mqtt_common.py"),
        ("workspace", ".agents/.git/config"),  # inside .agents/, so still ours
        ("host", "tools/mam-tmux-holder.sh"),
        ("host", "units/systemd/mam-agent@.service"),
        ("host", "units/launchd/org.mam.agent.plist"),
        ("host", "mosquitto/mosquitto.conf"),
    ],
)
def test_allowlisted_paths_are_accepted(scope: str, path: str) -> None:
    manifest = parse_manifest(encode(with_file(scope=scope, path=path)), ORIGIN)
    assert (manifest.files[0].scope, manifest.files[0].path) == (scope, path)


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "path"),
    [
        ("workspace", ""),
        ("workspace", "../AGENT.md"),
        ("workspace", ".agents/../AGENT.md"),
        ("workspace", ".agents/skills/../../.bashrc"),
        ("workspace", "/etc/passwd"),
        ("workspace", "/AGENT.md"),
        ("workspace", ".agents\\x"),
        ("workspace", ".agents\\..\\..\\x"),
        ("workspace", ".agents//x"),
        ("workspace", ".agents/./x"),
        ("workspace", "./AGENT.md"),
        ("workspace", ".agents/x/"),
        ("workspace", ".agents/a\nb"),
        ("workspace", ".agents/a\rb"),
        ("workspace", ".agents/\x1b[31mred"),
        ("workspace", ".agents/a\x7fb"),
        ("workspace", ".agents/a\x00b"),
        ("workspace", ".agents/a\tb"),
        ("workspace", ".agents/" + "x" * 1024),
        ("workspace", ".git/config"),
        ("workspace", ".git/hooks/pre-commit"),
        ("workspace", "README.md"),
        ("workspace", ".agentsx/y"),
        ("workspace", ".agents"),
        ("workspace", "AGENT.md/x"),
        ("workspace", "agent.md"),
        ("workspace", ".AGENTS/x"),
        ("workspace", ".env"),
        ("workspace", "tools/x"),  # a host place is not a workspace place
        ("workspace", ".agents/x.mam-new"),
        ("workspace", "AGENT.md.mam-new"),
        ("host", "AGENT.md"),
        ("host", ".agents/x"),
        ("host", "bin/mam"),
        ("host", "units/x.service"),
        ("host", "units/systemd/../../.bashrc"),
        ("host", "tools"),
        ("host", "toolsx/a"),
        ("host", "tools/x.mam-new"),
    ],
)
def test_paths_outside_the_allowlist_or_malformed_are_refused(scope: str, path: str) -> None:
    message = refused(encode(with_file(scope=scope, path=path)))
    assert repr(path[:80]) in message or "control characters" in message or "empty" in message


@pytest.mark.parametrize("scope", ["system", "Workspace", "", "root"])
def test_unknown_scope_is_refused(scope: str) -> None:
    message = refused(encode(with_file(scope=scope)))
    assert repr(scope) in message


def test_check_allowed_is_the_same_gate_used_by_the_parser() -> None:
    check_allowed(".agents/ok", "workspace", "x")
    with pytest.raises(IntegrityError) as caught:
        check_allowed(".git/config", "workspace", "x")
    assert caught.value.exit_code == ExitCode.INTEGRITY
    assert "'.git/config'" in str(caught.value)


def test_a_file_listed_under_another_file_is_refused() -> None:
    doc = valid_doc()
    doc["files"].append(
        {"path": ".agents/skills/lib.sh/x", "sha256": SHA_A, "size": 1, "mode": "0644",
         "scope": "workspace"}
    )
    message = refused(encode(doc))
    assert "'.agents/skills/lib.sh/x' lies under another listed file" in message


def test_a_file_nested_deep_under_another_listed_file_is_refused() -> None:
    doc = valid_doc()
    doc["files"].append(
        {"path": ".agents/skills/lib.sh/a/b/c", "sha256": SHA_A, "size": 1, "mode": "0644",
         "scope": "workspace"}
    )
    assert "'.agents/skills/lib.sh/a/b/c' lies under" in refused(encode(doc))


def test_duplicate_entries_are_refused_even_when_identical() -> None:
    doc = valid_doc()
    doc["files"].append(copy.deepcopy(doc["files"][2]))
    assert "'workspace/.agents/skills/lib.sh' is listed twice" in refused(encode(doc))


def test_duplicate_entries_with_different_hashes_are_refused() -> None:
    doc = valid_doc()
    doc["files"].append(dict(doc["files"][2], sha256=SHA_A, mode="0644"))
    assert "listed twice" in refused(encode(doc))


# --- per-file fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sha256",
    [SHA_A.upper(), "A" + SHA_A[1:], SHA_A[:63], SHA_A + "a", "g" * 64, " " + SHA_A[1:], "", 1,
     None],
)
def test_malformed_file_sha256_is_refused(sha256: Any) -> None:
    refused(encode(with_file(sha256=sha256)))


@pytest.mark.parametrize("size", [-1, MAX_FILE_SIZE + 1, "10", 10.0, True, None, [10]])
def test_bad_file_size_is_refused(size: Any) -> None:
    refused(encode(with_file(size=size)))


def test_file_size_at_the_limit_is_accepted() -> None:
    assert parse_manifest(encode(with_file(size=MAX_FILE_SIZE)), ORIGIN).files[0].size == (
        MAX_FILE_SIZE
    )


@pytest.mark.parametrize(
    "mode", ["04755", "4755", "02755", "01755", "06755", "0777", "0600", "0666", "0000", "0700",
             "rwxr-xr-x", "", "0644x", "0o8", 420, 0o644, None]
)
def test_modes_other_than_0644_and_0755_are_refused(mode: Any) -> None:
    message = refused(encode(with_file(mode=mode)))
    assert "'AGENT.md'" in message or "'mode'" in message


@pytest.mark.parametrize(("text", "mode"), [("0644", 0o644), ("0755", 0o755), ("755", 0o755)])
def test_allowed_modes_parse_to_integers(text: str, mode: int) -> None:
    assert parse_manifest(encode(with_file(mode=text)), ORIGIN).files[0].mode == mode


@pytest.mark.parametrize("missing", ["path", "sha256", "size", "mode", "scope"])
def test_a_file_entry_missing_a_field_is_refused(missing: str) -> None:
    doc = valid_doc()
    del doc["files"][1][missing]
    assert repr(missing) in refused(encode(doc))


@pytest.mark.parametrize("entry", [[], "AGENT.md", 1, None, True])
def test_a_file_entry_that_is_not_an_object_is_refused(entry: Any) -> None:
    doc = valid_doc()
    doc["files"].append(entry)
    assert "not an object" in refused(encode(doc))


def test_more_files_than_the_limit_are_refused() -> None:
    doc = valid_doc()
    doc["files"] = [
        {"path": f".agents/f{i}", "sha256": SHA_A, "size": 1, "mode": "0644", "scope": "workspace"}
        for i in range(MAX_FILES + 1)
    ]
    assert f"{MAX_FILES + 1} files" in refused(encode(doc))


def test_total_size_over_the_limit_is_refused() -> None:
    doc = valid_doc()
    doc["files"] = [
        {"path": f".agents/big{i}", "sha256": SHA_A, "size": MAX_FILE_SIZE, "mode": "0644",
         "scope": "workspace"}
        for i in range(9)  # 9 x 16 MiB > 128 MiB, each file within its own limit
    ]
    assert "total size" in refused(encode(doc))


# --- document-level fields --------------------------------------------------------------------


@pytest.mark.parametrize("schema", [0, 2, "1", 1.0, True, None, [1]])
def test_wrong_schema_is_refused(schema: Any) -> None:
    doc = valid_doc()
    doc["schema"] = schema
    refused(encode(doc))


def test_missing_schema_is_refused() -> None:
    doc = valid_doc()
    del doc["schema"]
    assert "'schema'" in refused(encode(doc))


def test_newer_schema_names_the_way_out() -> None:
    doc = valid_doc()
    doc["schema"] = 2
    assert "use the mam-install release that made it" in refused(encode(doc))


@pytest.mark.parametrize("data", [b"[]", b'"manifest"', b"1", b"null", b"true", b"[{}]"])
def test_json_that_is_not_an_object_is_refused(data: bytes) -> None:
    assert "a manifest is a JSON object" in refused(data)


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"\xff\xfe{}", b'{"schema": 1, "name": "\xc3"}', b"\xef\xbb\xbf{}", b"{}{}",
     b"{'schema': 1}", b"\x00"],
)
def test_invalid_utf8_or_invalid_json_is_refused(data: bytes) -> None:
    assert "not valid JSON" in refused(data)


@pytest.mark.parametrize("version", ["", ".1", "1 0", "1/0", "../1", "1\n", "v" * 65, 1, None])
def test_malformed_version_is_refused(version: Any) -> None:
    doc = valid_doc()
    doc["version"] = version
    refused(encode(doc))


@pytest.mark.parametrize("name", [None, 1, ["mam"]])
def test_name_that_is_not_a_string_is_refused(name: Any) -> None:
    doc = valid_doc()
    doc["name"] = name
    assert "'name'" in refused(encode(doc))


@pytest.mark.parametrize("files", [None, {}, "AGENT.md", 3])
def test_files_that_is_not_a_list_is_refused(files: Any) -> None:
    doc = valid_doc()
    doc["files"] = files
    assert "'files'" in refused(encode(doc))


@pytest.mark.parametrize(
    "commit",
    [COMMIT[:39], COMMIT + "0", COMMIT.upper(), "g" * 40, "v0.1.0", "", 1234, None,
     "0123456789abcdef0123456789abcdef0123456\n"],
)
def test_source_commit_that_is_not_40_lowercase_hex_is_refused(commit: Any) -> None:
    doc = valid_doc()
    doc["source"]["commit"] = commit
    refused(encode(doc))


@pytest.mark.parametrize("missing", ["repository", "ref"])
def test_source_missing_repository_or_ref_is_refused(missing: str) -> None:
    doc = valid_doc()
    del doc["source"][missing]
    assert repr(missing) in refused(encode(doc))


@pytest.mark.parametrize("field", ["source", "archive"])
@pytest.mark.parametrize("value", ["x", [], 1, True])
def test_source_or_archive_that_is_not_an_object_is_refused(field: str, value: Any) -> None:
    doc = valid_doc()
    doc[field] = value
    assert f"'{field}' is not an object" in refused(encode(doc))


@pytest.mark.parametrize(
    "name",
    ["dist/mam-payload.tar.gz", "../mam-payload.tar.gz", "/tmp/mam-payload.tar.gz", "a\\b", "",
     ".", "..", "x\n", "a/"],
)
def test_archive_name_that_is_not_a_plain_file_name_is_refused(name: str) -> None:
    doc = valid_doc()
    doc["archive"]["name"] = name
    refused(encode(doc))


@pytest.mark.parametrize("sha256", [SHA_B.upper(), SHA_B[:-1], "", None])
def test_archive_sha256_malformed_is_refused(sha256: Any) -> None:
    doc = valid_doc()
    doc["archive"]["sha256"] = sha256
    refused(encode(doc))


@pytest.mark.parametrize("size", [0, -1, 128 * 1024 * 1024 + 1, "4096", 4096.0, False])
def test_archive_size_out_of_range_is_refused(size: Any) -> None:
    doc = valid_doc()
    doc["archive"]["size"] = size
    refused(encode(doc))


def test_deeply_nested_json_is_an_integrity_error_not_a_crash() -> None:
    refused(b"[" * 100_000 + b"]" * 100_000)


def test_duplicate_json_keys_are_refused() -> None:
    text = json.dumps(with_file(path="AGENT.md"))
    data = text.replace('"path": "AGENT.md"', '"path": "AGENT.md", "path": ".agents/other"')
    assert data.count('"path"') == 2
    refused(data.encode())


# --- fuzzing: a Manifest or an IntegrityError, never anything else ----------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(
        ["0644", "0755", "04755", "workspace", "host", "AGENT.md", ".agents/x", "../x", SHA_A,
         COMMIT, "mam-payload-1.tar.gz", ".agents/x.mam-new", "tools/", "\x00", "\\"]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10) | st.sampled_from(list(valid_doc())), children,
                      max_size=5),
    max_leaves=25,
)


def assert_parses_or_refuses(data: bytes) -> None:
    try:
        manifest = parse_manifest(data, ORIGIN)
    except IntegrityError as exc:
        assert exc.exit_code == ExitCode.INTEGRITY
        assert ORIGIN in str(exc)
        return
    # Whatever got through is inside the allowlist and survives a round trip.
    assert isinstance(manifest, Manifest)
    for f in manifest.files:
        check_allowed(f.path, f.scope, "fuzz")
        assert f.mode in (0o644, 0o755)
    assert parse_manifest(manifest.dumps().encode(), ORIGIN) == manifest


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_fuzz_arbitrary_json_values(value: Any) -> None:
    assert_parses_or_refuses(json.dumps(value).encode())


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    assert_parses_or_refuses(data)


def _paths_in(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside a JSON document (the root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths_in(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths_in(child, (*prefix, index))
    return found


def _mutate(doc: dict[str, Any], where: tuple[Any, ...], how: str, value: Any) -> Any:
    if not where:
        return value
    parent: Any = doc
    for key in where[:-1]:
        parent = parent[key]
    last = where[-1]
    if how == "delete":
        del parent[last]
    elif how == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    else:
        parent[last] = value
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_valid_manifests(data: st.DataObject) -> None:
    doc = valid_doc()
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        where = data.draw(st.sampled_from(_paths_in(doc)), label="where")
        how = data.draw(st.sampled_from(["replace", "delete", "duplicate"]), label="how")
        value = data.draw(json_values, label="value")
        doc = _mutate(doc, where, how, value)
        if not isinstance(doc, dict):
            break
    assert_parses_or_refuses(json.dumps(doc).encode())


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_fuzz_byte_flips_of_a_valid_manifest(data: st.DataObject) -> None:
    raw = bytearray(encode(valid_doc()))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[index] = data.draw(st.integers(min_value=0, max_value=255))
    assert_parses_or_refuses(bytes(raw))


def test_fuzz_seed_real_release_manifest_is_accepted() -> None:
    """The mutation fuzzers start from a manifest the real release scripts would also produce."""
    files = [PayloadFile("workspace", "AGENT.md", b"# a\n", 0o644)]
    content = content_manifest(files, "0.1.0")
    data = archive_bytes(files, content, 0)
    doc = release_manifest(content, "mam-payload-0.1.0.tar.gz", data, None)
    assert_parses_or_refuses(encode(doc))
    assert parse_manifest(encode(doc), ORIGIN).archive is not None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["a", ".", "..", "/", "\\", "x.sh", "\x00", "\n", "~", " ", "%2e", "\u2215"]
        ),
        max_size=8,
    ).map("".join)
)
def test_fuzz_an_accepted_relative_path_never_leaves_its_root(path: str) -> None:
    try:
        check_relative_path(path, ORIGIN)
    except IntegrityError as exc:
        assert exc.exit_code is ExitCode.INTEGRITY
        return
    joined = posixpath.normpath(posixpath.join("/root/ws", path))
    assert joined.startswith("/root/ws/")
    assert posixpath.relpath(joined, "/root/ws") == path
