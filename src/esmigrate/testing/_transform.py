from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from esmigrate.cluster import Cluster, exact_json
from esmigrate.exceptions import EsmigrateError, RequestError, TransformError
from esmigrate.testing._cluster import delete_prefixed, unique_prefix
from esmigrate.transform._paths import json_identical


class ServerSideTransform(Protocol):
    """What :func:`compare_server_side` needs: a rule set, or anything shaped like one."""

    def __call__(self, doc: dict[str, Any], /) -> dict[str, Any]: ...

    def painless(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Mismatch:
    """One document whose server-side result differs from the Python one."""

    doc_id: str
    source: dict[str, Any]
    python: Any
    server: Any


@dataclass(frozen=True)
class ServerSideReport:
    checked: int
    mismatches: tuple[Mismatch, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def compare_server_side(
    cluster: Cluster,
    transform: ServerSideTransform,
    documents: Iterable[Mapping[str, Any]],
    *,
    batch: int = 500,
) -> ServerSideReport:
    """Run ``transform`` on ``documents`` in Python and as Painless inside a real ``_reindex``;
    report every document whose results differ (types included: ``1`` is not ``1.0``).

    For custom rules: a migration runs the Painless form at ``_reindex`` speed, and this is how
    a test proves it does what the Python form does on *your* documents. A document the Python
    form fails on must fail on the server too (its failure is the expected result). Works in a
    scratch index pair that is deleted afterwards; nothing else is touched.
    """
    script = transform.painless()
    if script is None:
        raise EsmigrateError(
            "This transform has no Painless form, so there is nothing to compare.",
            hint="One of its rules cannot run server-side; migrations run it in Python.",
        )
    prefix = unique_prefix()
    source, target = f"{prefix}-src", f"{prefix}-dst"
    settings = {"number_of_shards": 1, "number_of_replicas": 0}
    mismatches: list[Mismatch] = []
    checked = 0
    try:
        cluster.request(
            "PUT", f"/{source}", body={"settings": settings, "mappings": {"dynamic": False}}
        )
        cluster.request(
            "PUT", f"/{target}", body={"settings": settings, "mappings": {"dynamic": False}}
        )
        pending: list[tuple[str, dict[str, Any]]] = []
        for i, doc in enumerate(documents):
            pending.append((str(i), dict(doc)))
            if len(pending) >= batch:
                checked += _compare_batch(
                    cluster, transform, script, source, target, pending, mismatches
                )
                pending = []
        if pending:
            checked += _compare_batch(
                cluster, transform, script, source, target, pending, mismatches
            )
    finally:
        delete_prefixed(cluster, prefix)
    return ServerSideReport(checked, tuple(mismatches))


def _compare_batch(
    cluster: Cluster,
    transform: ServerSideTransform,
    script: dict[str, Any],
    source: str,
    target: str,
    docs: list[tuple[str, dict[str, Any]]],
    mismatches: list[Mismatch],
) -> int:
    lines: list[bytes] = []
    for doc_id, doc in docs:
        lines.append(orjson.dumps({"index": {"_index": source, "_id": doc_id}}))
        lines.append(exact_json.dumps(doc))
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")
    # One document at a time would be slow; one _reindex for the batch stops at the first
    # failure. So: reindex the batch, and on a failure, redo it document by document.
    ids = [doc_id for doc_id, _ in docs]
    server = _reindex(cluster, script, source, target, ids)
    if server is None:
        server = {}
        for doc_id in ids:
            one = _reindex(cluster, script, source, target, [doc_id])
            server[doc_id] = one.get(doc_id) if one is not None else _FAILED
    for doc_id, doc in docs:
        try:
            expected: Any = transform(dict(doc))
        except TransformError:
            expected = _FAILED
        got = server.get(doc_id, _FAILED)
        same = expected is got if _FAILED in (expected, got) else json_identical(expected, got)
        if not same:
            mismatches.append(Mismatch(doc_id, doc, expected, got))
    cluster.request(
        "POST",
        f"/{source},{target}/_delete_by_query",
        params={"refresh": "true", "conflicts": "proceed"},
        body={"query": {"match_all": {}}},
    )
    return len(docs)


class _Failed:
    def __repr__(self) -> str:
        return "<failed>"


_FAILED: Any = _Failed()


def _reindex(
    cluster: Cluster, script: dict[str, Any], source: str, target: str, ids: list[str]
) -> dict[str, Any] | None:
    """The transformed documents by id, or None when the server failed on one of them."""
    try:
        answer = cluster.request(
            "POST",
            "/_reindex",
            params={"refresh": "true"},
            body={
                "source": {"index": source, "query": {"ids": {"values": ids}}},
                "dest": {"index": target},
                "script": script,
                "conflicts": "proceed",
            },
        )
    except RequestError:
        return None  # a script exception aborts the whole request
    if answer.get("failures"):
        return None
    hits = cluster.search(target, {"size": len(ids), "query": {"ids": {"values": ids}}})["hits"][
        "hits"
    ]
    return {hit["_id"]: hit["_source"] for hit in hits}
