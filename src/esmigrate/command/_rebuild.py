"""``rebuild``: the zero-downtime migrator in one command, for teams without revision scripts
(Searchkick's ``Product.reindex``, django-elasticsearch-dsl's ``search_index --rebuild``).

A rebuild moves the data behind an alias blue-green from its live mapping to a Document's:
a new index, the copy (through a transform) or the application's own documents (``source``),
catch-up rounds of the writes made meanwhile, a short write block, one atomic alias swap, and a
rollback point recording the old index. It is recorded in the history index as a record of its
own kind (``kind: "rebuild"``, :mod:`esmigrate.state._rebuilds`), not as a revision: the
revision graph never sees it, ``status`` and ``history`` show it, ``esmigrate rollback`` takes
its rollback point. It holds the runner's lease while it runs, so it never overlaps an
``upgrade`` (which might migrate the same alias).

A run is ``rebuild:<alias>:<run>``; a rebuild of the same alias after an interrupted or failed
one resumes it (same definition) where its checkpoint stands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster, check_name
from esmigrate.command._base import open_cluster
from esmigrate.command._report import write_report
from esmigrate.config import Config, load_config, with_connection
from esmigrate.exceptions import (
    ConfigError,
    EsmigrateError,
    LeaseLost,
    MigrationCancelled,
    MigrationError,
)
from esmigrate.migrate import BlueGreen, MigrationResult, old_writes
from esmigrate.operations import (
    MAX_INTERRUPTED_RUNS,
    failure_record,
    recording,
    rollback_point_name,
    success_record,
)
from esmigrate.progress import ProgressCallback, ProgressEvent, Reporter, Timeline
from esmigrate.rollback import rollback_point_hook
from esmigrate.schema.mapping import index_name_of, mapping_of, settings_of
from esmigrate.state import (
    APPLIED,
    FAILED,
    RUNNING,
    Checkpoint,
    HistoryStore,
    Identity,
    Lease,
    RebuildRecord,
    rebuild_records,
    save_rebuild,
    stop_on_cancel_or_lost_lease,
    timestamp,
)
from esmigrate.transform import Condition, RuleSet, Transform

#: The state of a run given up with ``restart`` (its checkpoint is abandoned).
ABANDONED = "abandoned"


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild did (or, ``state == "planned"``, would do)."""

    id: str
    alias: str
    #: ``applied``, or ``planned`` for a dry run.
    state: str
    #: Where the documents came from: ``live index`` or ``application``.
    source: str
    #: The rollback point of the cut-over (``esmigrate rollback NAME``).
    rollback_point: str
    resumed: bool = False
    #: The migrator's result (:class:`~esmigrate.migrate.MigrationResult` as a dict).
    migration: dict[str, Any] = field(default_factory=dict)
    #: For a dry run: the steps, as data.
    plan: tuple[dict[str, Any], ...] = ()
    #: With ``report=``: where the migration report was written and the figures it shows.
    report: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alias": self.alias,
            "state": self.state,
            "source": self.source,
            "rollback_point": self.rollback_point,
            "resumed": self.resumed,
            "migration": self.migration,
            "plan": list(self.plan),
            **({"report": self.report} if self.report is not None else {}),
        }


def _name(obj: Any) -> str | None:
    """How the record names a Document class, a function, or (by its type) anything else."""
    if obj is None:
        return None
    qualname = getattr(obj, "__qualname__", None)  # classes and functions, not instances
    if isinstance(qualname, str):
        return f"{getattr(obj, '__module__', '?')}.{qualname}"
    return type(obj).__name__


def _run_name() -> str:
    return datetime.now(UTC).strftime("%Y%m%dt%H%M%S%fz")


