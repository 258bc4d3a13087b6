"""The command line: parse, delegate to one module per command, render, exit with a stable code.

Only click and this module are imported for ``--version`` and ``--help``; every command imports
what it needs when it runs (DESIGN §9).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ._cli_run import (
    EXIT_CODES_HELP,
    F,
    MamGroup,
    Settings,
    command_runner,
    output_options,
    plain,
    print_version,
)
from ._errors import ExitCode, UsageError


@click.group(
    cls=MamGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=print_version,
    help="Show the installer and payload versions.",
)
@output_options
@click.pass_context
def main(ctx: click.Context, json_mode: bool, verbose: int, quiet: bool) -> None:
    """Install, verify, upgrade and remove multi-agent-mux (mam)."""
    ctx.obj = Settings(json_mode, verbose, quiet)


def workspace_option(func: F) -> F:
    return click.option(
        "--workspace",
        type=click.Path(path_type=Path, file_okay=False),
        help="The project to install into (default: nearest .mam/ or .git, else here).",
    )(func)


def lock_timeout_option(func: F) -> F:
    return click.option(
        "--lock-timeout",
        type=float,
        default=30.0,
        show_default=True,
        help="Seconds to wait for another run on this workspace.",
    )(func)


def timeout_option(func: F) -> F:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        metavar="SECONDS",
        help="Give up on each download or git command after this long (default 900 / 300).",
    )(func)


def progress_for(settings: Settings) -> bool | None:
    """No progress bar with -q or --json; otherwise one when stderr is a terminal."""
    return False if settings.quiet or settings.json_mode else None


def install_options(func: F) -> F:
    options = [
        workspace_option,
        click.option(
            "--from",
            "source",
            metavar="SOURCE",
            help="Release dir, archive, URL, - or git+URL@COMMIT.",
        ),
        click.option(
            "--sha256",
            metavar="HEX",
            help="Pin the release: the SHA-256 of its archive, manifest or SHA256SUMS.",
        ),
        click.option(
            "--allow-unpinned", is_flag=True, help="Allow a git tag/branch (warns; recorded)."
        ),
        click.option(
            "--no-host", is_flag=True, help="Only the workspace; no per-user tools or units."
        ),
        click.option("--no-units", is_flag=True, help="Do not install systemd/launchd user units."),
        click.option("--no-modify-path", is_flag=True, help="Do not touch shell rc files."),
        click.option("--enable-units", is_flag=True, help="Enable and start the user units."),
        click.option("--allow-downgrade", is_flag=True, help="Allow installing an older version."),
        click.option(
            "--on-conflict",
            type=click.Choice(["keep", "take-new", "error"]),
            help="A file you changed that the release changed too: keep yours, take the new "
            "one (yours stays in the run's backup), or fail (exit 4). Default: ours beside "
            "yours as .mam-new.",
        ),
        click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing."),
        click.option(
            "-y", "--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation."
        ),
        lock_timeout_option,
        timeout_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _install(mode: str, feedback: Any, settings: Settings, **kw: Any) -> Any:
    from .commands._cmd_install import InstallOptions, run_install
    from .release._sources import SourceSpec
    from .scopes._host_options import HostOptions

    host_options = HostOptions(
        no_units=kw["no_units"],
        no_modify_path=kw["no_modify_path"],
        enable_units=kw["enable_units"],
        dry_run=kw["dry_run"] or mode == "plan",
        assume_yes=kw["assume_yes"],
        lock_timeout=kw["lock_timeout"],
        allow_downgrade=kw["allow_downgrade"],
    )
    opts = InstallOptions(
        mode=mode,  # type: ignore[arg-type]
        workspace=kw["workspace"],
        source=SourceSpec(
            kw["source"],
            kw["sha256"],
            kw["allow_unpinned"],
            timeout=kw["timeout"],
            progress=progress_for(settings),
        ),
        dry_run=kw["dry_run"],
        assume_yes=kw["assume_yes"],
        allow_downgrade=kw["allow_downgrade"],
        lock_timeout=kw["lock_timeout"],
        host=None if kw["no_host"] else host_options,
        on_conflict=kw["on_conflict"] or "beside",
    )
    result = run_install(opts, feedback)
    if mode != "plan" and not opts.dry_run and not settings.json_mode and not settings.quiet:
        from .commands._report import next_steps

        for step in next_steps(result, no_modify_path=kw["no_modify_path"]):
            click.echo(step, err=True)
    return result


@main.command()
@install_options
@command_runner
def install(**kw: Any) -> Any:
    """Install mam into a workspace (and, unless --no-host, for this user)."""
    return _install("install", **kw)


@main.command()
@install_options
@command_runner
def upgrade(**kw: Any) -> Any:
    """Upgrade an existing install (or adopt one made by hand); refuses downgrades."""
    return _install("upgrade", **kw)


@main.command()
@install_options
@command_runner
def plan(**kw: Any) -> Any:
    """Print the plan (--json for the machine form); change nothing."""
    return _install("plan", **kw)


def host_flag(help_text: str) -> Callable[[F], F]:
    return click.option("--host", "host_scope", is_flag=True, help=help_text)


@main.command()
@workspace_option
@host_flag("Remove the per-user tools, units and PATH blocks instead of a workspace.")
@click.option(
    "--all",
    "all_scopes",
    is_flag=True,
    help="Both scopes, the installer's ~/.shiv extractions, its cache and its logs.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@click.option("-y", "--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@lock_timeout_option
@command_runner
def uninstall(
    feedback: Any,
    settings: Settings,
    workspace: Path | None,
    host_scope: bool,
    all_scopes: bool,
    dry_run: bool,
    assume_yes: bool,
    lock_timeout: float,
) -> Any:
    """Remove what the receipt says mam-install wrote and you did not change."""
    from .commands._cmd_remove import run_uninstall
    from .scopes._scopes import Which

    if all_scopes and host_scope:
        raise UsageError("--all already includes --host; pass one of them")
    which: Which = "all" if all_scopes else "host" if host_scope else "workspace"
    return run_uninstall(
        workspace, feedback, which=which, dry_run=dry_run, lock_timeout=lock_timeout,
        assume_yes=assume_yes,
    )


@main.command()
@workspace_option
@host_flag("Roll back the per-user scope instead of a workspace.")
@lock_timeout_option
@command_runner
def rollback(
    feedback: Any, settings: Settings, workspace: Path | None, host_scope: bool,
    lock_timeout: float,
) -> Any:
    """Return the workspace (or --host) to the version before its last upgrade."""
    from .commands._cmd_remove import run_rollback

    return run_rollback(workspace, feedback, host=host_scope, lock_timeout=lock_timeout)


@main.command()
@workspace_option
@host_flag("Compare the per-user scope with its receipt instead of a workspace.")
@click.option("--lock-timeout", type=float, hidden=True, help="Ignored: status takes no lock.")
@command_runner
def status(
    feedback: Any, settings: Settings, workspace: Path | None, host_scope: bool,
    lock_timeout: float | None,
) -> Any:
    """Compare the workspace (or --host) with its receipt; change nothing (exit 4: modified or
    missing files, 11: an interrupted run)."""
    from .commands._cmd_status import run_status

    return run_status(workspace, feedback, host=host_scope)


@main.command()
@workspace_option
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--keep-mine", "choice", flag_value="keep-mine", help="Keep your copy.")
@click.option("--take-new", "choice", flag_value="take-new", help="Take mam's .mam-new.")
@lock_timeout_option
@command_runner
def resolve(
    feedback: Any,
    settings: Settings,
    workspace: Path | None,
    paths: tuple[Path, ...],
    choice: str | None,
    lock_timeout: float,
) -> Any:
    """Close .mam-new conflicts (all, or PATH...); on a terminal without a flag, ask per file."""
    from .commands._cmd_resolve import run_resolve

    return plain("resolve", run_resolve(workspace, paths, choice, feedback,
                                        lock_timeout=lock_timeout))


@main.command()
@workspace_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--from", "source", metavar="SOURCE", help="The installed version's release.")
@click.option("--sha256", metavar="HEX", help="Pin its archive, manifest or SHA256SUMS.")
@click.option("-y", "--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@lock_timeout_option
@timeout_option
@command_runner
def restore(
    feedback: Any,
    settings: Settings,
    workspace: Path | None,
    paths: tuple[Path, ...],
    source: str | None,
    sha256: str | None,
    assume_yes: bool,
    lock_timeout: float,
    timeout: float | None,
) -> Any:
    """Bring back files of mam's that you deleted (they stay deleted until you do)."""
    from .commands._cmd_resolve import run_restore
    from .release._sources import SourceSpec

    spec = SourceSpec(source, sha256, False, timeout=timeout, progress=progress_for(settings))
    return run_restore(
        workspace, paths, spec, feedback, assume_yes=assume_yes, lock_timeout=lock_timeout
    )


