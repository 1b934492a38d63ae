"""Copying from a source index into a target index, run to completion: one mechanism for every
strategy that copies (blue-green's copy and catch-up rounds, incremental runs, rollbacks).

- Copy mode ``reindex`` (:meth:`Copier.reindex`): start a ``_reindex`` task, wait for it,
  dead-letter what the target rejected and exclude those versions, start again until a task
  meets no rejection, then a follow-up over what a set-based exclusion hid. Resumable: the task
  id and the exclusions are saved as they change.
- Copy mode ``python`` (:meth:`Copier.python`): every shard's ``_seq_no`` range in its own
  thread through the Python transform; per-shard cursors are saved every few seconds, and the
  failure budget stops the copy early rather than dead-lettering a whole index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import TaskLost
from esmigrate.migrate._bluegreen_state import CopyMode, TaskStep
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._python_copy import CopyStats, PythonCopier, TokenBucket
from esmigrate.migrate._reindex_copy import ReindexCopier
from esmigrate.migrate._tasks import REINDEX, cancel_task, running_tasks_into, task_state
from esmigrate.progress import Meter
from esmigrate.transform import Transform


def _nothing() -> None:
    return None


#: How often one copy starts a task again whose work was lost with a node, before it leaves it
#: to the next run (each time after waiting up to 60 s for the source's primaries).
TASK_RESTARTS = 5


class Copier:
    """Copies ``source`` into ``target`` in one copy mode: through the painless ``script`` (or
    as is) server-side, or through the Python ``transform``."""

    def __init__(
        self,
        cluster: Cluster,
        source: str,
        target: str,
        *,
        mode: CopyMode,
        dead: DeadLetters,
        script: dict[str, Any] | None = None,
        transform: Transform | None = None,
        bucket: TokenBucket | None = None,
        requests_per_second: float | None = None,
        slices: int | str = "auto",
        parallelism: int = 4,
        page_size: int = 1000,
        cancel: threading.Event | None = None,
    ) -> None:
        self.cluster = cluster
        self.source = source
        self.target = target
        self.mode = mode
        self.dead = dead
        self.script = script
        self.transform = transform
        self.bucket = bucket or TokenBucket(requests_per_second)
        self.requests_per_second = requests_per_second
        self.slices = slices
        self.parallelism = parallelism
        self.page_size = page_size
        self.cancel = cancel

    # -- copy mode reindex ------------------------------------------------------------------------

    def reindex_copier(self) -> ReindexCopier:
        return ReindexCopier(
            self.cluster,
            self.source,
            self.target,
            self.script,
            self.dead,
            slices=self.slices,
            requests_per_second=self.requests_per_second,
            batch_size=self.page_size,
            cancel=self.cancel,
        )

    def reindex(
        self,
        query: Mapping[str, Any] | None,
        *,
        step: TaskStep,
        excluded: list[dict[str, Any]],
        meter: Meter | None,
        poll: float = 0.5,
        restart_create: bool = False,
        cancel_strays: bool = False,
        save: Callable[[], None] = _nothing,
        check: Callable[[], None] | None = None,
        after_rejections: Callable[[], None] = _nothing,
        shard: tuple[int, int] | None = None,
    ) -> int:
        """Run one ``_reindex`` of ``query`` to completion; the documents it wrote.

        ``step`` and ``excluded`` are the caller's, saved with ``save()`` whenever they change,
        so a successor resumes the task this process started (or restarts it if the node lost
        it). ``restart_create``: a restarted task skips documents already in the target (right
        for an initial copy, whose later changes are caught up by ``_seq_no``) instead of
        overwriting them. ``cancel_strays``: first cancel ``_reindex`` tasks into the target
        that no checkpoint names (a dead process started them). ``check`` runs at every poll
        (when it raises, the task is cancelled); ``after_rejections`` after each batch of
        dead-lettered documents. ``shard`` = (shard, number of shards): read only that shard
        of the source (``Capabilities.slice_by_shard``).
        """
        if step.done:
            return 0  # finished before a crash: do not copy it all again
        copier = self.reindex_copier()
        copied = 0
        # After the main pass: a pass over the ids a set-based exclusion hid (see
        # ReindexCopier.body), excluding only what that pass itself rejects, exactly.
        follow_up: list[dict[str, Any]] | None = None
        lost = 0
        while True:
            task_id = step.task
            if task_id and self._gone(task_id):
                # The node restarted and the task died with it: start again, skipping what
                # is there already (documents changed since are caught up by seq_no).
                task_id = None
            if not task_id:
                if cancel_strays:
                    # A task a dead process started but never recorded must not race this one.
                    for stray in running_tasks_into(self.cluster, self.target):
                        cancel_task(self.cluster, stray, wait=True)
                task_id = copier.start(
                    query,
                    create=restart_create and step.started,
                    excluded=follow_up if follow_up is not None else excluded,
                    shard=shard,
                )
                step.task, step.started = task_id, True
                save()
            try:
                response, failures = copier.wait(task_id, meter, poll, check=check)
            except TaskLost:
                # Its work was lost with a node (the task vanished, or a node it read from
                # left): started again above once the source's primaries are assigned. A
                # cluster that keeps losing it leaves it to the next run.
                step.task = None
                save()
                lost += 1
                if lost > TASK_RESTARTS:
                    raise
                self.cluster.health(self.source, wait_for_status="yellow", timeout="60s")
                continue
            copied += int(response.get("created", 0)) + int(response.get("updated", 0))
            if not failures:
                if follow_up is not None:
                    break
                hidden = copier.hidden_by_exclusion(query, excluded)
                if not hidden:
                    break
                base = dict(query) if query else {"match_all": {}}
                query = {"bool": {"filter": [base, {"ids": {"values": hidden}}]}}
                follow_up = []
                step.task = None
                continue
            rejected = copier.dead_letter_failures(failures, query)
            # Forget the finished task before the failure budget may stop this run: a resumed
            # run must start a new task with these exclusions, not read this task's failures
            # again (by then a rejected document may have been rewritten validly, and looking
            # it up again would exclude its new version).
            step.task = None
            excluded.extend(rejected)
            save()
            if follow_up is not None:
                follow_up.extend(rejected)
            after_rejections()
        step.task, step.done = None, True
        save()
        return copied

    def _gone(self, task_id: str) -> bool:
        """Whether the ``_reindex`` task a checkpoint names is lost (not merely finished): a
        node restart loses it, and the id may then name another task of the restarted node."""
        state = task_state(self.cluster, task_id, action=REINDEX, mentions=f"to [{self.target}]")
        return state == "gone"

    # -- copy mode python -------------------------------------------------------------------------

    def python(
        self,
        upto: Mapping[int, int],
        *,
        cursors: dict[int, int],
        start: Mapping[int, int] | None = None,
        query: Mapping[str, Any] | None = None,
        meter: Meter | None = None,
        save: Callable[[], None] = _nothing,
        max_failures: int | None = None,
        over_budget: Callable[[], None] = _nothing,
        place: Callable[[list[tuple[str, str | None, int]]], object] | None = None,
    ) -> CopyStats:
        """Copy every shard's ``(cursor, upto]`` range of ``_seq_no`` in parallel threads.

        ``cursors`` (per shard, the caller's) move as chunks are written and are saved with
        ``save()`` at most every 2 s, and once at the end; a shard starts at its cursor, or at
        ``start`` (default -1) when that is further. With ``max_failures``, the copy stops as
        soon as the dead letters exceed it and calls ``over_budget()`` (which raises).
        ``place`` receives ``(id, routing, _seq_no)`` of every document read, before it is
        written (see :attr:`PythonCopier.place`).
        """
        # Workers stop at their next page when this is set: on cancel, Ctrl-C or a failure.
        stop = threading.Event()
        lock = threading.Lock()
        stats = CopyStats()
        begin = dict(start) if start is not None else {s: -1 for s in upto}
        for shard in upto:
            cursors[shard] = max(cursors.get(shard, begin[shard]), begin[shard])
        copier = PythonCopier(
            self.cluster,
            self.source,
            self.target,
            self.transform,
            self.dead,
            page=self.page_size,
            bucket=self.bucket,
            cancel=stop,
            place=place,
        )
        last_save = [time.monotonic()]
        base = meter.done if meter else 0
        dead_base = self.dead.count() if max_failures is not None else 0

        def saved(force: bool = False) -> None:
            with lock:
                if not force and time.monotonic() - last_save[0] < 2.0:
                    return
                last_save[0] = time.monotonic()
                save()

        def on_cursor(shard: int, cursor: int) -> None:
            with lock:
                cursors[shard] = max(cursors[shard], cursor)
            if meter is not None:
                meter.update(base + stats.copied + stats.failed)
            saved()

        def work(shard: int) -> None:
            copier.copy_shard(
                shard,
                cursors[shard],
                upto[shard],
                stats,
                query=query,
                on_cursor=lambda c: on_cursor(shard, c),
            )

        workers = max(1, min(self.parallelism, len(upto)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(work, s) for s in sorted(upto) if cursors[s] < upto[s]]
            exceeded = False
            try:
                while wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION).not_done:
                    if self.cancel is not None and self.cancel.is_set():
                        stop.set()
                    if any(f.done() and f.exception() for f in futures):
                        break
                    if max_failures is not None and dead_base + stats.failed > max_failures:
                        # Over the failure budget: stop now rather than dead-letter the index.
                        exceeded = True
                        stop.set()
                        break
                if exceeded:
                    wait(futures)
                    saved(force=True)
                    over_budget()
                for future in futures:
                    future.result()
            except BaseException:
                stop.set()
                raise
        saved(force=True)
        return stats
