"""Configuration: where the cluster is, how to authenticate, where the migrations live.

Values come from, highest priority first: explicit arguments (CLI flags), environment variables
(``ESMIGRATE_*``), the selected profile of the project file (``[esmigrate.env.NAME]``, chosen with
``--env NAME`` / ``ESMIGRATE_ENV``), the project file (``esmigrate.toml`` or ``[tool.esmigrate]``
in ``pyproject.toml``), then defaults. Secrets are kept in :class:`Secret` so that no ``repr``,
log line or error message can show them.
"""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from esmigrate.exceptions import ConfigError
from esmigrate.schedule import parse_duration, parse_window

DEFAULT_URL = "http://127.0.0.1:9200"
CONFIG_FILE = "esmigrate.toml"


class Secret:
    """A string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


#: The AWS services SigV4 signs for: a managed domain ("es") or a Serverless collection ("aoss").
AWS_SERVICES = ("es", "aoss")


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach and authenticate against one cluster.

    The target is ``urls`` or an Elastic Cloud ``cloud_id`` (which names the URL). ``client`` is
    an application's own configured ``Elasticsearch`` / ``OpenSearch`` client to use as it is:
    esmigrate then sends its requests through it (and never closes it), and the other settings
    but ``urls`` (for messages) do not apply.
    """

    urls: tuple[str, ...] = (DEFAULT_URL,)
    username: str | None = None
    password: Secret | None = None
    api_key: Secret | None = None
    bearer_token: Secret | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    #: SHA-256 fingerprint of the server's certificate (hex, colons allowed): pins that
    #: certificate instead of verifying it against a CA.
    ssl_assert_fingerprint: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    request_timeout: float = 30.0
    max_retries: int = 3
    #: Elastic Cloud deployment id (``name:base64``); replaces ``urls``.
    cloud_id: str | None = None
    #: Sign requests with AWS SigV4 (Amazon OpenSearch Service / Serverless), with credentials
    #: from the standard AWS chain (environment, shared files, instance or task role).
    aws_sigv4: bool = False
    #: The region to sign for; None: the AWS chain's (``AWS_REGION``, ``~/.aws/config``).
    aws_region: str | None = None
    #: "es" for a managed domain, "aoss" for a Serverless collection.
    aws_service: str = "es"
    client: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cloud_id is not None:
            if self.urls not in ((), (DEFAULT_URL,)):
                raise ConfigError(
                    "Both a cluster URL and an Elastic Cloud cloud_id are given.",
                    hint="Give one: the cloud_id names the deployment's URL.",
                )
            object.__setattr__(self, "urls", (cloud_url(self.cloud_id),))
        if not self.urls:
            raise ConfigError("No cluster URL given.", hint="Set --url or ESMIGRATE_URL.")
        if self.aws_service not in AWS_SERVICES:
            raise ConfigError(
                f"Unknown AWS service {self.aws_service!r} to sign for.",
                hint='Use "es" for an Amazon OpenSearch Service domain, "aoss" for a Serverless '
                "collection.",
            )
        if self.aws_sigv4 and (self.username or self.api_key or self.bearer_token):
            raise ConfigError(
                "AWS SigV4 signing and a username, API key or bearer token are both given.",
                hint="A signed request carries the AWS credentials; drop the other credentials.",
            )
        clean: list[str] = []
        username, password = self.username, self.password
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"Invalid cluster URL {redact_url(url)!r}.",
                    hint="Use the form http://host:9200 or https://host:9200.",
                )
            if parts.username is not None:
                # Credentials inside the URL are moved to basic auth so the URL itself can be
                # shown in messages safely.
                username = username or unquote(parts.username)
                if parts.password is not None and password is None:
                    password = Secret(unquote(parts.password))
                netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
                url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
            clean.append(url.rstrip("/"))
        object.__setattr__(self, "urls", tuple(clean))
        object.__setattr__(self, "username", username)
        object.__setattr__(self, "password", password)
        if self.request_timeout <= 0:
            raise ConfigError("The request timeout must be positive.")
        if (self.client_cert is None) != (self.client_key is None) and self.client_key:
            raise ConfigError("A client key needs a client certificate (--client-cert).")

    @property
    def display_url(self) -> str:
        """The URL(s) for messages: never contains credentials."""
        return ", ".join(self.urls)


