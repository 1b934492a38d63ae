"""Incremental: copy the documents changed since the last run, with the transform.

Two kinds of checkpoint, stored in the state index and advanced only after a run completes:

- ``_seq_no`` (default): per-shard checkpoints of the source index. Every create and update since
  the previous run is found, whatever the document's content. Bound to one physical source index.
- a timestamp field (``since_field``): documents whose field is at or after the largest value the
  previous run saw. Only as good as the field: a write that does not advance it is not seen.

With ``_seq_no`` checkpoints, deletes are carried over too (``deletes``, on by default there):
the target mirrors the source.
After the copy, a position pass checks what this run wrote to the target against the source and
records each document's source ``_seq_no`` in a hidden position index (``.esmigrate-positions-{target}``,
kept between runs); range counts over those positions then find the documents the source no
longer has (see ``_positions.py``) — without reading the whole target. A delete made while a run
is under way is carried by the next run. Pass ``deletes=False`` when the target also receives
documents from elsewhere: they would look deleted. A timestamp field cannot carry deletes: a
write that does not advance it is not copied, and would hide deletes from the counts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from esmigrate.cluster import Cluster, check_name
from esmigrate.exceptions import MigrationError, PreflightError
from esmigrate.migrate._bluegreen_state import TaskStep, shard_map, stored_shard_map
from esmigrate.migrate._copy import Copier
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._layout import check_health, is_alias, resolve
from esmigrate.migrate._positions import Positions, positions_name
from esmigrate.migrate._reindex_copy import refuse_rerouting
from esmigrate.migrate._shards import changed_terms, checkpoints, primary_terms
from esmigrate.progress import Meter, ProgressCallback
from esmigrate.state import Checkpoint, migration_lease
from esmigrate.transform import Transform
from esmigrate.transform.painless import normalize_script


@dataclass
class IncrementalResult:
    migration: str
    source: str
    target: str
    copied: int
    failures: int
    runs: int
    checkpoint: dict[str, Any]
    #: documents deleted from the target because the source no longer has them
    deleted: int = 0


@dataclass
class Incremental:
    """Copy what changed in ``source`` since the last run into ``target``, transformed.

    ``source``/``target`` may be aliases (the write index is used). ``script`` (painless, runs in
    ``_reindex``) or ``transform`` (Python), not both; neither copies as is. ``deletes``: delete
    from the target what the source deleted (the target mirrors the source); the default with
    ``_seq_no`` checkpoints, refused with ``since_field``. One process at a time
    runs it: another waits for its lease, then raises
    :class:`~esmigrate.exceptions.MigrationLocked`.
    """

    cluster: Cluster
    source: str
    target: str
    script: Mapping[str, Any] | str | None = None
    transform: Transform | None = None
    since_field: str | None = None
    migration_id: str | None = None
    state_index: str = ".esmigrate"
    dead_letter_index: str | None = None
    requests_per_second: float | None = None
    page_size: int = 1000
    parallelism: int = 4
    on_progress: ProgressCallback | None = None
    cancel: threading.Event | None = None
    deletes: bool | None = None
    lease_ttl: float = 30.0
    #: seconds to wait for another process's lease (default ``lease_ttl + 5``)
    lock_timeout: float | None = None

    def __post_init__(self) -> None:
        check_name(self.source, "source")
        check_name(self.target, "target")
        check_name(self.state_index, "state index")
        if self.dead_letter_index is not None:
            check_name(self.dead_letter_index, "dead-letter index")
        if self.script is not None and self.transform is not None:
            raise PreflightError(
                "Give either a painless script or a Python transform, not both.",
                problem="two_transforms",
            )
        self.painless = normalize_script(self.script)
        refuse_rerouting(self.painless)
        self.id = self.migration_id or f"incremental:{self.source}->{self.target}"
        if self.deletes and self.since_field is not None:
            raise PreflightError(
                "Deletes can only be carried with _seq_no checkpoints, not with since_field.",
                problem="deletes_need_seq_no",
                hint="A write that does not advance the timestamp field is not copied, and such "
                "a document would also hide deletes from the reconciliation. Leave since_field "
                "out to mirror deletes, or pass deletes=False.",
            )
        self._deletes = self.since_field is None if self.deletes is None else self.deletes

    def _concrete(self, name: str, role: str) -> str:
        if is_alias(self.cluster, name):
            return resolve(self.cluster, name).source
        if not self.cluster.exists(name):
            raise PreflightError(
                f"The {role} {name!r} does not exist.",
                problem=f"{role}_missing",
                hint="Check the name; the target must be created (with its mapping) first.",
            )
        return name

    def run(self) -> IncrementalResult:
        with migration_lease(self, preflight=self._preflight):
            return self._run()

    def _preflight(self) -> tuple[str, str]:
        """The checks before the run (reads only); the concrete source and target."""
        check_health(self.cluster, self.source, self.target, self.state_index)
        return self._concrete(self.source, "source"), self._concrete(self.target, "target")

    def _run(self) -> IncrementalResult:
        source, target = self._preflight()
        state = Checkpoint(self.cluster, self.state_index, self.id)
        data = state.load()
        if data and data.get("source") != source and self.since_field is None:
            raise MigrationError(
                f"The checkpoint of {self.id!r} belongs to {data.get('source')}, but {self.source} "
                f"is now {source}: _seq_no checkpoints do not carry across indices.",
                hint="Start a new incremental migration (another migration_id), or use a "
                "timestamp field (since_field).",
            )
        if not data:
            state.save(strategy="incremental", source=source, target=target, runs=0, copied=0)
        dead = DeadLetters(
            self.cluster, self.dead_letter_index or f"{self.target}-deadletter", self.id
        )
        dead.ensure()
        meter = Meter("incremental", self.on_progress, migration=self.id)
        # Read before the checkpoints: a failover after this is seen by the next run.
        terms = primary_terms(self.cluster, source) if self.since_field is None else {}
        reread = self._primaries_changed(state, terms)
        if reread:
            meter.update(
                message=f"primary of shard {', '.join(map(str, reread))} of {source} changed: "
                "reading it again"
            )
        # Every document of the source at or below these was copied by this run or an earlier
        # one: the range the delete reconciliation can trust.
        copied_upto = checkpoints(self.cluster, source)
        if self.since_field is None:
            copied, checkpoint = self._by_seq_no(state, source, target, dead, meter, reread)
        else:
            copied, checkpoint = self._by_field(state, source, target, dead, meter)
        self.cluster.refresh(target)
        deleted = 0
        if self._deletes:
            deleted = self._carry_deletes(
                state, source, target, dead, copied_upto, check_all=bool(reread)
            )
        runs = int(state.data.get("runs", 0)) + 1
        state.save(
            checkpoint=checkpoint,
            terms=stored_shard_map(terms) if terms else None,
            primary_changes=int(state.data.get("primary_changes", 0)) + bool(reread),
            runs=runs,
            copied=int(state.data.get("copied", 0)) + copied,
            last_copied=copied,
            deleted=int(state.data.get("deleted", 0)) + deleted,
            last_deleted=deleted,
            failures=dead.count(),
        )
        meter.update(copied, message="done")
        return IncrementalResult(
            self.id,
            source,
            target,
            copied,
            int(state.data["failures"]),
            runs,
            checkpoint,
            deleted=deleted,
        )

    def _primaries_changed(self, state: Checkpoint, terms: Mapping[int, int]) -> list[int]:
        """The shards of the source whose primary term grew since the last run read them (a
        failover, a node restart): operations above the global checkpoint may have been rolled
        back since, among them versions that run copied, so the shard is read again in full
        and the position pass checks all of the target (see docs/design.md, *Primary
        failover*). Unknown before the first run with terms: from then on."""
        return changed_terms(shard_map(state.data.get("terms")), terms)

    def _carry_deletes(
        self,
        state: Checkpoint,
        source: str,
        target: str,
        dead: DeadLetters,
        copied_upto: Mapping[int, int],
        *,
        check_all: bool = False,
    ) -> int:
        positions = Positions(
            self.cluster,
            source=source,
            target=target,
            name=positions_name(target),
            parallelism=self.parallelism,
            page=max(self.page_size, 1000),
            cancel=self.cancel,
        )
        after = {int(k): int(v) for k, v in (state.data.get("positions") or {}).items()}
        if check_all or state.data.get("positions_source") != source or not positions.exists():
            positions.drop()
            positions.create()
            after = {}
        upto, checked = positions.record(after)
        # Saved at once: a later failure must not make the next run check all of it again.
        state.save(positions={str(k): v for k, v in upto.items()}, positions_source=source)
        if dead.count():
            positions.add_dead_letters(dead.entries())
        found = positions.reconcile(copied=copied_upto)
        return checked.deleted + found.deleted

    def _copier(self, source: str, target: str, dead: DeadLetters) -> Copier:
        return Copier(
            self.cluster,
            source,
            target,
            mode="python" if self.transform is not None or self.painless is None else "reindex",
            dead=dead,
            script=self.painless,
            transform=self.transform,
            requests_per_second=self.requests_per_second,
            parallelism=self.parallelism,
            page_size=self.page_size,
            cancel=self.cancel,
        )

    def _copy(
        self,
        source: str,
        target: str,
        dead: DeadLetters,
        meter: Meter,
        *,
        start: Mapping[int, int],
        upto: Mapping[int, int],
        query: Mapping[str, Any] | None,
        reindex_query: Mapping[str, Any],
    ) -> int:
        """Copy what ``query`` matches in the shards' ``(start, upto]`` ranges of ``_seq_no``
        (copy mode python), or what ``reindex_query`` matches with one ``_reindex`` run to
        completion (copy mode reindex)."""
        copier = self._copier(source, target, dead)
        if copier.mode == "reindex":
            return copier.reindex(reindex_query, step=TaskStep(), excluded=[], meter=meter)
        return copier.python(upto, cursors={}, start=start, query=query, meter=meter).copied

    def _by_seq_no(
        self,
        state: Checkpoint,
        source: str,
        target: str,
        dead: DeadLetters,
        meter: Meter,
        reread: list[int],
    ) -> tuple[int, dict[str, Any]]:
        previous = shard_map(state.data.get("checkpoint"))
        fresh = checkpoints(self.cluster, source)
        self.cluster.refresh(source)
        start = {s: -1 if s in reread else previous.get(s, -1) for s in fresh}
        since = {"range": {"_seq_no": {"gt": min(start.values())}}}
        copied = self._copy(
            source, target, dead, meter, start=start, upto=fresh, query=None, reindex_query=since
        )
        return copied, stored_shard_map(fresh)

    def _by_field(
        self, state: Checkpoint, source: str, target: str, dead: DeadLetters, meter: Meter
    ) -> tuple[int, dict[str, Any]]:
        field = self.since_field
        assert field is not None
        last = (state.data.get("checkpoint") or {}).get("value")
        self.cluster.refresh(source)
        top = self.cluster.search(source, {"size": 0, "aggs": {"top": {"max": {"field": field}}}})[
            "aggregations"
        ]["top"]
        newest = top.get("value_as_string", top.get("value"))
        # gte: documents sharing the boundary value with the previous run are read again.
        query: dict[str, Any] = (
            {"range": {field: {"gte": last}}} if last is not None else {"match_all": {}}
        )
        tops = checkpoints(self.cluster, source)
        copied = self._copy(
            source,
            target,
            dead,
            meter,
            start={s: -1 for s in tops},
            upto=tops,
            query=query,
            reindex_query=query,
        )
        return copied, {"field": field, "value": newest if newest is not None else last}


def incremental(cluster: Cluster, source: str, target: str, **options: Any) -> IncrementalResult:
    """Copy what changed since the last run; see :class:`Incremental`."""
    return Incremental(cluster, source, target, **options).run()
