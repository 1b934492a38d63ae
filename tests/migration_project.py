"""Helpers to build throw-away esmigrate projects in tests."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

from esmigrate.config import Config, ConnectionSettings, load_config


def make_project(
    root: Path,
    *,
    url: str = "http://127.0.0.1:1",
    history_index: str,
    lease_ttl: float = 60,
    connection: ConnectionSettings | None = None,
) -> Config:
    """An initialised project in ``root`` whose config points at ``url`` (or ``connection``:
    the test cluster's settings, credentials included)."""
    if connection is not None:
        url = connection.urls[0]
    root.mkdir(parents=True, exist_ok=True)
    (root / "esmigrate.toml").write_text(
        "[esmigrate]\n"
        f'history_index = "{history_index}"\n'
        f"lease_ttl = {lease_ttl}\n"
        "[esmigrate.connection]\n"
        f'url = "{url}"\n'
    )
    (root / "migrations").mkdir(exist_ok=True)
    config = load_config(root / "esmigrate.toml", env={})
    return config if connection is None else replace(config, connection=connection)


def write_script(
    config: Config,
    revision: str,
    down: str | tuple[str, ...] | None,
    upgrade: str = "pass",
    downgrade: str | None = "pass",
    *,
    message: str | None = None,
    header: str = "",
) -> Path:
    """Write ``migrations/<revision>_x.py`` with the given function bodies."""
    text = f"{textwrap.dedent(header)}\nrevision = {revision!r}\ndown_revision = {down!r}\n"
    text += f"message = {message or f'revision {revision}'!r}\n\n\n"
    text += "def upgrade(op):\n" + textwrap.indent(textwrap.dedent(upgrade).strip(), "    ") + "\n"
    if downgrade is not None:
        text += (
            "\n\ndef downgrade(op):\n"
            + textwrap.indent(textwrap.dedent(downgrade).strip(), "    ")
            + "\n"
        )
    path = config.migrations_path / f"{revision}_x.py"
    path.write_text(text)
    return path
