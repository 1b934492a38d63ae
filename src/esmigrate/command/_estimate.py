"""``plan --estimate``: what a plan's data operations will move, the disk they need and how long
they will take, measured on a sample.

For every operation that moves documents (``op.migrate`` blue-green or with a backfill,
``op.reindex``, ``op.update_by_query``), the estimate counts the documents behind its source
(per stored schema version for ``op.migrate``), sizes the copy (the source's primary store
times the copies the new index keeps, for the operations that write a new index) and times a
sample: up to ``sample_size`` documents copied through the operation's own transform (the
Painless script server-side, or the Python function through the migrator's copier) into a
scratch index with the target mapping, which is deleted afterwards whatever happens. The rate
measured there, applied to every document, gives the estimated duration.

The sample reads the source and writes only the scratch index: writes to the live index are
never touched, and a process killed during the sample leaves at most the scratch index, which
the next estimate deletes (its name carries its creation time).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import NotFoundError, RequestError, TransformError
from esmigrate.migrate import DeadLetters
from esmigrate.migrate._deadletters import DEAD_LETTER_BODY
from esmigrate.migrate._layout import SCRATCH_SETTINGS
from esmigrate.migrate._python_copy import CopyStats, PythonCopier
from esmigrate.migrate._reindex_copy import guarded_script
from esmigrate.operations import Migrate, Operation, Reindex, UpdateByQuery
from esmigrate.preflight import disk_space, store_bytes
from esmigrate.runtime import PlannedRevision
from esmigrate.schema import detect_schema_versions

#: Scratch indices of the sample copy: ``.esmigrate-estimate-<unix time>-<random>``, hidden like
#: the position index, so that no wildcard over the application's indices (``*``) returns them.
SCRATCH_PREFIX = ".esmigrate-estimate-"
#: A scratch index older than this is a leftover of a killed estimate, deleted by the next.
_STALE_S = 3600
DEFAULT_SAMPLE = 1000
#: The mapping of a sample's scratch dead-letter index: the dead-letter index's own.
DEAD_LETTERS: dict[str, Any] = DEAD_LETTER_BODY["mappings"]
#: A sample is read in one search page: at most the default ``index.max_result_window``.
MAX_SAMPLE = 10_000


@dataclass
class Work:
    """One operation of the plan that moves documents, and what it is estimated to cost."""

    revision: str
    operation: str
    kind: str
    source: str
    strategy: str
    documents: int
    #: Documents per stored ``schema_version`` (``op.migrate`` only); ``missing`` under None.
    schema_versions: dict[str, int] | None = None
    disk_bytes: int = 0
    sample_documents: int = 0
    sample_seconds: float = 0.0
    docs_per_s: float | None = None
    seconds: float = 0.0
    #: The documents the operation may dead-letter (its ``max_failures``; 0: the first stops it).
    max_failures: int = 0
    #: Sample documents the transform raised on or the target mapping rejected (dead letters
    #: of the run), and that share of every document: the dead letters to expect.
    sample_failures: int = 0
    failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Estimate:
    """The whole plan's estimate (``plan --estimate``)."""

    work: list[Work] = field(default_factory=list)
    disk_available_bytes: int = 0

    @property
    def documents(self) -> int:
        return sum(w.documents for w in self.work)

    @property
    def disk_bytes(self) -> int:
        return sum(w.disk_bytes for w in self.work)

    @property
    def seconds(self) -> float:
        return sum(w.seconds for w in self.work)

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents_to_move": self.documents,
            "disk_needed_bytes": self.disk_bytes,
            "disk_available_bytes": self.disk_available_bytes,
            "seconds": round(self.seconds, 3),
            "operations": [w.to_dict() for w in self.work],
        }


def _replicas(cluster: Cluster, source: str, settings: dict[str, Any] | None) -> int:
    given = (settings or {}).get(
        "number_of_replicas", (settings or {}).get("index", {}).get("number_of_replicas")
    )
    if given is not None:
        return int(given)
    answer = cluster.request(
        "GET", f"/{source}/_settings", params={"filter_path": "*.settings.index.number_of_replicas"}
    )
    found = [int(v["settings"]["index"]["number_of_replicas"]) for v in (answer or {}).values()]
    return max(found, default=1)


def _work(cluster: Cluster, revision: str, op: Operation) -> Work | None:
    """What ``op`` moves, or None when it moves no documents."""
    if isinstance(op, Migrate):
        strategy = op.decide(cluster).strategy
        if strategy not in ("blue_green", "in_place+backfill") or not cluster.exists(op.alias):
            return None
        versions = detect_schema_versions(cluster, op.alias)
        work = Work(revision, op.summary(), op.kind, op.alias, strategy, cluster.count(op.alias))
        work.schema_versions = {**versions.counts, "missing": versions.missing}
        work.max_failures = op.max_failures
        if strategy == "blue_green":
            copies = 1 + _replicas(cluster, op.alias, op.settings)
            work.disk_bytes = store_bytes(cluster, [op.alias]) * copies
        return work
    if isinstance(op, Reindex) and cluster.exists(op.source):
        work = Work(revision, op.summary(), op.kind, op.source, "copy", 0)
        work.documents = cluster.count(op.source, op.query)
        work.disk_bytes = store_bytes(cluster, [op.source])
        return work
    if isinstance(op, UpdateByQuery) and cluster.exists(op.index):
        count = cluster.count(op.index, op.query)
        return Work(revision, op.summary(), op.kind, op.index, "in place", count)
    return None


