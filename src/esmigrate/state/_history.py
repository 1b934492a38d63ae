"""The history index: one document per revision, the lease, and room for other kinds.

The index is created with ``"dynamic": false`` and maps only the few fields it is queried by
(``kind``, ``revision``, ``state``): every other field is kept in ``_source`` but not indexed,
so documents of other kinds (the migrator's ``kind: "checkpoint"``) can never cause a
mapping conflict. Every write is a compare-and-set: ``op_type=create`` for a new document,
``if_seq_no``/``if_primary_term`` for a change; none is check-then-act.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from esmigrate._redact import redact
from esmigrate.cluster import HISTORY, Cluster
from esmigrate.exceptions import ClusterUnavailable, NotFoundError, RequestError

#: Revision states.
PENDING = "pending"
RUNNING = "running"
APPLIED = "applied"
FAILED = "failed"
ROLLED_BACK = "rolled_back"
STATES = (PENDING, RUNNING, APPLIED, FAILED, ROLLED_BACK)

HISTORY_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "kind": {"type": "keyword"},
        "revision": {"type": "keyword"},
        "state": {"type": "keyword"},
    },
}

LEASE_ID = "lease"


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with milliseconds, as stored in the history."""
    return (moment or now()).isoformat(timespec="milliseconds")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def revision_id(revision: str) -> str:
    return f"revision:{revision}"


@dataclass(frozen=True)
class Identity:
    """Who runs: stored with the lease and every revision it touches."""

    owner: str
    host: str
    user: str
    pid: int

    @classmethod
    def current(cls) -> Identity:
        host = socket.gethostname()
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no passwd entry (containers)
            user = str(os.getuid()) if hasattr(os, "getuid") else "?"
        pid = os.getpid()
        return cls(owner=f"{host}:{pid}:{uuid.uuid4().hex[:8]}", host=host, user=user, pid=pid)

    def to_dict(self) -> dict[str, Any]:
        return {"owner": self.owner, "host": self.host, "user": self.user, "pid": self.pid}


@dataclass(frozen=True)
class Version:
    """A document's ``_seq_no`` and ``_primary_term``: the token of a compare-and-set."""

    seq_no: int
    primary_term: int

    def params(self) -> dict[str, Any]:
        return {"if_seq_no": self.seq_no, "if_primary_term": self.primary_term}


@dataclass
class Stored:
    """A document as read, with the version a later write must match."""

    id: str
    doc: dict[str, Any]
    version: Version


@dataclass
class RevisionRecord:
    """The history of one revision (a ``kind: "revision"`` document)."""

    doc: dict[str, Any]
    version: Version | None = None

    @property
    def revision(self) -> str:
        return str(self.doc["revision"])

    @property
    def state(self) -> str:
        return str(self.doc.get("state", ""))

    @property
    def checksum(self) -> str | None:
        value = self.doc.get("checksum")
        return str(value) if value else None

    @property
    def direction(self) -> str:
        return str(self.doc.get("direction") or "upgrade")

    @property
    def owner(self) -> str | None:
        by = self.doc.get("by") or {}
        return by.get("owner")

    @property
    def completed(self) -> list[dict[str, Any]]:
        """The entries of the operation log that ended (done, unchanged, failed, interrupted)."""
        return [entry for entry in self.doc.get("log") or [] if "status" in entry]

    @property
    def unfinished(self) -> list[dict[str, Any]]:
        """The entries of the operation log that started and never ended (a runner died)."""
        return [entry for entry in self.doc.get("log") or [] if "status" not in entry]

    def summary(self) -> dict[str, Any]:
        """The public view (``status``/``history``): everything but the operation log."""
        data = {k: v for k, v in self.doc.items() if k not in ("kind", "log", "events")}
        data["operations"] = len(self.doc.get("log") or [])
        return data


