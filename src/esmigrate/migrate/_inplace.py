"""In-place: additive mapping changes (new fields, sub-fields, analyzers on new fields) applied to
the live index, with an optional backfill by ``_update_by_query``.

The backfill is a polled, throttled task with ``conflicts=proceed``. ``_update_by_query`` writes
each document with the ``_seq_no`` it read, so a document the application rewrote meanwhile is
never overwritten with the stale copy: it is skipped as a version conflict. Skipped documents are
picked up by the next backfill round, whose query selects only documents that still need it
(by default: those missing one of the new fields). Rounds repeat until one meets no conflict.
A backfill without a script (a new sub-field, ``copy_to``) only re-indexes: one pass over the
documents written before the mapping change, whose conflicts are documents the application
rewrote under the new mapping already.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from esmigrate.cluster import Cluster, PlannedRequest, check_name
from esmigrate.exceptions import (
    MappingNotApplied,
    MigrationCancelled,
    MigrationError,
    PreflightError,
    RequestError,
)
from esmigrate.migrate._layout import check_health
from esmigrate.migrate._plan import PlanStep
from esmigrate.migrate._tasks import UPDATE_BY_QUERY, cancel_task, task_state
from esmigrate.progress import Meter, ProgressCallback
from esmigrate.schema.diff import require_applied
from esmigrate.state import Checkpoint, migration_lease
from esmigrate.transform.painless import normalize_script


def new_leaf_fields(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the leaf fields (and sub-fields) a mapping declares."""
    out: list[str] = []
    for name, spec in (mapping.get("properties") or {}).items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            out.extend(new_leaf_fields(spec, f"{path}."))
        else:
            out.append(path)
        for sub in spec.get("fields") or {}:
            out.append(f"{path}.{sub}")
    return out


@dataclass
class InPlaceResult:
    migration: str
    indices: list[str]
    updated: int
    rounds: int
    version_conflicts: int
    resumed: bool


