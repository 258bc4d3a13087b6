#!/usr/bin/python
# Copyright: mam-install contributors
# MIT License (see galaxy.yml)
"""Run mam-install.pyz on the managed host and report its JSON document the Ansible way."""

DOCUMENTATION = r"""
module: mam_install
short_description: Install, upgrade, remove or report multi-agent-mux (mam) with mam-install
version_added: "0.1.0"
description:
  - Runs C(mam-install.pyz) on the managed host with C(--json) and maps its JSON document onto
    Ansible's conventions. The pyz verifies everything it installs; this module adds no second
    code path.
  - C(changed) is true only when the run wrote or removed something. A failed run fails the task
    with the document's error and exit code (see the exit codes in the mam-install README).
  - In check mode, I(state=present) and I(state=latest) run C(plan --json), I(state=absent) runs
    C(uninstall --dry-run --json); nothing on the host changes.
  - In diff mode the per-file decisions (write, replace, adopt, keep, beside, remove) are shown.
  - The pyz must already be on the host (the C(mam.install.mam_install) role puts it there,
    pinned by SHA-256).
author: mam-install contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  state:
    description:
      - C(present) runs C(install); C(latest) runs C(upgrade), which also adopts an install made
        by hand and refuses a downgrade; C(absent) runs C(uninstall); C(status) runs C(status)
        and returns the per-file states as the fact C(mam_install_status).
    type: str
    choices: [present, latest, absent, status]
    default: present
  workspace:
    description:
      - The project directory (C(--workspace)). It must exist.
      - Required for I(state=present) and I(state=latest).
    type: path
  host_scope:
    description:
      - Also manage the per-user host scope (tools, user units, PATH block).
      - With I(state=present) or I(state=latest) the one run installs the workspace and the host
        scope (without it the module passes C(--no-host)); with I(state=absent) it runs
        C(uninstall --host); with I(state=status) it runs C(status --host) where the pyz has it.
    type: bool
    default: false
  source:
    description:
      - Where the payload comes from (C(--from)) instead of the one inside the pyz; a release
        directory, an archive, an C(https://) release URL or a pinned git URL, as seen from the
        managed host.
    type: str
  sha256:
    description:
      - The SHA-256 that pins I(source) (C(--sha256)).
    type: str
  on_conflict:
    description:
      - How install and upgrade settle a file the user changed (C(--on-conflict)). Passed only
        when set; a pyz without that option fails the task with a message saying so.
    type: str
    choices: [keep, take-new, error]
  pyz:
    description:
      - Path of C(mam-install.pyz) on the managed host.
    type: path
    required: true
  python:
    description:
      - The interpreter that runs the pyz (CPython 3.9 or newer). Default is the interpreter
        running this module.
    type: path
  shiv_root:
    description:
      - Where the pyz unpacks its dependencies (C(SHIV_ROOT)). Default is the pyz's own default,
        C(~/.shiv).
    type: path
"""

EXAMPLES = r"""
- name: Install mam into a project and for its user
  mam.install.mam_install:
    pyz: ~/.local/share/mam-install/mam-install.pyz
    workspace: ~/src/project
    host_scope: true

- name: Upgrade, keeping the user's edited files and writing ours beside them
  mam.install.mam_install:
    pyz: ~/.local/share/mam-install/mam-install.pyz
    workspace: ~/src/project
    state: latest
    on_conflict: keep

- name: Report every file's state
  mam.install.mam_install:
    pyz: ~/.local/share/mam-install/mam-install.pyz
    workspace: ~/src/project
    state: status
  register: mam_status
"""

RETURN = r"""
exit_code:
  description:
    - The exit code of the pyz (see the mam-install README). A status that finds a modified or
      missing file exits 4 and is still a successful report.
    - A failed task carries it as C(rc) and C(exit_code).
  returned: always
  type: int
  sample: 0
cmd:
  description: The command that ran.
  returned: always
  type: list
  elements: str
document:
  description: The JSON document mam-install printed, as it printed it.
  returned: when the pyz printed one
  type: dict
decisions:
  description: The per-file decisions of the run (or of the plan, in check mode).
  returned: success, for present, latest and absent
  type: list
  elements: dict
  sample: [{"scope": "workspace", "path": "AGENT.md", "decision": "write", "reason": null}]
mam_new:
  description: The C(.mam-new) files written beside files the user owns; compare with C(diff -u).
  returned: success, for present and latest
  type: list
  elements: str
  sample: ["AGENT.md.mam-new"]
installed:
  description: Whether mam was installed in the scope (I(state=status) and I(state=absent)).
  returned: for status and absent
  type: bool
ansible_facts:
  description: Facts set by I(state=status).
  returned: for status
  type: complex
  contains:
    mam_install_status:
      description: C({workspace, installed, healthy, payload_version, files, host}); C(files) maps
        each path to pristine, modified, deleted, missing, pending or unknown.
      type: dict
"""

