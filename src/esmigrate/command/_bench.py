"""``esmigrate bench``: the benchmark as a command (the measuring is :mod:`esmigrate.bench`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from esmigrate import devserver
from esmigrate.bench import APPROACHES, BenchReport, BenchRow, draw_chart, pyplot, run_bench
from esmigrate.bench._approaches import ApproachName
from esmigrate.bench._data import ShapeName
from esmigrate.cluster import connect
from esmigrate.config import Config, ConnectionSettings
from esmigrate.exceptions import ConfigError


def bench(
    config: Config,
    *,
    docs: Sequence[int] = (100_000,),
    shape: ShapeName = "post",
    shards: int = 2,
    sample: int = 20,
    approaches: Sequence[ApproachName] = tuple(APPROACHES),
    embedded: bool = False,
    engine: str | None = None,
    heap: str | None = None,
    chart: Path | None = None,
    writers: float = 0.0,
    on_row: Callable[[BenchRow], None] | None = None,
) -> BenchReport:
    """Measure every approach of :data:`esmigrate.bench.APPROACHES` at each size of ``docs``, on
    the configured cluster or (``embedded``) on a dev-server node started for the run and
    stopped after it; with ``chart``, draw the results as a PNG there; with ``writers``, a live
    writer does that many operations/s through the alias during each approach."""
    if writers < 0:
        raise ConfigError(
            f"The live writer's rate must not be negative (got {writers:g}).",
            hint="Pass --writers RATE in operations per second, or leave it out for none.",
        )
    if not docs or min(docs) < 1 or sample < 1 or shards < 1:
        raise ConfigError(
            "The benchmark needs at least one document per size, per sample and one shard.",
            hint="Pass --docs N (N >= 1, repeatable), --sample N >= 1 and --shards N >= 1.",
        )
    unknown = sorted(set(approaches) - set(APPROACHES))
    if unknown:
        raise ConfigError(
            f"Unknown benchmark approach {', '.join(unknown)}.",
            hint=f"Choose from {', '.join(APPROACHES)}.",
        )
    if chart is not None:
        pyplot()  # a missing extra fails now, not after the run
    if not embedded:
        report = _run(config.connection, docs, shape, shards, sample, approaches, writers, on_row)
    else:
        port = devserver.free_port()
        server, _ = (
            devserver.start(port, engine=engine, heap=heap)
            if heap
            else devserver.start(port, engine=engine)
        )
        try:
            settings = ConnectionSettings(urls=(server.url,))
            report = _run(settings, docs, shape, shards, sample, approaches, writers, on_row)
        finally:
            devserver.stop(port)
    if chart is not None:
        draw_chart(report, chart)
    return report


def _run(
    settings: ConnectionSettings,
    docs: Sequence[int],
    shape: ShapeName,
    shards: int,
    sample: int,
    approaches: Sequence[ApproachName],
    writers: float,
    on_row: Callable[[BenchRow], None] | None,
) -> BenchReport:
    with connect(settings) as cluster:
        return run_bench(
            cluster,
            settings,
            sizes=docs,
            shape=shape,
            shards=shards,
            sample=sample,
            approaches=approaches,
            writers=writers,
            on_row=on_row,
        )
