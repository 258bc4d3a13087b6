"""The Ansible collection against three real ssh-reachable hosts, with the built pyz.

Each test gets three fresh users behind a fresh sshd (tests/ansible_fleet.py) and drives them
with ansible-playbook from the collection tarball `ansible-galaxy collection build` made, as a
fleet operator would; outcomes are read from the hosts' disks, the play recap and the report.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ansible_env import COLLECTION, ensure_ansible_venv
from ansible_fleet import Fleet, ManagedHost, running_fleet, snapshot

pytestmark = [pytest.mark.pyz, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
PYZ = ROOT / "dist" / "mam-install.pyz"
PAYLOAD = ROOT / "payload" / "workspace"
# What mam-install itself leaves in a HOME after uninstall: its debug log (kept on purpose, for
# the next person who has to find out what happened) and the XDG parents it created for the
# log and for the host scope's data dir.
LOG_CHAIN = frozenset({
    ".local", ".local/state", ".local/state/mam", ".local/state/mam/log",
    ".local/state/mam/log/mam-install.log",
})
INSTALLER_LEFTOVERS = LOG_CHAIN | {".local/share"}
Done = subprocess.CompletedProcess[str]
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.MULTILINE)


@dataclass
class Controller:
    bin_dir: Path
    env: dict[str, str]
    fleet: Fleet
    workdir: Path

    def playbook(self, *args: str, inventory: Path | None = None) -> Done:
        return self._run("ansible-playbook", inventory, *args)

    def adhoc(self, host: str, args: str, *options: str) -> tuple[str, dict[str, Any]]:
        """Run the module alone (`ansible HOST -m mam.install.mam_install -a ARGS -o`)."""
        done = self._run("ansible", None, host, "-m", "mam.install.mam_install", "-a", args,
                         "-o", *options)
        line = next((x for x in done.stdout.splitlines() if x.startswith(f"{host} | ")), "")
        verdict, _, result = line.partition(" => ")
        assert result, explain(done)
        return verdict.split(" | ", 1)[1].split()[0].rstrip("!"), json.loads(result)

    def _run(self, tool: str, inventory: Path | None, *args: str) -> Done:
        inventory = inventory or self.fleet.inventory(self.workdir / "inventory.yml",
                                                      group_vars=self.pin())
        return subprocess.run(
            [str(self.bin_dir / tool), "-i", str(inventory), *args],
            cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=600,
        )

    def pin(self, pyz: Path = PYZ) -> dict[str, str]:
        return {"mam_install_pyz_src": str(pyz),
                "mam_install_pyz_sha256": hashlib.sha256(PYZ.read_bytes()).hexdigest()}


def recap(done: Done) -> dict[str, dict[str, int]]:
    return {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]),
                   "failed": int(m[4])} for m in RECAP.findall(done.stdout)}


def explain(done: Done) -> str:
    failures = [line[:3000] for line in done.stdout.splitlines()
                if line.startswith(("fatal:", "failed:", "[ERROR]"))]
    tail = [done.stdout[-4000:], done.stderr[-3000:]]
    return "\n".join([f"exit {done.returncode}", *failures, *tail])


@pytest.fixture(scope="session")
def ansible_bin() -> Path:
    if os.geteuid() != 0:
        pytest.skip("the managed hosts are local users behind an sshd: needs root, as CI runs")
    try:
        return ensure_ansible_venv()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def collections_dir(ansible_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection as a user gets it: built to a tarball, installed from the tarball."""
    out = tmp_path_factory.mktemp("collection")
    galaxy = str(ansible_bin / "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", str(COLLECTION), "--output-path", str(out)],
                   check=True, capture_output=True)
    tarball = next(out.glob("mam-install-*.tar.gz"))
    target = out / "collections"
    subprocess.run([galaxy, "collection", "install", "--offline", "-p", str(target), str(tarball)],
                   check=True, capture_output=True)
    return target