@main.command()
@click.argument("location", metavar="PATH_OR_URL")
@click.option("--sums", type=click.Path(path_type=Path, dir_okay=False), help="SHA256SUMS to use.")
@click.option("--identity", help="Expected signer identity (certificate SAN).")
@click.option(
    "--issuer", help="Expected OIDC issuer, e.g. https://token.actions.githubusercontent.com"
)
@click.option(
    "--policy",
    type=click.Path(path_type=Path, dir_okay=False),
    help='JSON file {"identity": ..., "issuer": ...} instead of the two options.',
)
@click.option(
    "--trusted-root",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Pin the sigstore trusted root (trusted_root.json); default: sigstore's own.",
)
@click.option(
    "--require-signature",
    is_flag=True,
    help="Fail unless every artifact's signature checks (implied by --identity/--issuer).",
)
@click.option(
    "--allow-dirty", is_flag=True, help="Accept a release built from a tree with changes."
)
@timeout_option
@command_runner
def verify(
    feedback: Any,
    settings: Settings,
    location: str,
    sums: Path | None,
    identity: str | None,
    issuer: str | None,
    policy: Path | None,
    trusted_root: Path | None,
    require_signature: bool,
    allow_dirty: bool,
    timeout: float | None,
) -> Any:
    """Check a release directory or URL: sums, manifest, source, archive, pyz, bootstrap and
    (with --identity/--issuer, required for every artifact) sigstore signatures."""
    from .release._download import DownloadSettings
    from .release._verify_release import SignaturePolicy, verify_release

    if policy is not None:
        rules = SignaturePolicy.from_file(policy, require_signature, trusted_root, allow_dirty)
    else:
        rules = SignaturePolicy(identity, issuer, trusted_root, require_signature, allow_dirty)
    net = DownloadSettings.for_command(timeout, progress_for(settings))
    report = verify_release(location, sums, rules, net)
    for finding in report.findings:
        (feedback.info if finding.ok else feedback.error)(finding.line())
    failed = sum(1 for f in report.findings if not f.ok)
    if report.ok:
        feedback.info(f"{location}: verified ({len(report.findings)} checks)")
    else:
        feedback.error(f"{location}: {failed} of {len(report.findings)} checks failed")
    return plain("verify", report.to_json(), 0 if report.ok else int(ExitCode.INTEGRITY))


