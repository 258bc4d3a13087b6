"""The file planner: DESIGN §5's per-file decision table, turned into ordered actions.

It serves both scopes: the workspace (paths relative to the workspace) and the host (each group
of files relative to its own existing base directory, e.g. the tools dir or the units dir).

For each payload file, with R = the hash our receipt says we wrote, D = what is on disk and
N = the new file: absent -> write; D == N -> nothing; D == R -> replace; D != R -> keep the
user's file and write ours beside it as ``<file>.mam-new``; present but not ours -> adopt it if it
matches a released version (legacy install, or the current one), else ``.mam-new``; symlinks are
never written through. Conflicts are all found here, before anything is touched.

What the user decided is carried from run to run (receipt schema 2): an edit stays the user's
until a release changes the file, a deletion stays deleted until ``restore``, and a conflict
stays pending until ``resolve`` or until the user settles it by hand (``.mam-new`` moved over the
file, or deleted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .._errors import ConflictError
from .._inspect import Walker
from .._noop import Seen
from ..actions._file_actions import (
    CreateDirectory,
    Decision,
    KeepFile,
    RemoveDirectory,
    RemoveFile,
    ReplaceFile,
    WriteFile,
    owned_key,
)
from ..engine import _fsops as fsops
from ..engine._action import Action
from ..engine._plan import Receipt
from ..release._manifest import NEW_SUFFIX, Manifest


@dataclass(frozen=True)
class PlannedFile:
    """One file to lay down: where (relative to the root), what, and which staged file has it."""

    path: str
    sha256: str
    mode: int
    source: str


OnConflict = Literal["beside", "keep", "take-new", "error"]
Look = Callable[[str], fsops.PathState]  # what is at a path below the planner's root


@dataclass(frozen=True)
class Previous:
    """What an earlier run left in our care, and what the user decided; empty for a first
    install. ``files`` maps each file of ours to the hash mam wrote (or last offered)."""

    version: str | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    dirs: frozenset[str] = frozenset()
    decisions: Mapping[str, Decision] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_receipt(cls, receipt: Receipt | None) -> Previous:
        if receipt is None:
            return cls()
        decisions: dict[str, Decision] = {}
        versions: dict[str, str] = {}
        for action in receipt.plan.actions:
            pair = action.owned() if action.state == "completed" else None
            if pair is None:
                continue
            decisions[pair[0]] = getattr(action, "decision", "")
            versions[pair[0]] = getattr(action, "version", "") or receipt.plan.payload_version
        return cls(
            version=receipt.plan.payload_version,
            files=receipt.owned_files(),
            dirs=frozenset(receipt.owned_dirs()),
            decisions=decisions,
            versions=versions,
        )


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass
class _Planner:
    """One planning pass over a scope's files: the actions and conflicts it found."""

    root: Path
    base: str | None
    previous: Previous
    legacy: Mapping[str, Mapping[str, str]]
    look: Look  # every observation of the disk the plan rests on goes through here
    version: str = ""
    on_conflict: OnConflict = "beside"
    restore: frozenset[str] = frozenset()
    actions: list[Action] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def _ours(self, path: str) -> str | None:
        return self.previous.files.get(owned_key(path, self.base))

    def _decision(self, path: str) -> Decision:
        return self.previous.decisions.get(owned_key(path, self.base), "")

    def _version_of(self, path: str) -> str:
        return self.previous.versions.get(owned_key(path, self.base), "")

    def plan(self, entries: tuple[PlannedFile, ...]) -> list[Action]:
        blocked = self._plan_directories(entries)
        for entry in entries:
            self._plan_file(entry, blocked)
        if self.conflicts:
            raise ConflictError(
                f"{len(self.conflicts)} file(s) differ from both mam's and the new version: "
                f"{', '.join(str(self.root / p) for p in self.conflicts)}; nothing was changed. "
                "Decide with `--on-conflict keep` or `--on-conflict take-new`, or run without "
                "--on-conflict to get ours beside yours as .mam-new"
            )
        self._plan_dropped({e.path for e in entries})
        return self.actions

    def _plan_directories(self, entries: tuple[PlannedFile, ...]) -> dict[str, str]:
        """Create missing parent dirs in order; return dir -> reason for dirs we cannot use."""
        blocked: dict[str, str] = {}
        # Parents first, then by name: the receipt lists them in one order whatever the hash seed.
        wanted = sorted({d for e in entries for d in _parents(e.path)},
                        key=lambda d: (d.count("/"), d))
        for directory in wanted:
            if any(directory.startswith(b + "/") for b in blocked):
                continue
            state = self.look(directory)
            if state.kind == "absent":
                self.actions.append(CreateDirectory(path=directory, base=self.base))
            elif state.kind in ("symlink", "symlinked-parent"):
                blocked[directory] = "symlinked-parent"
            elif state.kind in ("file", "blocked-parent"):
                blocked[directory] = "not-a-file"
            elif owned_key(directory, self.base) in self.previous.dirs:
                action = CreateDirectory(path=directory, base=self.base)
                action.state, action.carried = "completed", True
                self.actions.append(action)
        return blocked

    def _keep(self, path: str, reason: str, **extra: object) -> KeepFile:
        action = KeepFile(path=path, reason=reason, base=self.base, **extra)  # type: ignore[arg-type]
        action.state = "completed" if action.owned_sha256 else "skipped"
        action.carried = True
        self.actions.append(action)
        return action

    def _settled(self, path: str, disk: fsops.PathState) -> tuple[str | None, Decision]:
        """Our hash and the user's decision for ``path``, with a conflict the user settled by
        hand recognised: ``.mam-new`` gone, and the file now ours (moved over) or theirs."""
        ours, decision = self._ours(path), self._decision(path)
        pending = self._ours(path + NEW_SUFFIX)
        settled = pending is not None and (
            self.look(path + NEW_SUFFIX).kind == "absent"
        )
        if decision == "conflict" and pending is not None and settled:
            return pending, "took-new" if disk.sha256 == pending else "kept-mine"
        return ours, decision

    def _plan_file(self, entry: PlannedFile, blocked: Mapping[str, str]) -> None:
        path, new = entry.path, entry.sha256
        for directory in _parents(path):
            if directory in blocked:
                self._keep(path, blocked[directory], pre_existed=True)
                return
        disk = self.look(path)
        ours, decision = self._settled(path, disk)
        version = self._version_of(path) or self.version
        if disk.kind in ("symlink", "symlinked-parent"):
            self._keep(path, disk.kind)
        elif disk.kind == "blocked-parent":
            self._keep(path, "not-a-file")
        elif disk.kind == "absent":
            if ours is None or path in self.restore:
                self._write(entry, path, "new file" if ours is None else "restored as you asked")
            else:
                # dpkg keeps a deleted conffile deleted: so do we, until `restore PATH`.
                self._keep(path, "user-deleted", owned_sha256=ours, decision="deleted",
                           version=version, pre_existed=False)
        elif disk.kind == "other":
            self._beside(entry, "not-a-file", disk.sha256, None, "")
        elif disk.sha256 == new:
            self._keep(path, "up-to-date" if ours is not None else "adopted", disk_sha256=new,
                       owned_sha256=new, version=self.version, pre_existed=ours is None,
                       adopted_from=self.version if ours is None else None)
        elif ours is not None and disk.sha256 == ours:
            self._replace(entry, path, ours, adopted_from=None)
        elif ours is None and disk.sha256 in self.legacy.get(path, {}):
            assert disk.sha256 is not None
            self._replace(entry, path, disk.sha256, adopted_from=self.legacy[path][disk.sha256])
        elif ours == new:
            # The user's copy and a release that did not change the file: nothing new to offer,
            # so no `.mam-new`; the edit is remembered until a release changes the file.
            pending = self._carry_pending(entry)
            kept: Decision = "conflict" if pending else (
                "kept-mine" if decision == "kept-mine" else "edited")
            self._keep(path, "kept-mine" if kept == "kept-mine" else "user-edited",
                       disk_sha256=disk.sha256, owned_sha256=ours, decision=kept, version=version,
                       new_path=entry.path + NEW_SUFFIX if pending else None)
        else:
            self._conflict(entry, "user-edited" if ours else "pre-existing", disk.sha256, ours,
                           version)

    def _conflict(
        self, entry: PlannedFile, reason: str, disk_sha256: str | None, ours: str | None,
        version: str,
    ) -> None:
        """The user's file differs from ours and from the new version: --on-conflict decides."""
        if self.on_conflict == "error":
            self.conflicts.append(entry.path)
        elif self.on_conflict == "keep":
            self._keep(entry.path, "kept-mine", disk_sha256=disk_sha256,
                       owned_sha256=entry.sha256, decision="kept-mine", version=self.version)
        elif self.on_conflict == "take-new" and disk_sha256 is not None:
            self.actions.append(ReplaceFile(
                path=entry.path, old_sha256=disk_sha256, sha256=entry.sha256, mode=entry.mode,
                source=entry.source, for_path=entry.path, base=self.base, version=self.version,
                reason="--on-conflict take-new: yours is kept in this run's backup",
            ))
        else:
            self._beside(entry, reason, disk_sha256, ours, version)

    def _carry_pending(self, entry: PlannedFile) -> bool:
        """Keep a `.mam-new` of ours that still waits for the user in our care; True if one."""
        new_path = entry.path + NEW_SUFFIX
        ours = self._ours(new_path)
        if ours is None:
            return False
        disk = self.look(new_path)
        if disk.kind == "file" and disk.sha256 == ours:
            self._keep(new_path, "pending", disk_sha256=ours, owned_sha256=ours,
                       version=self._version_of(new_path))
            return True
        return False

    def _write(self, entry: PlannedFile, path: str, reason: str) -> None:
        self.actions.append(
            WriteFile(
                path=path,
                sha256=entry.sha256,
                mode=entry.mode,
                source=entry.source,
                for_path=entry.path,
                reason=reason,
                base=self.base,
                version=self.version,
            )
        )

    def _replace(
        self, entry: PlannedFile, path: str, old: str, *, adopted_from: str | None
    ) -> None:
        reason = (
            f"installed by mam {adopted_from}, adopted" if adopted_from else "unchanged by you"
        )
        self.actions.append(
            ReplaceFile(
                path=path,
                old_sha256=old,
                sha256=entry.sha256,
                mode=entry.mode,
                source=entry.source,
                for_path=entry.path,
                adopted=adopted_from is not None,
                adopted_from=adopted_from,
                reason=reason,
                base=self.base,
                version=self.version,
            )
        )

    def _beside(
        self, entry: PlannedFile, reason: str, disk_sha256: str | None, ours: str | None,
        version: str,
    ) -> None:
        """Keep the user's file and put ours next to it as ``<file>.mam-new`` (a conflict)."""
        new_path = entry.path + NEW_SUFFIX
        self._keep(entry.path, reason, disk_sha256=disk_sha256, new_path=new_path,
                   owned_sha256=ours, decision="conflict", version=version if ours else "")
        ours = self._ours(new_path)
        disk = self.look(new_path)
        if disk.kind == "absent":
            self._write(entry, new_path, f"beside your {entry.path}")
        elif disk.kind == "file" and disk.sha256 == entry.sha256:
            self._keep(new_path, "pending", disk_sha256=disk.sha256, owned_sha256=entry.sha256,
                       version=self.version)
        elif disk.kind == "file" and ours is not None and disk.sha256 == ours:
            self._replace(entry, new_path, ours, adopted_from=None)
        else:
            self._keep(new_path, "user-edited" if disk.kind == "file" else disk.kind)

    def _plan_dropped(self, current: set[str]) -> None:
        """Files we own that the new payload no longer has, and stale ``.mam-new`` files."""
        planned_new = {a.path for a in self.actions if isinstance(a, (WriteFile, ReplaceFile))}
        planned_new |= {a.path for a in self.actions if isinstance(a, KeepFile) and a.owned_sha256}
        prefix = owned_key("", self.base)
        for key, sha256 in sorted(self.previous.files.items()):
            if not key.startswith(prefix) or (self.base is None and key.startswith("/")):
                continue  # another base's file
            path = key[len(prefix) :]
            if path in current or path in planned_new:
                continue
            disk = self.look(path)
            if disk.kind == "file" and disk.sha256 == sha256:
                reason = (
                    "no longer needed beside its file"
                    if path.endswith(NEW_SUFFIX)
                    else "no longer part of the payload"
                )
                self.actions.append(
                    RemoveFile(path=path, sha256=sha256, reason=reason, base=self.base)
                )
            elif disk.kind != "absent":
                self._keep(path, "modified", disk_sha256=disk.sha256)
        needed = {owned_key(d, self.base) for p in current for d in _parents(p)}
        mine = {d for d in self.previous.dirs if d.startswith(prefix) and d not in needed}
        if self.base is None:
            mine = {d for d in mine if not d.startswith("/")}
        for key in sorted(mine, key=lambda d: (-d.count("/"), d)):
            self.actions.append(RemoveDirectory(path=key[len(prefix) :], base=self.base))


