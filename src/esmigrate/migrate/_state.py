"""The checkpoint document of a migration, stored with compare-and-set writes, and its lease.

One document per migration (``_id`` = ``checkpoint:<migration id>``, ``kind: "checkpoint"``) in the
state index (the project's history index by default). Every write carries the ``_seq_no`` and
``_primary_term`` of the version this process last saw, so two processes can never both believe
they own the migration: the loser gets :class:`~esmigrate.exceptions.MigrationConflict`.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import (
    ConflictError,
    MigrationConflict,
    MigrationLocked,
    NotFoundError,
)
from esmigrate.runtime._history import HistoryStore, Identity
from esmigrate.runtime._lease import Lease

log = logging.getLogger("esmigrate.migrate")


class Checkpoint:
    """A migration's persisted state: ``data`` plus the CAS coordinates of the stored version."""

    def __init__(self, cluster: Cluster, index: str, migration: str) -> None:
        self.cluster = cluster
        self.index = index
        self.migration = migration
        self.doc_id = f"checkpoint:{migration}"
        self.data: dict[str, Any] = {}
        self._seq_no: int | None = None
        self._primary_term: int | None = None

    @property
    def exists(self) -> bool:
        return self._seq_no is not None

    def ensure_index(self) -> None:
        # The state index is the project's history index by default: one definition of it.
        HistoryStore(self.cluster, self.index).ensure()

    def load(self) -> dict[str, Any]:
        """Read the stored state (empty dict when there is none)."""
        self.ensure_index()
        try:
            doc = self.cluster.request("GET", f"/{self.index}/_doc/{self.doc_id}")
        except NotFoundError:
            self.data, self._seq_no, self._primary_term = {}, None, None
            return self.data
        self.data = dict(doc["_source"])
        self._seq_no, self._primary_term = doc["_seq_no"], doc["_primary_term"]
        return self.data

    def save(self, **changes: Any) -> None:
        """Merge ``changes`` into the state and store it (compare-and-set)."""
        self.data.update(changes)
        self.data["kind"] = "checkpoint"
        self.data["migration"] = self.migration
        self.data["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        params: dict[str, Any] = {"refresh": "false"}
        if self._seq_no is None:
            params["op_type"] = "create"
        else:
            params["if_seq_no"] = self._seq_no
            params["if_primary_term"] = self._primary_term
        try:
            result = self.cluster.request(
                "PUT", f"/{self.index}/_doc/{self.doc_id}", params=params, body=self.data
            )
        except ConflictError:
            raise MigrationConflict(
                f"The checkpoint of migration {self.migration!r} in {self.index} was changed by "
                "another process.",
                hint="Another esmigrate process is running this migration; let it finish, or stop "
                "it and run again to resume.",
            ) from None
        self._seq_no, self._primary_term = result["_seq_no"], result["_primary_term"]

    def reset(self) -> None:
        """Start over: the next :meth:`save` replaces the stored document (still CAS-checked)."""
        self.data = {}


class MigrationLease(Lease):
    """Exclusive right to act on one migration: a :class:`~esmigrate.runtime.Lease` on the
    document ``lease:<migration>`` in the state index, raising the migration engine's errors.

    Taken before a run does anything (even lifting a block a dead run left), so a second process
    (a restarted job) cannot lift the write block of a run in its final round, nor cancel its
    ``_reindex`` task. A process killed with SIGKILL stops renewing; its lease lapses after
    ``ttl`` seconds and the next run takes it over.
    """

    def __init__(self, cluster: Cluster, index: str, migration: str, *, ttl: float = 30.0) -> None:
        super().__init__(
            HistoryStore(cluster, index),
            Identity.current(),
            ttl=ttl,
            command="migrate",
            reporter=log.warning,
            doc_id=f"lease:{migration}",
            subject=f"migration {migration!r}",
        )
        self.migration = migration

    def _held_error(
        self, holder: dict[str, Any], expiry: datetime, timeout: float
    ) -> MigrationLocked:
        return MigrationLocked(
            f"Migration {self.migration!r} is being run by another process: "
            f"{holder.get('owner')} (host {holder.get('host')}, pid {holder.get('pid')}), "
            f"whose lease expires at {expiry.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')} unless renewed.",
            owner=str(holder.get("owner")),
            host=holder.get("host"),
            pid=holder.get("pid"),
            expires_at=expiry.timestamp(),
            hint="Let it finish (running again afterwards reports it done), or stop it; "
            f"a dead process's lease lapses within {self.ttl:g} s, and a run with a "
            "lock timeout longer than that takes it over.",
        )

    def _lost_error(self, reason: str) -> MigrationConflict:
        return MigrationConflict(
            f"This process lost its lease on migration {self.migration!r}: {reason}. "
            "It stopped before its next step.",
            hint="Another process may be running the migration now; check the checkpoint "
            "document, then run again to resume. A longer lease TTL helps on slow networks.",
        )
