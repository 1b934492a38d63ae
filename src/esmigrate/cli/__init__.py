"""The ``esmigrate`` command: a thin shell over :mod:`esmigrate.command`.

Each sub-module adds the verbs of one area; nothing here holds logic beyond parsing and printing.
:func:`main` turns every way a command can end into its exit status
(:class:`~esmigrate.exceptions.ExitCode`) and, under ``--json``, into a JSON error on stdout.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from esmigrate.cli import _adopt as _adopt
from esmigrate.cli import _bench as _bench
from esmigrate.cli import _devserver as _devserver
from esmigrate.cli import _info as _info
from esmigrate.cli import _migrations as _migrations
from esmigrate.cli import _old_writes as _old_writes
from esmigrate.cli import _preflight as _preflight
from esmigrate.cli import _rebuild as _rebuild
from esmigrate.cli import _report as _report
from esmigrate.cli import _rollback as _rollback
from esmigrate.cli import _schema as _schema
from esmigrate.cli import _scripts as _scripts
from esmigrate.cli._app import cli, debug_wanted, error_json, flag_given, redact_text
from esmigrate.exceptions import EsmigrateError, ExitCode


def main(argv: Sequence[str] | None = None) -> Any:
    """Entry point of the console script. Every ending has its exit code (docs/cli.md, "Exit
    codes"): user errors end in one paragraph on stderr (and, under ``--json``, an
    ``{"error": ...}`` object on stdout), never in a stack trace."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = flag_given(args, "--json")
    try:
        result = cli.main(args=args, prog_name="esmigrate", standalone_mode=False)
    except EsmigrateError as exc:
        _fail(
            exc.exit_code,
            f"Error: {exc.message}" + (f" {exc.hint}" if exc.hint else ""),
            error_json(type(exc).__name__, exc.message, exc.hint, exc.exit_code, exc.details()),
            as_json,
        )
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail(
            ExitCode.INTERRUPTED,
            "Aborted.",
            error_json("Interrupted", "Stopped by Ctrl-C.", None, ExitCode.INTERRUPTED, {}),
            as_json,
        )
    except click.ClickException as exc:
        _usage_error(exc, as_json)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # A bug, not a user error: one line, the traceback only when asked for.
        if debug_wanted(args):
            traceback.print_exc()
        reason = redact_text(f"{type(exc).__name__}: {exc}")
        hint = (
            "This is a bug in esmigrate. Run the command again with --debug (or ESMIGRATE_DEBUG=1) "
            "for the traceback, and report it."
        )
        _fail(
            ExitCode.INTERNAL,
            f"Internal error: {reason}. {hint}",
            error_json("InternalError", reason, hint, ExitCode.INTERNAL, {}),
            as_json,
        )
    # Without standalone mode click returns (rather than raises) the code of `Exit(n)`.
    if isinstance(result, int) and not isinstance(result, bool) and result != 0:
        sys.exit(result)
    return result


def _usage_error(exc: click.ClickException, as_json: bool) -> NoReturn:
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "esmigrate"
    hint = f"Run `{command} --help` for the options and arguments."
    if not as_json:
        exc.show()
        sys.exit(exc.exit_code)
    _fail(
        exc.exit_code,
        f"Error: {exc.format_message()} {hint}",
        error_json("UsageError", exc.format_message(), hint, exc.exit_code, {"command": command}),
        as_json,
    )


def _fail(code: int, paragraph: str, data: str, as_json: bool) -> NoReturn:
    click.echo(paragraph, err=True)
    if as_json:
        click.echo(data)
    sys.exit(int(code))


__all__ = ["cli", "main"]