@dataclass
class InPlace:
    """Put an additive mapping change on the indices behind ``alias`` and backfill.

    Parameters:
        mappings: the additions (``{"properties": {...}}``); an incompatible change is refused
            by the server and reported (use :class:`~esmigrate.migrate.BlueGreen` for those).
        backfill: ``True`` to re-index every matching document as is (fills new sub-fields), or a
            painless script (``ctx._source``) to compute values. Must be idempotent.
        backfill_query: which documents need the backfill; default: those missing one of the new
            fields. Must stop matching a document once it is backfilled (rounds rely on it).
    """

    cluster: Cluster
    alias: str
    mappings: Mapping[str, Any]
    backfill: bool | Mapping[str, Any] | str | None = None
    backfill_query: Mapping[str, Any] | None = None
    requests_per_second: float | None = None
    slices: int | str = "auto"
    max_rounds: int = 10
    migration_id: str | None = None
    state_index: str = ".esmigrate"
    on_progress: ProgressCallback | None = None
    cancel: threading.Event | None = None
    #: seconds the per-migration lease lives without a heartbeat
    lease_ttl: float = 30.0
    #: seconds to wait for another process's lease (default ``lease_ttl + 5``)
    lock_timeout: float | None = None

    def __post_init__(self) -> None:
        check_name(self.alias, "alias")
        check_name(self.state_index, "state index")
        self.id = self.migration_id or f"in-place:{self.alias}"
        script = self.backfill if not isinstance(self.backfill, bool) else None
        self._script = normalize_script(script)

    def _query(self) -> dict[str, Any]:
        if self.backfill_query is not None:
            return dict(self.backfill_query)
        if not self._script:
            return {"match_all": {}}  # a plain re-index: every document written before the change
        fields = new_leaf_fields(self.mappings)
        if not fields:
            return {"match_all": {}}
        return {
            "bool": {
                "should": [{"bool": {"must_not": {"exists": {"field": f}}}} for f in fields],
                "minimum_should_match": 1,
            }
        }

    def _indices(self) -> list[str]:
        if not self.cluster.exists(self.alias):
            raise PreflightError(
                f"There is no index or alias called {self.alias!r}.",
                problem="source_missing",
                hint="Check the name and the cluster URL.",
            )
        result = self.cluster.request("GET", f"/{self.alias}/_mapping")
        return sorted(result)

    def plan(self) -> list[PlanStep]:
        indices = self._indices()
        ops = [
            PlanStep(
                "put_mapping",
                f"add to the mapping of {', '.join(indices)} (refused if not additive)",
                (PlannedRequest("PUT", f"/{self.alias}/_mapping", body=dict(self.mappings)),),
            )
        ]
        if self.backfill:
            body: dict[str, Any] = {"query": self._query()}
            if self._script:
                body["script"] = self._script
            ops.append(
                PlanStep(
                    "update_by_query",
                    "backfill as a polled task (conflicts=proceed); rounds until no conflict",
                    (
                        PlannedRequest(
                            "POST",
                            f"/{self.alias}/_update_by_query",
                            {"conflicts": "proceed", "wait_for_completion": "false"},
                            body,
                        ),
                    ),
                )
            )
        return ops

    def run(self) -> InPlaceResult:
        """Run (or resume) it. One process at a time: another waits for this one's lease,
        then raises :class:`~esmigrate.exceptions.MigrationLocked`."""
        with migration_lease(self, preflight=self._preflight):
            return self._run()

    def _preflight(self) -> list[str]:
        """The checks before the run (reads only); the indices behind the alias."""
        check_health(self.cluster, self.alias, self.state_index)
        return self._indices()

    def _run(self) -> InPlaceResult:
        indices = self._preflight()
        state = Checkpoint(self.cluster, self.state_index, self.id)
        data = state.load()
        resumed = bool(data) and data.get("phase") not in (None, "done")
        if not resumed:
            state.reset()
            state.save(
                strategy="in-place",
                phase="mapping",
                indices=indices,
                round=0,
                updated=0,
                mappings=dict(self.mappings),
            )
        elif "mappings" in state.data:
            # What the interrupted run put and backfills. A caller that derives the additions
            # from the live mapping (op.migrate) finds none once they are put; the backfill query
            # names the new fields.
            self.mappings = dict(state.data["mappings"])
        if state.data["phase"] == "mapping":
            try:
                self.cluster.request("PUT", f"/{self.alias}/_mapping", body=dict(self.mappings))
            except RequestError as exc:
                state.save(phase="done", error=exc.reason)
                raise PreflightError(
                    f"The mapping change on {self.alias} is not additive: {exc.reason}.",
                    problem="not_additive",
                    hint="Changing an existing field needs a new index: use the blue-green "
                    "strategy (esmigrate.migrate.BlueGreen).",
                ) from None
            try:
                require_applied(self.cluster, self.alias, self.mappings)
            except MappingNotApplied as exc:
                state.save(phase="done", error=exc.message)
                raise
            state.save(phase="backfill" if self.backfill else "done")
        conflicts = 0
        while state.data["phase"] == "backfill":
            number = int(state.data.get("round", 0)) + 1
            task_id = state.data.get("task")
            if not task_id or (
                task_state(self.cluster, task_id, action=UPDATE_BY_QUERY, mentions=f"[{self.alias}")
                == "gone"
            ):
                # _update_by_query reads what is searchable when it starts: a document written
                # just before the mapping change (so indexed without the new fields) but not yet
                # refreshed would never be seen, by this round or by any later one.
                self.cluster.refresh(self.alias)
                task_id = self._start()
                state.save(task=task_id)
            meter = Meter("backfill", self.on_progress, round=number, migration=self.id)
            response = self._wait(task_id, meter)
            conflicts = int(response.get("version_conflicts", 0))
            updated = int(response.get("updated", 0))
            # Without a script the backfill only re-indexes documents under the new mapping; a
            # document it met as a version conflict was rewritten by the application after the
            # mapping changed, so it is indexed under the new mapping already: one pass is all.
            done = conflicts == 0 or number >= self.max_rounds or not self._script
            state.save(
                task=None,
                round=number,
                updated=int(state.data.get("updated", 0)) + updated,
                phase="done" if done else "backfill",
                last_conflicts=conflicts,
            )
            if conflicts and number >= self.max_rounds:
                raise MigrationError(
                    f"The backfill of {self.alias} still met {conflicts} version conflicts "
                    f"after {number} rounds (documents rewritten while it ran).",
                    hint="Run it again when the write rate is lower; it only touches documents "
                    "that still need the backfill.",
                )
        return InPlaceResult(
            self.id,
            indices,
            int(state.data.get("updated", 0)),
            int(state.data.get("round", 0)),
            conflicts,
            resumed,
        )

    def _start(self) -> str:
        body: dict[str, Any] = {"query": self._query()}
        if self._script:
            body["script"] = self._script
        result = self.cluster.request(
            "POST",
            f"/{self.alias}/_update_by_query",
            params={
                "conflicts": "proceed",
                "wait_for_completion": "false",
                "slices": self.slices,
                "requests_per_second": self.requests_per_second or -1,
                "refresh": "true",
            },
            body=body,
        )
        return str(result["task"])

    def _wait(self, task_id: str, meter: Meter) -> dict[str, Any]:
        def status(s: dict[str, Any]) -> None:
            if self.cancel is not None and self.cancel.is_set():
                cancel_task(self.cluster, task_id)
                raise MigrationCancelled(
                    "The backfill was cancelled.", hint="Run it again to resume."
                )
            meter.total = int(s.get("total", 0)) or None
            meter.update(int(s.get("updated", 0)) + int(s.get("version_conflicts", 0)))

        started = time.monotonic()
        response = self.cluster.wait_task(task_id, on_status=status, poll_interval=0.5)
        meter.update(message=f"done in {time.monotonic() - started:.1f}s")
        return response


def in_place(
    cluster: Cluster, alias: str, mappings: Mapping[str, Any], **options: Any
) -> InPlaceResult:
    """Apply an additive mapping change and backfill; see :class:`InPlace`."""
    return InPlace(cluster, alias, mappings, **options).run()
