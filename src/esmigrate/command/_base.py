"""What every verb needs: the connection and a runner for the project."""

from __future__ import annotations

import threading

from esmigrate.cluster import Cluster, connect
from esmigrate.config import Config
from esmigrate.progress import ProgressCallback, Reporter
from esmigrate.runtime import Runner
from esmigrate.script import RevisionGraph


def open_cluster(config: Config) -> Cluster:
    """Connect to the cluster the config names."""
    return connect(config.connection)


def runner_for(
    config: Config,
    cluster: Cluster,
    graph: RevisionGraph,
    reporter: Reporter | None,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> Runner:
    return Runner.from_config(
        config, cluster, graph, reporter=reporter, cancel=cancel, on_progress=on_progress
    )
