"""Our own archive extraction: hostile members refused (exit 5), unlisted payload files too;
unlisted metadata outside the payload is skipped."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mam_install._errors import ExitCode, IntegrityError
from mam_install.release import _archive
from mam_install.release._archive import extract_verified
from mam_install.release._manifest import Manifest, parse_manifest

from scripts.payload_archive import PayloadFile, archive_bytes, content_manifest, dumps

FILES = [
    PayloadFile("workspace", "AGENT.md", b"# agents\n", 0o644),
    PayloadFile("workspace", ".agents/skills/lib.sh", b"#!/bin/sh\necho lib\n", 0o755),
    PayloadFile("host", "units/systemd/mam.service", b"[Unit]\nDescription=mam\n", 0o644),
]


@dataclass
class Member:
    """One tar member to write, hostile or not."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    mode: int = 0o644
    linkname: str = ""
    pax: dict[str, str] = field(default_factory=dict)


def genuine_members(files: list[PayloadFile] = FILES) -> list[Member]:
    return [Member(f.member, f.data, mode=f.mode) for f in files]


def tar_gz(members: list[Member], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type, info.mode, info.linkname = m.kind, m.mode, m.linkname
            info.uid = info.gid = 0
            if m.kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                info.devmajor, info.devminor = 1, 3
            if m.pax:
                info.pax_headers = dict(m.pax)
            if info.isreg():
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                tar.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0)


def manifest_of(files: list[PayloadFile] = FILES) -> Manifest:
    return parse_manifest(dumps(content_manifest(files, "0.1.0")), "test-manifest")


def listing(root: Path, skip: Path | None = None) -> list[str]:
    """Every entry under ``root`` (symlinks not followed), ``skip`` and its contents left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if skip is not None and (path == skip or skip in path.parents):
                continue
            found.append(path.relative_to(root).as_posix())
    return sorted(found)


class Sandbox:
    """``tmp_path/work/dest`` to extract into; everything else in ``tmp_path`` must not change."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.work = tmp_path / "work"
        self.dest = self.work / "dest"
        self.dest.mkdir(parents=True)
        (self.work / "sentinel.txt").write_text("untouched\n")
        self.archive = tmp_path / "in" / "mam-payload-0.1.0.tar.gz"
        self.archive.parent.mkdir()

    def write(self, data: bytes) -> Path:
        self.archive.write_bytes(data)
        return self.archive

    def outside(self) -> list[str]:
        return listing(self.root, skip=self.dest)

    def refuse(self, data: bytes, manifest: Manifest | None = None) -> str:
        """Extract ``data``; demand exit 5 and no change outside ``dest``; return the message."""
        self.write(data)
        before = self.outside()
        with pytest.raises(IntegrityError) as caught:
            extract_verified(self.archive, manifest or manifest_of(), self.dest)
        assert caught.value.exit_code is ExitCode.INTEGRITY
        assert int(caught.value.exit_code) == 5
        assert self.outside() == before
        assert (self.work / "sentinel.txt").read_text() == "untouched\n"
        message = str(caught.value)
        assert self.archive.name in message
        return message

    def extracted(self) -> set[str]:
        return {p for p in listing(self.dest) if (self.dest / p).is_file()}


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


# --- genuine archives -------------------------------------------------------------------------


def test_genuine_archive_from_the_release_scripts_extracts_every_listed_file(box: Sandbox) -> None:
    content = content_manifest(FILES, "0.1.0")
    box.write(archive_bytes(FILES, content, mtime=1_700_000_000))
    found = extract_verified(box.archive, manifest_of(), box.dest)

    assert set(found) == {f.member for f in FILES}
    for f in FILES:
        assert found[f.member] == box.dest / f.member
        assert found[f.member].read_bytes() == f.data
        assert stat.S_IMODE(found[f.member].stat().st_mode) == f.mode
    # manifest.json is in the archive but not listed in the manifest: ignored, never copied.
    assert box.extracted() == {f.member for f in FILES}


@pytest.mark.parametrize(
    "extra",
    [
        Member("workspace/.agents/extra.sh", b"#!/bin/sh\nrm -rf ~\n", mode=0o755),
        Member("workspace/.git/config", b"[core]\n\thooksPath = /tmp/evil\n"),
        Member("workspace/README.md", b"not ours\n"),
        Member("host/tools/unlisted", b"x"),
    ],
    ids=lambda m: m.name,
)
def test_an_unlisted_payload_file_refuses_the_archive(box: Sandbox, extra: Member) -> None:
    message = box.refuse(tar_gz([*genuine_members(), extra]))
    assert extra.name in message and "not in the manifest" in message