@pytest.fixture
def controller(ansible_bin: Path, collections_dir: Path) -> Iterator[Controller]:
    if not PYZ.is_file():
        pytest.fail("dist/mam-install.pyz is missing: run python3 scripts/build.py first")
    with running_fleet() as fleet:
        workdir = fleet.base / "controller"
        workdir.mkdir()
        (workdir / "ansible.cfg").write_text(
            "[defaults]\n"
            f"collections_path = {collections_dir}\n"
            "retry_files_enabled = False\nforks = 5\n"
            f"local_tmp = {workdir / 'tmp'}\n"
            "[ssh_connection]\npipelining = True\n"
            f"control_path_dir = {fleet.base / 'cp'}\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(ANSIBLE_CONFIG=str(workdir / "ansible.cfg"), ANSIBLE_HOME=str(workdir / "home"),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PWD=str(workdir),
                   PATH=f"{ansible_bin}:{env.get('PATH', '/usr/bin:/bin')}")
        yield Controller(ansible_bin, env, fleet, workdir)



def home_snapshots(fleet: Fleet, ignore: frozenset[str] = frozenset()) -> dict[str, dict[str, str]]:
    return {host.name: snapshot(host.home, ignore) for host in fleet.hosts}


def payload_files() -> set[str]:
    return {str(p.relative_to(PAYLOAD)) for p in PAYLOAD.rglob("*") if p.is_file()}


def workspace_files(host: ManagedHost) -> set[str]:
    return {str(p.relative_to(host.workspace)) for p in host.workspace.rglob("*")
            if p.is_file() and ".mam" not in p.relative_to(host.workspace).parts}


def assert_installed(host: ManagedHost, users_own: frozenset[str] = frozenset()) -> None:
    assert workspace_files(host) == payload_files() | {"README.md"} | {
        f"{rel}.mam-new" for rel in users_own}
    for rel in payload_files():
        ours = host.workspace / (f"{rel}.mam-new" if rel in users_own else rel)
        assert ours.read_bytes() == (PAYLOAD / rel).read_bytes(), rel
    assert ours.stat().st_uid == host.home.stat().st_uid  # written by the host's user, not root
    assert (host.home / ".config/systemd/user/mam-tmux-holder.service").is_file()
    assert "# >>> mam >>>" in (host.home / ".profile").read_text()


def test_rollout_installs_every_host_keeps_a_users_file_reports_is_idempotent_and_absent_restores(
    controller: Controller,
) -> None:
    fleet = controller.fleet
    edited = fleet.host("host2")
    mine = b"# AGENT.md\n\nOur team's own rules, written before mam came.\n"
    (edited.workspace / "AGENT.md").write_bytes(mine)
    os.chown(edited.workspace / "AGENT.md", edited.home.stat().st_uid, edited.home.stat().st_gid)
    before = home_snapshots(fleet)
    report = controller.workdir / "report.json"

    first = controller.playbook("mam.install.rollout", "--diff",
                                "-e", f"mam_rollout_report={report}")
    assert first.returncode == 0, explain(first)
    assert {h: c["changed"] > 0 for h, c in recap(first).items()} == {
        "host1": True, "host2": True, "host3": True}, explain(first)
    assert_installed(fleet.host("host1"))
    assert_installed(fleet.host("host3"))
    # The user's AGENT.md is kept, ours is beside it, and the run says so.
    assert_installed(edited, users_own=frozenset({"AGENT.md"}))
    assert (edited.workspace / "AGENT.md").read_bytes() == mine
    warning = (f"AGENT.md in {edited.workspace} is the user's and was kept; ours is beside it "
               "as AGENT.md.mam-new")
    assert warning in " ".join((first.stdout + first.stderr).split()), explain(first)
    assert re.search(r"workspace\s+beside\s+AGENT\.md\.mam-new", first.stdout), explain(first)
    # The status play: one report, every host, every file's state.
    fleet_report = json.loads(report.read_text())
    assert sorted(fleet_report) == ["host1", "host2", "host3"]
    pristine = dict.fromkeys(sorted(payload_files()), "pristine")
    for host in fleet.hosts:
        status = fleet_report[host.name]["workspaces"][str(host.workspace)]
        assert status["installed"] is True and status["payload_version"] == "0.1.0"
        if host is not edited:
            assert status["files"] == pristine and status["healthy"] is True
    pending = fleet_report["host2"]["workspaces"][str(edited.workspace)]["files"]
    assert pending == {**pristine, "AGENT.md": "pending"}  # ours waits beside it
    assert re.search(r"host1:\s+\S+project healthy \[\];", first.stdout), explain(first)
    # The user units changed, so the handler asked for a user manager; none runs for these
    # ssh-only users, so nothing was reloaded.
    asked = first.stdout.split("RUNNING HANDLER [mam.install.mam_install : Ask whether")
    assert len(asked) == 3, explain(first)  # the canary's batch, then the others'
    reload = re.findall(r"RUNNING HANDLER \[mam.install.mam_install : Reload the user manager\] "
                        r"\*+\n((?:skipping: \[host\d\]\n)+)", first.stdout)
    assert sorted(re.findall(r"host\d", "".join(reload))) == ["host1", "host2", "host3"]

    second = controller.playbook("mam.install.rollout", "-e", f"mam_rollout_report={report}")
    assert second.returncode == 0, explain(second)
    assert {h: c["changed"] for h, c in recap(second).items()} == {
        "host1": 0, "host2": 0, "host3": 0}, explain(second)

    gone = controller.playbook("mam.install.rollout", "-e", "mam_install_state=absent")
    assert gone.returncode == 0, explain(gone)
    assert all(c["changed"] > 0 for c in recap(gone).values()), explain(gone)
    assert home_snapshots(fleet, INSTALLER_LEFTOVERS) == {
        h: {k: v for k, v in s.items() if k not in INSTALLER_LEFTOVERS} for h, s in before.items()}