def plan_files(
    root: Path,
    files: tuple[PlannedFile, ...],
    previous: Previous,
    *,
    base: str | None = None,
    legacy: Mapping[str, Mapping[str, str]] | None = None,
    same_version: bool = False,  # kept for callers; a deletion is remembered whatever the version
    version: str = "",
    on_conflict: OnConflict = "beside",
    restore: frozenset[str] = frozenset(),
    seen: list[Seen] | None = None,
) -> list[Action]:
    """Inspect ``files`` below ``root`` (``base``, when given) and return the ordered actions;
    every observation made is appended to ``seen`` when given (the no-op witness, _noop)."""
    root = Path(base) if base else root
    with Walker(root) as walker:

        def look(rel: str) -> fsops.PathState:
            state = walker.inspect(rel)
            if seen is not None:
                seen.append((rel, state.kind, state.sha256))
            return state

        planner = _Planner(root, base, previous, legacy or {}, look, version, on_conflict,
                           restore)
        return planner.plan(files)


def plan_workspace(
    root: Path,
    manifest: Manifest,
    previous: Previous,
    legacy: Mapping[str, Mapping[str, str]] | None = None,
    *,
    on_conflict: OnConflict = "beside",
    restore: frozenset[str] = frozenset(),
    seen: list[Seen] | None = None,
) -> list[Action]:
    """Inspect the workspace and return the ordered actions; touches nothing."""
    files = tuple(
        PlannedFile(path=e.path, sha256=e.sha256, mode=e.mode, source=e.member)
        for e in manifest.in_scope("workspace")
    )
    return plan_files(root, files, previous, legacy=legacy, version=manifest.version,
                      on_conflict=on_conflict, restore=restore, seen=seen)


def plan_uninstall(root: Path, receipt: Receipt) -> list[Action]:
    """Remove what the receipt says we wrote and that is still pristine, then our empty dirs."""
    actions: list[Action] = []
    owned = [a for a in receipt.plan.actions if a.state == "completed" and a.owned() is not None]
    created = [
        a for a in receipt.plan.actions if isinstance(a, CreateDirectory) and a.state == "completed"
    ]
    for action in reversed(owned):
        path, base = getattr(action, "path"), getattr(action, "base", None)  # noqa: B009
        sha256 = action.owned()[1]  # type: ignore[index]
        disk = fsops.inspect(Path(base) if base else root, path)
        if disk.kind == "file" and disk.sha256 == sha256:
            actions.append(RemoveFile(path=path, sha256=sha256, reason="uninstall", base=base))
        elif disk.kind != "absent":
            keep = KeepFile(path=path, reason="modified", disk_sha256=disk.sha256, base=base)
            keep.state = "skipped"
            actions.append(keep)
    for directory in sorted(created, key=lambda a: -a.path.count("/")):
        actions.append(RemoveDirectory(path=directory.path, base=directory.base))
    return actions
