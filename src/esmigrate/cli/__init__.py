"""The ``esmigrate`` command: a thin shell over :mod:`esmigrate.command`.

Each sub-module adds the verbs of one area; nothing here holds logic beyond parsing and printing.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from esmigrate.cli import _devserver as _devserver
from esmigrate.cli import _info as _info
from esmigrate.cli import _migrate as _migrate
from esmigrate.cli import _migrations as _migrations
from esmigrate.cli import _preflight as _preflight
from esmigrate.cli import _rollback as _rollback
from esmigrate.cli import _schema as _schema
from esmigrate.cli._app import cli
from esmigrate.exceptions import EsmigrateError


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the console script. User errors end in one paragraph and exit with the
    error's ``exit_code`` (1; 4 when the cluster refused the credentials or the permission)."""
    try:
        result = cli.main(args=argv, prog_name="esmigrate", standalone_mode=False)
        # Without standalone mode click returns the code of `click.exceptions.Exit`.
        if isinstance(result, int) and result != 0:
            sys.exit(result)
        return result
    except EsmigrateError as exc:
        # One paragraph: the problem, then the fix.
        click.echo(f"Error: {exc.message}" + (f" {exc.hint}" if exc.hint else ""), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    # Without standalone mode click returns (rather than raises) the code of `Exit(n)`; `python -m
    # esmigrate` must still end with it (`check` exits 1 on drift, `dev-server status` 3).
    if isinstance(result, int) and not isinstance(result, bool) and result != 0:
        sys.exit(result)
    return result


__all__ = ["cli", "main"]
