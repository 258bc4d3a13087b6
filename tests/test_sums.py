"""The strict SHA256SUMS parser and writer, checked against the real sha256sum and shasum."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mam_install._errors import ExitCode, IntegrityError
from mam_install.release._sums import format_sums, is_release_basename, parse_sums

A = "a" * 64
B = "0123456789abcdef" * 4


def test_canonical_file_parses_to_a_dict_of_basenames() -> None:
    data = f"{A}  mam-install.pyz\n{B}  manifest-0.1.0.json\n".encode()
    assert parse_sums(data, "SHA256SUMS") == {"mam-install.pyz": A, "manifest-0.1.0.json": B}


def test_format_sorts_by_name_and_ends_every_line_with_lf() -> None:
    data = format_sums({"z.tar.gz": A, "get-mam.py": B, "SHA-note.txt": A})
    assert data == f"{A}  SHA-note.txt\n{B}  get-mam.py\n{A}  z.tar.gz\n".encode()


def test_format_then_parse_round_trips() -> None:
    entries = {"mam-install.pyz": A, "mam-payload-0.1.0.tar.gz": B, "x.sigstore.json": A}
    assert parse_sums(format_sums(entries), "dist/SHA256SUMS") == entries


@pytest.mark.parametrize(
    ("data", "line", "what"),
    [
        (b"", None, "is empty"),
        (f"{A}  a.pyz".encode(), 1, "does not end with a newline"),
        (f"{A}  a.pyz\r\n".encode(), 1, "carriage return"),
        (f"{A}  a.pyz\n\n".encode(), 2, "is blank"),
        (f"\n{A}  a.pyz\n".encode(), 1, "is blank"),
        (f"{A} *a.pyz\n".encode(), 1, "binary marker"),
        (f"{A}  *a.pyz\n".encode(), 1, "starting with '*'"),
        (f"{A}  dist/a.pyz\n".encode(), 1, "names a path"),
        (f"{A}  ../a.pyz\n".encode(), 1, "names a path"),
        (f"{A}  ..\n".encode(), 1, "names a path"),
        (f"{A}  a.pyz\n{B}  a.pyz\n".encode(), 2, "a second time"),
        (f"{A}  a.pyz\n{A}  a.pyz\n".encode(), 2, "a second time"),
        (f"{A.upper()}  a.pyz\n".encode(), 1, "uppercase hex"),
        (f"{A}  a.pyz \n".encode(), 1, "spaces around the name"),
        (f"{A}   a.pyz\n".encode(), 1, "spaces around the name"),
        (f" {A}  a.pyz\n".encode(), 1, "is not '<64 lowercase hex>  <name>'"),
        (f"{A} a.pyz\n".encode(), 1, "is not '<64 lowercase hex>  <name>'"),
        (f"{A}\ta.pyz\n".encode(), 1, "is not '<64 lowercase hex>  <name>'"),
        (f"{A[:63]}  a.pyz\n".encode(), 1, "is not '<64 lowercase hex>  <name>'"),
        (f"{A}a  a.pyz\n".encode(), 1, "is not '<64 lowercase hex>  <name>'"),
        (f"{A}  \n".encode(), 1, "is not '<64 lowercase hex>  <name>'"),
        (f"{A}  a b.pyz\n".encode(), 1, "outside [A-Za-z0-9._+-]"),
        (f"{A}  .hidden\n".encode(), 1, "outside [A-Za-z0-9._+-]"),
        (f"{A}  -rf\n".encode(), 1, "outside [A-Za-z0-9._+-]"),
        (f"{A}  a\\b\n".encode(), 1, "outside [A-Za-z0-9._+-]"),
        (f"{A}  caf\u00e9.pyz\n".encode(), 1, "not ASCII"),
        (f"# comment\n{A}  a.pyz\n".encode(), 1, "is not '<64 lowercase hex>  <name>'"),
        (f"{A}  ok.pyz\n{B}  bad name\n".encode(), 2, "outside [A-Za-z0-9._+-]"),
    ],
)
def test_malformed_input_is_refused_naming_origin_and_line(
    data: bytes, line: int | None, what: str
) -> None:
    with pytest.raises(IntegrityError) as caught:
        parse_sums(data, "https://example.test/SHA256SUMS")
    message = str(caught.value)
    assert message.startswith("https://example.test/SHA256SUMS")
    if line is not None:
        assert f" line {line} " in message
    assert what in message
    assert "\n" not in message
    assert caught.value.exit_code == ExitCode.INTEGRITY


def test_long_garbage_is_shortened_in_the_message() -> None:
    with pytest.raises(IntegrityError) as caught:
        parse_sums(b"x" * 10_000 + b"\n", "SHA256SUMS")
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    "entries",
    [
        {},
        {"a/b": A},
        {"..": A},
        {"a b": A},
        {"a": A.upper()},
        {"a": "abc"},
    ],
)
def test_format_refuses_what_the_parser_would_refuse(entries: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        format_sums(entries)


def test_basename_alphabet() -> None:
    assert is_release_basename("mam-payload-0.1.0+local.tar.gz")
    assert is_release_basename("mam-install.pyz.sigstore.json")
    for bad in ("", ".", "..", ".x", "-x", "a/b", "a\nb", "a b", "x" * 256):
        assert not is_release_basename(bad)


def _write_release(tmp_path: Path) -> Path:
    files = {
        "mam-install.pyz": b"PK\x05\x06" + b"\0" * 18,
        "mam-payload-0.1.0.tar.gz": bytes(range(256)) * 40,
        "manifest-0.1.0.json": b'{"schema": 1}\n',
        "get-mam.py": b"print('hi')\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    sums = {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
    (tmp_path / "SHA256SUMS").write_bytes(format_sums(sums))
    return tmp_path / "SHA256SUMS"


@pytest.mark.parametrize(
    "command",
    [["sha256sum", "-c", "--strict"], ["shasum", "-a", "256", "-c", "--strict"]],
    ids=["sha256sum", "shasum"],
)
def test_written_sums_pass_the_real_checker_strictly(tmp_path: Path, command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed on this machine")
    sums = _write_release(tmp_path)
    done = subprocess.run(
        [*command, "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == 4
    # The same checker must also notice tampering, or the test above proves nothing.
    (tmp_path / "get-mam.py").write_bytes(b"print('evil')\n")
    tampered = subprocess.run(
        [*command, sums.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert tampered.returncode != 0
    assert "get-mam.py: FAILED" in tampered.stdout


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzzed_bytes_give_a_dict_or_an_integrity_error(data: bytes) -> None:
    _parse_or_refuse(data)


_line = st.tuples(
    st.sampled_from([A, B, A.upper(), A[:63], ""]),
    st.sampled_from(["  ", " ", " *", "\t", "   "]),
    st.text(alphabet="ab./-* \\\r\u00e9", max_size=8),
    st.sampled_from(["\n", "\r\n", ""]),
).map(lambda parts: "".join(parts).encode())


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, max_size=6))
def test_fuzzed_near_miss_lines_give_a_dict_or_an_integrity_error(lines: list[bytes]) -> None:
    data = b"".join(lines)
    result = _parse_or_refuse(data)
    if result is not None:
        # Whatever the parser accepts, the writer reproduces line for line: one canonical form.
        written = format_sums(result).splitlines(keepends=True)
        assert sorted(written) == sorted(data.splitlines(keepends=True))


def _parse_or_refuse(data: bytes) -> dict[str, str] | None:
    try:
        result = parse_sums(data, "fuzz")
    except IntegrityError as exc:
        assert str(exc).startswith("fuzz")
        return None
    assert isinstance(result, dict)
    for name, digest in result.items():
        assert is_release_basename(name)
        assert len(digest) == 64
    return result
