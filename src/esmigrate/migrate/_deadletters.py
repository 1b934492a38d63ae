"""Documents that could not be migrated, kept with the reason in a dead-letter index."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from esmigrate.cluster import Cluster, exact_json, iter_bulk_errors
from esmigrate.exceptions import RequestError, TooManyFailures

DEAD_LETTER_BODY: dict[str, Any] = {
    "settings": {"number_of_shards": 1, "auto_expand_replicas": "0-1"},
    "mappings": {
        "dynamic": False,
        "properties": {
            "migration": {"type": "keyword"},
            "id": {"type": "keyword"},
            "routing": {"type": "keyword"},
            "source_index": {"type": "keyword"},
            "target_index": {"type": "keyword"},
            "error_type": {"type": "keyword"},
            "reason": {"type": "text"},
            "rule": {"type": "keyword"},
            "stage": {"type": "keyword"},
            "source": {"type": "object", "enabled": False},
        },
    },
}


class DeadLetters:
    """Documents that could not be migrated, with the reason, in ``index``.

    One entry per (migration, document id): a document that fails twice is counted once.
    """

    def __init__(self, cluster: Cluster, index: str, migration: str) -> None:
        self.cluster = cluster
        self.index = index
        self.migration = migration

    def ensure(self) -> None:
        if not self.cluster.exists(self.index):
            try:
                self.cluster.request("PUT", f"/{self.index}", body=DEAD_LETTER_BODY)
            except RequestError as exc:
                if exc.error_type != "resource_already_exists_exception":
                    raise

    def entry_id(self, doc_id: str) -> str:
        return f"{self.migration}:{doc_id}"

    def write(self, entries: Iterable[dict[str, Any]]) -> int:
        lines: list[bytes] = []
        for entry in entries:
            entry = {"migration": self.migration, **entry}
            if not isinstance(entry.get("source"), dict):
                entry["source"] = {"value": entry.get("source")}
            lines.append(
                orjson.dumps({"index": {"_index": self.index, "_id": self.entry_id(entry["id"])}})
            )
            lines.append(exact_json.dumps(entry, default=str))
        if not lines:
            return 0
        result = self.cluster.bulk(b"\n".join(lines) + b"\n")
        for _, item in iter_bulk_errors(result):
            raise RequestError(
                f"Could not write to the dead-letter index {self.index}: {item.get('error')}",
                status=int(item.get("status", 500)),
            )
        return len(lines) // 2

    def count(self) -> int:
        if not self.cluster.exists(self.index):
            return 0
        self.cluster.refresh(self.index)
        return self.cluster.count(self.index, {"term": {"migration": self.migration}})

    def ids(self, limit: int | None = None) -> set[str]:
        """The ids of this migration's dead letters (all of them unless ``limit``)."""
        out: set[str] = set()
        for doc_id, _ in self.entries():
            if limit is not None and len(out) >= limit:
                break
            out.add(doc_id)
        return out

    def among(self, doc_ids: list[str]) -> set[str]:
        """Which of ``doc_ids`` are dead letters of this migration."""
        if not doc_ids or not self.cluster.exists(self.index):
            return set()
        docs = self.cluster.request(
            "POST",
            f"/{self.index}/_mget",
            body={"ids": [self.entry_id(i) for i in doc_ids]},
            params={"_source": "false"},
        )["docs"]
        return {i for i, doc in zip(doc_ids, docs, strict=True) if doc.get("found")}

    def entries(self, page: int = 5000) -> Iterator[tuple[str, str | None]]:
        """``(id, routing)`` of every dead letter of this migration, paged by ``search_after``
        (memory stays flat however many there are)."""
        if not self.cluster.exists(self.index):
            return
        self.cluster.refresh(self.index)
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": page,
                "query": {"term": {"migration": self.migration}},
                "_source": ["id", "routing"],
                "sort": [{"id": "asc"}],
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self.cluster.search(self.index, body)["hits"]["hits"]
            for h in hits:
                yield str(h["_source"]["id"]), h["_source"].get("routing")
            if len(hits) < page:
                return
            after = hits[-1]["sort"]

    def samples(self, n: int = 5) -> list[dict[str, Any]]:
        if not self.cluster.exists(self.index):
            return []
        hits = self.cluster.search(
            self.index,
            {
                "size": n,
                "query": {"term": {"migration": self.migration}},
                "_source": ["id", "error_type", "reason", "rule", "stage"],
            },
        )["hits"]["hits"]
        return [h["_source"] for h in hits]


class FailureBudget:
    """At most ``max_failures`` dead-lettered documents before the cut-over is refused."""

    def __init__(self, dead: DeadLetters, max_failures: int) -> None:
        self.dead = dead
        self.max_failures = max_failures

    def exceeded_by(self, failures: int) -> bool:
        return failures > self.max_failures

    def error(self, failures: int) -> TooManyFailures:
        samples = self.dead.samples()
        shown = "; ".join(
            f"{s.get('id')}: {s.get('error_type')}: {str(s.get('reason'))[:120]}"
            for s in samples[:3]
        )
        return TooManyFailures(
            f"{failures} document(s) could not be migrated (allowed: {self.max_failures}); "
            f"the aliases were not moved. They are in {self.dead.index} with the reason. "
            f"First: {shown}",
            failures=failures,
            max_failures=self.max_failures,
            dead_letter_index=self.dead.index,
            samples=samples,
            hint="Fix the transform or the mapping and run again (it resumes), or accept "
            "them with --max-failures N.",
        )
