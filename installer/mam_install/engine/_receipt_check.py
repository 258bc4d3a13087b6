"""The receipt is input, not truth: every field and path in it checked before anything uses it.

A receipt lives in ``.mam/``, which arrives with a ``git clone`` like any other file, so it is
parsed as strictly as a release manifest (DESIGN §1.6). What a check refuses is a ReceiptError
(exit 6), raised before any command has touched anything:

- every field has its declared type (``mode`` is an int, ``adopted`` a bool, ``argv`` a list of
  strings), every hash is 64 lowercase hex digits, every version is a version;
- every path is relative, without ``..`` or empty parts, and inside its scope's allowlist:
  ``.agents/``, ``AGENT.md``, ``.env.example`` and their ``.mam-new`` in a workspace; the host
  layout's own directories on the host; every ``base`` is the layout's own root;
- the run's backup and archived receipt are generated names (``backup/<run-id>``,
  ``receipts/<version>.json``), never paths.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from .._errors import ReceiptError
from .._hashing import is_sha256_hex
from ..machine._layout import ScopeLayout
from ..release._manifest import NEW_SUFFIX, WORKSPACE_DIRS, WORKSPACE_FILES, check_relative_path

RUN_ID = re.compile(r"^\d{8}T\d{6}Z-\d{1,10}$")
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_!-]{0,63}$")
RUN_STATUSES = ("in-progress", "rolling-back", "complete", "rolled-back")
HASH_FIELDS = ("sha256", "old_sha256", "disk_sha256", "owned_sha256", "their_sha256")
PATH_FIELDS = ("path", "new_path", "for_path")
# The commands a host receipt may run on uninstall or rollback: the user's service managers.
HOST_COMMANDS = ("systemctl", "launchctl")


def _refuse(origin: str, what: str) -> ReceiptError:
    return ReceiptError(
        f"{origin}: {what}; a receipt is input like any file of a clone, and this one is not "
        "one mam-install wrote. Nothing was changed: move the state directory aside (it is "
        "machine state, never committed) and run `mam-install install` to adopt what is there"
    )


def check_version(value: object, field: str, origin: str) -> str:
    if not isinstance(value, str) or not VERSION.match(value):
        raise _refuse(origin, f"{field} {str(value)[:80]!r} is not a version")
    return value


def check_run(run: object, origin: str) -> None:
    """The run record: its id, status, and the generated names of its backup and archive."""
    if not isinstance(run, dict):
        raise _refuse(origin, "run is not an object")
    run_id = run.get("id")
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise _refuse(origin, f"run id {str(run_id)[:80]!r} is not a run id")
    if run.get("status", "in-progress") not in RUN_STATUSES:
        raise _refuse(origin, f"run status {str(run.get('status'))[:80]!r} is unknown")
    for key in ("started", "finished"):
        if not isinstance(run.get(key, ""), str):
            raise _refuse(origin, f"run {key} is not a string")
    backup = run.get("backup")
    if backup is not None and backup != f"backup/{run_id}":
        raise _refuse(origin, f"run backup {str(backup)[:80]!r} is not backup/{run_id}")
    previous = run.get("previous_receipt")
    if previous is not None:
        name = previous[len("receipts/") : -len(".json")] if isinstance(previous, str) else ""
        if not (
            isinstance(previous, str)
            and previous.startswith("receipts/")
            and previous.endswith(".json")
            and VERSION.match(name)
        ):
            raise _refuse(origin, f"run previous_receipt {str(previous)[:80]!r} is not "
                          "receipts/<version>.json")


def _in_workspace_allowlist(path: str) -> bool:
    name = path[: -len(NEW_SUFFIX)] if path.endswith(NEW_SUFFIX) else path
    return (
        name in WORKSPACE_FILES
        or path.startswith(WORKSPACE_DIRS)
        or path in (d.rstrip("/") for d in WORKSPACE_DIRS)
    )


def _in_host_dirs(path: str, dirs: tuple[str, ...], *, ancestors: bool) -> bool:
    absolute = "/" + path
    for directory in dirs:
        top = directory.rstrip("/")
        if absolute == top or absolute.startswith(top + "/"):
            return True
        if ancestors and top.startswith(absolute + "/"):
            return True  # a parent we created on the way to one of them
    return False


def _check_relative(value: str, field: str, origin: str) -> None:
    try:
        check_relative_path(value, origin)
    except Exception as exc:  # IntegrityError: but a bad receipt is exit 6, not 5
        raise _refuse(origin, f"{field} {value[:80]!r} is not a plain relative path") from exc


def _check_absolute(value: str, field: str, origin: str) -> None:
    if not value.startswith("/") or posixpath.normpath(value) != value or "\x00" in value:
        raise _refuse(origin, f"{field} {value[:80]!r} is not a normalised absolute path")


def check_action_paths(doc: Mapping[str, Any], layout: ScopeLayout, origin: str) -> None:
    """Hashes, paths and bases of one (already type-checked) action entry."""
    tag = doc["tag"]
    for key in HASH_FIELDS:
        value = doc.get(key)
        if value is not None and not is_sha256_hex(value):
            raise _refuse(origin, f"{tag} {key} {str(value)[:80]!r} is not a sha256")
    for key in ("version", "adopted_from"):
        value = doc.get(key)
        if value:
            check_version(value, f"{tag} {key}", origin)
    mode = doc.get("mode")
    if mode is not None and not 0 <= mode <= 0o7777:
        raise _refuse(origin, f"{tag} mode {mode!r} is not a file mode")
    if tag == "run_command":
        for key in ("argv", "revert_argv"):
            argv = doc.get(key) or []
            if (key == "argv" and not argv) or (argv and argv[0] not in HOST_COMMANDS):
                raise _refuse(origin, f"run_command {key} {argv!r} is not a service manager call")
        if layout.scope != "host":
            raise _refuse(origin, "run_command in a workspace receipt")
        return
    if tag in ("add_rc_block", "remove_rc_block"):
        if layout.scope != "host":
            raise _refuse(origin, f"{tag} in a workspace receipt")
        _check_absolute(doc["path"], "path", origin)
        _check_absolute(doc["env_script"], "env_script", origin)
        if doc["base"]:
            _check_absolute(doc["base"], "base", origin)
        return
    expected_base = "/" if layout.scope == "host" else None
    if doc.get("base") != expected_base:
        raise _refuse(origin, f"{tag} base {str(doc.get('base'))[:80]!r} is not the scope's root")
    directory = tag in ("create_directory", "remove_directory")
    for key in PATH_FIELDS:
        value = doc.get(key)
        if value is None:
            continue
        _check_relative(value, key, origin)
        if layout.scope == "workspace":
            allowed = _in_workspace_allowlist(value)
        else:
            allowed = _in_host_dirs(value, layout.host_dirs, ancestors=directory)
        if not allowed:
            raise _refuse(origin, f"{tag} {key} {value[:80]!r} is outside the {layout.scope} "
                          "allowlist")


def check_top_level(doc: Mapping[str, Any], layout: ScopeLayout, origin: str) -> None:
    if doc.get("scope") != layout.scope:
        raise _refuse(origin, f"scope {str(doc.get('scope'))[:40]!r} is not {layout.scope!r}")
    check_version(doc.get("installer_version"), "installer_version", origin)
    check_version(doc.get("payload_version"), "payload_version", origin)
    for key in ("source", "settings", "host"):
        if not isinstance(doc.get(key) or {}, dict):
            raise _refuse(origin, f"{key} is not an object")
    if not isinstance(doc.get("actions"), list):
        raise _refuse(origin, "actions is not a list")
    check_run(doc.get("run"), origin)
