"""The root group, global options and output helpers shared by every verb."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from esmigrate._version import __version__
from esmigrate.config import Config, load_config


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


pass_state = click.make_pass_decorator(AppState)


_CONNECTION_OPTIONS = [
    click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path),
        help="Project file (default: nearest esmigrate.toml).",
    ),
    click.option(
        "--env",
        "profile",
        help="Profile of the project file to use ([esmigrate.env.NAME]). [env: ESMIGRATE_ENV]",
    ),
    click.option("--url", help="Cluster URL(s), comma-separated. [env: ESMIGRATE_URL]"),
    click.option(
        "--cloud-id",
        help="Elastic Cloud deployment id (instead of --url). [env: ESMIGRATE_CLOUD_ID]",
    ),
    click.option("--username", help="Basic-auth user. [env: ESMIGRATE_USERNAME]"),
    click.option(
        "--password", help="Basic-auth password; prefer the environment. [env: ESMIGRATE_PASSWORD]"
    ),
    click.option("--api-key", help="API key. [env: ESMIGRATE_API_KEY]"),
    click.option("--bearer-token", help="Bearer token. [env: ESMIGRATE_BEARER_TOKEN]"),
    click.option(
        "--ca-certs", type=click.Path(path_type=str), help="CA bundle. [env: ESMIGRATE_CA_CERTS]"
    ),
    click.option(
        "--ssl-assert-fingerprint",
        help="Pin the server certificate's SHA-256 fingerprint. [env: ESMIGRATE_SSL_ASSERT_FINGERPRINT]",
    ),
    click.option(
        "--insecure", is_flag=True, default=None, help="Do not verify TLS certificates (dev only)."
    ),
    click.option(
        "--aws-sigv4",
        is_flag=True,
        default=None,
        help="Sign requests with AWS SigV4 (credentials from the AWS chain). [env: ESMIGRATE_AWS_SIGV4]",
    ),
    click.option("--aws-region", help="AWS region to sign for. [env: ESMIGRATE_AWS_REGION]"),
    click.option(
        "--aws-service",
        type=click.Choice(["es", "aoss"]),
        help="es: OpenSearch Service domain, aoss: Serverless. [env: ESMIGRATE_AWS_SERVICE]",
    ),
    click.option("--client-cert", type=click.Path(path_type=str), help="Client certificate (PEM)."),
    click.option("--client-key", type=click.Path(path_type=str), help="Client key (PEM)."),
    click.option(
        "--timeout",
        "request_timeout",
        type=float,
        help="Request timeout in seconds. [env: ESMIGRATE_TIMEOUT]",
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
    "insecure",
    "client_cert",
    "client_key",
    "request_timeout",
    "json_output",
)


def _apply_options(state: AppState, values: dict[str, Any]) -> None:
    """Fold the connection options given at this level into ``state`` (later levels win)."""
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
    }
    for option, setting in mapping.items():
        if values.get(option) is not None:
            state.overrides[setting] = values[option]
    if values.get("insecure"):
        state.overrides["verify_certs"] = False
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
        _apply_options(click.get_current_context().find_object(AppState), values)  # type: ignore[arg-type]
        return func(*args, **kwargs)

    for option in reversed(_CONNECTION_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="esmigrate")
@click.pass_context
def _root(ctx: click.Context, /, **values: Any) -> None:
    """Schema evolution and zero-downtime data migration for Elasticsearch and OpenSearch."""
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


for _option in reversed(_CONNECTION_OPTIONS):
    _root = _option(_root)
cli: click.Group = _root
