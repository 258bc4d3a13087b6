"""InstallPlan and Receipt: the plan as data, and the executed plan kept on disk.

A receipt is a file format. Its ``schema_version`` only grows; readers migrate every older
version explicitly (fixtures of each released version live in tests/data/receipts/) and refuse
newer ones with a message naming the installer to use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ReceiptError
from ..machine._layout import RECEIPT_NAME, ScopeLayout
from ..release._manifest import Scope, load_json_strict
from ._action import Action, action_from_json
from ._fsops import write_atomic, write_atomic_at
from ._receipt_check import VERSION, check_action_paths, check_top_level
from ._state_dir import read_state_file

RECEIPT_SCHEMA = 2
RECEIPT_KIND = "mam-install-receipt"


@dataclass
class RunInfo:
    """The run that wrote a receipt: how far it got, and what it can be undone with."""

    id: str
    status: str = "in-progress"  # in-progress | complete | rolled-back
    started: str = ""
    finished: str = ""
    previous_receipt: str | None = None  # relative to the scope's state dir
    backup: str | None = None  # relative to the scope's state dir

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class InstallPlan:
    """What one scope's run will do: its actions, and what they were planned from."""

    scope: Scope
    installer_version: str
    payload_version: str
    source: dict[str, Any]
    settings: dict[str, Any]
    host: dict[str, Any]
    actions: list[Action] = field(default_factory=list)
    schema_version: int = RECEIPT_SCHEMA

    def pending(self) -> Iterator[Action]:
        return (a for a in self.actions if a.needs_execute)

    @property
    def is_noop(self) -> bool:
        return not any(a.needs_execute for a in self.actions)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": RECEIPT_KIND,
            "schema_version": self.schema_version,
            "scope": self.scope,
            "installer_version": self.installer_version,
            "payload_version": self.payload_version,
            "source": self.source,
            "settings": self.settings,
            "host": self.host,
            "actions": [a.to_json() for a in self.actions],
        }


@dataclass
class Receipt:
    """A plan with the record of its run: what was written to the receipt file."""

    plan: InstallPlan
    run: RunInfo

    def to_json(self) -> dict[str, Any]:
        doc = self.plan.to_json()
        doc["run"] = self.run.to_json()
        return doc

    def owned_files(self) -> dict[str, str]:
        """Files in our care: only completed actions count (an interrupted run is not trusted)."""
        owned: dict[str, str] = {}
        for action in self.plan.actions:
            if action.state == "completed":
                pair = action.owned()
                if pair is not None:
                    owned[pair[0]] = pair[1]
        return owned

    def owned_dirs(self) -> list[str]:
        """Directories we created (relative in the workspace, absolute on the host)."""
        dirs = []
        for action in self.plan.actions:
            if action.tag == "create_directory" and action.state == "completed":
                path, base = getattr(action, "path", ""), getattr(action, "base", None)
                dirs.append(f"{base.rstrip('/')}/{path}" if base else path)
        return dirs


def write_receipt(
    path: Path, receipt: Receipt, *, durable: bool = True, anchor: Path | None = None
) -> None:
    """Rewrite the receipt atomically (``durable=False`` skips the fsyncs; see _transaction).

    With ``anchor`` (the scope's root) every directory on the way from it is opened without
    following a symlink. The durable writes (a run's first and last) are indented for people;
    the ones in between are compact, which lets json use its C encoder.
    """
    doc = receipt.to_json()
    if durable:
        data = json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
    else:
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    if anchor is None:
        write_atomic(path, data, 0o644, durable=durable)
    else:
        write_atomic_at(anchor, str(path.relative_to(anchor)), data, 0o644, durable=durable)


def _migrate(doc: dict[str, Any], origin: str) -> dict[str, Any]:
    """Bring an older receipt up to RECEIPT_SCHEMA, one version step at a time."""
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReceiptError(f"{origin}: no valid schema_version; it is not a mam-install receipt")
    if version > RECEIPT_SCHEMA:
        made_by = doc.get("installer_version")
        made_by = made_by if isinstance(made_by, str) and VERSION.match(made_by) else "newer"
        raise ReceiptError(
            f"{origin}: receipt schema {version} was written by mam-install {made_by}; "
            f"this is an older mam-install (schema {RECEIPT_SCHEMA}): use mam-install {made_by} "
            "or newer"
        )
    if version == 1:
        doc = _migrate_1_to_2(doc)
    return doc


def _migrate_1_to_2(doc: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 records per file the version mam wrote and what the user decided. Schema 1 knew
    a decision only from a kept file's reason, and an edit or deletion only for one run."""
    version = doc.get("payload_version")
    actions = []
    entries = doc.get("actions")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            entry = dict(entry)
            tag, reason = entry.get("tag"), entry.get("reason")
            if tag in ("write_file", "replace_file"):
                entry.setdefault("version", version)
            elif tag == "keep_file" and reason in ("user-edited", "pre-existing"):
                entry.setdefault("decision", "conflict" if entry.get("new_path") else "edited")
            elif tag == "keep_file" and reason == "user-deleted":
                entry.setdefault("decision", "deleted")
        actions.append(entry)
    return {**doc, "actions": actions, "schema_version": 2}


def read_receipt(layout: ScopeLayout, archived: str | None = None) -> Receipt | None:
    """Read the scope's receipt (or an ``archived`` one, ``receipts/<version>.json``); None when
    there is none. Anything unreadable, or failing a check of _receipt_check, is a ReceiptError:
    a receipt is input like any file of a clone (DESIGN §1.6)."""
    return read_receipt_bytes(layout, archived)[0]


def read_receipt_bytes(
    layout: ScopeLayout, archived: str | None = None
) -> tuple[Receipt | None, bytes]:
    """`read_receipt`, with the very bytes it checked (b"" when there is none)."""
    rel = archived or RECEIPT_NAME
    origin = str(layout.state_dir / rel)
    raw = read_state_file(layout, rel)
    if raw is None:
        return None, b""
    try:
        doc = load_json_strict(raw, origin, ValueError)
    except ValueError as exc:
        raise ReceiptError(
            f"{exc}; move it aside and run `mam-install install` again to adopt the files "
            "that are there"
        ) from None
    if not isinstance(doc, dict) or doc.get("kind") != RECEIPT_KIND:
        raise ReceiptError(f"{origin}: not a mam-install receipt")
    doc = _migrate(doc, origin)
    check_top_level(doc, layout, origin)
    actions = []
    for entry in doc["actions"]:
        action = action_from_json(entry, origin)
        check_action_paths(entry, layout, origin)
        actions.append(action)
    run_doc = doc["run"]
    unknown = set(run_doc) - set(RunInfo.__dataclass_fields__)
    if unknown:
        raise ReceiptError(f"{origin}: run has unknown fields {sorted(unknown)}")
    run = RunInfo(**run_doc)
    plan = InstallPlan(
        scope=layout.scope,
        installer_version=doc["installer_version"],
        payload_version=doc["payload_version"],
        source=dict(doc.get("source") or {}),
        settings=dict(doc.get("settings") or {}),
        host=dict(doc.get("host") or {}),
        actions=actions,
        schema_version=RECEIPT_SCHEMA,
    )
    return Receipt(plan=plan, run=run), raw
