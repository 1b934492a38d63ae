"""The checkpoint document of a migration, stored with compare-and-set writes.

One document per migration (``_id`` = ``checkpoint:<migration id>``, ``kind: "checkpoint"``) in the
state index (the project's history index by default). Every write carries the ``_seq_no`` and
``_primary_term`` of the version this process last saw, so two processes can never both believe
they own the migration: the loser gets :class:`~esmigrate.exceptions.MigrationConflict`.
"""

from __future__ import annotations

import time
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import (
    ClusterUnavailable,
    ConflictError,
    MigrationConflict,
    NotFoundError,
)
from esmigrate.state._history import HistoryStore


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
        except ClusterUnavailable:
            # No answer: if the write was applied, carry on from it (sending it again would
            # conflict with itself and look like another process).
            version = HistoryStore(self.cluster, self.index).confirm(self.doc_id, self.data)
            if version is None:
                raise
            self._seq_no, self._primary_term = version.seq_no, version.primary_term
            return
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