class HistoryStore:
    """Reads and compare-and-set writes on the history index."""

    def __init__(self, cluster: Cluster, index: str) -> None:
        self.cluster = cluster
        self.index = index

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request on the history index that rides out its first seconds.

        Right after another runner created the index its primary shard may not be started yet
        (503 "all shards failed" / no shard available): wait for it, then try again.
        """

        def wait_for_primary(_attempt: int) -> None:
            # Then a moment more (the policy's wait): started is not yet searchable on a
            # loaded node.
            self.cluster.health(self.index, wait_for_status="yellow", timeout="30s")

        return HISTORY.call(
            lambda: self.cluster.request(method, path, **kwargs), before_retry=wait_for_primary
        )

    def exists(self) -> bool:
        return self.cluster.exists(self.index)

    def ensure(self) -> None:
        """Create the index (explicit mapping, ``dynamic: false``) or add our fields to it."""
        if self.exists():
            # Possibly created an instant ago by another process: wait for its primary.
            self.cluster.health(self.index, wait_for_status="yellow", timeout="30s")
            return
        settings: dict[str, Any] = {"number_of_shards": 1, "auto_expand_replicas": "0-1"}
        if self.index.startswith("."):
            settings["hidden"] = True
        try:
            self.cluster.request(
                "PUT", f"/{self.index}", body={"settings": settings, "mappings": HISTORY_MAPPING}
            )
        except RequestError as exc:
            if exc.error_type != "resource_already_exists_exception":
                raise
            # Created meanwhile by someone else (another runner, the migrator): make
            # sure the fields we query exist. Same definitions: a no-op; conflicting: an error.
            self.cluster.request(
                "PUT",
                f"/{self.index}/_mapping",
                body={"properties": HISTORY_MAPPING["properties"]},
            )

    def confirm(self, doc_id: str, sent: dict[str, Any]) -> Version | None:
        """After a write of ``sent`` to ``doc_id`` got no answer (the connection dropped, the
        client timed out): the stored version if it is exactly ``sent`` (the write was
        applied), else None (it was not, or not yet)."""
        stored = self.get(doc_id)
        return stored.version if stored is not None and stored.doc == sent else None

    def _write(
        self, method: str, path: str, doc_id: str, params: dict[str, Any], body: dict[str, Any]
    ) -> Version:
        """A create or compare-and-set write; an answer lost after the write was applied is
        recognised (sending it again would conflict with itself)."""
        try:
            answer = self._request(method, path, params=params, body=body)
        except ClusterUnavailable:
            version = self.confirm(doc_id, body)
            if version is None:
                raise
            return version
        return Version(answer["_seq_no"], answer["_primary_term"])

    def get(self, doc_id: str) -> Stored | None:
        try:
            answer = self._request("GET", f"/{self.index}/_doc/{doc_id}")
        except NotFoundError:
            return None
        if not answer.get("found"):
            return None
        return Stored(
            doc_id, answer["_source"], Version(answer["_seq_no"], answer["_primary_term"])
        )

    def create(self, doc_id: str, doc: dict[str, Any]) -> Version:
        """Write a new document; :class:`~esmigrate.exceptions.ConflictError` if it exists."""
        return self._write(
            "PUT", f"/{self.index}/_create/{doc_id}", doc_id, {"refresh": True}, redact(doc)
        )

    def replace(self, doc_id: str, doc: dict[str, Any], version: Version) -> Version:
        """Overwrite a document if it is still at ``version``; else ConflictError."""
        return self._write(
            "PUT",
            f"/{self.index}/_doc/{doc_id}",
            doc_id,
            {**version.params(), "refresh": True},
            # Operation logs carry request bodies and answers: no secret may be stored.
            redact(doc),
        )

    def delete(self, doc_id: str, version: Version) -> None:
        try:
            self._request(
                "DELETE",
                f"/{self.index}/_doc/{doc_id}",
                params={**version.params(), "refresh": True},
            )
        except ClusterUnavailable:
            # The answer was lost: gone is what was asked; still there, it was not (or not yet).
            if self.get(doc_id) is not None:
                raise

    def write_revision(self, record: RevisionRecord) -> None:
        """Create or compare-and-set the record's document; updates ``record.version``."""
        doc_id = revision_id(record.revision)
        record.doc["kind"] = "revision"
        record.doc["updated_at"] = timestamp()
        if record.version is None:
            record.version = self.create(doc_id, record.doc)
        else:
            record.version = self.replace(doc_id, record.doc, record.version)

    def delete_revision(self, record: RevisionRecord) -> None:
        assert record.version is not None
        self.delete(revision_id(record.revision), record.version)

    def of_kind(self, kind: str) -> list[Stored]:
        """Every document of ``kind`` (none when the index does not exist yet)."""
        try:
            answer = self._request(
                "POST",
                f"/{self.index}/_search",
                params={"seq_no_primary_term": True},
                body={"query": {"term": {"kind": kind}}, "size": 10000},
            )
        except NotFoundError:
            return []
        return [
            Stored(
                hit["_id"], hit["_source"], Version(int(hit["_seq_no"]), int(hit["_primary_term"]))
            )
            for hit in answer["hits"]["hits"]
        ]

    def revisions(self) -> dict[str, RevisionRecord]:
        """Every revision document (empty when the index does not exist yet)."""
        records: dict[str, RevisionRecord] = {}
        for stored in self.of_kind("revision"):
            record = RevisionRecord(stored.doc, stored.version)
            records[record.revision] = record
        return records