def rebuild(
    alias: str | None = None,
    *,
    to: Any,
    transform: Transform | None = None,
    source: Iterable[Any] | None = None,
    config: Config | None = None,
    client: Any = None,
    dry_run: bool = False,
    restart: bool = False,
    max_failures: int = 0,
    requests_per_second: float | None = None,
    lock_timeout: float | None = None,
    upgrade_old_writes: bool | Condition = False,
    reporter: Reporter | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    report: Path | None = None,
) -> RebuildResult:
    """Rebuild the index behind ``alias`` with the mapping (and index settings) of ``to``,
    without downtime and without losing a write::

        esmigrate.rebuild("products", to=Product)                      # Document class
        esmigrate.rebuild("products", to=Product, transform=reshape)   # doc -> doc, or a RuleSet
        esmigrate.rebuild("products", to=Product, source=docs_from_db()) # the application's docs

    Parameters:
        alias: the alias the application reads and writes through (default: the index name
            ``to`` declares).
        to: a Document class (``elasticsearch.dsl`` or ``opensearchpy``), an ``Index``, or a
            mapping dict.
        transform: applied to every document copied from the live index: a
            :class:`~esmigrate.transform.RuleSet` (run as Painless inside ``_reindex`` when it
            has that form) or a Python ``doc -> doc`` function.
        source: the application's documents (from its primary database), in the new form, to
            fill the new index with instead of copying the live one; writes made to the live
            index meanwhile are caught up as usual. What ends where is listed in
            :mod:`esmigrate.migrate._source_copy`. Items: ``{"_id", "_source"[, "_routing"]}``,
            ``(id, source)`` or Document instances.
        config: the project's configuration (default: ``load_config()``: the project file and
            ``ESMIGRATE_*`` variables); ``client``: an application's own client to use.
        dry_run: return the plan, write nothing.
        restart: give up an unfinished rebuild of this alias (its unfinished index is left in
            place, never live) and start a new one.
        max_failures: documents the new mapping may reject (dead-lettered) before the cut-over
            is refused.
        requests_per_second: throttle of the copy.
        lock_timeout: seconds to wait for another runner's lease (default: twice its TTL).
        upgrade_old_writes: ``True`` (by the version field the rule set sets) or a Condition
            naming old documents: from the cut-over on, documents writers still send in the old
            shape are upgraded by ``transform`` (a RuleSet) in an ingest pipeline of the new index
            (as ``op.migrate(..., upgrade_old_writes=...)``).
        reporter / on_progress / cancel: lines, progress events, and a stop request (the next
            rebuild resumes), as for ``upgrade``.
        report: write the migration report of the run (an HTML page: phases, documents copied
            over time, the write block, the rollback point) there, also when the run fails;
            ``result.report`` says where. The run's record keeps what the page shows, so
            ``esmigrate report REBUILD_ID`` writes it again later. Ignored by a dry run.

    Raises :class:`~esmigrate.exceptions.LeaseHeld` (exit 5) when a runner holds the lease,
    and the migrator's errors (the run is then recorded as failed, and resumable).
    """
    if config is None:
        config = load_config(client=client)
    elif client is not None:
        config = with_connection(config, client=client)
    mappings = mapping_of(to)
    settings = settings_of(to)
    alias = alias or index_name_of(to)
    if not alias:
        raise ConfigError(
            f"No alias to rebuild: {_name(to)} declares no index name.",
            hint="Name the alias: esmigrate rebuild ALIAS --to module:Document.",
        )
    check_name(alias, "alias")
    # Refused before anything is written: a transform no pipeline can run.
    upgrade = old_writes(transform, upgrade_old_writes) if upgrade_old_writes is not False else None
    script = transform.painless() if isinstance(transform, RuleSet) else None
    python = None if script is not None else transform
    origin = "live index" if source is None else "application"
    say = reporter or (lambda _line: None)
    with open_cluster(config) as cluster:
        store = HistoryStore(cluster, config.history_index)

        def migrator(
            mid: str, stop: threading.Event | None, progress: ProgressCallback | None = on_progress
        ) -> BlueGreen:
            hook = rollback_point_hook(
                cluster,
                rollback_point_name(mid),
                state_index=config.history_index,
                note=f"before {mid}: {alias} rebuilt to {_name(to)}",
                kind=config.rollback_point_kind,
                snapshot_repository=config.snapshot_repository,
            )
            return BlueGreen(
                cluster,
                alias,
                mappings,
                settings=settings or None,
                script=script,
                transform=python,
                migration_id=mid,
                state_index=config.history_index,
                max_failures=max_failures,
                requests_per_second=requests_per_second,
                on_progress=progress,
                cancel=stop,
                fill=source,
                on_cut_over=hook,
                before_block=None if upgrade is None else upgrade.before_block(cluster),
            )

        if dry_run:
            unfinished = _unfinished(cluster, store, alias) if store.exists() else None
            mid = unfinished.id if unfinished and not restart else _migration(alias, _run_name())
            steps = migrator(mid, None).plan()
            return RebuildResult(
                mid,
                alias,
                "planned",
                origin,
                rollback_point_name(mid),
                resumed=unfinished is not None and not restart,
                plan=tuple(step.to_dict() for step in steps),
            )
        store.ensure()
        lease = Lease(
            store, Identity.current(), ttl=config.lease_ttl, command="rebuild", reporter=say
        )
        lease.acquire(2 * config.lease_ttl if lock_timeout is None else lock_timeout)
        with lease:
            record = _unfinished(cluster, store, alias)
            if record is not None and restart:
                _abandon(cluster, store, record, say)
                record = None
            resumed = record is not None
            if record is None:
                mid = _migration(alias, _run_name())
                record = RebuildRecord(
                    {
                        "id": mid,
                        "alias": alias,
                        "message": f"rebuild {alias} to {_name(to)}",
                        "to": _name(to),
                        "transform": _name(transform),
                        "source": origin,
                        "rollback_point": rollback_point_name(mid),
                        "started_at": timestamp(),
                        "runs": 0,
                    }
                )
            bluegreen = migrator(record.id, None)
            if resumed:
                _refuse_other_definition(cluster, store, record, bluegreen)
            record.doc.update(
                state=RUNNING,
                ended_at=None,
                duration_s=None,
                by=lease.identity.to_dict(),
                runs=int(record.doc.get("runs") or 0) + 1,
                error=None,
            )
            _event(record, "resume" if resumed else "start", RUNNING, lease)
            save_rebuild(store, record)
            say(
                f"{'Resuming' if resumed else 'Rebuilding'} {alias} ({record.id}): "
                f"to {_name(to)}, documents from the {origin}"
                + (f", through {_name(transform)}" if transform is not None else "")
            )
            if resumed and record.doc.get("report"):
                # The report of the run that stopped, shown beside this one's.
                runs = [*record.doc.get("interrupted_runs", []), record.doc.pop("report")]
                record.doc["interrupted_runs"] = runs[-MAX_INTERRUPTED_RUNS:]
            started = time.monotonic()
            # The report's record of this run (bounded), saved with the progress as
            # op.migrate's is, so a killed run keeps it too. Events may come from worker threads.
            timeline = Timeline()
            saving = threading.Lock()

            def save_progress(data: dict[str, Any]) -> None:
                with saving:
                    record.doc.update(data)
                    save_rebuild(store, record)

            record_progress = recording(timeline, save_progress)

            def progress(event: ProgressEvent) -> None:
                if on_progress is not None:
                    on_progress(event)
                record_progress(event)

            try:
                result = _run_watched(
                    lambda mid, stop: migrator(mid, stop, progress), record.id, lease, cancel
                )
            except MigrationCancelled:
                record.doc["report"] = {"timeline": timeline.to_dict()}
                _event(record, "cancel", RUNNING, lease)
                save_rebuild(store, record)
                raise
            except LeaseLost:
                raise  # the record is no longer ours to write
            except Exception as exc:
                record.doc.update(
                    state=FAILED,
                    ended_at=timestamp(),
                    duration_s=round(time.monotonic() - started, 3),
                    error={
                        "type": type(exc).__name__,
                        "reason": exc.message if isinstance(exc, EsmigrateError) else str(exc),
                    },
                    report=failure_record(timeline, exc),
                )
                _event(record, "rebuild", FAILED, lease)
                save_rebuild(store, record)
                if report is not None:
                    # A failed rebuild's report is the one worth reading (the validation's
                    # differences, the dead letters); the rebuild's error still ends the command.
                    try:
                        say(
                            f"Report of the failed rebuild: {write_report([record.doc], report)['path']}"
                        )
                    except OSError as unwritten:
                        say(f"The report could not be written to {report}: {unwritten}")
                raise
            migration = result.to_dict()
            record.doc.update(
                state=APPLIED,
                ended_at=timestamp(),
                duration_s=round(time.monotonic() - started, 3),
                result=migration,
                report=success_record(
                    cluster,
                    timeline,
                    state_index=config.history_index,
                    mid=record.id,
                    sample_size=0 if source is not None else bluegreen.sample_size,
                    rollback_point=str(record.doc["rollback_point"]),
                ),
            )
            _event(record, "rebuild", APPLIED, lease)
            save_rebuild(store, record)
            return RebuildResult(
                record.id,
                alias,
                APPLIED,
                origin,
                str(record.doc["rollback_point"]),
                resumed=resumed,
                migration=migration,
                report=None if report is None else write_report([record.doc], report),
            )