def test_check_mode_on_fresh_hosts_reports_the_changes_and_writes_nothing(
    controller: Controller,
) -> None:
    fleet = controller.fleet
    before = home_snapshots(fleet)
    staged_before = set(Path("/tmp").glob("mam-install-check.*"))
    done = controller.playbook("mam.install.rollout", "--check", "--diff")
    assert done.returncode == 0, explain(done)
    assert all(c["changed"] > 0 for c in recap(done).values()), explain(done)
    # The diff is the plan's per-file decisions, for the workspace and the host scope.
    for rel in ("AGENT.md", ".agents/skills/lib.sh", ".env.example"):
        assert re.search(rf"workspace\s+write\s+{re.escape(rel)} ", done.stdout), rel
    profile = fleet.host("host1").home / ".profile"
    assert re.search(rf"host\s+add PATH block\s+{profile}$", done.stdout, re.M), explain(done)
    unit = fleet.host("host3").home / ".config/systemd/user/mam-tmux-holder.service"
    assert re.search(rf"host\s+write\s+{unit} ", done.stdout), explain(done)
    # Nothing written: not the workspace, not the host scope, not the pyz; only the
    # installer's own debug log (appended to by every mam-install run, plan included).
    assert home_snapshots(fleet, LOG_CHAIN) == {
        h: {k: v for k, v in s.items() if k not in LOG_CHAIN} for h, s in before.items()}
    assert set(Path("/tmp").glob("mam-install-check.*")) == staged_before  # staging removed


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A hostile mirror on 127.0.0.1: serves a tampered pyz; records every request."""
    served = tmp_path / "mirror"
    served.mkdir()
    tampered = bytearray(PYZ.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    (served / "mam-install.pyz").write_bytes(bytes(tampered))
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            requests.append(self.path)

    handler = functools.partial(Handler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mam-install.pyz", requests
    finally:
        server.shutdown()
        server.server_close()


def test_a_tampered_pyz_fails_the_canary_and_no_other_host_is_touched(
    controller: Controller, mirror: tuple[str, list[str]],
) -> None:
    url, requests = mirror
    fleet = controller.fleet
    before = home_snapshots(fleet)
    pin = controller.pin()["mam_install_pyz_sha256"]
    inventory = fleet.inventory(controller.workdir / "mirror.yml", group_vars={
        "mam_install_pyz_url": url, "mam_install_pyz_sha256": pin})
    done = controller.playbook("mam.install.rollout", inventory=inventory)
    assert done.returncode != 0, explain(done)
    assert recap(done)["host1"]["failed"] == 1, explain(done)
    assert f"The checksum for {fleet.host('host1').home}" in done.stdout or \
        "did not match" in done.stdout, explain(done)
    assert len(requests) == 1  # only the canary fetched; the rollout stopped there
    after = home_snapshots(fleet)
    assert after["host2"] == before["host2"] and after["host3"] == before["host3"]
    canary = fleet.host("host1")
    assert snapshot(canary.workspace) == {k[len("project/"):]: v for k, v in before["host1"].items()
                                          if k.startswith("project/")}
    assert not (canary.home / ".local/share/mam-install/mam-install.pyz").exists()


def test_a_tampered_release_fails_its_host_with_exit_5_and_the_rollout_stops_there(
    controller: Controller,
) -> None:
    fleet = controller.fleet
    bad = fleet.host("host2")
    release = bad.home / "release"
    release.mkdir()
    for name in ("mam-payload-0.1.0.tar.gz", "manifest-0.1.0.json", "SHA256SUMS"):
        shutil.copy(ROOT / "dist" / name, release / name)
    archive = release / "mam-payload-0.1.0.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    before = home_snapshots(fleet)
    inventory = fleet.inventory(controller.workdir / "bad-release.yml",
                                host_vars={"host2": {"mam_install_source": str(release)}},
                                group_vars=controller.pin())
    done = controller.playbook("mam.install.rollout", "-e", '{"mam_rollout_serial": 1}',
                               inventory=inventory)
    assert done.returncode != 0, explain(done)
    counts = recap(done)
    assert counts["host1"]["failed"] == 0 and counts["host2"]["failed"] == 1, explain(done)
    assert "host3" not in counts or counts["host3"]["ok"] == 0, explain(done)
    assert "does not match the manifest" in done.stdout and '"rc": 5' in done.stdout
    assert_installed(fleet.host("host1"))
    after = home_snapshots(fleet)
    assert {k: v for k, v in after["host2"].items() if k.startswith("project")} == {
        k: v for k, v in before["host2"].items() if k.startswith("project")}
    assert after["host3"] == before["host3"]


def test_the_module_alone_maps_documents_onto_changed_facts_and_failures(
    controller: Controller,
) -> None:
    host = controller.fleet.host("host1")
    pyz = host.home / "mam-install.pyz"
    shutil.copy(PYZ, pyz)
    os.chown(pyz, host.home.stat().st_uid, host.home.stat().st_gid)
    base = f"pyz={pyz} workspace={host.workspace}"

    verdict, result = controller.adhoc("host1", base, "--diff")
    assert verdict == "CHANGED" and result["exit_code"] == 0, result
    written = {d["path"] for d in result["decisions"] if d["decision"] == "write"}
    assert written == payload_files()
    verdict, result = controller.adhoc("host1", base)
    assert verdict == "SUCCESS" and result["changed"] is False, result

    (host.workspace / ".env.example").write_text("MAM_EDITED=1\n")
    verdict, result = controller.adhoc("host1", f"{base} state=status")
    facts = result["ansible_facts"]["mam_install_status"]
    assert verdict == "SUCCESS" and facts["healthy"] is False, result  # a report, not a failure
    assert facts["installed"] is True and facts["files"][".env.example"] == "modified"
    assert facts["files"]["AGENT.md"] == "pristine"

    help_text = subprocess.run(["python3", str(PYZ), "install", "--help"],
                               capture_output=True, text=True).stdout
    verdict, result = controller.adhoc("host1", f"{base} on_conflict=keep")
    if "--on-conflict" in help_text:
        assert verdict in ("SUCCESS", "CHANGED"), result
    else:
        assert verdict == "FAILED" and result["rc"] == 2, result
        assert "does not know an option this task passed" in result["msg"]
        assert "--on-conflict" in result["msg"]

    verdict, result = controller.adhoc("host1", f"{base} state=absent", "--check")
    assert verdict == "CHANGED" and (host.workspace / "AGENT.md").exists(), result
    verdict, result = controller.adhoc("host1", f"{base} state=absent")
    assert verdict == "CHANGED", result
    assert workspace_files(host) == {"README.md", ".env.example"}  # the user's edit stays
    verdict, result = controller.adhoc("host1", f"{base} state=absent")
    assert verdict == "SUCCESS" and result["changed"] is False, result
