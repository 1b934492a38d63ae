from __future__ import annotations

from pathlib import Path

import click

from esmigrate import devserver
from esmigrate.cli._app import AppState, cli, console, emit, exit_with, pass_state
from esmigrate.exceptions import ExitCode


@cli.group("dev-server")
def dev_server() -> None:
    """Run a real OpenSearch locally, one node or a small cluster (needs Java 17+, 21+ for 3.x,
    and Maven)."""


port_option = click.option(
    "--port",
    default=9200,
    show_default=True,
    help="HTTP port on 127.0.0.1 (of a cluster's first node).",
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


def _describe_nodes(port: int) -> list[dict[str, object]]:
    """Every node of the cluster on ``port``: running ones described, stopped ones named."""
    return [
        {"running": True, **_describe(node)} if node else {"running": False, "port": p}
        for p, node in devserver.members(port)
    ]


@dev_server.command("start")
@port_option
@engine_option
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    help="Keep data in DIR between runs (default: fresh each start, deleted at stop).",
)
@click.option(
    "--heap",
    default=devserver._node.DEFAULT_HEAP,
    show_default=True,
    help="JVM heap, e.g. 512m or 2g.",
)
@click.option("--foreground", is_flag=True, help="Run in this terminal until Ctrl-C.")
@click.option(
    "--nodes",
    type=int,
    default=1,
    show_default=True,
    help="Nodes of the cluster, one process each: HTTP on --port, --port+1, ...; transport on "
    "--port+100, --port+101, ...",
)
@pass_state
def start(
    state: AppState,
    port: int,
    engine: str | None,
    data_dir: Path | None,
    heap: str,
    foreground: bool,
    nodes: int,
) -> None:
    """Start the node (or the cluster) in the background and wait until it answers."""
    wanted = devserver.resolve_engine(engine)
    if not foreground and not state.json_output and devserver.status(port) is None and nodes > 0:
        what = f"a cluster of {nodes} {wanted} nodes" if nodes > 1 else str(wanted)
        console.print(
            f"Starting {what} on port {port} (the first start of a version downloads its jars)..."
        )
    server, started = devserver.start(
        port, engine=engine, data_dir=data_dir, heap=heap, foreground=foreground, nodes=nodes
    )
    if foreground:
        return
    data: dict[str, object] = {**_describe(server), "started": started}
    if len(server.nodes) > 1:
        data["nodes"] = _describe_nodes(port)

    def human() -> None:
        what = server.engine.replace("opensearch:", "OpenSearch ")
        if len(server.nodes) > 1:
            what = f"A cluster of {len(server.nodes)} {what} nodes"
            pids = ", ".join(str(n["pid"]) for n in _describe_nodes(port) if n["running"])
            ports = f"ports {server.nodes[0]}-{server.nodes[-1]}, pids {pids}"
        else:
            ports = f"pid {server.pid}"
        if started:
            console.print(f"{what} is running at [bold]{server.url}[/bold] ({ports}).")
        else:
            console.print(f"{what} already runs at [bold]{server.url}[/bold] ({ports}).")
        console.print(f"Logs: {server.log_file}")

    emit(state, data, human)


@dev_server.command("stop")
@port_option
@pass_state
def stop(state: AppState, port: int) -> None:
    """Stop the node started on --port (every node of its cluster)."""
    running = [node for _, node in devserver.members(port) if node is not None]
    server = devserver.stop(port)
    data = {"stopped": server is not None, "port": port, "nodes": [n.port for n in running]}

    def human() -> None:
        if server is None:
            console.print(f"No esmigrate dev-server is running on port {port}.")
        elif len(running) > 1:
            pids = ", ".join(str(n.pid) for n in running)
            console.print(
                f"Stopped the {len(running)} nodes of the dev-server on port {port} (pids {pids})."
            )
        else:
            console.print(f"Stopped the dev-server on port {port} (pid {server.pid}).")

    emit(state, data, human)


@dev_server.command("status")
@port_option
@pass_state
def status(state: AppState, port: int) -> None:
    """Say whether a node runs on --port, and every node of its cluster (exit 3, a problem
    found, when the node on --port or any node of its cluster is not running)."""
    server = devserver.status(port)
    nodes = _describe_nodes(port)
    data: dict[str, object] = {
        "running": server is not None,
        **(_describe(server) if server else {"port": port}),
    }
    if len(nodes) > 1:
        data["nodes"] = nodes

    def human() -> None:
        if server is None and len(nodes) == 1:
            console.print(f"No esmigrate dev-server is running on port {port}.")
        elif len(nodes) == 1 and server is not None:
            console.print(
                f"{server.engine} runs at {server.url} (pid {server.pid}); logs: {server.log_file}"
            )
        else:
            console.print(f"A cluster of {len(nodes)} dev-server nodes from port {port}:")
            for node in nodes:
                if node["running"]:
                    console.print(
                        f"  {node['engine']} runs at {node['url']} (pid {node['pid']}); "
                        f"logs: {node['log_file']}"
                    )
                else:
                    console.print(f"  port {node['port']}: not running")

    emit(state, data, human)
    if server is None or not all(node["running"] for node in nodes):
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
