# Copyright: mam-install contributors
# MIT License (see galaxy.yml)
"""Read mam-install's ``--json`` documents into what an Ansible module reports.

Pure functions over parsed JSON, no Ansible imports, so the mapping is tested on its own.
The documents are read by their documented keys only and defensively: mam-install's result
documents are growing (typed results, a receipt that remembers user decisions), so an absent
or unexpected key degrades to "nothing to report" and never to a crash or a false "changed".
"""

# `changes` groups of an install/upgrade result, and what each does to the disk.
WRITING_GROUPS = ("write", "replace", "adopt", "beside", "remove", "rc_files")
# `changes` groups that name files left exactly as they were: no decision worth showing.
QUIET_GROUPS = ("unchanged",)
# Action states of a plan (DESIGN section 3) that a run would still execute.
PENDING_STATES = ("uncompleted", "progress")
# keep_file reasons that are no decision worth showing: the file is simply as it should be.
QUIET_KEEP_REASONS = ("up-to-date", "pending")
_VERBS = {
    "write_file": "write",
    "replace_file": "replace",
    "remove_file": "remove",
    "create_directory": "create directory",
    "remove_directory": "remove directory if empty",
    "add_rc_block": "add PATH block",
    "remove_rc_block": "remove PATH block",
    "run_command": "run",
}


def as_dict(value):
    return value if isinstance(value, dict) else {}


def as_list(value):
    return value if isinstance(value, list) else []


def scope_documents(document):
    """[(scope, sub-document)] of a result: the workspace part, then the host part if any."""
    document = as_dict(document)
    if isinstance(document.get("scopes"), dict):  # schema mam-install/2: one entry per scope
        return [(name, as_dict(document["scopes"][name]))
                for name in ("workspace", "host") if name in document["scopes"]]
    scopes = []
    if document.get("scope") != "host":
        scopes.append(("workspace", document))
    host = document.get("host_plan")
    if not isinstance(host, dict):
        host = document.get("host") if isinstance(document.get("host"), dict) else None
        # A plan's "host" is the detected machine record, not a host-scope result.
        if host is not None and not any(k in host for k in ("changes", "actions", "plan", "steps")):
            host = None
    if document.get("scope") == "host":
        host = document
    if host is not None:
        scopes.append(("host", host))
    return scopes


def _changes_decisions(scope, doc):
    decisions = []
    for group, paths in sorted(as_dict(doc.get("changes")).items()):
        if group in QUIET_GROUPS:
            continue
        if group == "commands":
            for command in as_list(paths):
                decisions.append(
                    {"scope": scope, "path": None, "decision": "run", "reason": str(command)})
            continue
        for path in as_list(paths):
            decisions.append({"scope": scope, "path": str(path), "decision": group, "reason": None})
    return decisions


def _action_decision(scope, action):
    """One plan action as a per-file decision, or None when it is nothing to show."""
    action = as_dict(action)
    tag = action.get("tag")
    pending = action.get("state") in PENDING_STATES
    path = action.get("path") or action.get("for_path")
    if isinstance(path, str) and isinstance(action.get("base"), str) and not path.startswith("/"):
        path = action["base"].rstrip("/") + "/" + path  # a host-scope path, relative to its base
    reason = action.get("reason")
    if tag == "keep_file":
        if reason in QUIET_KEEP_REASONS or not reason:
            return None
        decision = "keep"
        if action.get("new_path"):
            reason = f"yours kept ({reason}); ours goes to {action.get('new_path')}"
    elif not pending:
        return None
    elif tag == "write_file" and str(path).endswith(".mam-new"):
        decision = "beside"
    elif tag == "replace_file" and action.get("adopted"):
        decision = "adopt"
    elif tag == "run_command":
        decision, path = "run", None
        reason = " ".join(str(a) for a in as_list(action.get("argv")))
    else:
        decision = _VERBS.get(tag, str(tag))
    return {"scope": scope, "path": None if path is None else str(path), "decision": decision,
            "reason": reason}