# Imports follow the documentation, as validate-modules requires.
import os  # noqa: E402
import sys  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.mam.install.plugins.module_utils import (  # noqa: E402
    mam_documents as docs,
)

# Exit codes of mam-install (its README): 4 is "something modified or missing" for status.
EXIT_USAGE = 2
EXIT_CONFLICT = 4
EXIT_RECEIPT = 6


class MamRun:
    """Runs the pyz once with --json and keeps what it said."""

    def __init__(self, module):
        self.module = module
        params = module.params
        self.python = params["python"] or sys.executable
        self.env = {"CI": "1", "NO_COLOR": "1"}
        if params["shiv_root"]:
            self.env["SHIV_ROOT"] = params["shiv_root"]

    def run(self, argv):
        cmd = [self.python, self.module.params["pyz"], "--json", *argv]
        rc, out, err = self.module.run_command(cmd, environ_update=self.env, check_rc=False)
        document = None
        try:
            document = self.module.from_json(out) if out.strip() else None
        except ValueError:
            document = None
        if not isinstance(document, dict) and rc == EXIT_USAGE and "no such option" in err.lower():
            document = {"error": _tail(err)}  # click refused an option before mam-install ran
        if not isinstance(document, dict):
            self.module.fail_json(
                msg=f"mam-install printed no JSON document (exit {rc}): {_tail(err or out)}",
                rc=rc, cmd=cmd, stderr=err, stdout=out,
            )
        return rc, document, err, cmd

    def fail(self, rc, document, err, cmd, **extra):
        error = document.get("error") or _tail(err) or f"mam-install exited {rc}"
        if rc == EXIT_USAGE and "no such option" in (str(error) + err).lower():
            error = (f"{self.module.params['pyz']} does not know an option this task passed "
                     f"({_tail(err) or error}); place a newer mam-install.pyz on the host, "
                     "or drop the option")
        self.module.fail_json(msg=error, rc=rc, exit_code=rc, cmd=cmd, document=document,
                              stderr=err, **extra)


def _tail(text, lines=5):
    return "\n".join((text or "").strip().splitlines()[-lines:])


def install_argv(params, verb):
    argv = [verb, "-y", "--workspace", params["workspace"]]
    if not params["host_scope"]:
        argv.append("--no-host")
    if params["source"]:
        argv += ["--from", params["source"]]
    if params["sha256"]:
        argv += ["--sha256", params["sha256"]]
    if params["on_conflict"]:
        argv += ["--on-conflict", params["on_conflict"]]
    return argv


def ensure_installed(module, mam):
    params = module.params
    verb = "upgrade" if params["state"] == "latest" else "install"
    if module.check_mode:
        rc, document, err, cmd = mam.run(install_argv(params, "plan"))
        changed = docs.plan_would_change(document)
    else:
        rc, document, err, cmd = mam.run(install_argv(params, verb))
        changed = docs.result_changed(document)
    if rc != 0:
        mam.fail(rc, document, err, cmd)
    decisions = docs.decisions_of(document)
    mam_new = docs.mam_new_files(decisions)
    for path in mam_new:
        mine = path[: -len(".mam-new")]
        if module.check_mode:
            module.warn(f"{mine} in {params['workspace']} is the user's and would be kept; "
                        f"ours would go beside it as {path}")
        else:
            module.warn(f"{mine} in {params['workspace']} is the user's and was kept; "
                        f"ours is beside it as {path}")
    results = dict(changed=changed, exit_code=rc, cmd=cmd, document=document,
                   decisions=decisions, mam_new=mam_new)
    return results, decisions