def cloud_url(cloud_id: str) -> str:
    """The Elasticsearch URL an Elastic Cloud id names (``name:base64(host[:port]$es$kibana)``)."""
    _, _, encoded = cloud_id.partition(":")
    try:
        parts = base64.b64decode(encoded.encode("ascii"), validate=True).decode("ascii").split("$")
        host, es_uuid = parts[0], parts[1]
        if not host or not es_uuid:
            raise ValueError(cloud_id)
        host, _, port = host.partition(":")
        return f"https://{es_uuid}.{host}:{int(port or 443)}"
    except (ValueError, IndexError, UnicodeError, binascii.Error):
        raise ConfigError(
            "The Elastic Cloud cloud_id is not valid.",
            hint="Copy it whole from the deployment's page in the Elastic Cloud console "
            "(it looks like name:base64...).",
        ) from None


def redact_url(url: str) -> str:
    """Drop the user-info part of a URL (``https://user:pw@host`` → ``https://host``)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Config:
    """A project's configuration. Commands take one of these (as Alembic's take a ``Config``)."""

    connection: ConnectionSettings = field(default_factory=ConnectionSettings)
    #: Folder holding the project file; relative paths below are resolved against it.
    root: Path = field(default_factory=Path.cwd)
    #: Folder of migration scripts.
    migrations_dir: Path = Path("migrations")
    #: Index recording applied revisions, the lease and migration checkpoints.
    history_index: str = ".esmigrate"
    #: Python modules whose Document classes describe the wanted schemas (autogenerate/check).
    schema_modules: tuple[str, ...] = ()
    #: Where the config was read from, for messages (None: defaults and environment only).
    source: Path | None = None
    #: Seconds a runner's lease on the history index lives without a heartbeat; a runner that
    #: dies (even with SIGKILL) blocks others for at most this long.
    lease_ttl: float = 60.0
    #: ``[esmigrate.deploy] windows``: maintenance windows ``deploy`` runs in (``"Sat
    #: 02:00-04:00 Europe/Berlin"``, see :mod:`esmigrate.schedule`); empty: any time.
    deploy_windows: tuple[str, ...] = ()
    #: ``[esmigrate.deploy] cleanup_after``: ``deploy`` leaves its rollback points this long
    #: (``"24h"``) before a later ``deploy`` or ``rollback-point cleanup`` deletes them.
    cleanup_after: str | None = None
    #: The kind of rollback point migrations record (``retained``, ``clone``, ``snapshot``):
    #: at a blue-green cut-over, and (``clone``/``snapshot``) before an in-place change.
    rollback_point_kind: str = "retained"
    #: The snapshot repository of ``snapshot`` rollback points.
    snapshot_repository: str | None = None

    @property
    def migrations_path(self) -> Path:
        return (
            self.migrations_dir
            if self.migrations_dir.is_absolute()
            else self.root / self.migrations_dir
        )


_ENV_KEYS: dict[str, str] = {
    "ESMIGRATE_URL": "urls",
    "ESMIGRATE_USERNAME": "username",
    "ESMIGRATE_PASSWORD": "password",
    "ESMIGRATE_API_KEY": "api_key",
    "ESMIGRATE_BEARER_TOKEN": "bearer_token",
    "ESMIGRATE_CA_CERTS": "ca_certs",
    "ESMIGRATE_VERIFY_CERTS": "verify_certs",
    "ESMIGRATE_SSL_ASSERT_FINGERPRINT": "ssl_assert_fingerprint",
    "ESMIGRATE_CLIENT_CERT": "client_cert",
    "ESMIGRATE_CLIENT_KEY": "client_key",
    "ESMIGRATE_TIMEOUT": "request_timeout",
    "ESMIGRATE_MAX_RETRIES": "max_retries",
    "ESMIGRATE_CLOUD_ID": "cloud_id",
    "ESMIGRATE_AWS_SIGV4": "aws_sigv4",
    "ESMIGRATE_AWS_REGION": "aws_region",
    "ESMIGRATE_AWS_SERVICE": "aws_service",
}
#: The environment variable naming the profile (``[esmigrate.env.NAME]``) to use.
PROFILE_ENV = "ESMIGRATE_ENV"
#: The environment variable naming the project file (instead of the nearest one).
CONFIG_ENV = "ESMIGRATE_CONFIG"
#: Every environment variable the configuration reads (the CLI shows each beside its option).
ENVIRONMENT_VARIABLES: tuple[str, ...] = (*_ENV_KEYS, PROFILE_ENV, CONFIG_ENV)
_SECRET_FIELDS = {"password", "api_key", "bearer_token"}
#: Settings that name where the cluster is: a layer that sets one replaces the other.
_TARGET_FIELDS = ("urls", "cloud_id")
_BOOL_FIELDS = {"verify_certs", "aws_sigv4"}


def _coerce(name: str, value: Any, origin: str) -> Any:
    """Turn a raw value from TOML, the environment or a flag into the field's type."""
    try:
        if name == "urls":
            if isinstance(value, str):
                return tuple(u.strip() for u in value.split(",") if u.strip())
            return tuple(str(u) for u in value)
        if name in _SECRET_FIELDS:
            return value if isinstance(value, Secret) else Secret(str(value))
        if name == "client":
            return value
        if name in _BOOL_FIELDS:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if name == "request_timeout":
            return float(value)
        if name == "max_retries":
            return int(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Invalid value for {name!r} in {origin}.",
            hint=f"Check the {name} setting; the value given could not be used.",
        ) from None


