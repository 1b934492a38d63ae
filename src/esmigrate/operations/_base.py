"""What every operation is: data that can describe its requests and execute them idempotently."""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from esmigrate.cluster import Cluster, PlannedRequest
from esmigrate.exceptions import NotFoundError
from esmigrate.progress import ProgressCallback, ProgressEvent, Reporter


@dataclass(frozen=True)
class OpResult:
    """What executing an operation did: ``done``, or ``unchanged`` when it was already so."""

    status: Literal["done", "unchanged"]
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, **self.detail}


def _nothing() -> None:
    return None


def _ignore(_: str) -> None:
    return None


def _ignore_record(_: Mapping[str, Any]) -> None:
    return None


def _ignore_event(_: ProgressEvent) -> None:
    return None


@dataclass(frozen=True)
class ExecContext:
    """What the runner lends an executing operation.

    ``checkpoint`` raises :class:`~esmigrate.exceptions.LeaseLost` when the runner must stop
    (long operations call it between pages); ``on_task`` records a background task id as soon
    as it exists, so the history names it even if this process dies while it runs. Long
    operations report their numbers to ``on_progress`` (events the caller draws) and what they
    decided to ``say`` (lines).
    """

    checkpoint: Callable[[], None] = _nothing
    on_task: Callable[[str], None] = _ignore
    say: Reporter = _ignore
    on_progress: ProgressCallback = _ignore_event
    poll_interval: float = 1.0
    #: The revision being applied (long operations name their resumable state after it).
    revision: str = ""
    #: Where resumable operations keep their checkpoints (the history index).
    state_index: str = ".esmigrate"
    #: Set when the user asked to stop (Ctrl-C): cancel-aware operations stop at a safe point.
    cancel: threading.Event | None = None
    #: Merges progress numbers into this operation's entry of the history (throttled there).
    record: Callable[[Mapping[str, Any]], None] = _ignore_record
    #: The project's kind of rollback point for migrations, and the repository of snapshot
    #: points (``rollback_point_kind`` and ``snapshot_repository`` in esmigrate.toml).
    rollback_point_kind: str = "retained"
    snapshot_repository: str | None = None


class Operation(abc.ABC):
    """Base of all operations. Subclasses are frozen dataclasses (data first)."""

    #: The name scripts and plans use (``create_index``).
    kind: ClassVar[str]

    @abc.abstractmethod
    def describe(self) -> list[PlannedRequest]:
        """The requests :meth:`execute` sends, in order (reads made only to reconcile a
        conflict are not listed)."""

    @abc.abstractmethod
    def summary(self) -> str:
        """One line for humans: ``create index posts-v2``."""

    @abc.abstractmethod
    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        """Run against ``cluster``. Idempotent: a second run converges to the same state."""

    def copies_from(self) -> str | None:
        """The index or alias whose documents this operation copies into a new index (the
        pre-flight disk check sizes it); None for operations that copy nothing."""
        return None

    #: True when an interrupted run can be resumed (the next ``upgrade`` continues it instead
    #: of recording the revision as failed).
    resumable: ClassVar[bool] = False

    def explain(self, cluster: Cluster | None) -> dict[str, Any]:
        """Extra plan information read from the live cluster (``cluster`` None: offline)."""
        return {}

    def describe_on(self, cluster: Cluster | None) -> list[PlannedRequest]:
        """The requests, knowing the live cluster when there is one (default: :meth:`describe`)."""
        return self.describe()

    def interrupted(self, cluster: Cluster, ctx: ExecContext) -> str | None:
        """For a resumable operation: where an interrupted run stopped (None: nothing to resume)."""
        return None

    def planned_point(self, cluster: Cluster | None, ctx: ExecContext) -> dict[str, Any] | None:
        """The rollback point a run would record, for the plan (``name`` None, with ``note``
        saying why, when it records none); None for operations that record no point. ``ctx``
        carries the revision and the project's settings a run would have."""
        return None

    def to_dict(
        self, cluster: Cluster | None = None, ctx: ExecContext | None = None
    ) -> dict[str, Any]:
        """The plan's form; with ``ctx`` (the revision and the project's settings), also the
        rollback point a run would record."""
        data: dict[str, Any] = {
            "op": self.kind,
            "summary": self.summary(),
            **self.explain(cluster),
            "requests": [r.to_dict() for r in self.describe_on(cluster)],
        }
        source = self.copies_from()
        if source is not None:
            data["copies_from"] = source
        point = None if ctx is None else self.planned_point(cluster, ctx)
        if point is not None:
            data["rollback_point"] = point
        return data

    def __str__(self) -> str:
        return self.summary()


def acknowledged(answer: Any) -> dict[str, Any]:
    """What the history keeps of an answer to a create/put/delete: its ``acknowledged`` flag."""
    if isinstance(answer, Mapping) and "acknowledged" in answer:
        return {"acknowledged": answer["acknowledged"]}
    return {}


class OneRequest(Operation):
    """An operation that is one request (the one :meth:`describe` lists): done once sent, with
    the server's ``acknowledged`` flag. Sending it again converges (a put replaces)."""

    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        return OpResult("done", acknowledged(self.describe()[0].send(cluster)))


class DeleteRequest(OneRequest):
    """One DELETE request: a resource already gone is fine unless ``missing_ok`` is False
    (which is what makes deletes idempotent)."""

    #: What is deleted, in the result's reason (``index``, ``template``...).
    what: ClassVar[str]
    missing_ok: bool

    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        try:
            answer = self.describe()[0].send(cluster)
        except NotFoundError:
            if not self.missing_ok:
                raise
            return OpResult("unchanged", {"reason": f"the {self.what} does not exist"})
        return OpResult("done", acknowledged(answer))
