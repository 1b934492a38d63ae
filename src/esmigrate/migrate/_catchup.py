"""Catch-up rounds and the cut-over between two indices that exist already.

The second half of a blue-green migration (catch-up rounds from per-shard ``_seq_no``
checkpoints, delete reconciliation, write block, final round, validation, one atomic
``_aliases`` request, block lifted), started from checkpoints the caller knows — a rollback
carries the writes a new index received since its cut-over back into the old one this way.
It is the migrator's own mechanism (:class:`~esmigrate.migrate.BlueGreen`), resumable from the
same checkpoint document.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.migrate._bluegreen import BlueGreen, MigrationResult
from esmigrate.progress import ProgressCallback
from esmigrate.transform import Transform


def catch_up_and_swap(
    cluster: Cluster,
    *,
    source: str,
    target: str,
    since: Mapping[int, int],
    alias_actions: list[dict[str, Any]],
    alias: str,
    write_alias: str | None = None,
    migration_id: str,
    state_index: str,
    dead_letter_index: str,
    script: Mapping[str, Any] | str | None = None,
    transform: Transform | None = None,
    sample_size: int = 200,
    catchup_threshold: int = 1000,
    max_rounds: int = 20,
    max_failures: int = 0,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    keep: Collection[tuple[str, str | None]] = (),
    lease_ttl: float = 30.0,
) -> MigrationResult:
    """Copy what ``source`` received after ``since`` (shard -> ``_seq_no``) into ``target``
    (through ``script`` or ``transform``), reconcile deletes, then under a write block on
    ``source`` run a final round and send ``alias_actions`` in one request.

    ``keep``: (id, routing) of documents of ``target`` that ``source`` lacks but that must not
    be deleted from it as stale. ``alias`` (and ``write_alias``) must point to ``source`` now; after the swap they point to
    ``target``. A rerun with the same ``migration_id`` resumes an unfinished run (a write block
    left by a killed process is lifted first) once the dead run's lease (``lease_ttl``) has
    lapsed; a finished one is started afresh.
    """
    migration = BlueGreen(
        cluster,
        alias,
        {},
        script=script,
        transform=transform,
        write_alias=write_alias,
        migration_id=migration_id,
        state_index=state_index,
        dead_letter_index=dead_letter_index,
        max_failures=max_failures,
        catchup_threshold=catchup_threshold,
        max_rounds=max_rounds,
        sample_size=sample_size,
        on_progress=on_progress,
        cancel=cancel,
        keep=keep,
        lease_ttl=lease_ttl,
    )
    return migration.catch_up(source=source, target=target, since=since, actions=alias_actions)
