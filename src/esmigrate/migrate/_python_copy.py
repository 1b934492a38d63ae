"""Copy mode ``python``: documents go through a Python transform on their way to the target.

Per-shard ``_seq_no`` scans (or any pages of hits), the transform, byte-bounded bulk chunks,
429/502/503/504 retries with backoff, and a token bucket for throttling. Documents that cannot
be written (the target mapping rejects them, the transform raises) go to the dead letters; the
one-shot ``op.reindex(transform=...)`` of revision scripts, which has none, raises on the first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from esmigrate.cluster import LOAD, Cluster, RetryPolicy, exact_json, server_reason
from esmigrate.exceptions import MigrationCancelled, RequestError, TransformError
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._refused import is_block, refused
from esmigrate.migrate._shards import scan

CursorT = TypeVar("CursorT")


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


class PythonCopier:
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
        retry: RetryPolicy = LOAD,
        drop_none: bool = False,
        place: Callable[[list[tuple[str, str | None, int]]], object] | None = None,
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
        self.retry = retry
        self.drop_none = drop_none
        #: Given ``(id, routing, _seq_no)`` of every document read (written, dead-lettered or
        #: left out alike), before the cursor moves past it: the copy establishes the delete
        #: positions (``_positions.Positions.place``). Pages must then carry ``_seq_no``.
        self.place = place

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
        pages = scan(
            self.cluster,
            self.source,
            shard,
            after,
            upto,
            page=self.page,
            query=query,
            with_seq=self.place is not None,
        )
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
            if self.place is not None and hits:
                # Before the documents: a position without its document is harmless, a
                # document without its position is not.
                self.place([(h["_id"], h.get("_routing"), int(h["_seq_no"])) for h in hits])
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
                if self.retry.retryable(exc) and attempt < self.retry.retries:
                    stats.add(retries=1)
                    self.retry.wait(attempt)
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
                elif status in self.retry.statuses:
                    etype, reason = server_reason({"error": detail["error"]})
                    if attempt >= self.retry.retries or is_block(etype):
                        # The cluster is overloaded or write-blocked, the document is fine: stop
                        # resumably (the cursor only moves past flushed chunks) instead of
                        # dead-lettering it. A block outlasts any retry: stop at once.
                        stats.add(copied=copied)
                        after = "" if is_block(etype) else f" after {self.retry.retries} retries"
                        raise refused(self.target, status, etype, reason, after=after)
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
                self.retry.wait(attempt)
                attempt += 1