def _sampler(
    cluster: Cluster, op: Operation, source: str
) -> tuple[dict[str, Any], dict[str, Any] | None, Any]:
    """The target mapping, the Painless script and the Python transform of ``op``'s copy (the
    source's own mapping where the operation names none)."""
    if isinstance(op, Migrate):
        script = op._painless()
        return dict(op.mappings), script, None if script is not None else op.transform
    live: dict[str, Any] = cluster.request("GET", f"/{source}/_mapping")
    first: dict[str, Any] = next(iter(live.values()), {})
    mappings: dict[str, Any] = first.get("mappings") or {}
    if isinstance(op, Reindex):
        return mappings, op.script, op.transform
    script = getattr(op, "script", None)
    return mappings, {"source": script} if isinstance(script, str) else script, None


def _delete_stale(cluster: Cluster) -> None:
    answer = cluster.request(
        "GET",
        f"/_cat/indices/{SCRATCH_PREFIX}*",
        params={"format": "json", "h": "index", "expand_wildcards": "all"},
    )
    now = time.time()
    for row in answer or []:
        born = row["index"].removeprefix(SCRATCH_PREFIX).split("-")[0]
        if born.isdigit() and now - int(born) > _STALE_S:
            with contextlib.suppress(NotFoundError):
                cluster.request("DELETE", f"/{row['index']}")


@contextlib.contextmanager
def scratch_index(cluster: Cluster, mappings: dict[str, Any]) -> Iterator[str]:
    """A hidden one-shard index for a sample copy, deleted on the way out (an error, Ctrl-C)."""
    name = f"{SCRATCH_PREFIX}{int(time.time())}-{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {"settings": SCRATCH_SETTINGS}
    if mappings:
        body["mappings"] = mappings
    try:
        cluster.request("PUT", f"/{name}", body=body)
        yield name
    finally:
        with contextlib.suppress(NotFoundError):
            cluster.request("DELETE", f"/{name}")


def _sample(cluster: Cluster, op: Operation, work: Work, size: int) -> None:
    """Time the copy of up to ``size`` documents of ``work.source`` through ``op``'s own
    transform into a scratch index; set the measured rate and the estimated duration."""
    mappings, script, transform = _sampler(cluster, op, work.source)
    take = min(size, work.documents)
    if take == 0:
        return
    stats = CopyStats()
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(scratch_index(cluster, mappings))
        # As in the run, documents the transform fails on (or the mapping rejects) go to the
        # dead letters, here a scratch index of their own: counted when the operation accepts
        # failures, else the first is the error. A painless script is guarded as the copy's is,
        # so the sample finds which document failed and why instead of aborting the task.
        dead = (
            DeadLetters(cluster, stack.enter_context(scratch_index(cluster, DEAD_LETTERS)), "est")
            if work.max_failures > 0 or script is not None
            else None
        )
        began = time.monotonic()
        if transform is not None:
            copier = PythonCopier(cluster, work.source, scratch, transform, dead, drop_none=True)
            hits = cluster.search(work.source, {"size": take, "sort": ["_doc"]})["hits"]["hits"]
            copier.copy_pages(iter([(hits, None)]), stats)
        else:
            body: dict[str, Any] = {
                "source": {"index": work.source, "size": min(take, 1000)},
                "dest": {"index": scratch},
                "max_docs": take,
            }
            if script is not None and dead is not None:
                body["script"] = guarded_script(script, dead.index, dead.migration, scratch)
            try:
                cluster.request(
                    "POST",
                    "/_reindex",
                    params={"wait_for_completion": "true", "refresh": "true"},
                    body=body,
                )
            except RequestError as exc:
                if exc.error_type != "script_exception":
                    raise
                # A stored script, which cannot be guarded: the task stopped at the document.
                raise TransformError(
                    f"The painless script of revision {work.revision} failed on a sampled "
                    f"document of {work.source}: {exc.reason or exc}",
                    rule="painless",
                    hint="Fix the script; the migration would stop at the same document.",
                ) from None
            if dead is not None:
                stats.failed = dead.count()
                if stats.failed and work.max_failures == 0:
                    first = dead.samples(1)[0]
                    raise TransformError(
                        f"The painless script of revision {work.revision} failed on document "
                        f"{first.get('id')} of {work.source}: {first.get('reason')}",
                        rule="painless",
                        doc_id=first.get("id"),
                        hint="Fix the script, or let the migration dead-letter such documents "
                        "with max_failures=N.",
                    )
        cluster.refresh(scratch)
        seconds = max(time.monotonic() - began, 1e-3)
    work.sample_documents = take
    work.sample_failures = stats.failed
    work.failures = round(work.documents * stats.failed / take)
    work.sample_seconds = round(seconds, 3)
    work.docs_per_s = round(take / seconds, 1)
    work.seconds = round(work.documents / (take / seconds), 3)


def estimate(
    cluster: Cluster,
    planned: list[PlannedRevision],
    *,
    sample_size: int = DEFAULT_SAMPLE,
    on_work: Callable[[Work], None] | None = None,
) -> Estimate:
    """The estimate of ``planned`` (see the module): counts, disk, and a timed sample copy per
    operation that moves documents."""
    _delete_stale(cluster)
    result = Estimate(disk_available_bytes=disk_space(cluster)[1])
    for revision in planned:
        for op in revision.operations:
            work = _work(cluster, revision.script.revision, op)
            if work is None:
                continue
            if sample_size > 0:
                _sample(cluster, op, work, sample_size)
            result.work.append(work)
            if on_work is not None:
                on_work(work)
    return result
