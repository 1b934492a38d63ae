"""The checkpoint document of a migration, stored with compare-and-set writes.

One document per migration (``_id`` = ``checkpoint:<migration id>``, ``kind: "checkpoint"``) in the
state index (the project's history index by default). Every write carries the ``_seq_no`` and
``_primary_term`` of the version this process last saw, so two processes can never both believe
they own the migration: the loser gets :class:`~esmigrate.exceptions.MigrationConflict`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from types import TracebackType
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import (
    ClusterError,
    ConflictError,
    MigrationConflict,
    MigrationLocked,
    NotFoundError,
)

log = logging.getLogger("esmigrate.migrate")

STATE_INDEX_BODY: dict[str, Any] = {
    "settings": {"number_of_shards": 1, "auto_expand_replicas": "0-1"},
    "mappings": {"dynamic": False, "properties": {"kind": {"type": "keyword"}}},
}


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
        if not self.cluster.exists(self.index):
            try:
                self.cluster.request("PUT", f"/{self.index}", body=STATE_INDEX_BODY)
            except ConflictError:
                pass
            except Exception as exc:  # a racing creator answers resource_already_exists (400)
                if getattr(exc, "error_type", None) != "resource_already_exists_exception":
                    raise

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


class MigrationLease:
    """Exclusive right to act on one migration: the document ``lease:<migration>`` in the state
    index (owner, host, pid, wall-clock expiry), taken with ``op_type=create`` or by a
    compare-and-set over an expired one, and renewed by a heartbeat thread.

    Taken before a run does anything (even lifting a block a dead run left), so a second process
    (a restarted job) cannot lift the write block of a run in its final round, nor cancel its
    ``_reindex`` task. A process killed with SIGKILL stops renewing; its lease lapses after
    ``ttl`` seconds and the next run takes it over.
    """

    def __init__(self, cluster: Cluster, index: str, migration: str, *, ttl: float = 30.0) -> None:
        if ttl <= 0:
            raise ValueError("the lease TTL must be positive")
        self.cluster = cluster
        self.index = index
        self.migration = migration
        self.ttl = ttl
        self.doc_id = f"lease:{migration}"
        host = socket.gethostname()
        self.owner = f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.host = host
        self._version: tuple[int, int] | None = None
        self._expires = 0.0  # monotonic deadline of the last successful renewal
        self._lost: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _doc(self) -> dict[str, Any]:
        return {
            "kind": "lease",
            "migration": self.migration,
            "owner": self.owner,
            "host": self.host,
            "pid": os.getpid(),
            "expires_at": time.time() + self.ttl,
        }

    def _put(self, params: dict[str, Any]) -> None:
        result = self.cluster.request(
            "PUT", f"/{self.index}/_doc/{self.doc_id}", params=params, body=self._doc()
        )
        self._version = (int(result["_seq_no"]), int(result["_primary_term"]))

    def acquire(self, timeout: float = 0.0) -> MigrationLease:
        """Take the lease, waiting up to ``timeout`` seconds for the holder to release it or for
        its expiry; raises :class:`~esmigrate.exceptions.MigrationLocked` naming the holder."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            started = time.monotonic()
            try:
                self._put({"op_type": "create", "refresh": "false"})
                break
            except ConflictError:
                pass
            try:
                doc = self.cluster.request("GET", f"/{self.index}/_doc/{self.doc_id}")
            except NotFoundError:
                continue  # released between our two requests
            held = doc["_source"]
            expires = float(held.get("expires_at") or 0.0)
            if expires <= time.time():
                try:
                    self._put(
                        {
                            "if_seq_no": doc["_seq_no"],
                            "if_primary_term": doc["_primary_term"],
                            "refresh": "false",
                        }
                    )
                    break
                except ConflictError:
                    continue  # someone else took it first
            if time.monotonic() >= deadline:
                raise MigrationLocked(
                    f"Migration {self.migration!r} is being run by another process: "
                    f"{held.get('owner')} (host {held.get('host')}, pid {held.get('pid')}), "
                    f"whose lease expires at "
                    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires))} "
                    "unless renewed.",
                    owner=str(held.get("owner")),
                    host=held.get("host"),
                    pid=held.get("pid"),
                    expires_at=expires,
                    hint="Let it finish (running again afterwards reports it done), or stop it; "
                    f"a dead process's lease lapses within {self.ttl:g} s, and a run with a "
                    "lock timeout longer than that takes it over.",
                )
            time.sleep(max(0.05, min(1.0, deadline - time.monotonic(), expires - time.time())))
        self._expires = started + self.ttl
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name=f"esmigrate-lease-{self.migration}", daemon=True
        )
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            if not self.renew():
                return

    def renew(self) -> bool:
        """Push the expiry forward; False once the lease is lost."""
        with self._lock:
            if self._lost is not None or self._version is None:
                return False
            started = time.monotonic()
            seq, term = self._version
            try:
                self._put({"if_seq_no": seq, "if_primary_term": term, "refresh": "false"})
            except (ConflictError, NotFoundError):
                self._lost = "another process took it over after it expired"
                return False
            except ClusterError as exc:
                if time.monotonic() >= self._expires:
                    self._lost = f"it could not be renewed before it expired ({exc.message})"
                    return False
                return True  # transient: the next beat tries again
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
        """Raise :class:`~esmigrate.exceptions.MigrationConflict` unless the lease is ours."""
        if not self.held:
            raise MigrationConflict(
                f"This process lost its lease on migration {self.migration!r}: {self._lost}. "
                "It stopped before its next step.",
                hint="Another process may be running the migration now; check the checkpoint "
                "document, then run again to resume. A longer lease TTL helps on slow networks.",
            )

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
            self.cluster.request(
                "DELETE",
                f"/{self.index}/_doc/{self.doc_id}",
                params={"if_seq_no": version[0], "if_primary_term": version[1]},
            )
        except (ConflictError, NotFoundError):
            pass  # taken over meanwhile: not ours to delete
        except ClusterError as exc:
            # Not fatal: the lease lapses at its expiry. Said, not hidden.
            log.warning(
                "could not release the lease of %s (%s); it lapses within %g s",
                self.migration,
                exc.message,
                self.ttl,
            )

    def __enter__(self) -> MigrationLease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
