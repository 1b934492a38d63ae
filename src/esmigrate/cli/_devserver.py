from __future__ import annotations

from pathlib import Path

import click

from esmigrate import devserver
from esmigrate.cli._app import AppState, cli, console, emit, exit_with, pass_state
from esmigrate.exceptions import ExitCode


@cli.group("dev-server")
def dev_server() -> None:
    """Run a real single-node OpenSearch locally (needs Java 17+, 21+ for 3.x, and Maven)."""


port_option = click.option(
    "--port", default=9200, show_default=True, help="HTTP port on 127.0.0.1."
)
engine_option = click.option(
    "--engine",
    metavar="[opensearch:]VERSION",
    help=f"Which OpenSearch: {', '.join(devserver.ENGINES)} (default {devserver.ENGINES[0]}).",
)


def _describe(server: devserver.DevServer) -> dict[str, object]:
    return {
        "url": server.url,
        "pid": server.pid,
        "port": server.port,
        "log_file": str(server.log_file),
        "data_dir": str(server.data_dir),
        "engine": server.engine,
    }


@dev_server.command("start")
@port_option
@engine_option
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    help="Keep data in DIR between runs (default: fresh each start).",
)
@click.option(
    "--heap",
    default=devserver._node.DEFAULT_HEAP,
    show_default=True,
    help="JVM heap, e.g. 512m or 2g.",
)
@click.option("--foreground", is_flag=True, help="Run in this terminal until Ctrl-C.")
@pass_state
def start(
    state: AppState,
    port: int,
    engine: str | None,
    data_dir: Path | None,
    heap: str,
    foreground: bool,
) -> None:
    """Start the node in the background and wait until it answers."""
    wanted = devserver.resolve_engine(engine)
    if not foreground and not state.json_output and devserver.status(port) is None:
        console.print(
            f"Starting {wanted} on port {port} (the first start of a version downloads its jars)..."
        )
    server, started = devserver.start(
        port, engine=engine, data_dir=data_dir, heap=heap, foreground=foreground
    )
    if foreground:
        return
    data = {**_describe(server), "started": started}

    def human() -> None:
        what = server.engine.replace("opensearch:", "OpenSearch ")
        if started:
            console.print(f"{what} is running at [bold]{server.url}[/bold] (pid {server.pid}).")
        else:
            console.print(f"{what} already runs at [bold]{server.url}[/bold] (pid {server.pid}).")
        console.print(f"Logs: {server.log_file}")

    emit(state, data, human)


@dev_server.command("stop")
@port_option
@pass_state
def stop(state: AppState, port: int) -> None:
    """Stop the node started on --port."""
    server = devserver.stop(port)
    data = {"stopped": server is not None, "port": port}

    def human() -> None:
        if server is None:
            console.print(f"No esmigrate dev-server is running on port {port}.")
        else:
            console.print(f"Stopped the dev-server on port {port} (pid {server.pid}).")

    emit(state, data, human)


@dev_server.command("status")
@port_option
@pass_state
def status(state: AppState, port: int) -> None:
    """Say whether a node runs on --port (exit 3, a problem found, when not)."""
    server = devserver.status(port)
    data = {"running": server is not None, **(_describe(server) if server else {"port": port})}

    def human() -> None:
        if server is None:
            console.print(f"No esmigrate dev-server is running on port {port}.")
        else:
            console.print(
                f"{server.engine} runs at {server.url} (pid {server.pid}); logs: {server.log_file}"
            )

    emit(state, data, human)
    if server is None:
        exit_with(ExitCode.PROBLEM)


@dev_server.command("logs")
@port_option
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines.")
def logs(port: int, lines: int) -> None:
    """Print the last lines of the node's log."""
    click.echo(devserver.logs(port, lines))


@dev_server.command("java")
@engine_option
@pass_state
def java(state: AppState, engine: str | None) -> None:
    """Say which Java would run --engine's node (an error when none fits)."""
    wanted = devserver.resolve_engine(engine)
    found = devserver.find_java(wanted.min_java, str(wanted))
    data = {
        "engine": wanted.spec,
        "java": {"home": str(found.home), "version": found.version, "found_by": found.found_by},
    }

    def human() -> None:
        console.print(f"{wanted}: Java {found.version} at {found.home} (from {found.found_by})")

    emit(state, data, human)
