"""Deletes during a blue-green migration: the position passes and reconciliations of one run.

The algorithm is :class:`~esmigrate.migrate._positions.Positions`; this is its use by the phase
driver: where the passes stand is saved in the migration's checkpoint (so a successor resumes a
pass rather than checking all of N again), and nothing is reconciled once N is live.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection

from esmigrate.cluster import Cluster
from esmigrate.exceptions import MigrationError
from esmigrate.migrate._bluegreen_state import Journal
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._positions import FirstLevelCounts, PassStats, Positions, positions_name
from esmigrate.progress import Meter


class Deletes:
    """The position index of one blue-green run and the passes over it."""

    def __init__(
        self,
        cluster: Cluster,
        journal: Journal,
        *,
        dead: DeadLetters,
        meter: Callable[..., Meter],
        is_live: Callable[[], bool],
        parallelism: int = 4,
        page_size: int = 1000,
        keep: Collection[tuple[str, str | None]] = (),
        cancel: threading.Event | None = None,
    ) -> None:
        state = journal.state
        self.cluster = cluster
        self.journal = journal
        self.dead = dead
        self.meter = meter
        self.is_live = is_live
        self.positions = Positions(
            cluster,
            source=state.source,
            target=state.target,
            name=positions_name(state.target),
            parallelism=parallelism,
            page=max(page_size, 1000),
            keep=keep,
            cancel=cancel,
        )
        #: Documents deleted from N by this process.
        self.deleted = 0

    def _refuse_if_live(self) -> None:
        state = self.journal.state
        if self.is_live():
            raise MigrationError(
                f"{state.target} is already the write index of {state.write_alias}: reconciling "
                f"it against {state.source} would delete the writes it took since the swap.",
                hint="Run the migration again: it records the swap as done.",
            )

    def record(self) -> None:
        """Check the documents written to N since the last pass against O (all of N the first
        time, unless the copy recorded their positions as it wrote them): delete those O no
        longer has, record the positions of the others."""
        self._refuse_if_live()
        state = self.journal.state
        positions = self.positions
        after = dict(state.positions)
        if not after or not positions.exists():
            # A first pass starts from an empty index (not from what an abandoned run left).
            positions.drop()
            positions.create()
            after = {}
        cursors = dict(after)
        lock = threading.Lock()
        last_save = [time.monotonic()]
        # The first pass reads all of N: give it a total for the ETA.
        total = None if after else self.cluster.count(positions.target)
        meter = self.meter("reconcile", total=total, round=state.round)

        def on_cursor(shard: int, cursor: int) -> None:
            with lock:
                cursors[shard] = max(cursors.get(shard, -1), cursor)
                if time.monotonic() - last_save[0] >= 2.0:
                    last_save[0] = time.monotonic()
                    state.positions = dict(cursors)
                    self.journal.save()

        def on_progress(stats: PassStats) -> None:
            meter.update(stats.checked, message=f"{stats.deleted} deleted")

        upto, stats = positions.record(after, on_cursor=on_cursor, on_progress=on_progress)
        self.deleted += stats.deleted
        state.positions_checked += stats.checked
        state.positions = dict(upto)
        state.reconciled_deletes += stats.deleted
        self.journal.save()

    def reconcile(self, *, exact: bool, counted: FirstLevelCounts | None = None) -> int:
        """Delete from N what O no longer has, found by range counts over the positions.

        ``exact``: under the write block, after the final round and its position pass;
        ``counted``: O's first level, counted under this same block. Otherwise a best effort
        over the sequence numbers the last round covered. Returns the number of documents
        deleted.
        """
        self._refuse_if_live()
        state = self.journal.state
        copied = None
        if exact:
            if self.dead.count():
                self.positions.add_dead_letters(self.dead.entries())
        else:
            # The last round copied (and the last pass positioned) everything up to these.
            copied = dict(state.checkpoints or {})
        meter = self.meter("reconcile", round=state.round)
        stats = self.positions.reconcile(
            copied=copied,
            counted=counted,
            on_progress=lambda s: meter.update(s.checked, message=f"{s.deleted} deleted"),
        )
        self.deleted += stats.deleted
        state.reconciled_deletes += stats.deleted
        self.journal.save()
        return stats.deleted
