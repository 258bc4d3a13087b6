"""How every command runs: output settings, one JSON document for every outcome (usage errors
and ``--version`` included), the debug log, and the exit code.

Imported for ``--version`` and ``--help`` too, so it holds only click and the standard library at
module level; everything else is imported when a command runs.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from . import __version__
from ._errors import ExitCode, MamError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = """\b
Exit codes: 0 ok, 1 unexpected, 2 usage, 3 platform, 4 conflict,
5 integrity, 6 receipt, 7 action failed (rolled back), 8 revert incomplete, 9 busy,
10 network, 11 interrupted run (finish it with install, undo it with rollback).
Human text goes to stderr; --json documents go to stdout."""

# The argv of this invocation, for the debug log's header and for --json before a command
# exists to parse it (usage errors, --version).
_ARGV: list[str] = []


def _wants_json() -> bool:
    return "--json" in _ARGV[: _ARGV.index("--")] if "--" in _ARGV else "--json" in _ARGV


def _version_text() -> str:
    from .release._embedded import embedded_payload_version

    payload = embedded_payload_version() or "none embedded"
    return f"mam-install {__version__} (payload {payload}, Python {sys.version.split()[0]})"


def print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    if _wants_json():
        from .engine._result import envelope
        from .release._embedded import embedded_payload_version

        body = {
            "installer_version": __version__,
            "payload_version": embedded_payload_version(),
            "python": sys.version.split()[0],
        }
        click.echo(json.dumps(envelope("version", 0, body), indent=2, sort_keys=True))
    else:
        click.echo(_version_text())
    ctx.exit(0)


def output_options(func: F) -> F:
    """--json/-v/-q, accepted both before and after the command name."""
    func = click.option("--json", "json_mode", is_flag=True, help="Print a JSON document.")(func)
    func = click.option("-v", "--verbose", count=True, help="Say more.")(func)
    func = click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")(func)
    return func


class Settings:
    """Output settings merged from the group and the command."""

    def __init__(self, json_mode: bool = False, verbose: int = 0, quiet: bool = False) -> None:
        self.json_mode, self.verbose, self.quiet = json_mode, verbose, quiet

    def merge(self, json_mode: bool, verbose: int, quiet: bool) -> Settings:
        return Settings(self.json_mode or json_mode, self.verbose + verbose, self.quiet or quiet)


def _feedback(settings: Settings) -> Any:
    from ._feedback import ConsoleFeedback

    verbosity = -1 if settings.quiet else settings.verbose
    return ConsoleFeedback(verbosity=verbosity, json_mode=settings.json_mode)


def _command_name(ctx: click.Context) -> str:
    """``install``, ``cache clean``: the command's words without the program's name."""
    names: list[str] = []
    while ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(names) or "mam-install"


def plain(command: str, body: dict[str, Any], code: int = 0) -> Any:
    """The result of a command without scopes (verify, doctor, cache clean, resolve)."""
    from .engine._result import CommandResult

    return CommandResult(command=command, exit_code=code, body=body)


def _fail(feedback: Any, settings: Settings, command: str, message: str, code: int) -> None:
    from ._feedback import printable
    from .commands._report import error_document, json_text

    feedback.error(message)
    log = feedback.flush_log(_ARGV)
    if log is not None:
        feedback.stream.write(printable(f"the debug log is {log}\n", feedback.stream))
        feedback.stream.flush()
    if settings.json_mode:
        click.echo(json_text(error_document(command, code, message, str(log) if log else None)))
    sys.exit(code)


def command_runner(func: Callable[..., Any]) -> Callable[..., None]:
    """Run a command body and render its result; MamError becomes its exit code and a one-line
    message, an OSError that escaped every scope exit 7, anything else exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, json_mode: bool, verbose: int, quiet: bool, **kwargs: Any) -> None:
        ctx = click.get_current_context()
        parent = ctx.find_object(Settings) or Settings()
        settings = parent.merge(json_mode, verbose, quiet)
        feedback = _feedback(settings)
        command = _command_name(ctx)
        from .commands._report import json_text, render_text

        try:
            result = func(*args, feedback=feedback, settings=settings, **kwargs)
        except MamError as exc:
            _fail(feedback, settings, command, str(exc), int(exc.exit_code))
            return
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            message = f"{where}{exc.strerror or exc}"
            _fail(feedback, settings, command, message, int(ExitCode.ACTION_FAILED))
            return
        except Exception as exc:
            import traceback

            feedback.detail(traceback.format_exc())
            message = f"unexpected {type(exc).__name__}: {exc}"
            _fail(feedback, settings, command, message, int(ExitCode.UNEXPECTED))
            return
        result.command = command
        if result.write_log:
            feedback.flush_log(_ARGV)
        if settings.json_mode:
            click.echo(json_text(result.to_json()))
        else:
            render_text(result, feedback, sys.stderr)
        sys.exit(result.exit_code)

    return output_options(wrapper)


class MamGroup(click.Group):
    """click's group, with usage errors as JSON documents too when --json was asked for."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        _ARGV[:] = [str(a) for a in (sys.argv[1:] if args is None else args)]
        try:
            code = super().main(_ARGV, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            if _wants_json():
                from .commands._report import error_document, json_text

                name = next((a for a in _ARGV if a in self.commands), "mam-install")
                click.echo(json_text(error_document(name, exc.exit_code, exc.format_message(),
                                                    None)))
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