def ensure_absent(module, mam):
    params = module.params
    results = {"changed": False, "exit_code": 0, "cmd": [], "decisions": [],
               "installed": False, "documents": {}}
    scopes = []
    if params["workspace"]:
        receipt = os.path.join(params["workspace"], ".mam", "install-receipt.json")
        if os.path.lexists(receipt):
            scopes.append(("workspace", ["uninstall", "-y", "--workspace", params["workspace"]]))
    if params["host_scope"]:
        scopes.append(("host", ["uninstall", "-y", "--host"]))
    for scope, argv in scopes:
        if module.check_mode:
            argv = [*argv, "--dry-run"]
        rc, document, err, cmd = mam.run(argv)
        results["cmd"] = cmd
        if rc == EXIT_RECEIPT and docs.missing_receipt(document, os.path.lexists):
            continue  # nothing of mam's in this scope: already absent
        if rc != 0:
            mam.fail(rc, document, err, cmd)
        results["installed"] = True
        results["documents"][scope] = document
        if module.check_mode:
            results["changed"] |= docs.plan_would_change(document)
        else:
            results["changed"] |= docs.result_changed(document)
        for item in docs.decisions_of(document) or _removed_decisions(scope, document):
            item["scope"] = scope
            results["decisions"].append(item)
    return results, results["decisions"]


def _removed_decisions(scope, document):
    """Decisions of an uninstall document without `changes`: its removed/kept lists, or steps."""
    found = [{"scope": scope, "path": str(p), "decision": "remove", "reason": None}
             for p in docs.as_list(document.get("removed"))]
    found += [{"scope": scope, "path": str(p), "decision": "keep", "reason": "yours"}
              for p in docs.as_list(document.get("kept"))]
    if not found:
        found = [{"scope": scope, "path": None, "decision": "step", "reason": str(s)}
                 for s in docs.as_list(document.get("steps"))]
    return found


def report_status(module, mam):
    params = module.params
    status = {"workspace": params["workspace"], "installed": False, "healthy": None,
              "payload_version": None, "files": {}, "host": None}
    results = {"changed": False, "exit_code": 0, "cmd": []}
    if params["workspace"]:
        rc, document, err, cmd = mam.run(["status", "--workspace", params["workspace"]])
        results.update(exit_code=rc, cmd=cmd, document=document)
        if rc == EXIT_RECEIPT and docs.missing_receipt(document, os.path.lexists):
            status["healthy"] = False
        elif rc in (0, EXIT_CONFLICT):
            status.update(installed=True, healthy=rc == 0, files=docs.file_states(document),
                          payload_version=docs.payload_version(document))
        else:
            mam.fail(rc, document, err, cmd)
    if params["host_scope"]:
        status["host"] = host_status(mam)
    results["installed"] = status["installed"]
    results["ansible_facts"] = {"mam_install_status": status}
    return results


def host_status(mam):
    rc, document, err, cmd = mam.run(["status", "--host"])
    if rc == EXIT_USAGE and "no such option" in (str(document.get("error")) + err).lower():
        return {"available": False, "installed": None, "healthy": None, "files": {},
                "reason": "this mam-install has no `status --host`"}
    if rc == EXIT_RECEIPT and docs.missing_receipt(document, os.path.lexists):
        return {"available": True, "installed": False, "healthy": False, "files": {}}
    if rc not in (0, EXIT_CONFLICT):
        mam.fail(rc, document, err, cmd)
    return {"available": True, "installed": True, "healthy": rc == 0,
            "files": docs.file_states(document), "payload_version": docs.payload_version(document)}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="present",
                       choices=["present", "latest", "absent", "status"]),
            workspace=dict(type="path"),
            host_scope=dict(type="bool", default=False),
            source=dict(type="str"),
            sha256=dict(type="str"),
            on_conflict=dict(type="str", choices=["keep", "take-new", "error"]),
            pyz=dict(type="path", required=True),
            python=dict(type="path"),
            shiv_root=dict(type="path"),
        ),
        required_if=[
            ("state", "present", ("workspace",)),
            ("state", "latest", ("workspace",)),
            ("state", "absent", ("workspace", "host_scope"), True),
            ("state", "status", ("workspace", "host_scope"), True),
        ],
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isfile(params["pyz"]):
        module.fail_json(msg=f"no mam-install.pyz at {params['pyz']}: put it there first (the "
                             "mam.install.mam_install role does, pinned by SHA-256)")
    installing = params["state"] in ("present", "latest")
    if installing and not os.path.isdir(params["workspace"]):
        module.fail_json(msg=f"workspace {params['workspace']} is not a directory on this host; "
                             "mam installs into an existing project")
    mam = MamRun(module)
    if params["state"] == "status":
        module.exit_json(**report_status(module, mam))
    if params["state"] == "absent":
        results, decisions = ensure_absent(module, mam)
    else:
        results, decisions = ensure_installed(module, mam)
    if module._diff:
        header = f"mam {params['state']} {params['workspace'] or '(host scope)'}"
        results["diff"] = {"prepared": docs.render_diff(decisions, header)}
    module.exit_json(**results)


if __name__ == "__main__":
    main()