def test_unlisted_metadata_and_directories_are_skipped_and_collected_for_verify(
    box: Sandbox,
) -> None:
    extra = [
        Member("SIGNATURES", b"metadata a later release may add\n"),
        Member("workspace/.agents/extra-dir", kind=tarfile.DIRTYPE, mode=0o755),
    ]
    box.write(tar_gz(extra[:1] + genuine_members() + extra[1:]))
    found = extract_verified(box.archive, manifest_of(), box.dest)
    assert set(found) == {f.member for f in FILES}
    assert box.extracted() == {f.member for f in FILES}
    assert not (box.dest / "workspace/.agents/extra-dir").exists()
    unlisted: list[str] = []
    shutil.rmtree(box.dest)
    box.dest.mkdir()
    box.write(tar_gz([*genuine_members(), Member("workspace/AGENT2.md", b"x")]))
    extract_verified(box.archive, manifest_of(), box.dest, unlisted)
    assert unlisted == ["workspace/AGENT2.md"]


def test_directory_members_are_accepted_and_not_needed(box: Sandbox) -> None:
    dirs = [Member(d, kind=tarfile.DIRTYPE, mode=0o755)
            for d in ("workspace", "workspace/.agents", "workspace/.agents/skills")]
    box.write(tar_gz(dirs + genuine_members()))
    assert set(extract_verified(box.archive, manifest_of(), box.dest)) == {f.member for f in FILES}


def test_modes_on_disk_come_from_the_manifest_not_the_archive(box: Sandbox) -> None:
    members = genuine_members()
    members[0].mode = 0o777  # AGENT.md, listed 0644
    members[1].mode = 0o600  # lib.sh, listed 0755
    members[2].mode = 0o000
    box.write(tar_gz(members))
    found = extract_verified(box.archive, manifest_of(), box.dest)
    assert {m: stat.S_IMODE(p.stat().st_mode) for m, p in found.items()} == {
        "workspace/AGENT.md": 0o644,
        "workspace/.agents/skills/lib.sh": 0o755,
        "host/units/systemd/mam.service": 0o644,
    }


def test_owner_in_the_archive_is_ignored(box: Sandbox) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for f in FILES:
            info = tarfile.TarInfo(f.member)
            info.size, info.mode, info.uid, info.gid = len(f.data), f.mode, 4242, 4343
            info.uname = info.gname = "mallory"
            tar.addfile(info, io.BytesIO(f.data))
    box.write(gzip.compress(raw.getvalue(), mtime=0))
    for path in extract_verified(box.archive, manifest_of(), box.dest).values():
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_empty_file_listed_with_size_zero_extracts(box: Sandbox) -> None:
    files = [*FILES, PayloadFile("workspace", ".env.example", b"", 0o644)]
    box.write(tar_gz(genuine_members(files)))
    found = extract_verified(box.archive, manifest_of(files), box.dest)
    assert found["workspace/.env.example"].read_bytes() == b""