def _migration(alias: str, run: str) -> str:
    return f"rebuild:{alias}:{run}"


def _event(record: RebuildRecord, action: str, outcome: str, lease: Lease) -> None:
    events = list(record.doc.get("events") or [])
    events.append(
        {"at": timestamp(), "action": action, "outcome": outcome, "by": lease.identity.owner}
    )
    record.doc["events"] = events


def _unfinished(cluster: Cluster, store: HistoryStore, alias: str) -> RebuildRecord | None:
    """The last rebuild of ``alias`` when it did not finish and its checkpoint can resume."""
    records = rebuild_records(store, alias)
    if not records or records[-1].state not in (RUNNING, FAILED):
        return None
    phase = Checkpoint(cluster, store.index, records[-1].id).load().get("phase")
    return records[-1] if phase not in (None, "done", ABANDONED) else None


def _refuse_other_definition(
    cluster: Cluster, store: HistoryStore, record: RebuildRecord, bluegreen: BlueGreen
) -> None:
    stored = Checkpoint(cluster, store.index, record.id).load()
    if stored.get("fingerprint") == bluegreen.fingerprint():
        return
    raise MigrationError(
        f"An unfinished rebuild of {record.alias} ({record.id}, phase {stored.get('phase')}) "
        f"was started with another definition: to {record.doc.get('to')}, transform "
        f"{record.doc.get('transform')}, documents from the {record.doc.get('source')}.",
        hint="Run it again with that definition to finish it, or pass --restart "
        "(restart=True) to give it up and rebuild afresh; nothing was changed.",
    )


