"""One process's run of a blue-green migration, phase by phase (see :mod:`._bluegreen`).

:class:`BlueGreenRun` drives the helpers :class:`~esmigrate.migrate.BlueGreen` gives it: the copy
phase, catch-up rounds with their position passes and reconciliations, then the cut-over under the
write block. Everything it learns goes into the journal, so a successor resumes where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import MigrationCancelled, MigrationError, RequestError
from esmigrate.migrate._bluegreen_state import Journal, PendingRound, TaskStep
from esmigrate.migrate._copy import Copier
from esmigrate.migrate._cutover import CutOver
from esmigrate.migrate._deadletters import FailureBudget
from esmigrate.migrate._deletes import Deletes
from esmigrate.migrate._layout import wait_for_write_copies
from esmigrate.migrate._positions import FirstLevelCounts
from esmigrate.migrate._python_copy import CopyStats
from esmigrate.migrate._shards import changed_terms, checkpoints, primary_terms
from esmigrate.migrate._source_copy import SourceFill
from esmigrate.migrate._tasks import cancel_task, running_tasks_into
from esmigrate.migrate._throttle import throttle_of
from esmigrate.migrate._validate import Validation
from esmigrate.progress import Emit, Meter

log = logging.getLogger("esmigrate.migrate")

#: Cut-overs given up because a source shard's primary changed under the block, before the
#: migration stops with the error (each one lifts the block, reads the shard again, retries).
CUTOVER_ATTEMPTS = 3


class PrimaryChanged(MigrationError):
    """A shard of the source got a new primary term while the write block was on: what the
    final round read may be rolled back, so the cut-over is retried after the shard is read
    again in full."""


class BlueGreenRun:
    """The phases of one run of the migration the ``journal`` records."""

    def __init__(
        self,
        cluster: Cluster,
        journal: Journal,
        *,
        migration: str,
        state_index: str,
        copier: Copier,
        budget: FailureBudget,
        cutover: CutOver,
        deletes: Deletes,
        validation: Validation,
        meter: Callable[..., Meter],
        emit: Emit,
        create_target: Callable[[], None],
        catchup_threshold: int,
        max_rounds: int,
        cancel: threading.Event | None = None,
        fill: SourceFill | None = None,
    ) -> None:
        self.cluster = cluster
        self.journal = journal
        self.state = journal.state
        self.migration = migration
        self.state_index = state_index
        self.copier = copier
        self.dead = budget.dead
        self.budget = budget
        self.cutover = cutover
        self.deletes = deletes
        self.validation = validation
        self.meter = meter
        self.emit = emit
        self.create_target = create_target
        self.catchup_threshold = catchup_threshold
        self.max_rounds = max_rounds
        self.cancel = cancel
        #: The copy phase fills N from the application's documents instead (``_source_copy``).
        self.fill = fill
        self._budget_checked = 0.0

    # -- failures ----------------------------------------------------------------------------------

    def check_failures(self) -> None:
        failures = self.dead.count()
        self.state.failures = failures
        if self.budget.exceeded_by(failures):
            self.journal.save()
            raise self.budget.error(failures)

    def _budget_check(self) -> None:
        """While a task runs (the guarded script dead-letters documents itself): raise
        TooManyFailures once the budget is exceeded, at most every 2 s."""
        now = time.monotonic()
        if now - self._budget_checked < 2.0:
            return
        self._budget_checked = now
        self.check_failures()

    def _save_and_follow_throttle(self) -> None:
        """Save the checkpoint; pick up a throttle set by another process meanwhile."""
        found, rate = throttle_of(self.cluster, self.state_index, self.migration)
        if found:
            self.copier.bucket.rate = rate
        self.journal.save()

    # -- copy ----------------------------------------------------------------------------------

    def copy_phase(self) -> None:
        state = self.state
        t0 = time.monotonic()
        if not self.cluster.exists(state.target):
            if state.copy.started or state.cursors or state.copy_tasks:
                raise MigrationError(
                    f"The target index {state.target} of unfinished migration "
                    f"{self.migration!r} is gone.",
                    hint="Delete the checkpoint document or use another migration_id to start "
                    "over.",
                )
            # The previous run recorded the phase but died (or timed out) before creating it.
            self.create_target()
        # The copy establishes the delete positions as it goes only when this process runs it
        # from its start (C0 not yet taken: nothing was copied) into an empty target; a copy
        # resumed from a dead process leaves them to the first position pass (all of N).
        positioned = False
        if state.checkpoints is None:
            # Read before C0: a failover after this is seen by the first round (see round()).
            state.terms = primary_terms(self.cluster, state.source) or None
            c0 = checkpoints(self.cluster, state.source)
            self.cluster.refresh(state.source)
            state.checkpoints = c0
            state.copy_total = self.cluster.count(state.source)
            positioned = self._positions_in_copy()
            self.journal.save()
        meter = self.meter("copy", total=state.copy_total)
        placed = 0
        if self.fill is not None:
            copied = self.fill.copy(
                self.cluster,
                self.journal,
                self.copier,
                self.meter,
                check_failures=self.check_failures,
            )
        elif state.mode == "reindex" and (state.copy_tasks or not state.copy.started):
            copied, recorded = self._copy_by_shard(meter, positioned)
            # None: the snapshot lost a shard; the first position pass checks all of N.
            positioned, placed = positioned and recorded is not None, recorded or 0
            meter.update(message="copy complete")
            state.progress = meter.numbers()
        else:
            counter = _Counter()
            stats = self._copy(
                None,
                step=state.copy,
                upto=dict(state.checkpoints),
                cursors=state.cursors,
                meter=meter,
                restart_create=True,
                place=self._placer(counter) if positioned else None,
            )
            copied, placed = stats.copied, counter.n
            meter.update(message="copy complete")
            state.progress = meter.numbers()
        self.check_failures()
        if positioned:
            # Saved with the copy's end: a successor that finds the phase "catchup" knows the
            # positions of everything the copy wrote, and its first pass checks only the rounds.
            self.cluster.refresh(self.deletes.positions.name)
            state.positions = checkpoints(self.cluster, state.target)
            state.copy_positioned = placed
        self.cluster.request(
            "PUT", f"/{state.target}/_settings", body=dict(state.restore_settings or {})
        )
        self.cluster.health(state.target, wait_for_status="yellow", timeout="120s")
        state.add_phase_time("copy", time.monotonic() - t0)
        state.phase = "catchup"
        state.copied += copied
        self.journal.save()

    def _positions_in_copy(self) -> bool:
        """Whether the copy about to start can record the delete positions as it goes (then P
        is created empty now): from O (not the application's documents), into an empty N, and
        in copy mode reindex one task per shard of O (each bounded by its C0)."""
        state = self.state
        if self.fill is not None:
            return False
        if state.mode == "reindex" and not self._by_shard_possible():
            return False
        self.cluster.refresh(state.target)
        if self.cluster.count(state.target):
            return False
        self.deletes.positions.drop()
        self.deletes.positions.create()
        return True

    def _by_shard_possible(self) -> bool:
        return self.cluster.capabilities.slice_by_shard or len(self.state.checkpoints or {}) == 1

    def _placer(self, counter: _Counter) -> Callable[[list[tuple[str, str | None, int]]], None]:
        positions = self.deletes.positions

        def place(entries: list[tuple[str, str | None, int]]) -> None:
            counter.add(positions.place(entries))

        return place

    def _copy_by_shard(self, meter: Meter, positioned: bool) -> tuple[int, int | None]:
        """Copy mode reindex: the initial copy as one ``_reindex`` per shard of O, each of the
        documents with ``_seq_no <= C0`` of its shard (what is written later is the catch-up
        rounds' to copy, once). With ``positioned``, a snapshot of the same documents is
        opened before the tasks start and recorded as positions while they run: every document
        a task copies is in it (see :class:`~._positions.Snapshot`). Returns the documents
        copied and positioned (None: not all of them, the snapshot having lost a shard)."""
        state = self.state
        c0 = dict(state.checkpoints or {})
        if not state.copy_tasks and not self._by_shard_possible():
            raise MigrationError("The engine cannot read one shard of an index by slice.")
        queries = {s: {"range": {"_seq_no": {"lte": top}}} for s, top in c0.items() if top >= 0}
        if not state.copy_tasks:
            # A task a dead process started but never recorded must not race these.
            for stray in running_tasks_into(self.cluster, state.target):
                cancel_task(self.cluster, stray, wait=True)
            state.copy_tasks = {s: TaskStep() for s in sorted(queries)}
            self.journal.save()
        snapshot = self.deletes.positions.snapshot(c0) if positioned else None
        halt = threading.Event()
        placed: int | None = 0
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                recording = pool.submit(snapshot.record, halt) if snapshot is not None else None
                try:
                    copied = self._tasks_by_shard(
                        queries, state.copy_tasks, 0.5, restart_create=True, meter=meter
                    )
                except BaseException:
                    halt.set()
                    raise
                if recording is not None:
                    try:
                        placed = recording.result()
                    except RequestError as exc:
                        # Its scroll lost a shard (the copy holding it relocated or left):
                        # the positions are incomplete, not wrong. The copy stands.
                        log.warning(
                            "positions of %s not recorded during the copy (%s): the first "
                            "position pass checks all of %s",
                            state.source,
                            exc.reason or exc,
                            state.target,
                        )
                        placed = None
        finally:
            if snapshot is not None:
                snapshot.close()
        return copied, placed

    def _copy(
        self,
        query: Mapping[str, Any] | None,
        *,
        step: TaskStep,
        upto: Mapping[int, int],
        cursors: dict[int, int],
        meter: Meter,
        start: Mapping[int, int] | None = None,
        poll: float = 0.5,
        restart_create: bool = False,
        place: Callable[[list[tuple[str, str | None, int]]], None] | None = None,
    ) -> CopyStats:
        """Copy O into N in the run's copy mode, resumably: ``query`` (copy mode reindex) or the
        shards' ``(start, upto]`` ranges (copy mode python). Rejected documents count in
        ``failed`` only in copy mode python (in copy mode reindex the budget counts them)."""
        state = self.state
        if state.mode == "python":
            return self.copier.python(
                upto,
                cursors=cursors,
                start=start,
                meter=meter,
                save=self._save_and_follow_throttle,
                max_failures=self.budget.max_failures,
                over_budget=self.check_failures,
                place=place,
            )
        copied = self.copier.reindex(
            query,
            step=step,
            excluded=state.excluded,
            meter=meter,
            poll=poll,
            restart_create=restart_create,
            cancel_strays=True,
            save=self.journal.save,
            check=self._budget_check,
            after_rejections=self.check_failures,
        )
        return CopyStats(copied=copied)

    # -- catch-up and cut-over -----------------------------------------------------------------

    def round(self, poll: float = 0.5, *, final: bool = False) -> int:
        """One catch-up round: everything written to O since the stored checkpoints, and all of
        a shard whose primary changed since it was read (``final``: under the write block, where
        such a change raises :class:`PrimaryChanged` instead)."""
        state = self.state
        number = state.round + 1
        if state.pending is not None and state.pending.round == number:
            # Resuming this round: a task the dead process started read a snapshot taken after
            # *these* checkpoints, so they (not fresh ones) are what the round guarantees.
            fresh = dict(state.pending.checkpoints)
        else:
            self._watch_primaries(final)
            fresh = checkpoints(self.cluster, state.source)
            state.pending = PendingRound(number, fresh)
            state.round_task = TaskStep()
            state.round_tasks = {}
            state.round_cursors = {}
            self.journal.save()
        previous = dict(state.checkpoints or {})
        for shard in state.reread:
            previous[shard] = -1
        self.cluster.refresh(state.source)
        meter = self.meter("catchup", round=number)
        if state.mode == "reindex" and self.cluster.capabilities.slice_by_shard and len(fresh) > 1:
            copied = self._round_by_shard(previous, fresh, poll)
        else:
            # _seq_no is per shard: one threshold for all of them must be the lowest, and
            # copies again what the other shards hold above it.
            stats = self._copy(
                {"range": {"_seq_no": {"gt": min(previous.values())}}},
                step=state.round_task,
                upto=fresh,
                cursors=state.round_cursors,
                start=previous,
                meter=meter,
                poll=poll,
            )
            copied = stats.copied + stats.failed
        meter.update(copied)
        state.round_task = TaskStep()
        state.round_tasks = {}
        state.round_cursors = {}
        state.reread = []
        state.progress = meter.numbers()
        state.checkpoints = fresh
        state.round = number
        state.last_delta = copied
        state.copied += copied
        self.journal.save()
        return copied

    def _watch_primaries(self, final: bool) -> None:
        """Compare O's primary terms with those its copied documents were read under.

        A new term (a failover, a node restart) may have rolled back operations that were
        never acknowledged but that a read of this migration saw: a version copied to N that
        O no longer holds, a document created and then undone, or an older version a round
        skipped because a newer one (now gone) was above its checkpoint. Neither the
        checkpoints nor the range counts of the positions can tell which documents, so the
        shard is read again whole in this round, and the next position pass checks all of N
        against O (``positions`` emptied). Costly, and only after a failover.
        """
        state = self.state
        terms = primary_terms(self.cluster, state.source)
        if state.terms is None or not terms:
            # Not known (a checkpoint of an earlier version, or no term reported): from now on.
            state.terms = terms or None
            return
        known = state.terms
        changed = changed_terms(known, terms)
        if not changed:
            return
        shards = ", ".join(str(s) for s in changed)
        if final:
            raise PrimaryChanged(
                f"The primary of shard {shards} of {state.source} changed during the migration; "
                "its documents are read again in full before the cut-over.",
                hint="Check the cluster's health (GET _cluster/health) and run the migration "
                "again: it resumes.",
            )
        log.warning(
            "the primary of shard %s of %s changed (term %s -> %s): reading it again in full",
            shards,
            state.source,
            {s: known.get(s) for s in changed},
            {s: terms[s] for s in changed},
        )
        self.emit("catchup", f"primary of shard {shards} of {state.source} changed: reading again")
        state.terms = terms
        state.reread = sorted(set(state.reread) | set(changed))
        state.positions = {}
        state.primary_changes += 1

    def _round_by_shard(
        self, previous: Mapping[int, int], fresh: Mapping[int, int], poll: float
    ) -> int:
        """Copy mode reindex: one ``_reindex`` per shard of O with new operations, each reading
        its shard (a slice) from that shard's own checkpoint, all running at once. A shard with
        nothing new starts no task. Returns the documents written."""
        state = self.state
        queries = {
            s: {"range": {"_seq_no": {"gt": previous.get(s, -1), "lte": fresh[s]}}}
            for s in sorted(fresh)
            if previous.get(s, -1) < fresh[s]
        }
        for shard in queries:
            state.round_tasks.setdefault(shard, TaskStep())
        return self._tasks_by_shard(queries, state.round_tasks, poll)

    def _tasks_by_shard(
        self,
        queries: Mapping[int, Mapping[str, Any]],
        steps: dict[int, TaskStep],
        poll: float,
        *,
        restart_create: bool = False,
        meter: Meter | None = None,
    ) -> int:
        """One ``_reindex`` per shard of O in ``queries`` (its query), reading that shard only
        (a slice; the whole index when it has one shard), all running at once, each resumable
        from its step in ``steps``. Returns the documents written."""
        shards = len(self.state.checkpoints or {})
        lock = threading.Lock()
        halt = threading.Event()
        done: dict[int, int] = {}
        base = meter.done if meter is not None else 0

        # The threads share the journal: one compare-and-set write at a time (the failure
        # checks write it too, before they raise TooManyFailures).
        def check() -> None:
            # Raising here cancels this shard's task and leaves its step unfinished (a task
            # cancelled from outside would end "completed" and be taken as done).
            if halt.is_set():
                raise MigrationCancelled("Another shard's copy failed.")
            with lock:
                self._budget_check()

        def save() -> None:
            with lock:
                self.journal.save()

        def after_rejections() -> None:
            with lock:
                self.check_failures()

        def copy(shard: int) -> int:
            share = None if meter is None else _Share(meter, base, done, shard, lock)
            return self.copier.reindex(
                queries[shard],
                step=steps[shard],
                excluded=self.state.excluded,
                meter=share,
                poll=poll,
                restart_create=restart_create,
                save=save,
                check=check,
                after_rejections=after_rejections,
                shard=(shard, shards) if shards > 1 else None,
            )

        if not queries:
            return 0
        with ThreadPoolExecutor(max_workers=len(queries)) as pool:
            futures = [pool.submit(copy, s) for s in sorted(queries)]
            try:
                return sum(f.result() for f in futures)
            except BaseException:
                # Ctrl-C or a failure: the other shards' threads cancel their tasks at their
                # next poll; a rerun resumes them from the checkpoint document.
                halt.set()
                raise

    def catch_up_phase(self) -> None:
        for attempt in range(1, CUTOVER_ATTEMPTS + 1):
            t0 = time.monotonic()
            try:
                # The sample is drawn first: the time it takes would otherwise be a window of
                # writes between the last catch-up pass and the block, left to the block.
                self.validation.prepare()
                # Every write to the target (rounds, positions, the final round under the block)
                # waits for the copies its settings ask: a node lost since the copy or since
                # the rounds stops the run here, not each write a minute, and not under the block.
                self._wait_for_write_copies()
                self._catch_up()
                self.check_failures()
                self.state.add_phase_time("catchup", time.monotonic() - t0)
                self._wait_for_write_copies()
                self._cut_over()
                return
            except PrimaryChanged as changed:
                # The block is lifted (phase "catchup"): the next rounds read the shard again.
                if attempt == CUTOVER_ATTEMPTS:
                    raise
                log.warning("%s Retrying the cut-over.", changed.message)
            finally:
                self.validation.drop()

    def _cut_over(self) -> None:
        # O takes no write once the block holds, and the final round and its position pass
        # write only N and P: O's side of the exact reconciliation's first level is counted
        # beside them. The counts belong to this attempt's block only.
        with ThreadPoolExecutor(1, thread_name_prefix="esmigrate-count-o") as beside:
            counting: list[Future[FirstLevelCounts]] = []

            def final_round() -> None:
                counting.append(beside.submit(self.deletes.positions.count_first_level))
                self.round(poll=0.05, final=True)

            def reconcile() -> None:
                self.deletes.reconcile(exact=True, counted=counting[0].result())

            self.cutover.run(
                [
                    ("final_round", final_round),
                    ("positions", self.deletes.record),
                    ("reconcile", reconcile),
                    ("validate", self._validate),
                ]
            )

    def _wait_for_write_copies(self) -> None:
        wait_for_write_copies(self.cluster, self.state.target, cancel=self.cancel)

    def _catch_up(self) -> None:
        self._rounds()
        # The first position pass checks all of N, which takes a while; then rounds, a pass over
        # what they wrote and a reconciliation repeat while they keep finding deletes, so that
        # under the block only the last short window's writes and deletes are left.
        self.deletes.record()
        previous = None
        for _ in range(5):
            self._rounds()
            self.deletes.record()
            found = self.deletes.reconcile(exact=False)
            if found <= 10 or (previous is not None and found >= previous):
                break
            previous = found

    def _rounds(self) -> None:
        """Rounds until one copies at most ``catchup_threshold`` documents (or ``max_rounds``)."""
        while True:
            if self.cancel is not None and self.cancel.is_set():
                raise MigrationCancelled(
                    "The migration was cancelled.", hint="Run it again to resume."
                )
            delta = self.round()
            if delta <= self.catchup_threshold or self.state.round >= self.max_rounds:
                return

    def _validate(self) -> None:
        self.check_failures()
        self.emit("validate")
        try:
            self.validation.check()
        finally:
            self.state.dead_lettered_missing = self.validation.dead_lettered_missing


class _Counter:
    """A count several threads add to."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.n += n


class _Share(Meter):
    """One shard's task's share of a meter that the tasks of all shards update at once."""

    def __init__(
        self, whole: Meter, base: int, done: dict[int, int], shard: int, lock: threading.Lock
    ) -> None:
        super().__init__(whole.phase, None, total=whole.total, round=whole.round)
        self.whole = whole
        self.base = base
        self.shares = done
        self.shard = shard
        self.lock = lock

    def update(self, done: int | None = None, *, add: int = 0, message: str = "") -> None:
        with self.lock:
            self.shares[self.shard] = (
                done if done is not None else self.shares.get(self.shard, 0)
            ) + add
            total = self.base + sum(self.shares.values())
        self.whole.update(total, message=message)
