"""The ways of moving an index to a new mapping that ``esmigrate bench`` compares.

Each is a function ``(cluster, job) -> Measured`` that copies ``job.source`` into
``job.target`` with the shape's transform (except the no-script ``_reindex``, the ceiling) and
ends with the alias pointing to the target, the way its user would do it by hand. They run one
at a time, each in its own process (:mod:`._worker`), so the peak RSS is that approach's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from esmigrate.bench._data import SHAPES, Shape, ShapeName
from esmigrate.cluster import Cluster
from esmigrate.migrate import BlueGreen

ApproachName = Literal[
    "reindex", "reindex_painless", "esmigrate_painless", "esmigrate_python", "helpers", "guide"
]


@dataclass(frozen=True)
class Job:
    """One approach's run: indices and alias the parent prepared, the shape, how many docs."""

    approach: ApproachName
    shape: ShapeName
    source: str
    target: str
    alias: str
    state_index: str
    dead_letter_index: str
    shards: int
    #: The guide's approach only: documents to move (it is measured on a sample).
    limit: int | None = None


@dataclass
class Measured:
    """What an approach reports beyond its wall time."""

    copied: int
    phases: dict[str, float] = field(default_factory=dict)
    #: Seconds the alias's index refused writes (esmigrate's write block); None: no block.
    blocked_seconds: float | None = None
    #: Where those seconds went (``MigrationResult.blocked_breakdown``).
    blocked_breakdown: dict[str, float] = field(default_factory=dict)


def _create_target(cluster: Cluster, job: Job, shape: Shape) -> None:
    cluster.request(
        "PUT",
        f"/{job.target}",
        body={
            "settings": {"number_of_shards": job.shards, "number_of_replicas": 0},
            "mappings": shape.target_mapping,
        },
    )


def _swap(cluster: Cluster, job: Job) -> None:
    cluster.request(
        "POST",
        "/_aliases",
        body={
            "actions": [
                {"remove": {"index": job.source, "alias": job.alias}},
                {"add": {"index": job.target, "alias": job.alias}},
            ]
        },
    )


def _server_reindex(cluster: Cluster, job: Job, script: str | None) -> Measured:
    _create_target(cluster, job, SHAPES[job.shape])
    body: dict[str, Any] = {"source": {"index": job.source}, "dest": {"index": job.target}}
    if script is not None:
        body["script"] = {"lang": "painless", "source": script}
    started = cluster.request(
        "POST", "/_reindex", params={"wait_for_completion": "false", "slices": "auto"}, body=body
    )
    response = cluster.wait_task(str(started["task"]), poll_interval=0.2)
    cluster.refresh(job.target)
    _swap(cluster, job)
    return Measured(copied=int(response["created"]) + int(response["updated"]))


def reindex(cluster: Cluster, job: Job) -> Measured:
    """``_reindex`` with no script (sliced, as a task) + alias swap: the ceiling."""
    return _server_reindex(cluster, job, None)


def reindex_painless(cluster: Cluster, job: Job) -> Measured:
    """The transform as painless in a sliced ``_reindex`` + alias swap, by hand: no catch-up,
    so writes made during the copy are lost."""
    return _server_reindex(cluster, job, SHAPES[job.shape].painless)


def _bluegreen(cluster: Cluster, job: Job, python: bool) -> Measured:
    shape = SHAPES[job.shape]
    result = BlueGreen(
        cluster,
        job.alias,
        shape.target_mapping,
        settings={"number_of_replicas": 0},
        script=None if python else shape.painless,
        transform=shape.transform if python else None,
        target=job.target,
        state_index=job.state_index,
        dead_letter_index=job.dead_letter_index,
    ).run()
    return Measured(
        copied=result.copied,
        phases=dict(result.phases),
        blocked_seconds=result.blocked_seconds,
        blocked_breakdown=dict(result.blocked_breakdown),
    )


def esmigrate_painless(cluster: Cluster, job: Job) -> Measured:
    """``BlueGreen(script=...)``: the whole zero-downtime migration, copy mode reindex."""
    return _bluegreen(cluster, job, python=False)


def esmigrate_python(cluster: Cluster, job: Job) -> Measured:
    """``BlueGreen(transform=...)``: the whole zero-downtime migration, copy mode python."""
    return _bluegreen(cluster, job, python=True)


def helpers(cluster: Cluster, job: Job) -> Measured:
    """The client library's ``helpers.scan`` → transform → ``helpers.bulk`` + alias swap."""
    shape = SHAPES[job.shape]
    client = cluster.client
    package = type(client).__module__.split(".")[0]
    library = importlib.import_module(package + ".helpers")
    if package == "opensearchpy":
        # As a user has it: the library's own serializer (esmigrate's returns bytes, which
        # opensearch-py's helpers cannot join). This process runs nothing else.
        client.transport.serializer = importlib.import_module(package).JSONSerializer()
    _create_target(cluster, job, shape)

    def actions() -> Iterator[dict[str, Any]]:
        for hit in library.scan(client, index=job.source, size=1000):
            yield {
                "_index": job.target,
                "_id": hit["_id"],
                "_source": shape.transform(hit["_source"]),
            }

    copied, _ = library.bulk(client, actions(), chunk_size=1000, stats_only=True)
    cluster.refresh(job.target)
    _swap(cluster, job)
    return Measured(copied=int(copied))


def guide(cluster: Cluster, job: Job) -> Measured:
    """The guide's loop on a sample: one index request per document with ``refresh=wait_for``."""
    shape = SHAPES[job.shape]
    _create_target(cluster, job, shape)
    hits = cluster.search(job.source, {"size": job.limit or 20, "query": {"match_all": {}}})
    for hit in hits["hits"]["hits"]:
        cluster.request(
            "PUT",
            f"/{job.target}/_doc/{hit['_id']}",
            params={"refresh": "wait_for"},
            body=shape.transform(hit["_source"]),
        )
    return Measured(copied=len(hits["hits"]["hits"]))


APPROACHES: dict[ApproachName, tuple[str, Callable[[Cluster, Job], Measured]]] = {
    "reindex": ("_reindex, no script", reindex),
    "reindex_painless": ("hand painless _reindex", reindex_painless),
    "esmigrate_painless": ("esmigrate painless", esmigrate_painless),
    "esmigrate_python": ("esmigrate Python", esmigrate_python),
    "helpers": ("helpers scan/bulk", helpers),
    "guide": ("guide, per document", guide),
}
