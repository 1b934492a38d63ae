"""Operations that move or rewrite documents: reindex (server-side or through Python) and
update-by-query. Server-side work runs as a background task polled until it ends, so no proxy
or client timeout can cut it off, and its task id is in the history from the moment it starts.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, ClassVar

from esmigrate.cluster import Cluster, PlannedRequest
from esmigrate.migrate._python_copy import CopyStats, PythonCopier
from esmigrate.operations._base import ExecContext, Operation, OpResult
from esmigrate.progress import Meter
from esmigrate.transform import Transform

_COUNTS = ("total", "created", "updated", "deleted", "noops", "version_conflicts", "batches")


def _qualname(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or repr(fn)
    # Scripts are imported under a generated module name; the function name is what helps.
    return name if module.startswith("esmigrate_revision_") else f"{module}.{name}"


def _given(**parts: Any) -> dict[str, Any]:
    """The body parts that were given (a query, a script, ``conflicts``)."""
    return {key: value for key, value in parts.items() if value}


def _task_params(slices: int | str | None, refresh: bool) -> dict[str, Any]:
    """The query string of a server task started in the background and polled."""
    params: dict[str, Any] = {"wait_for_completion": False}
    if slices is not None:
        params["slices"] = slices
    if refresh:
        params["refresh"] = True
    return params


def _run_task(
    cluster: Cluster, request: PlannedRequest, ctx: ExecContext, op: Operation
) -> OpResult:
    started = request.send(cluster)
    task_id = str(started["task"])
    ctx.on_task(task_id)
    meter = Meter(op.kind, ctx.on_progress, migration=op.summary())

    def status(st: dict[str, Any]) -> None:
        meter.total = int(st["total"]) if st.get("total") else None
        meter.update(sum(int(st.get(k) or 0) for k in ("created", "updated", "deleted", "noops")))

    response = cluster.wait_task(task_id, poll_interval=ctx.poll_interval, on_status=status)
    detail: dict[str, Any] = {"task": task_id}
    detail.update({k: response[k] for k in _COUNTS if k in response})
    if "took" in response:
        detail["took_ms"] = response["took"]
    return OpResult("done", detail)


@dataclass(frozen=True)
class Reindex(Operation):
    """Copy documents from ``source`` into ``dest``.

    Server-side ``_reindex`` (optionally with a painless ``script``) as a polled task; or, with
    ``transform`` (a Python function ``source_doc -> new_doc``, or None to leave a document
    out), a streaming copy of one consistent snapshot of ``source`` (point in time +
    ``search_after`` pages) written by the migrator's copy mode python
    (:class:`~esmigrate.migrate._python_copy.PythonCopier`: byte-bounded bulk requests, items refused
    with 429/502/503/504 retried with backoff). Only documents matching ``query`` are copied.
    Documents keep their ``_id`` and routing and are written with ``op_type=index``, so a
    re-run converges.

    Per-document failures are not dead-lettered: the first document the transform raises on
    stops the operation with :class:`~esmigrate.exceptions.TransformError` (chained to the
    transform's exception), the first document ``dest`` rejects with
    :class:`~esmigrate.exceptions.RequestError` carrying the server's reason. What was written
    before stays; fix the cause and run again. To copy around bad documents and keep them in a
    dead-letter index, use ``op.migrate``.
    """

    kind: ClassVar[str] = "reindex"
    source: str
    dest: str
    query: dict[str, Any] | None = None
    script: dict[str, Any] | None = None
    transform: Transform | None = None
    slices: int | str | None = "auto"
    conflicts: str | None = None
    page_size: int = 1000
    refresh: bool = True

    def __post_init__(self) -> None:
        if self.script is not None and self.transform is not None:
            raise ValueError("reindex takes script= or transform=, not both")
        if self.transform is not None and not callable(self.transform):
            raise TypeError("transform must be a function taking and returning a document")
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")

    def copies_from(self) -> str | None:
        return self.source

    def describe(self) -> list[PlannedRequest]:
        if self.transform is not None:
            search: dict[str, Any] = {
                "pit": {"id": f"<point in time on {self.source}>", "keep_alive": "5m"},
                "size": self.page_size,
                "sort": "<per engine: point in time on _shard_doc, or a _doc-sorted scroll>",
            }
            if self.query:
                search["query"] = self.query
            return [
                PlannedRequest(
                    "POST",
                    "/_search",
                    body=search,
                    note=f"repeated with search_after until every document of {self.source} "
                    f"is read; each _source goes through {_qualname(self.transform)}",
                ),
                PlannedRequest(
                    "POST",
                    "/_bulk",
                    note=f"index each transformed document into {self.dest} under its _id and "
                    "routing, in requests of at most 4 MiB (documents the transform maps to "
                    "None are left out; items refused with 429/502/503/504 are retried with backoff, any "
                    "other rejection stops the operation)",
                ),
                *([PlannedRequest("POST", f"/{self.dest}/_refresh")] if self.refresh else []),
            ]
        body: dict[str, Any] = {"source": {"index": self.source}, "dest": {"index": self.dest}}
        if self.query:
            body["source"]["query"] = self.query
        body.update(_given(script=self.script, conflicts=self.conflicts))
        return [
            PlannedRequest(
                "POST",
                "/_reindex",
                params=_task_params(self.slices, self.refresh),
                body=body,
                note="a background task, polled with GET /_tasks/<id> until it completes",
            )
        ]

    def summary(self) -> str:
        how = ""
        if self.script:
            how = " with a painless script"
        elif self.transform is not None:
            how = f" through {_qualname(self.transform)}"
        return f"reindex {self.source} -> {self.dest}{how}"

    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        if self.transform is None:
            return _run_task(cluster, self.describe()[0], ctx, self)
        return self._copy_in_python(cluster, ctx, self.transform)

    def _copy_in_python(self, cluster: Cluster, ctx: ExecContext, transform: Transform) -> OpResult:
        # No dead letters: a document that cannot be copied raises (see the class docstring).
        # No cancel event either: this operation is not resumable, so it runs to its end or
        # fails; the runner stops between operations.
        copier = PythonCopier(
            cluster, self.source, self.dest, transform, None, page=self.page_size, drop_none=True
        )
        stats = CopyStats()
        read = 0
        meter = Meter(self.kind, ctx.on_progress, migration=self.summary())

        def pages() -> Generator[tuple[list[dict[str, Any]], None], None, None]:
            nonlocal read
            for hits in cluster.scan(self.source, query=self.query, page_size=self.page_size):
                ctx.checkpoint()
                yield hits, None
                read += len(hits)
                meter.update(read, message=f"{stats.copied} written")

        # Closed on an error too: the point in time is released now, not when it expires.
        with closing(pages()) as stream:
            copier.copy_pages(stream, stats)
        if self.refresh:
            cluster.refresh(self.dest)
        return OpResult(
            "done",
            {
                "read": read,
                "written": stats.copied,
                "skipped": stats.skipped,
                "retries": stats.retries,
            },
        )


@dataclass(frozen=True)
class UpdateByQuery(Operation):
    """Rewrite documents in place with a painless script, as a polled background task.

    Write the script so that a second run changes nothing (``if (ctx._source.x == null)``): a
    revision may run again after a crash.
    """

    kind: ClassVar[str] = "update_by_query"
    index: str
    query: dict[str, Any] | None = None
    script: dict[str, Any] | None = None
    slices: int | str | None = "auto"
    conflicts: str | None = None
    refresh: bool = True

    def describe(self) -> list[PlannedRequest]:
        body = _given(query=self.query, script=self.script, conflicts=self.conflicts)
        return [
            PlannedRequest(
                "POST",
                f"/{self.index}/_update_by_query",
                params=_task_params(self.slices, self.refresh),
                body=body or None,
                note="a background task, polled with GET /_tasks/<id> until it completes",
            )
        ]

    def summary(self) -> str:
        return f"update by query on {self.index}" + (" with a script" if self.script else "")

    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        return _run_task(cluster, self.describe()[0], ctx, self)
