"""The cut-over of a blue-green migration, and the recovery of one a dead process left.

First the ``before_block`` hook (with the target's name), then, under a write block on the
source O: the steps the phase driver gives (final round, position
pass, exact delete reconciliation, validation), the target's checkpoints recorded, the
``on_cut_over`` hook, one atomic ``_aliases`` request, the block lifted. Whatever fails, writers
are never left blocked, unless this process lost its lease: then the block is the new holder's.
An ``_aliases`` request that answered with an error but was applied is recognised as done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import MigrationError, PreflightError
from esmigrate.migrate._bluegreen_state import Journal
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._layout import (
    AliasLayout,
    block_writes,
    is_write_blocked,
    lift_write_block,
    resolve,
)
from esmigrate.migrate._shards import checkpoints, settled
from esmigrate.progress import Emit
from esmigrate.state import Lease

log = logging.getLogger("esmigrate.migrate")


def alias_actions(where: AliasLayout, target: str) -> list[dict[str, Any]]:
    """The one ``_aliases`` request's actions: every alias of ``where`` moves to ``target`` with
    its definition (filter, routing, hidden), the write alias as its write index."""
    actions: list[dict[str, Any]] = []
    for name, definition in where.definitions.items():
        actions.append({"remove": {"index": where.source, "alias": name}})
        add: dict[str, Any] = {"index": target, "alias": name}
        for key in ("filter", "index_routing", "search_routing", "is_hidden"):
            if key in definition:
                add[key] = definition[key]
        if name == where.write_alias:
            add["is_write_index"] = True
        actions.append({"add": add})
    return actions


class CutOver:
    """The cut-over of the run the ``journal`` records."""

    def __init__(
        self,
        cluster: Cluster,
        journal: Journal,
        *,
        lease: Lease,
        dead: DeadLetters,
        emit: Emit,
        on_cut_over: Callable[[dict[str, Any]], None] | None = None,
        before_block: Callable[[str], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.journal = journal
        self.lease = lease
        self.dead = dead
        self.emit = emit
        self.on_cut_over = on_cut_over
        self.before_block = before_block

    def is_live(self) -> bool:
        """Whether the write alias points at the target already (the swap happened)."""
        state = self.journal.state
        try:
            where = resolve(self.cluster, state.alias, state.write_alias)
        except PreflightError:
            return False
        return bool(where.source == state.target)

    def finish_if_swapped(self, *, blocked: float | None = None) -> bool:
        """If the write alias already points at N, record the migration as done (lifting the
        block on O, kept as the rollback point) and return True."""
        if not self.is_live():
            return False
        state = self.journal.state
        if is_write_blocked(self.cluster, state.source):
            lift_write_block(self.cluster, state.source)
        if blocked is not None:
            state.blocked_seconds = round(blocked, 3)
        state.phase = "done"
        state.finished_at = time.time()
        state.final_count = self.cluster.count(state.target)
        state.failures = self.dead.count()
        self.journal.save()
        return True

    def recover_from_block(self) -> bool:
        """The previous process died with O blocked. Lift it; True if the swap had happened."""
        state = self.journal.state
        self.lease.check()
        lift_write_block(self.cluster, state.source)
        where = resolve(self.cluster, state.alias, state.write_alias)
        if where.source == state.target:
            state.phase = "done"
            state.finished_at = time.time()
            state.failures = self.dead.count()
        else:
            state.phase = "catchup"
        self.journal.save()
        return state.phase == "done"

    def run(self, steps: Sequence[tuple[str, Callable[[], object]]]) -> None:
        """Run the ``before_block`` hook, block O, run ``steps`` (name, step) under the block,
        record, swap, lift."""
        state = self.journal.state
        source, target = state.source, state.target
        if self.before_block is not None:
            self.lease.check()
            self.before_block(target)
        # Record the intent first: a successor that finds phase "blocked" lifts the block.
        state.phase = "blocked"
        self.journal.save()
        t0 = time.monotonic()
        swapped = False
        try:
            self.lease.check()
            block_writes(self.cluster, source)
            self.emit("blocked", f"write block on {source}")
            deadline = time.monotonic() + 60
            while not settled(self.cluster, source):
                # _block/write drained in-flight writes on the primaries; replicas follow.
                if time.monotonic() > deadline:
                    raise MigrationError(
                        f"The copies of {source} did not settle under the write block in 60 s.",
                        hint="Check the cluster's health and retry; the block was lifted.",
                    )
                time.sleep(0.05)
            # Where the window goes, for the report (and anyone tuning it).
            spent: dict[str, float] = {}
            mark = time.monotonic()
            spent["block"] = round(mark - t0, 3)
            for name, step in steps:
                step()
                now = time.monotonic()
                spent[name] = round(now - mark, 3)
                mark = now
            state.blocked_breakdown = spent
            log.info(
                "under the write block: %.3f s (%s)",
                sum(spent.values()),
                ", ".join(
                    f"{name.replace('_', ' ')} {seconds:.3f} s" for name, seconds in spent.items()
                ),
            )
            # What the target holds before any writer reaches it: a rollback carries back
            # exactly the operations above these checkpoints.
            state.target_checkpoints = checkpoints(self.cluster, target)
            state.cut_over_at = time.time()
            self.journal.save()
            if self.on_cut_over is not None:
                self.on_cut_over(self.journal.document())
            self.emit("cutover", "swapping aliases")
            self.lease.check()
            self.cluster.request("POST", "/_aliases", body={"actions": state.alias_actions})
            swapped = True
            self.emit("cutover", f"aliases moved to {target}", done=1, total=1)
        except BaseException:
            # Never leave writers blocked: lift the block whatever happened.
            blocked = time.monotonic() - t0
            if not self.lease.held:
                # Another process took the migration over (our lease lapsed): the block is its
                # to lift, possibly in the middle of its own final round.
                log.error("lease lost; leaving the write block on %s to its holder", source)
                raise
            try:
                if not swapped and self.finish_if_swapped(blocked=blocked):
                    # The _aliases request was applied although it answered with an error (a
                    # timeout, or a client retry that found the alias moved): it is done.
                    self.emit("done", f"aliases now on {target}")
                    return
                lift_write_block(self.cluster, source)
                if not swapped:
                    state.phase = "catchup"
                    state.blocked_seconds = blocked
                    self.journal.save()
            except Exception as failed:
                # The cluster is unreachable (a node restarting) or refuses: the checkpoint says
                # "blocked", so the next run lifts the block first. Said without a traceback:
                # the CLI prints this logger to the user.
                log.error(
                    "could not lift the write block on %s (%s); the next run lifts it",
                    source,
                    getattr(failed, "message", failed),
                )
            raise
        lift_write_block(self.cluster, source)
        blocked = time.monotonic() - t0
        state.add_phase_time("blocked", blocked)
        final = self.cluster.count(target)
        state.phase = "done"
        state.finished_at = time.time()
        state.blocked_seconds = round(blocked, 3)
        state.final_count = final
        state.failures = self.dead.count()
        self.journal.save()
        self.emit("done", f"aliases now on {target}", done=final, total=final)
