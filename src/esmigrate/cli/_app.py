"""The root group, global options and output helpers shared by every verb.

A module of verbs adds its commands to :data:`cli` with ``@cli.command()``, takes the connection
options with ``@connection_options``, prints through :func:`emit` (JSON with ``--json``) and ends
with an :class:`~esmigrate.exceptions.ExitCode` (:func:`exit_with`) when it found a problem.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource
from rich.console import Console

from esmigrate._redact import redact
from esmigrate._version import __version__
from esmigrate.config import CONFIG_ENV, PROFILE_ENV, Config, load_config
from esmigrate.exceptions import ExitCode
from esmigrate.progress import ProgressDisplay, progress_display

#: Environment variables of the command line itself (the configuration's are
#: :data:`esmigrate.config.ENVIRONMENT_VARIABLES`).
DEBUG_ENV = "ESMIGRATE_DEBUG"
CLI_ENVIRONMENT_VARIABLES = (DEBUG_ENV,)


@dataclass
class AppState:
    """What the root group parsed; sub-commands read it from ``ctx.obj``."""

    config_file: Path | None
    overrides: dict[str, Any]
    json_output: bool
    _config: Config | None = None

    @property
    def config(self) -> Config:
        # Loaded lazily so that commands which need no config (dev-server) never fail on one.
        if self._config is None:
            self._config = load_config(self.config_file, **self.overrides)
        return self._config


console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def emit(state: AppState, data: Any, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON with --json, else call the human renderer."""
    if state.json_output:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        human()


def exit_with(code: ExitCode) -> NoReturn:
    """End the command with ``code`` after its output (``check`` found drift: PROBLEM)."""
    raise click.exceptions.Exit(int(code))


# -- how the command line ends: see esmigrate.cli.main --------------------------------------------


def flag_given(args: Sequence[str], flag: str) -> bool:
    """Whether ``flag`` is on the command line (before ``--``): known before click parses it,
    so that even a usage error is reported as JSON under ``--json``."""
    for arg in args:
        if arg == "--":
            return False
        if arg == flag:
            return True
    return False


def debug_wanted(args: Sequence[str]) -> bool:
    value = os.environ.get(DEBUG_ENV, "").strip().lower()
    return flag_given(args, "--debug") or value in ("1", "true", "yes", "on")


_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")


def redact_text(text: str) -> str:
    """``text`` without the credentials a URL in it may carry (``https://user:pw@host``)."""
    return _URL_CREDENTIALS.sub("********@", text)


def error_json(
    kind: str, message: str, hint: str | None, code: int, details: dict[str, Any]
) -> str:
    """The ``--json`` form of an error: ``{"error": {"type", "message", "hint", "exit_code",
    ...the error's structured fields}}``, secrets masked."""
    body: dict[str, Any] = {
        **redact(_plain(details)),
        "type": kind,
        "message": message,
        "hint": hint,
        "exit_code": int(code),
    }
    return json.dumps({"error": body}, indent=2, default=str)


def _plain(value: Any) -> Any:
    """JSON-ready: exceptions become their text, tuples lists (``default=str`` does the rest)."""
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


# -- targets --------------------------------------------------------------------------------------

_RELATIVE_STEP = re.compile(r"-\d+")