@main.command()
@workspace_option
@command_runner
def doctor(feedback: Any, settings: Settings, workspace: Path | None) -> Any:
    """Show what this machine has and lacks for mam, with the command that fixes each gap."""
    from .machine._detect import detect
    from .machine._doctor import doctor_report
    from .machine._layout import find_workspace

    report = doctor_report(detect(find_workspace(Path.cwd(), workspace)))
    if not settings.json_mode:
        click.echo(report.render_text(), err=True)
    return plain("doctor", report.to_json(), 0 if report.ok else int(ExitCode.PLATFORM))


@main.group("self")
def self_group() -> None:
    """Update or remove this installer (`mam-install` on your PATH)."""


@self_group.command("update")
@click.option("--from", "location", metavar="URL", help="Release directory URL to update from.")
@click.option("--sha256", metavar="HEX", help="Pin the release's mam-install.pyz or SHA256SUMS.")
@click.option("--allow-downgrade", is_flag=True, help="Allow installing an older installer.")
@timeout_option
@command_runner
def self_update(
    feedback: Any,
    settings: Settings,
    location: str | None,
    sha256: str | None,
    allow_downgrade: bool,
    timeout: float | None,
) -> Any:
    """Install the newest release's mam-install, if its signature or your pin vouches for it.

    The release is --from URL, else $MAM_RELEASE_URL, else the URL built into this installer."""
    from ._hashing import is_sha256_hex
    from .commands._cmd_self import SelfUpdateOptions, run_self_update

    if sha256 is not None and not is_sha256_hex(sha256):
        raise UsageError(f"--sha256 {sha256!r} is not 64 lowercase hex digits")
    options = SelfUpdateOptions(location, sha256, timeout, progress_for(settings), allow_downgrade)
    return plain("self update", run_self_update(options, feedback))


@self_group.command("uninstall")
@click.option("--dry-run", is_flag=True, help="Say what would be removed.")
@command_runner
def self_uninstall(feedback: Any, settings: Settings, dry_run: bool) -> Any:
    """Remove `mam-install` from the per-user bin dir (mam itself stays installed)."""
    from .commands._cmd_self import run_self_uninstall

    return plain("self uninstall", run_self_uninstall(feedback, dry_run=dry_run))


@main.group()
def cache() -> None:
    """Manage mam-install's caches."""


@cache.command("clean")
@click.option("--dry-run", is_flag=True, help="List what would be removed.")
@command_runner
def cache_clean(feedback: Any, settings: Settings, dry_run: bool) -> Any:
    """Remove stale ~/.shiv extractions of older mam-install builds and the download cache."""
    from .commands._cmd_cache import run_cache_clean

    return plain("cache clean", run_cache_clean(feedback, dry_run=dry_run))


if __name__ == "__main__":  # pragma: no cover
    main()
