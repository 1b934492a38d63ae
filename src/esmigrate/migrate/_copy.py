"""The two ways documents move from a source index to a target index.

- :class:`ReindexCopier`: the server's ``_reindex`` as a polled task (painless or no transform).
- :class:`PipelineCopier`: a Python pipeline (Python transform): per-shard ``_seq_no`` scans,
  byte-bounded bulk chunks, 429 retries with backoff, a token bucket for throttling.

Both send documents that cannot be written (the target mapping rejects them, the transform raises)
to the dead-letter index through :class:`DeadLetters`, and count them. The pipeline also serves the
one-shot ``op.reindex(transform=...)`` of revision scripts: there it reads pages of a point in time
and, without dead letters, raises on the first such document.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from esmigrate.cluster import Cluster, exact_json, iter_bulk_errors, server_reason
from esmigrate.exceptions import (
    MigrationCancelled,
    NotFoundError,
    PreflightError,
    RequestError,
    TaskFailed,
    TransformError,
)
from esmigrate.migrate._progress import Meter
from esmigrate.migrate._shards import scan

Transform = Callable[[dict[str, Any]], dict[str, Any]]

CursorT = TypeVar("CursorT")

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

RETRY_STATUSES = {429, 502, 503, 504}


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


class TokenBucket:
    """At most ``rate`` documents per second on average (``None`` or <= 0: unlimited).

    ``rate`` may be changed while copies run (a live rethrottle).
    """

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            rate = self.rate
            if rate is None or rate <= 0:
                return
            now = time.monotonic()
            self._next = max(self._next, now)
            wait = self._next - now
            self._next += n / rate
        if wait > 0:
            time.sleep(wait)


@dataclass
class CopyStats:
    """What a copy step did."""

    copied: int = 0
    failed: int = 0
    retries: int = 0
    #: Documents the transform left out (returned None; only with ``drop_none``).
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, copied: int = 0, failed: int = 0, retries: int = 0, skipped: int = 0) -> None:
        with self.lock:
            self.copied += copied
            self.failed += failed
            self.retries += retries
            self.skipped += skipped


def _deep_copy(value: Any) -> Any:
    # The transform may mutate its argument; the dead letter must keep the original.
    return exact_json.loads(exact_json.dumps(value))


def _backoff(attempt: int) -> float:
    return float(min(30.0, 0.2 * (2**attempt)) * (0.5 + random.random() / 2))


class PipelineCopier:
    """Copy documents through a Python transform: scan, transform, bulk, retry, dead-letter.

    ``dead_letters`` None: the first document the transform raises on (:class:`TransformError`,
    chained to the transform's exception) or the target rejects (:class:`RequestError` with the
    server's reason) stops the copy instead of being dead-lettered. ``drop_none``: a transform
    returning None leaves the document out (counted in :attr:`CopyStats.skipped`); without it
    None is written like any other result, which a migration must never drop silently.
    """

    def __init__(
        self,
        cluster: Cluster,
        source: str,
        target: str,
        transform: Callable[[dict[str, Any]], dict[str, Any] | None] | None,
        dead_letters: DeadLetters | None,
        *,
        page: int = 1000,
        chunk_bytes: int = 4 * 1024 * 1024,
        bucket: TokenBucket | None = None,
        cancel: threading.Event | None = None,
        max_retries: int = 8,
        drop_none: bool = False,
    ) -> None:
        self.cluster = cluster
        self.source = source
        self.target = target
        self.transform = transform
        self.dead_letters = dead_letters
        self.page = page
        self.chunk_bytes = chunk_bytes
        self.bucket = bucket or TokenBucket(None)
        self.cancel = cancel
        self.max_retries = max_retries
        self.drop_none = drop_none

    def copy_shard(
        self,
        shard: int,
        after: int,
        upto: int,
        stats: CopyStats,
        *,
        query: Mapping[str, Any] | None = None,
        on_cursor: Callable[[int], None] | None = None,
    ) -> None:
        """Copy shard ``shard``'s documents with ``after < _seq_no <= upto``.

        ``on_cursor(done_upto)`` is called after each flushed chunk: every document of the shard
        up to ``done_upto`` is then in the target (or dead-lettered), so a successor may resume
        from there.
        """
        pages = scan(self.cluster, self.source, shard, after, upto, page=self.page, query=query)
        self.copy_pages(pages, stats, on_cursor=on_cursor)
        if on_cursor is not None:
            on_cursor(upto)

    def copy_pages(
        self,
        pages: Iterable[tuple[list[dict[str, Any]], CursorT]],
        stats: CopyStats,
        *,
        on_cursor: Callable[[CursorT], None] | None = None,
    ) -> None:
        """Transform and write ``(hits, cursor)`` pages of search hits of ``source``, however
        they were read (a shard's ``_seq_no`` scan, a point in time). Every document keeps its
        ``_id`` and routing and is written with ``op_type=index``.

        ``on_cursor(cursor)`` is called after a page when nothing is left unwritten: every
        document up to that page is then in the target (or dead-lettered). When this returns,
        every page is written.
        """
        actions: list[bytes] = []
        originals: list[tuple[str, dict[str, Any], str | None]] = []
        size = 0
        for hits, done_upto in pages:
            if self.cancel is not None and self.cancel.is_set():
                raise MigrationCancelled(
                    "The migration was cancelled.", hint="Run it again to resume."
                )
            failures: list[dict[str, Any]] = []
            for hit in hits:
                doc_id = hit["_id"]
                src = hit.get("_source") or {}
                try:
                    doc = self.transform(_deep_copy(src)) if self.transform else src
                except Exception as exc:
                    if self.dead_letters is None:
                        raise self._transform_failed(doc_id, exc) from exc
                    failures.append(
                        {
                            "id": doc_id,
                            "routing": hit.get("_routing"),
                            "source_index": self.source,
                            "target_index": self.target,
                            "stage": "transform",
                            "error_type": type(exc).__name__,
                            "reason": str(exc),
                            "rule": getattr(exc, "rule", None),
                            "source": src,
                        }
                    )
                    continue
                if doc is None and self.drop_none:
                    stats.add(skipped=1)
                    continue
                meta: dict[str, Any] = {"_index": self.target, "_id": doc_id}
                if hit.get("_routing") is not None:
                    meta["routing"] = hit["_routing"]
                action = orjson.dumps({"index": meta}) + b"\n" + exact_json.dumps(doc) + b"\n"
                actions.append(action)
                originals.append((doc_id, src, hit.get("_routing")))
                size += len(action)
                if size >= self.chunk_bytes:
                    # Bounded per document, not per page: a page of large documents must not
                    # become one bulk request over http.max_content_length.
                    self._flush(actions, originals, stats)
                    actions, originals, size = [], [], 0
            if failures:
                stats.add(failed=self._dead_letters().write(failures))
            if size >= self.chunk_bytes:
                self._flush(actions, originals, stats)
                actions, originals, size = [], [], 0
            if not actions and on_cursor is not None:
                on_cursor(done_upto)
        if actions:
            self._flush(actions, originals, stats)

    def _dead_letters(self) -> DeadLetters:
        # Only reached with failures, which without dead letters were raised already.
        assert self.dead_letters is not None
        return self.dead_letters

    def _transform_failed(self, doc_id: str, exc: Exception) -> TransformError:
        name = getattr(self.transform, "__qualname__", None) or repr(self.transform)
        return TransformError(
            f"The transform {name} raised {type(exc).__name__} on document {doc_id!r} of "
            f"{self.source}: {exc}",
            rule=str(getattr(exc, "rule", None) or name),
            doc_id=doc_id,
            cause=exc,
            hint="Fix the transform (or the document); a new run rewrites what was copied.",
        )

    def _flush(
        self,
        actions: list[bytes],
        originals: list[tuple[str, dict[str, Any], str | None]],
        stats: CopyStats,
    ) -> None:
        self.bucket.take(len(actions))
        todo = list(range(len(actions)))
        attempt = 0
        while todo:
            body = b"".join(actions[i] for i in todo)
            try:
                result = self.cluster.bulk(body)
            except RequestError as exc:
                if exc.status in RETRY_STATUSES and attempt < self.max_retries:
                    stats.add(retries=1)
                    time.sleep(_backoff(attempt))
                    attempt += 1
                    continue
                raise
            retry: list[int] = []
            failures: list[dict[str, Any]] = []
            rejected: tuple[int, str | None, str | None, Any] | None = None
            copied = 0
            for pos, item in zip(todo, result["items"], strict=True):
                detail = next(iter(item.values()))
                status = int(detail.get("status", 200))
                if "error" not in detail:
                    copied += 1
                elif status in RETRY_STATUSES:
                    if attempt >= self.max_retries:
                        # The cluster is overloaded, the document is fine: stop resumably (the
                        # cursor only moves past flushed chunks) instead of dead-lettering it.
                        etype, reason = server_reason({"error": detail["error"]})
                        stats.add(copied=copied)
                        raise RequestError(
                            f"{self.target} still refused documents with {status} ({etype}: "
                            f"{reason}) after {self.max_retries} retries; nothing was "
                            "dead-lettered and the copy stopped at its last checkpoint.",
                            status=status,
                            error_type=etype,
                            reason=reason,
                            hint="Let the cluster recover (or lower the throttle), then run the "
                            "migration again: it resumes.",
                        )
                    retry.append(pos)
                else:
                    etype, reason = server_reason({"error": detail["error"]})
                    doc_id, src, routing = originals[pos]
                    if rejected is None:
                        rejected = (status, etype, reason, detail["error"])
                    failures.append(
                        {
                            "id": doc_id,
                            "routing": routing,
                            "source_index": self.source,
                            "target_index": self.target,
                            "stage": "index",
                            "error_type": etype,
                            "reason": reason,
                            "source": src,
                        }
                    )
            stats.add(copied=copied)
            if rejected is not None and self.dead_letters is None:
                status, etype, reason, error = rejected
                more = len(failures) - 1
                raise RequestError(
                    f"{self.target} rejected document {failures[0]['id']!r} copied from "
                    f"{self.source}: {etype}: {reason}"
                    + (f" (and {more} more in the same bulk request)." if more else "."),
                    status=status,
                    error_type=etype,
                    reason=reason,
                    body=error,
                    hint="Make the documents fit the target mapping (fix the mapping or the "
                    "transform); a new run rewrites what was copied.",
                )
            if failures:
                stats.add(failed=self._dead_letters().write(failures))
            todo = retry
            if todo:
                stats.add(retries=len(todo))
                time.sleep(_backoff(attempt))
                attempt += 1


# -- server-side _reindex -------------------------------------------------------------------------

_DEEP_COPY = (
    "def __esmCopy(def v) { if (v instanceof Map) { Map m = new HashMap(); "
    "for (def e : v.entrySet()) { m.put(e.getKey(), __esmCopy(e.getValue())); } return m; } "
    "if (v instanceof List) { List l = new ArrayList(); for (def x : v) { l.add(__esmCopy(x)); } "
    "return l; } return v; }\n"
)


def normalize_script(script: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    """A painless script as the ``script`` object of a request."""
    if script is None:
        return None
    if isinstance(script, str):
        return {"lang": "painless", "source": script}
    out = dict(script)
    out.setdefault("lang", "painless")
    if "source" not in out and "id" not in out:
        raise ValueError("a script needs 'source' (or a stored script 'id')")
    return out


_REROUTING = re.compile(
    r"""ctx\s*(?:\.\s*(op|_id|_routing|_index)|\[\s*['"](op|_id|_routing|_index)['"]\s*\])"""
    r"""\s*(?:=(?!=)|\+=)"""
)


def refuse_rerouting(script: Mapping[str, Any] | None) -> None:
    """A copy script must map each document to itself: one that sets ``ctx.op`` (noop,
    delete), ``ctx._id``, ``ctx._routing`` or ``ctx._index`` leaves documents of the source
    without their copy, which the delete reconciliation and the validation cannot tell from a
    lost write. Refused before anything is written."""
    source = str((script or {}).get("source") or "")
    match = _REROUTING.search(source)
    if match:
        field = match.group(1) or match.group(2)
        raise PreflightError(
            f"The copy script assigns ctx.{field}: a migration copies every document to the "
            "same id and routing, so it cannot skip, delete or re-route documents.",
            problem="script_reroutes",
            hint="Filter documents with a query before the migration, or transform _source "
            "only; use op.reindex for a one-off copy that reshapes ids.",
        )


_FUNCTION_HEAD = re.compile(
    r"[A-Za-z_][\w.]*(?:\s*<[^;{}()]*>)?(?:\s*\[\s*\])*\s+[A-Za-z_]\w*\s*\([^;{}()]*\)\s*\{"
)


def _skip_blank(source: str, pos: int) -> int:
    """Past whitespace and comments from ``pos``."""
    while pos < len(source):
        if source[pos].isspace():
            pos += 1
        elif source.startswith("//", pos):
            end = source.find("\n", pos)
            pos = len(source) if end < 0 else end + 1
        elif source.startswith("/*", pos):
            end = source.find("*/", pos + 2)
            pos = len(source) if end < 0 else end + 2
        else:
            break
    return pos


def _block_end(source: str, pos: int) -> int:
    """Index just past the ``}`` closing the ``{`` at ``pos`` (strings and comments skipped)."""
    depth = 0
    while pos < len(source):
        ch = source[pos]
        if ch in "'\"":
            pos += 1
            while pos < len(source) and source[pos] != ch:
                pos += 2 if source[pos] == "\\" else 1
        elif source.startswith("//", pos) or source.startswith("/*", pos):
            pos = _skip_blank(source, pos) - 1
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    raise ValueError("unbalanced braces in the painless script")


def split_functions(source: str) -> tuple[str, str]:
    """``(functions, statements)``: the function declarations a script starts with, and the rest.

    Painless allows functions only at the top of a script, so a wrapper that puts the statements
    in a block must keep the functions out of it (compiled rule sets start with their helpers).
    """
    pos = _skip_blank(source, 0)
    start = pos
    while (match := _FUNCTION_HEAD.match(source, pos)) is not None:
        if match.group(0).split(None, 1)[0] in ("return", "new", "else", "throw"):
            break
        pos = _skip_blank(source, _block_end(source, match.end() - 1))
    return source[start:pos], source[pos:]


def guarded_script(
    script: Mapping[str, Any] | None, dead_letter_index: str, migration: str, target: str
) -> dict[str, Any] | None:
    """Wrap the user's painless so an exception sends that one document to the dead letters.

    Without it one bad document aborts the whole ``_reindex`` task.
    """
    if script is None:
        return None
    if "source" not in script:
        return dict(script)  # a stored script cannot be wrapped; failures abort the task
    params = dict(script.get("params") or {})
    params.update({"__esm_dl": dead_letter_index, "__esm_mig": migration, "__esm_target": target})
    functions, statements = split_functions(str(script["source"]))
    source = (
        _DEEP_COPY
        + functions
        + "\ndef __esmOrig = __esmCopy(ctx._source); String __esmSrcIndex = ctx._index;\n"
        # The routing too: without it a routed document can be neither positioned nor found.
        + "String __esmRouting = ctx._routing;\n"
        + "try {\n"
        + statements
        + "\n} catch (Exception __esmE) {\n"
        + "  String __esmId = ctx._id;\n"
        + "  ctx._index = params.__esm_dl; ctx._id = params.__esm_mig + ':' + __esmId;\n"
        + "  ctx._source = ['migration': params.__esm_mig, 'id': __esmId, 'routing': __esmRouting, "
        + "'source_index': __esmSrcIndex, 'target_index': params.__esm_target, "
        + "'stage': 'transform', 'error_type': 'script_exception', "
        + "'reason': __esmE.toString(), 'source': __esmOrig];\n"
        + "}\n"
    )
    return {"lang": script.get("lang", "painless"), "source": source, "params": params}


#: Up to this many rejected documents are excluded from a rerun one (id, _seq_no) clause each;
#: beyond it the bool clause limit (1024 by default) would refuse the query.
EXACT_EXCLUSIONS = 400


class ReindexCopier:
    """Server-side ``_reindex`` as a polled task; mapping rejections go to the dead letters."""

    def __init__(
        self,
        cluster: Cluster,
        source: str,
        target: str,
        script: dict[str, Any] | None,
        dead_letters: DeadLetters,
        *,
        slices: int | str = "auto",
        requests_per_second: float | None = None,
        batch_size: int = 1000,
        cancel: threading.Event | None = None,
    ) -> None:
        self.cluster = cluster
        self.source = source
        self.target = target
        self.script = guarded_script(script, dead_letters.index, dead_letters.migration, target)
        self.dead_letters = dead_letters
        self.slices = slices
        self.requests_per_second = requests_per_second
        self.batch_size = batch_size
        self.cancel = cancel
        self._unfound: set[str] = set()

    def body(
        self, query: Mapping[str, Any] | None, create: bool, excluded: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if len(excluded) <= EXACT_EXCLUSIONS:
            # One (id, _seq_no) pair per rejected version: a later write of the document has
            # another _seq_no and is copied.
            must_not = [
                {
                    "bool": {
                        "filter": [{"ids": {"values": [e["id"]]}}, {"term": {"_seq_no": e["seq"]}}]
                    }
                }
                for e in excluded
            ]
        else:
            # Past the bool clause limit: one clause of two sets. It can hide a version that was
            # not rejected (its id and its _seq_no are each in a set); hidden_by_exclusion()
            # finds those afterwards and they are copied then.
            must_not = [
                {
                    "bool": {
                        "filter": [
                            {"ids": {"values": sorted({e["id"] for e in excluded})}},
                            {"terms": {"_seq_no": sorted({int(e["seq"]) for e in excluded})}},
                        ]
                    }
                }
            ]
        q: dict[str, Any] = dict(query) if query else {"match_all": {}}
        if must_not:
            q = {"bool": {"filter": [q], "must_not": must_not}}
        body: dict[str, Any] = {
            "source": {"index": self.source, "size": self.batch_size, "query": q},
            "dest": {"index": self.target, "op_type": "create" if create else "index"},
        }
        if create:
            body["conflicts"] = "proceed"
        if self.script is not None:
            body["script"] = self.script
        return body

    def hidden_by_exclusion(
        self, query: Mapping[str, Any] | None, excluded: list[dict[str, Any]]
    ) -> list[str]:
        """Ids the set-based exclusion hid although their current version was not rejected
        (written again since, or matched by another document's _seq_no): they still need a copy."""
        if len(excluded) <= EXACT_EXCLUSIONS:
            return []
        rejected = {str(e["id"]): int(e["seq"]) for e in excluded}
        ids = sorted(rejected)
        hidden: list[str] = []
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            filters: list[dict[str, Any]] = [{"ids": {"values": chunk}}]
            if query:
                filters.append(dict(query))
            hits = self.cluster.search(
                self.source,
                {
                    "query": {"bool": {"filter": filters}},
                    "size": len(chunk),
                    "seq_no_primary_term": True,
                    "_source": False,
                },
            )["hits"]["hits"]
            hidden.extend(h["_id"] for h in hits if int(h["_seq_no"]) != rejected[h["_id"]])
        return hidden

    def start(
        self, query: Mapping[str, Any] | None, *, create: bool, excluded: list[dict[str, Any]]
    ) -> str:
        result = self.cluster.request(
            "POST",
            "/_reindex",
            params={
                "wait_for_completion": "false",
                "slices": self.slices,
                "requests_per_second": self.requests_per_second or -1,
            },
            body=self.body(query, create, excluded),
        )
        return str(result["task"])

    def wait(
        self,
        task_id: str,
        meter: Meter | None,
        poll: float = 0.5,
        *,
        check: Callable[[], None] | None = None,
    ) -> tuple[dict[str, Any], list[Any]]:
        """Wait for the task; (response, failures). Raises when the task itself errored.

        ``check`` runs at every poll; when it raises, the task is cancelled and the error
        propagates (the failure budget uses it to stop a task that dead-letters everything).
        """

        def status(s: dict[str, Any]) -> None:
            if self.cancel is not None and self.cancel.is_set():
                cancel_task(self.cluster, task_id)
                raise MigrationCancelled(
                    "The migration was cancelled.", hint="Run it again to resume."
                )
            if check is not None:
                try:
                    check()
                except BaseException:
                    cancel_task(self.cluster, task_id, wait=True)
                    raise
            if meter is not None:
                done = sum(int(s.get(k, 0)) for k in ("created", "updated", "version_conflicts"))
                meter.update(done)

        try:
            response = self.cluster.wait_task(task_id, on_status=status, poll_interval=poll)
            return response, []
        except KeyboardInterrupt:
            # Ctrl-C stops the work, not only the client; the next run restarts the task and
            # skips what is already copied.
            cancel_task(self.cluster, task_id)
            raise
        except TaskFailed as exc:
            response = exc.response or {}
            failures = list(response.get("failures") or [])
            if exc.error or not failures:
                raise
            return response, failures

    def dead_letter_failures(self, failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Record rejected documents; return exclusions ``{"id", "seq"}`` for the rerun."""
        by_id: dict[str, dict[str, Any]] = {}
        for f in failures:
            if f.get("id") is None:
                raise TaskFailed(
                    f"_reindex into {self.target} failed: {json.dumps(f)[:500]}",
                    task_id="?",
                    response=f,
                )
            by_id[str(f["id"])] = f
        # A failure names the id only, and the version that failed may have been rewritten
        # since: copy the current versions once more and dead-letter only what fails again.
        # (Otherwise a valid rewrite would be looked up, excluded by its _seq_no, never copied.)
        try:
            retry = self.cluster.request(
                "POST", "/_reindex", body=self.body({"ids": {"values": sorted(by_id)}}, False, [])
            )
        except RequestError as exc:
            # A synchronous _reindex whose documents fail answers 400 with the failures.
            if not isinstance(exc.body, dict) or "failures" not in exc.body:
                raise
            retry = exc.body
        again = {str(f["id"]): f for f in retry.get("failures") or [] if f.get("id") is not None}
        by_id = {doc_id: again[doc_id] for doc_id in by_id if doc_id in again}
        if not by_id:
            return []
        entries: list[dict[str, Any]] = []
        excluded: list[dict[str, Any]] = []
        # The failures carry no routing: an ids search finds the documents on whatever shard
        # custom routing put them (an _mget by id alone would look on the wrong one).
        hits = self.cluster.search(
            self.source,
            {
                "size": len(by_id) * 4,
                "query": {"ids": {"values": list(by_id)}},
                "seq_no_primary_term": True,
            },
        )["hits"]["hits"]
        found = {h["_id"] for h in hits}
        for doc_id in by_id:
            if doc_id in found:
                continue
            if doc_id in self._unfound:
                raise TaskFailed(
                    f"_reindex into {self.target} keeps failing on document {doc_id!r}, which a "
                    f"search of {self.source} cannot find, so it can neither be dead-lettered nor "
                    f"excluded: {json.dumps(by_id[doc_id])[:300]}",
                    task_id="?",
                    response=by_id[doc_id],
                )
            self._unfound.add(doc_id)  # deleted meanwhile: the rerun will not meet it again
        for doc in hits:
            f = by_id[doc["_id"]]
            cause = f.get("cause") or {}
            entries.append(
                {
                    "id": doc["_id"],
                    "routing": doc.get("_routing"),
                    "source_index": self.source,
                    "target_index": self.target,
                    "stage": "index",
                    "error_type": cause.get("type"),
                    "reason": cause.get("reason"),
                    "source": doc["_source"],
                }
            )
            excluded.append({"id": doc["_id"], "seq": doc["_seq_no"]})
        self.dead_letters.write(entries)
        return excluded


def cancel_task(cluster: Cluster, task_id: str, *, wait: bool = False) -> None:
    """Cancel a task (and its slices); with ``wait``, until it has stopped."""
    try:
        cluster.request("POST", f"/_tasks/{task_id}/_cancel")
    except NotFoundError:
        return
    while wait and task_state(cluster, task_id) == "running":
        time.sleep(0.1)


def task_state(cluster: Cluster, task_id: str) -> str:
    """``running``, ``completed`` or ``gone`` (the node restarted and the task is lost, or it was
    cancelled, e.g. by Ctrl-C: either way its work must be started again)."""
    try:
        task = cluster.task(task_id)
    except NotFoundError:
        return "gone"
    if not task.get("completed"):
        return "running"
    response = task.get("response") or {}
    status = (task.get("task") or {}).get("status") or {}
    if response.get("canceled") or status.get("canceled"):
        return "gone"
    return "completed"


def running_tasks_into(cluster: Cluster, target: str) -> list[str]:
    """Ids of running ``_reindex`` tasks that write into ``target`` (e.g. left by a dead process)."""
    result = cluster.request(
        "GET", "/_tasks", params={"actions": "*reindex", "detailed": "true", "parent_task_id": None}
    )
    ids = []
    for node in (result.get("nodes") or {}).values():
        for tid, task in (node.get("tasks") or {}).items():
            if "parent_task_id" in task:
                continue
            if f"to [{target}]" in str(task.get("description", "")):
                ids.append(tid)
    return ids