def _abandon(cluster: Cluster, store: HistoryStore, record: RebuildRecord, say: Reporter) -> None:
    """Give up an unfinished run: its checkpoint and record say so; its index stays."""
    checkpoint = Checkpoint(cluster, store.index, record.id)
    stored = checkpoint.load()
    if stored.get("phase") == "blocked":
        raise MigrationError(
            f"The unfinished rebuild {record.id} stopped during its cut-over, with writes to "
            f"{stored.get('source')} blocked; it cannot be given up in that state.",
            hint="Run the rebuild again with its definition: it lifts the block and finishes.",
        )
    checkpoint.save(phase=ABANDONED)
    record.doc.update(state=ABANDONED, ended_at=timestamp())
    save_rebuild(store, record)
    say(
        f"Gave up the unfinished rebuild {record.id}; its index {stored.get('target')} was "
        "never live and is left in place: delete it when you no longer need it."
    )


def _run_watched(
    migrator: Callable[[str, threading.Event | None], BlueGreen],
    mid: str,
    lease: Lease,
    cancel: threading.Event | None,
) -> MigrationResult:
    """Run the migration; a stop request or the loss of the runner's lease stops it at its next
    safe point (the migrator polls one event)."""
    with stop_on_cancel_or_lost_lease(lease.check, cancel, name="esmigrate-rebuild-watch") as stop:
        return migrator(mid, stop).run()