def find_project_file(start: Path) -> Path | None:
    """The nearest ``esmigrate.toml`` (or ``pyproject.toml`` with ``[tool.esmigrate]``) upwards."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "esmigrate" in _read_toml(pyproject).get("tool", {}):
            return pyproject
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"The config file {path} is not valid TOML: {exc}.",
            hint="Fix the syntax at the position named above.",
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the config file {path}: {exc.strerror}.") from None


def _project_table(path: Path) -> dict[str, Any]:
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("esmigrate", {})
    else:
        table = data.get("esmigrate", data)
    if not isinstance(table, dict):
        raise ConfigError(f"The esmigrate table in {path} must be a table.")
    return table


def load_config(
    config_file: Path | str | None = None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    profile: str | None = None,
    **overrides: Any,
) -> Config:
    """Build a :class:`Config` from the project file, the environment and ``overrides``.

    ``profile`` selects the project file's ``[esmigrate.env.NAME]`` table (default: the
    ``ESMIGRATE_ENV`` variable), whose settings replace the file's own. ``overrides`` are
    :class:`ConnectionSettings` or :class:`Config` field names (as the CLI flags give them;
    ``client=`` reuses an application's client); ``None`` values are ignored so a flag that was
    not given does not hide the environment.
    """
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    profile = profile or env.get(PROFILE_ENV) or None
    path: Path | None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(
                f"The config file {path} does not exist.",
                hint="Run `esmigrate init` to create one, or pass the right --config path.",
            )
    elif env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    else:
        path = find_project_file(cwd)

    conn: dict[str, Any] = {}
    proj: dict[str, Any] = {}
    root = cwd
    if path is not None:
        table = _project_table(path)
        root = path.parent.resolve()
        profiles = table.pop("env", {})
        _read_table(table, str(path), conn, proj)
        if profile is not None:
            chosen = profiles.get(profile) if isinstance(profiles, dict) else None
            if not isinstance(chosen, dict):
                names = ", ".join(sorted(profiles)) if isinstance(profiles, dict) else ""
                raise ConfigError(
                    f"No profile {profile!r} in {path}.",
                    hint=f"Add an [esmigrate.env.{profile}] table"
                    + (f", or use one of: {names}." if names else ".")
                    + " The profile comes from --env or ESMIGRATE_ENV.",
                )
            _read_table(chosen, f"[esmigrate.env.{profile}] of {path}", conn, proj)
    elif profile is not None:
        raise ConfigError(
            f"The profile {profile!r} was asked for, but no project file was found.",
            hint="Profiles live in esmigrate.toml as [esmigrate.env.NAME] tables; pass --config "
            "or run from the project's folder.",
        )

    for var, name in _ENV_KEYS.items():
        if env.get(var):
            _set(conn, name, _coerce(name, env[var], f"the environment variable {var}"))

    conn_names = {f.name for f in fields(ConnectionSettings)}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("url", "urls"):
            _set(conn, "urls", _coerce("urls", value, "--url"))
        elif key in conn_names:
            _set(conn, key, _coerce(key, value, f"--{key.replace('_', '-')}"))
        elif key in ("migrations_dir", "history_index", "schema_modules"):
            proj[key] = value
        elif key == "lease_ttl":
            proj[key] = _lease_ttl(value, "--lease-ttl")
        else:
            raise TypeError(f"unknown setting {key!r}")

    return Config(connection=ConnectionSettings(**conn), root=root, source=path, **proj)


def _set(conn: dict[str, Any], name: str, value: Any) -> None:
    """Set one connection setting; a URL replaces a cloud_id from a lower layer and back."""
    if name in _TARGET_FIELDS:
        for other in _TARGET_FIELDS:
            conn.pop(other, None)
    conn[name] = value


def _read_table(
    table: Mapping[str, Any], origin: str, conn: dict[str, Any], proj: dict[str, Any]
) -> None:
    """Fold one table of the project file (the file's own or a profile's) into the settings."""
    conn_names = {f.name for f in fields(ConnectionSettings)} - {"client"}
    for key, value in table.items():
        if key == "connection" and isinstance(value, dict):
            for ckey, cvalue in value.items():
                name = "urls" if ckey in ("url", "urls") else ckey
                if name not in conn_names:
                    raise ConfigError(
                        f"Unknown connection setting {ckey!r} in {origin}.",
                        hint="Known settings: url, "
                        + ", ".join(sorted(conn_names - {"urls"}))
                        + ".",
                    )
                if name in _SECRET_FIELDS:
                    raise ConfigError(
                        f"{origin} contains the secret {ckey!r}.",
                        hint=f"Keep secrets out of files in the repository: use ESMIGRATE_{name.upper()}.",
                    )
                _set(conn, name, _coerce(name, cvalue, origin))
        elif key in ("migrations_dir", "script_location"):
            proj["migrations_dir"] = Path(str(value))
        elif key == "history_index":
            proj["history_index"] = str(value)
        elif key == "schema_modules":
            proj["schema_modules"] = tuple(str(v) for v in value)
        elif key == "lease_ttl":
            proj["lease_ttl"] = _lease_ttl(value, origin)
        elif key == "deploy" and isinstance(value, dict):
            _read_deploy(value, origin, proj)
        elif key == "rollback_point_kind":
            proj["rollback_point_kind"] = _point_kind(value, origin)
        elif key == "snapshot_repository":
            proj["snapshot_repository"] = str(value)
        else:
            raise ConfigError(
                f"Unknown setting {key!r} in {origin}.",
                hint="Known settings: connection, migrations_dir, history_index, "
                "schema_modules, lease_ttl, rollback_point_kind, snapshot_repository, deploy, "
                "env (profiles).",
            )


def _read_deploy(table: Mapping[str, Any], origin: str, proj: dict[str, Any]) -> None:
    """``[esmigrate.deploy]``: checked here, so a bad window fails at load, not at 2 a.m."""
    for key, value in table.items():
        if key == "windows":
            items = [value] if isinstance(value, str) else list(value)
            for item in items:
                parse_window(str(item))
            proj["deploy_windows"] = tuple(str(v) for v in items)
        elif key == "cleanup_after":
            parse_duration(str(value), what=f"cleanup_after in {origin}")
            proj["cleanup_after"] = str(value)
        else:
            raise ConfigError(
                f"Unknown setting {key!r} in the deploy table of {origin}.",
                hint="Known settings: windows, cleanup_after.",
            )


#: The kinds of rollback point (esmigrate.rollback.KINDS; config sits below rollback).
POINT_KINDS = ("retained", "clone", "snapshot")


def _point_kind(value: Any, origin: str) -> str:
    if value not in POINT_KINDS:
        raise ConfigError(
            f"Invalid rollback_point_kind {value!r} in {origin}.",
            hint=f"Choose one of {', '.join(POINT_KINDS)}.",
        )
    return str(value)


def _lease_ttl(value: Any, origin: str) -> float:
    try:
        ttl = float(value)
    except (TypeError, ValueError):
        ttl = 0.0
    if not ttl > 0:
        raise ConfigError(
            f"Invalid lease_ttl {value!r} in {origin}.",
            hint="Give the lease time-to-live in seconds, a positive number such as 60.",
        )
    return ttl


def with_connection(config: Config, **changes: Any) -> Config:
    """A copy of ``config`` with some connection settings changed."""
    return replace(config, connection=replace(config.connection, **changes))
