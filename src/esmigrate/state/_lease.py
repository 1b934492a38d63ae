"""Leases: one holder at a time of a piece of work, and never stuck after a crash.

A lease is a document in an index: the holder's owner id, host, user and pid, and a wall-clock
expiry. It is taken with ``op_type=create``, or by a compare-and-set (``_seq_no`` and
``_primary_term``) over an expired one; a heartbeat thread pushes the expiry forward
(compare-and-set again) while the holder works. A process killed with SIGKILL stops renewing, so
its lease lapses after ``ttl`` seconds and the next one takes it over. A holder that finds its
lease taken over stops before its next step.

One class, two uses:

- ``Lease(store, identity)``, the document ``lease`` in the history index: one runner
  (``upgrade``, ``downgrade``...) at a time per history index; it raises
  :class:`~esmigrate.exceptions.LeaseHeld` and :class:`~esmigrate.exceptions.LeaseLost`;
- :meth:`Lease.for_migration`, the document ``lease:<migration id>`` in the migration's state
  index: one process at a time per migration. It differs only in its document id and in the
  errors it raises (:class:`~esmigrate.exceptions.MigrationLocked`,
  :class:`~esmigrate.exceptions.MigrationConflict`).

Expiry is judged by wall clocks: the machines that run esmigrate should keep them in sync (NTP);
a skew of more than the TTL could let a waiting process take over a live lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from esmigrate.cluster import Cluster
from esmigrate.exceptions import (
    ClusterError,
    ConflictError,
    EsmigrateError,
    LeaseHeld,
    LeaseLost,
    MigrationConflict,
    MigrationLocked,
    NotFoundError,
)
from esmigrate.progress import Reporter
from esmigrate.state._history import (
    LEASE_ID,
    HistoryStore,
    Identity,
    Stored,
    Version,
    now,
    parse_timestamp,
    timestamp,
)

log = logging.getLogger("esmigrate.migrate")


def _expiry(doc: dict[str, Any]) -> datetime | None:
    """When the lease in ``doc`` expires; None when unreadable."""
    value = doc.get("expires_at")
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            # Seconds since the epoch: how migration leases were stored before they shared this
            # class. Read, so that a run of an older esmigrate is waited for, not taken over.
            return datetime.fromtimestamp(value, UTC)
        moment = parse_timestamp(str(value))
    except (ValueError, OverflowError, OSError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _expired(doc: dict[str, Any]) -> bool:
    expiry = _expiry(doc)
    # Unreadable: treat as abandoned rather than stuck forever.
    return expiry is None or expiry <= now()


def describe_holder(doc: dict[str, Any]) -> str:
    return (
        f"{doc.get('owner', '?')} (user {doc.get('user', '?')}, command {doc.get('command', '?')})"
    )


class Lease:
    """Exclusive right to a piece of work: by default the history index's lease, held by one
    runner at a time; with ``migration``, the lease of that one data migration (see
    :meth:`for_migration`). Use as a context manager after :meth:`acquire`, or call
    :meth:`release`.

    ``command`` is stored with the lease for whoever looks at the holder; ``reporter`` receives
    the human-readable events (waiting for a holder, taking over an expired lease, a release that
    failed).
    """

    def __init__(
        self,
        store: HistoryStore,
        identity: Identity,
        *,
        ttl: float = 60.0,
        command: str = "upgrade",
        reporter: Reporter | None = None,
        migration: str | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("the lease TTL must be positive")
        self.store = store
        self.identity = identity
        self.ttl = ttl
        self.command = command
        self.report = reporter or (lambda _msg: None)
        #: The data migration this lease guards (None: the runner's lease of the history index).
        self.migration = migration
        self.doc_id = LEASE_ID if migration is None else f"lease:{migration}"
        #: What the lease is on, in messages ("the lease on <subject>").
        self.subject = store.index if migration is None else f"migration {migration!r}"
        #: The expired lease document this one replaced, if it took one over.
        self.taken_over: dict[str, Any] | None = None
        self._version: Version | None = None
        self._acquired_at = timestamp()
        self._expires = 0.0  # time.monotonic() deadline of the last successful renewal
        self._lost: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_migration(
        cls, cluster: Cluster, state_index: str, migration: str, *, ttl: float = 30.0
    ) -> Lease:
        """Exclusive right to act on one data migration: the document ``lease:<migration>`` in
        its state index.

        Taken before a run does anything (even lifting a block a dead run left), so a second
        process (a restarted job) cannot lift the write block of a run in its final round, nor
        cancel its ``_reindex`` task. Raises :class:`~esmigrate.exceptions.MigrationLocked` and
        :class:`~esmigrate.exceptions.MigrationConflict`.
        """
        return cls(
            HistoryStore(cluster, state_index),
            Identity.current(),
            ttl=ttl,
            command="migrate",
            reporter=log.warning,
            migration=migration,
        )

    # -- taking ---------------------------------------------------------------------------------

    def _doc(self) -> dict[str, Any]:
        moment = now()
        return {
            "kind": "lease",
            **self.identity.to_dict(),
            "command": self.command,
            "acquired_at": self._acquired_at,
            "renewed_at": timestamp(moment),
            "expires_at": timestamp(moment + timedelta(seconds=self.ttl)),
            "ttl_s": self.ttl,
        }

    def acquire(self, timeout: float = 0.0) -> Self:
        """Take the lease, waiting up to ``timeout`` seconds for a holder to release it or for
        its expiry. Raises :class:`~esmigrate.exceptions.LeaseHeld` naming the holder (for a
        migration's lease, :class:`~esmigrate.exceptions.MigrationLocked`)."""
        deadline = time.monotonic() + max(timeout, 0.0)
        self._acquired_at = timestamp()
        waiting_for: str | None = None
        while True:
            started = time.monotonic()
            try:
                self._version = self.store.create(self.doc_id, self._doc())
                break
            except ConflictError:
                pass
            current = self.store.get(self.doc_id)
            if current is None:
                continue  # released between our two requests
            expiry = _expiry(current.doc)
            if expiry is None or expiry <= now():
                if self._take_over(current):
                    break
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._held_error(current.doc, expiry, timeout)
            if waiting_for != current.doc.get("owner"):
                waiting_for = str(current.doc.get("owner"))
                self.report(
                    f"Waiting for the lease on {self.subject} held by "
                    f"{describe_holder(current.doc)}, expiring at {current.doc.get('expires_at')} "
                    f"unless renewed (waiting up to {timeout:g} s)."
                )
            until_expiry = (expiry - now()).total_seconds()
            time.sleep(max(0.05, min(1.0, remaining, until_expiry + 0.05)))
        self._expires = started + self.ttl
        self._start_heartbeat()
        return self

    def _take_over(self, current: Stored) -> bool:
        try:
            self._version = self.store.replace(self.doc_id, self._doc(), current.version)
        except ConflictError:
            return False  # someone else took it first; look again
        self.taken_over = current.doc
        self.report(
            f"Took over the expired lease of {describe_holder(current.doc)} "
            f"(expired at {current.doc.get('expires_at')})."
        )
        return True

    def _held_error(
        self, holder: dict[str, Any], expiry: datetime, timeout: float
    ) -> EsmigrateError:
        """The error when ``holder`` (its lease document, expiring at ``expiry``) kept the lease
        for all of ``timeout`` seconds."""
        if self.migration is not None:
            return MigrationLocked(
                f"Migration {self.migration!r} is being run by another process: "
                f"{holder.get('owner')} (host {holder.get('host')}, pid {holder.get('pid')}), "
                f"whose lease expires at {expiry.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')} "
                "unless renewed.",
                owner=str(holder.get("owner")),
                host=holder.get("host"),
                pid=holder.get("pid"),
                expires_at=expiry.timestamp(),
                hint="Let it finish (running again afterwards reports it done), or stop it; "
                f"a dead process's lease lapses within {self.ttl:g} s, and a run with a "
                "lock timeout longer than that takes it over.",
            )
        return LeaseHeld(
            f"Another esmigrate runner holds the lease on history index {self.store.index!r}: "
            f"{describe_holder(holder)}, on host {holder.get('host')} (pid {holder.get('pid')}), "
            f"until {holder.get('expires_at')} unless it renews it; waited {timeout:g} s.",
            owner=str(holder.get("owner")),
            host=holder.get("host"),
            pid=holder.get("pid"),
            expires_at=holder.get("expires_at"),
            hint="Let it finish and run again, or wait longer with --lock-timeout. If that "
            "runner is dead, its lease lapses at the expiry and the next run takes it over.",
        )

    # -- keeping --------------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name=f"esmigrate-{self.doc_id}@{self.store.index}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        interval = self.ttl / 3
        while not self._stop.wait(interval):
            if not self.renew():
                return

    def renew(self) -> bool:
        """Push the expiry forward; False once the lease is lost."""
        with self._lock:
            if self._lost is not None or self._version is None:
                return False
            started = time.monotonic()
            try:
                self._version = self.store.replace(self.doc_id, self._doc(), self._version)
            except (ConflictError, NotFoundError):
                self._lost = "another process took it over (its expiry had passed)"
                return False
            except ClusterError as exc:
                if time.monotonic() >= self._expires:
                    self._lost = f"it could not be renewed before it expired ({exc.message})"
                    return False
                return True  # transient: try again at the next beat
            self._expires = started + self.ttl
            return True

    @property
    def held(self) -> bool:
        """True while the lease is certainly ours (renewed within its TTL, not taken over)."""
        with self._lock:
            if self._lost is None and time.monotonic() >= self._expires:
                self._lost = "it expired before a heartbeat renewed it"
            return self._lost is None

    def check(self) -> None:
        """Raise :class:`~esmigrate.exceptions.LeaseLost` (for a migration's lease,
        :class:`~esmigrate.exceptions.MigrationConflict`) unless the lease is still ours."""
        if not self.held:
            raise self._lost_error(str(self._lost))

    def _lost_error(self, reason: str) -> EsmigrateError:
        """The error when the lease was lost (``reason`` says how)."""
        if self.migration is not None:
            return MigrationConflict(
                f"This process lost its lease on migration {self.migration!r}: {reason}. "
                "It stopped before its next step.",
                hint="Another process may be running the migration now; check the checkpoint "
                "document, then run again to resume. A longer lease TTL helps on slow networks.",
            )
        return LeaseLost(
            f"This runner lost its lease on history index {self.store.index!r}: {reason}. "
            "It stopped before the next operation.",
            hint="Run `esmigrate status`: the runner that holds the lease now reports the "
            "interrupted revision as failed; after checking it, `esmigrate repair` and "
            "`esmigrate upgrade` finish it. A longer lease_ttl helps on slow networks.",
        )

    # -- giving back ----------------------------------------------------------------------------

    def release(self) -> None:
        """Stop the heartbeat and delete the lease (if still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            version, self._version = self._version, None
            lost = self._lost is not None
        if version is None or lost:
            return
        try:
            self.store.delete(self.doc_id, version)
        except (ConflictError, NotFoundError):
            pass  # taken over meanwhile: it is not ours to delete
        except ClusterError as exc:
            # Not fatal: the lease lapses at its expiry. Said, not hidden.
            self.report(
                f"Could not release the lease on {self.subject} ({exc.message}); "
                f"it lapses within {self.ttl:g} s."
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def read_lease(store: HistoryStore, doc_id: str = LEASE_ID) -> dict[str, Any] | None:
    """The lease document with ``expired`` added, or None when nobody holds it."""
    current = store.get(doc_id)
    if current is None:
        return None
    return {**current.doc, "expired": _expired(current.doc)}


class LeasedRun(Protocol):
    """A data migration run under :func:`migration_lease`: its id, where its state lives, its
    lease's timings, and the cluster it writes through."""

    cluster: Cluster
    state_index: str
    id: str
    lease_ttl: float
    lock_timeout: float | None


@contextmanager
def migration_lease(
    run: LeasedRun, *, preflight: Callable[[], object] | None = None
) -> Iterator[Lease]:
    """Hold the lease of ``run`` (see :meth:`Lease.for_migration`) for the ``with`` body, with
    ``run.cluster`` fenced by it, so that every write of the run stops once the lease is lost (a
    process paused past it wakes up writing nothing beside the one that took over). Waits up to
    ``run.lock_timeout`` for another holder (default: the TTL and 5 s).

    ``preflight`` (reads only) runs first when the state index does not exist yet: no
    checkpoint can, so the run starts afresh, and a refused first run leaves nothing behind.
    """
    cluster, ttl = run.cluster, run.lease_ttl
    if preflight is not None and not cluster.exists(run.state_index):
        preflight()
    HistoryStore(cluster, run.state_index).ensure()
    lease = Lease.for_migration(cluster, run.state_index, run.id, ttl=ttl)
    with lease.acquire(ttl + 5 if run.lock_timeout is None else run.lock_timeout):
        run.cluster = cluster.fenced(lease.check)
        try:
            yield lease
        finally:
            run.cluster = cluster