def _plan_actions(doc):
    actions = doc.get("actions")
    if not isinstance(actions, list):
        actions = as_dict(doc.get("plan")).get("actions")
    return actions if isinstance(actions, list) else None


def decisions_of(document):
    """Every per-file decision a result or plan document names, workspace first."""
    decisions = []
    for scope, doc in scope_documents(document):
        # A schema-2 dry run carries its plan too: its actions say why, as plan --json did.
        planned = doc.get("reason") == "dry run" and _plan_actions(doc) is not None
        if isinstance(doc.get("changes"), dict) and not planned:
            decisions.extend(_changes_decisions(scope, doc))
            continue
        for action in as_list(_plan_actions(doc)):
            decision = _action_decision(scope, action)
            if decision is not None:
                decisions.append(decision)
    return decisions


def result_changed(document):
    """Whether an install/upgrade/uninstall run wrote or removed something."""
    for _scope, doc in scope_documents(document):
        if doc.get("dry_run") is True:
            continue
        if isinstance(doc.get("applied"), bool):
            if doc["applied"]:
                return True
            continue
        groups = as_dict(doc.get("changes"))
        if any(as_list(groups.get(g)) for g in WRITING_GROUPS) or as_list(doc.get("removed")):
            return True
    return False


def plan_would_change(document):
    """Whether a plan (plan --json, or a --dry-run result) has anything left to execute."""
    for _scope, doc in scope_documents(document):
        actions = _plan_actions(doc)
        if actions is not None and "changes" not in doc:
            if any(as_dict(a).get("state") in PENDING_STATES for a in actions):
                return True
        elif as_list(doc.get("steps")):
            return True
    return False


def mam_new_files(decisions):
    """The `.mam-new` files a run wrote (or would write) beside files the user owns."""
    found = []
    for item in decisions:
        if item["decision"] != "beside" or item["path"] is None:
            continue
        path = item["path"]
        found.append(path if path.endswith(".mam-new") else path + ".mam-new")
    return sorted(set(found))


def render_diff(decisions, header):
    """Per-file decisions as the text Ansible's diff mode prints."""
    lines = [header]
    for item in decisions:
        what = item["path"] or ""
        if item["reason"]:
            what = f"{what} ({item['reason']})" if what else item["reason"]
        lines.append(f"  {item['scope']:<10} {item['decision']:<26} {what}")
    if len(lines) == 1:
        lines.append("  nothing to do")
    return "\n".join(lines) + "\n"


def payload_version(document):
    """The installed version a status document names (schema 2: in its scope's entry)."""
    for _scope, doc in scope_documents(document):
        if isinstance(doc.get("payload_version"), str):
            return doc["payload_version"]
    return None


def file_states(document):
    """{path: state} from a status document ("files" as a mapping, or a list of entries;
    schema 2: each scope's "states")."""
    if isinstance(as_dict(document).get("scopes"), dict):
        states = {}
        for _scope, doc in scope_documents(document):
            states.update((str(k), _state_text(v)) for k, v in as_dict(doc.get("states")).items())
        return states
    files = as_dict(document).get("files")
    if isinstance(files, dict):
        return dict((str(k), _state_text(v)) for k, v in files.items())
    states = {}
    for entry in as_list(files):
        entry = as_dict(entry)
        if "path" in entry:
            states[str(entry["path"])] = _state_text(entry.get("state", entry.get("status")))
    return states


def _state_text(value):
    if isinstance(value, dict):
        value = value.get("state", value.get("status"))
    return None if value is None else str(value)


def missing_receipt(document, exists):
    """True when the error is a documented "no receipt at PATH" and PATH truly does not exist.

    A receipt that exists but cannot be read is an integrity failure, never "not installed":
    ``exists`` (a path test on the managed host) makes that distinction, not the wording.
    """
    error = as_dict(document).get("error")
    if not isinstance(error, str) or " receipt at " not in error:
        return False
    path = error.split(" receipt at ", 1)[1].split(":", 1)[0].strip()
    return path.startswith("/") and not exists(path)
