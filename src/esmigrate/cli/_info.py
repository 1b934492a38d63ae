from __future__ import annotations

from esmigrate import command
from esmigrate.cli._app import AppState, cli, connection_options, console, emit, pass_state


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


@cli.command()
@connection_options
@pass_state
def info(state: AppState) -> None:
    """Engine, version, health, nodes and disk of the cluster."""
    data = command.info(state.config)

    def human() -> None:
        colour = {"green": "green", "yellow": "yellow", "red": "red"}.get(data["status"], "white")
        console.print(f"[bold]{data['url']}[/bold]")
        console.print(
            f"  engine      {'OpenSearch' if data['engine'] == 'opensearch' else 'Elasticsearch'} {data['version']}"
        )
        console.print(f"  cluster     {data['cluster_name']}")
        console.print(f"  health      [{colour}]{data['status']}[/{colour}]")
        console.print(f"  nodes       {data['nodes']} ({data['data_nodes']} data)")
        console.print(
            f"  shards      {data['active_shards']} active, {data['unassigned_shards']} unassigned"
        )
        used = data["disk_total_bytes"] - data["disk_available_bytes"]
        console.print(f"  disk        {_size(used)} used of {_size(data['disk_total_bytes'])}")

    emit(state, data, human)