class TargetCommand(click.Command):
    """A command whose TARGET argument may be a relative step such as ``-1``.

    Unknown options are errors everywhere (``upgrade --dryrun`` suggests ``--dry-run``); a
    target never starts with ``-``, except ``-N``, which is moved behind ``--`` here so that
    click reads it as the argument it is. ``--`` ends the options as usual.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._steps_last(ctx, args))

    def _steps_last(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {
            name
            for param in self.get_params(ctx)
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in (*param.opts, *param.secondary_opts)
        }
        head, tail = args, []
        if "--" in args:
            cut = args.index("--")
            head, tail = args[:cut], args[cut + 1 :]
        kept: list[str] = []
        steps: list[str] = []
        value_next = False
        for arg in head:
            if not value_next and _RELATIVE_STEP.fullmatch(arg):
                steps.append(arg)
            else:
                kept.append(arg)
            value_next = not value_next and arg in takes_value
        if not steps:
            return args
        return [*kept, "--", *steps, *tail]


pass_state = click.make_pass_decorator(AppState)


@contextmanager
def sigint_cancels(verb: str) -> Iterator[threading.Event]:
    """The event a resumable command polls: the first Ctrl-C sets it (stop at the next safe
    point), a second one aborts at once. VERB names the command that resumes the run."""
    cancel = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        cancel.set()
        err_console.print(
            "Stopping at the next safe point (Ctrl-C again to abort at once); the next "
            f"`esmigrate {verb}` resumes."
        )

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield cancel
    finally:
        # A MigrationCancelled goes on to main(): exit 130, and JSON under --json.
        signal.signal(signal.SIGINT, previous)


@contextmanager
def progress_shown() -> Iterator[ProgressDisplay]:
    """Where long operations' progress events are drawn: rich bars when stderr is a terminal,
    log lines otherwise (stdout stays the result, JSON included)."""
    # The console the reporter's lines use too: they then print above the live bars.
    display = progress_display(console=err_console)
    try:
        yield display
    finally:
        display.close()


def _env_option(*decls: str, env: str, **kwargs: Any) -> Callable[[Any], Any]:
    """An option whose environment variable click shows in --help (``[env var: ...]``).

    Click reads the variable too, but the value it finds is ignored (see :func:`_apply_options`):
    :func:`~esmigrate.config.load_config` reads the environment itself, so the Python API and
    the command line agree on the order flags > environment > profile > project file.
    """
    return click.option(*decls, envvar=env, show_envvar=True, **kwargs)


_CONNECTION_OPTIONS = [
    _env_option(
        "--config",
        "config_file",
        env=CONFIG_ENV,
        type=click.Path(path_type=Path),
        help="Project file (default: the nearest esmigrate.toml or pyproject.toml).",
    ),
    _env_option(
        "--env",
        "profile",
        env=PROFILE_ENV,
        help="Profile of the project file to use ([esmigrate.env.NAME]).",
    ),
    _env_option("--url", env="ESMIGRATE_URL", help="Cluster URL(s), comma-separated."),
    _env_option(
        "--cloud-id",
        env="ESMIGRATE_CLOUD_ID",
        help="Elastic Cloud deployment id (instead of --url).",
    ),
    _env_option("--username", env="ESMIGRATE_USERNAME", help="Basic-auth user."),
    _env_option(
        "--password", env="ESMIGRATE_PASSWORD", help="Basic-auth password; prefer the environment."
    ),
    _env_option("--api-key", env="ESMIGRATE_API_KEY", help="API key."),
    _env_option("--bearer-token", env="ESMIGRATE_BEARER_TOKEN", help="Bearer token."),
    _env_option(
        "--ca-certs", env="ESMIGRATE_CA_CERTS", type=click.Path(path_type=str), help="CA bundle."
    ),
    _env_option(
        "--ssl-assert-fingerprint",
        env="ESMIGRATE_SSL_ASSERT_FINGERPRINT",
        help="Pin the server certificate's SHA-256 fingerprint.",
    ),
    _env_option(
        "--verify-certs/--insecure",
        env="ESMIGRATE_VERIFY_CERTS",
        default=None,
        help="Verify TLS certificates (the default), or not (--insecure: dev only).",
    ),
    _env_option(
        "--aws-sigv4",
        env="ESMIGRATE_AWS_SIGV4",
        is_flag=True,
        default=None,
        help="Sign requests with AWS SigV4 (credentials from the AWS chain).",
    ),
    _env_option("--aws-region", env="ESMIGRATE_AWS_REGION", help="AWS region to sign for."),
    _env_option(
        "--aws-service",
        env="ESMIGRATE_AWS_SERVICE",
        type=click.Choice(["es", "aoss"]),
        help="es: OpenSearch Service domain, aoss: Serverless.",
    ),
    _env_option(
        "--client-cert",
        env="ESMIGRATE_CLIENT_CERT",
        type=click.Path(path_type=str),
        help="Client certificate (PEM).",
    ),
    _env_option(
        "--client-key",
        env="ESMIGRATE_CLIENT_KEY",
        type=click.Path(path_type=str),
        help="Client key (PEM).",
    ),
    _env_option(
        "--timeout",
        "request_timeout",
        env="ESMIGRATE_TIMEOUT",
        type=float,
        help="Request timeout in seconds.",
    ),
    _env_option(
        "--max-retries",
        env="ESMIGRATE_MAX_RETRIES",
        type=int,
        help="Retries of a request the cluster refused as overloaded (429/502/503/504).",
    ),
    click.option(
        "--json", "json_output", is_flag=True, default=None, help="Machine-readable output."
    ),
]
_OPTION_NAMES = (
    "config_file",
    "profile",
    "url",
    "cloud_id",
    "ssl_assert_fingerprint",
    "aws_sigv4",
    "aws_region",
    "aws_service",
    "username",
    "password",
    "api_key",
    "bearer_token",
    "ca_certs",
    "verify_certs",
    "client_cert",
    "client_key",
    "request_timeout",
    "max_retries",
    "json_output",
)


def _apply_options(state: AppState, values: dict[str, Any]) -> None:
    """Fold the connection options given on the command line at this level into ``state``
    (later levels win). Values click took from the environment are left out: the config
    reads the environment itself, below the flags of every level."""
    ctx = click.get_current_context()
    values = {
        name: value
        for name, value in values.items()
        if ctx.get_parameter_source(name) != ParameterSource.ENVIRONMENT
    }
    mapping = {
        "profile": "profile",
        "url": "urls",
        "cloud_id": "cloud_id",
        "ssl_assert_fingerprint": "ssl_assert_fingerprint",
        "aws_region": "aws_region",
        "aws_service": "aws_service",
        "username": "username",
        "password": "password",
        "api_key": "api_key",
        "bearer_token": "bearer_token",
        "ca_certs": "ca_certs",
        "client_cert": "client_cert",
        "client_key": "client_key",
        "request_timeout": "request_timeout",
        "max_retries": "max_retries",
        "verify_certs": "verify_certs",
    }
    for option, setting in mapping.items():
        if values.get(option) is not None:
            state.overrides[setting] = values[option]
    if values.get("aws_sigv4"):
        state.overrides["aws_sigv4"] = True
    if values.get("config_file") is not None:
        state.config_file = values["config_file"]
    if values.get("json_output"):
        state.json_output = True
    state._config = None


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Accept the connection options on a sub-command too (`esmigrate info --url ...`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name, None) for name in _OPTION_NAMES}
        state = click.get_current_context().find_object(AppState)
        assert state is not None  # the root group made it
        _apply_options(state, values)
        return func(*args, **kwargs)

    for option in reversed(_CONNECTION_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="esmigrate")
@_env_option(
    "--debug",
    env=DEBUG_ENV,
    is_flag=True,
    help="On an unexpected error (a bug), print the traceback.",
)
@click.pass_context
def _root(ctx: click.Context, /, debug: bool, **values: Any) -> None:
    """Schema evolution and zero-downtime data migration for Elasticsearch and OpenSearch.

    Exit codes: 0 ok, 1 error, 2 usage, 3 problem found (drift, validation, pre-flight,
    unhealthy), 4 authentication, 5 busy (lease held: retry later), 70 internal error,
    130 interrupted.
    """
    ctx.obj = AppState(config_file=None, overrides={}, json_output=False)
    _apply_options(ctx.obj, values)
    _log_to_stderr()


def _log_to_stderr() -> None:
    """esmigrate's progress lines (the ``esmigrate`` logger) on stderr, once."""
    logger = logging.getLogger("esmigrate")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


# Added to the group object (not to a function): each appends, so in order.
for _option in _CONNECTION_OPTIONS:
    _root = _option(_root)
cli: click.Group = _root