def test_pax_and_ustar_archives_extract_alike(box: Sandbox) -> None:
    for fmt in (tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
        for child in box.dest.iterdir():
            shutil.rmtree(child)
        box.write(tar_gz(genuine_members(), fmt=fmt))
        assert set(extract_verified(box.archive, manifest_of(), box.dest)) == {
            f.member for f in FILES
        }


# --- hostile members --------------------------------------------------------------------------

HOSTILE = {
    "dotdot": Member("../escaped", b"pwned\n"),
    "dotdot-deep": Member("workspace/../../escaped", b"pwned\n"),
    "dot-then-dotdot": Member("./a/../../escaped", b"pwned\n"),
    "dot-prefix": Member("./workspace/AGENT.md", b"# agents\n"),
    "backslash": Member("workspace\\..\\..\\escaped", b"pwned\n"),
    "empty-part": Member("workspace//AGENT.md", b"# agents\n"),
    "control-char": Member("workspace/.agents/a\nb", b"x"),
    "symlink": Member("workspace/.agents/link", kind=tarfile.SYMTYPE, linkname="/etc/passwd"),
    "symlink-listed-name": Member("workspace/AGENT.md", kind=tarfile.SYMTYPE, linkname="../../x"),
    "symlink-relative": Member("workspace/.agents/up", kind=tarfile.SYMTYPE, linkname="../.."),
    "hardlink-out": Member("workspace/.agents/hard", kind=tarfile.LNKTYPE,
                           linkname="../../../sentinel.txt"),
    "hardlink-in": Member("workspace/.agents/hard", kind=tarfile.LNKTYPE,
                          linkname="workspace/AGENT.md"),
    "char-device": Member("workspace/.agents/null", kind=tarfile.CHRTYPE),
    "block-device": Member("workspace/.agents/sda", kind=tarfile.BLKTYPE),
    "fifo": Member("workspace/.agents/pipe", kind=tarfile.FIFOTYPE),
    "setuid-listed": Member("workspace/.agents/skills/lib.sh", b"#!/bin/sh\necho lib\n",
                            mode=0o4755),
    "setuid-unlisted": Member("workspace/.agents/suid", b"x", mode=0o4755),
    "setgid": Member("workspace/.agents/sgid", b"x", mode=0o2755),
    "sticky-dir": Member("workspace/.agents/tmp", kind=tarfile.DIRTYPE, mode=0o1777),
    "pax-path-escape": Member("workspace/AGENT.md", b"# agents\n", pax={"path": "../escaped"}),
    "pax-path-absolute": Member("workspace/AGENT.md", b"# agents\n", pax={"path": "/escaped"}),
    "gnu-longname-escape": Member("workspace/" + "../" * 40 + "escaped", b"pwned\n"),
}


@pytest.mark.parametrize("position", ["first", "last"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_refuses_the_whole_archive(box: Sandbox, case: str, position: str) -> None:
    hostile = HOSTILE[case]
    members = genuine_members()
    members = [hostile, *members] if position == "first" else [*members, hostile]
    fmt = tarfile.PAX_FORMAT if hostile.pax else tarfile.GNU_FORMAT
    message = box.refuse(tar_gz(members, fmt=fmt))

    name = hostile.pax.get("path", hostile.name)
    assert repr(name) in message or repr(name.rstrip("/")) in message
    assert "refusing" in message or "control characters" in message or "part" in message
    # Whatever was extracted before the refusal is a listed file inside dest, nothing else.
    assert box.extracted() <= {f.member for f in FILES}
    assert not (box.dest / "workspace/.agents/link").exists()


def test_absolute_member_is_refused_and_its_target_never_created(box: Sandbox) -> None:
    # An absolute name inside tmp_path rather than /etc/...: a regression must not write to /etc.
    target = box.work / "abs-escaped"
    message = box.refuse(tar_gz([*genuine_members(), Member(str(target), b"pwned\n")]))
    assert repr(str(target)) in message
    assert not target.exists()


def test_member_larger_than_its_manifest_entry_is_refused(box: Sandbox) -> None:
    members = genuine_members()
    members[0].data += b"and a payload that was not reviewed\n"
    message = box.refuse(tar_gz(members))
    assert "'workspace/AGENT.md'" in message
    assert f"the manifest says {len(FILES[0].data)}" in message
    assert not (box.dest / "workspace/AGENT.md").exists()


def test_member_smaller_than_its_manifest_entry_is_refused(box: Sandbox) -> None:
    members = genuine_members()
    members[1].data = members[1].data[:-1]
    assert "'workspace/.agents/skills/lib.sh'" in box.refuse(tar_gz(members))


def test_member_whose_bytes_do_not_match_the_manifest_hash_is_refused(box: Sandbox) -> None:
    members = genuine_members()
    members[1].data = b"#!/bin/sh\necho pwn\n"  # same length as the genuine file
    assert len(members[1].data) == len(FILES[1].data)
    message = box.refuse(tar_gz(members))
    assert "'workspace/.agents/skills/lib.sh' has SHA-256" in message
    assert manifest_of().by_member()["workspace/.agents/skills/lib.sh"].sha256 in message


def test_manifest_file_missing_from_the_archive_is_refused(box: Sandbox) -> None:
    message = box.refuse(tar_gz(genuine_members()[:2]))
    assert "missing from the archive" in message
    assert "'host/units/systemd/mam.service'" in message


def test_listed_file_present_only_as_a_directory_is_refused(box: Sandbox) -> None:
    members = genuine_members()
    members[0] = Member("workspace/AGENT.md", kind=tarfile.DIRTYPE, mode=0o755)
    assert "'workspace/AGENT.md'" in box.refuse(tar_gz(members))
    assert not (box.dest / "workspace/AGENT.md").exists()


@pytest.mark.parametrize("second", [b"# evil!\n", b"# agents\n"], ids=["different", "identical"])
def test_duplicate_member_is_refused(box: Sandbox, second: bytes) -> None:
    members = [*genuine_members(), Member("workspace/AGENT.md", second)]
    message = box.refuse(tar_gz(members))
    assert "'workspace/AGENT.md' appears twice" in message
    # The first, verified copy may be in dest; the second never overwrote it.
    agent = box.dest / "workspace/AGENT.md"
    assert not agent.exists() or agent.read_bytes() == FILES[0].data


def test_duplicate_member_as_a_directory_after_the_file_is_refused(box: Sandbox) -> None:
    members = [*genuine_members(), Member("workspace/AGENT.md/", kind=tarfile.DIRTYPE)]
    assert "appears twice" in box.refuse(tar_gz(members))


@pytest.mark.parametrize(
    "data",
    [b"", b"not a gzip file at all\n" * 20, b"\x1f\x8b" + b"\x00" * 50],
    ids=["empty", "garbage", "gzip-magic-then-garbage"],
)
def test_garbage_is_refused(box: Sandbox, data: bytes) -> None:
    assert "not a readable .tar.gz" in box.refuse(data)
    assert box.extracted() == set()


def test_plain_uncompressed_tar_is_refused(box: Sandbox) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("workspace/AGENT.md")
        info.size = len(FILES[0].data)
        tar.addfile(info, io.BytesIO(FILES[0].data))
    assert "not a readable .tar.gz" in box.refuse(raw.getvalue())


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9])
def test_truncated_gzip_is_refused(box: Sandbox, keep: float) -> None:
    big = [*FILES, PayloadFile("workspace", ".agents/big.bin", os.urandom(64 * 1024), 0o644)]
    data = tar_gz(genuine_members(big))
    message = box.refuse(data[: int(len(data) * keep)], manifest_of(big))
    assert box.archive.name in message


def test_gzip_with_corrupt_deflate_data_is_refused(box: Sandbox) -> None:
    big = [*FILES, PayloadFile("workspace", ".agents/big.bin", os.urandom(32 * 1024), 0o644)]
    data = bytearray(tar_gz(genuine_members(big)))
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xA5
    box.refuse(bytes(data), manifest_of(big))


def test_member_count_bomb_of_unlisted_members_is_refused(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_archive, "MAX_MEMBERS", 20)
    bomb = [Member(f"meta/n{i}", b"") for i in range(30)]
    message = box.refuse(tar_gz(genuine_members() + bomb))
    assert "more than 20 members" in message


def test_the_member_cap_is_far_above_the_file_cap() -> None:
    assert _archive.MAX_MEMBERS >= 4 * 4096


def test_a_bomb_of_skipped_members_is_refused_before_it_is_all_inflated(box: Sandbox) -> None:
    """A 1 MiB-or-so release that inflates to 256 MiB: metadata outside workspace/ and host/
    is skipped, never written, but it is still decompressed, so the whole archive is bounded."""
    import time

    bomb = Member("meta/zeros", b"\0" * (256 << 20))
    data = tar_gz([*genuine_members(), bomb])
    assert len(data) < (1 << 20)
    started = time.monotonic()
    message = box.refuse(data)
    assert "decompression bomb" in message
    assert time.monotonic() - started < 5  # stopped at the bound, not after 256 MiB
    assert _archive.inflate_limit(manifest_of()) < (4 << 20)


def test_the_inflate_bound_admits_the_largest_genuine_archive() -> None:
    from mam_install.release._manifest import MAX_FILES

    assert _archive.inflate_limit(manifest_of()) > sum(len(f.data) for f in FILES) + 512 * 20
    files = [PayloadFile("workspace", f".agents/f{i}", b"", 0o644) for i in range(MAX_FILES)]
    manifest = parse_manifest(dumps(content_manifest(files, "0.1.0")), "t")
    assert _archive.inflate_limit(manifest) > MAX_FILES * 3 * 512  # every header, long names too
