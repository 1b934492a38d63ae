"""Cluster-level objects (index templates, ingest pipelines) and the escape hatches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from esmigrate.cluster import Cluster, PlannedRequest
from esmigrate.exceptions import RequestError
from esmigrate.operations._base import DeleteRequest, ExecContext, OneRequest, Operation, OpResult


@dataclass(frozen=True)
class PutIndexTemplate(OneRequest):
    """Create or replace a composable index template (``PUT /_index_template/<name>``)."""

    kind: ClassVar[str] = "put_index_template"
    name: str
    body: dict[str, Any]

    def describe(self) -> list[PlannedRequest]:
        return [PlannedRequest("PUT", f"/_index_template/{self.name}", body=self.body)]

    def summary(self) -> str:
        patterns = ", ".join(self.body.get("index_patterns") or [])
        return f"put index template {self.name}" + (f" ({patterns})" if patterns else "")


@dataclass(frozen=True)
class DeleteIndexTemplate(DeleteRequest):
    """Delete a composable index template; one already gone is fine unless ``missing_ok`` is False."""

    kind: ClassVar[str] = "delete_index_template"
    what: ClassVar[str] = "template"
    name: str
    missing_ok: bool = True

    def describe(self) -> list[PlannedRequest]:
        return [PlannedRequest("DELETE", f"/_index_template/{self.name}")]

    def summary(self) -> str:
        return f"delete index template {self.name}"


@dataclass(frozen=True)
class PutPipeline(OneRequest):
    """Create or replace an ingest pipeline (``PUT /_ingest/pipeline/<id>``)."""

    kind: ClassVar[str] = "put_pipeline"
    id: str
    body: dict[str, Any]

    def describe(self) -> list[PlannedRequest]:
        return [PlannedRequest("PUT", f"/_ingest/pipeline/{self.id}", body=self.body)]

    def summary(self) -> str:
        return f"put ingest pipeline {self.id}"


@dataclass(frozen=True)
class DeletePipeline(DeleteRequest):
    """Delete an ingest pipeline; one already gone is fine unless ``missing_ok`` is False."""

    kind: ClassVar[str] = "delete_pipeline"
    what: ClassVar[str] = "pipeline"
    id: str
    missing_ok: bool = True

    def describe(self) -> list[PlannedRequest]:
        return [PlannedRequest("DELETE", f"/_ingest/pipeline/{self.id}")]

    def summary(self) -> str:
        return f"delete ingest pipeline {self.id}"


def _bounded(value: Any, limit: int = 2000) -> Any:
    """``value`` if its JSON is small, else its top-level keys (the history stays small)."""
    try:
        size = len(orjson.dumps(value))
    except TypeError:
        return repr(value)[:limit]
    if size <= limit:
        return value
    if isinstance(value, dict):
        return {"truncated": True, "keys": sorted(value)[:50]}
    return {"truncated": True, "bytes": size}


@dataclass(frozen=True)
class RawRequest(Operation):
    """Any REST request: the escape hatch. ``ignore`` lists statuses that count as success
    (e.g. ``(404,)`` for a delete), which is how to make it idempotent."""

    kind: ClassVar[str] = "request"
    method: str
    path: str
    params: dict[str, Any] | None = None
    body: Any = None
    ignore: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        if not self.path.startswith("/"):
            raise ValueError(f"the path {self.path!r} must start with '/'")

    def describe(self) -> list[PlannedRequest]:
        return [PlannedRequest(self.method, self.path, params=self.params or {}, body=self.body)]

    def summary(self) -> str:
        return f"request {self.method} {self.path}"

    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        try:
            answer = self.describe()[0].send(cluster)
        except RequestError as exc:
            if exc.status in self.ignore:
                return OpResult("unchanged", {"ignored_status": exc.status, "reason": exc.reason})
            raise
        return OpResult("done", {"response": _bounded(answer)})


@dataclass(frozen=True)
class CallPython(Operation):
    """Run a Python function ``fn(cluster)`` at this point of the revision.

    For steps no other operation expresses. Its requests cannot be listed in advance, so plans
    show its ``description``. It must be idempotent, as every operation: a revision can run
    again after a crash. A dict it returns is logged in the history.
    """

    kind: ClassVar[str] = "call"
    fn: Callable[[Cluster], Any]
    description: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError("op.call needs a function taking the cluster")

    @property
    def function_name(self) -> str:
        return getattr(self.fn, "__qualname__", None) or repr(self.fn)

    def describe(self) -> list[PlannedRequest]:
        return []

    def summary(self) -> str:
        text = f"call {self.function_name}()"
        return f"{text}: {self.description}" if self.description else text

    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        answer = self.fn(cluster)
        return OpResult("done", {"returned": _bounded(answer)} if answer is not None else {})
