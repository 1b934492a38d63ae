"""A copy source of its own: the application's documents (from its primary database) fill the new
index of a blue-green migration, instead of a copy of the live index (``rebuild(source=...)``).

The phases around it are the usual ones: the source checkpoints C0 of the live index O are
recorded *before* the first document is read from the application, and the catch-up rounds copy
from O everything written there after C0. So, per document, the new index N ends up with:

1. written to O after C0 (indexed or updated through the alias during the rebuild): O's version,
   through the migration's transform: the catch-up rounds run after the fill and overwrite it.
   "After C0" is per shard in copy mode python; copy mode reindex runs one task over all shards
   from the lowest of their checkpoints, so a document written shortly before the rebuild began
   on a shard ahead of the others is caught up from O as well (O's version, never an older one);
2. otherwise, yielded by the application: the application's version, as yielded (it is already
   in the new form; the transform is not applied to it);
3. otherwise, held by O: O's version, through the transform (the *gap copy* below: nothing the
   live index holds is lost because the application's iterable left it out);
4. yielded by the application but no longer in O when the position passes check it (deleted
   during the rebuild, or never indexed): deleted from N. The live index decides which documents
   exist; a rebuild changes their form, never the set the alias serves.

The validation gate then compares counts and the mapping, not contents (the documents came from
elsewhere than O). Items are ``{"_id", "_source"[, "_routing"]}`` dicts, ``(id, source)`` pairs
or DSL ``Document`` instances (``meta.id``, ``to_dict()``); give the routing when the index uses
custom routing, or the document cannot be matched with O's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import MigrationError
from esmigrate.migrate._bluegreen_state import Journal
from esmigrate.migrate._copy import Copier
from esmigrate.migrate._python_copy import CopyStats, PythonCopier
from esmigrate.migrate._shards import scan
from esmigrate.progress import Meter

#: What the dead letters name as the source of a document the application yielded.
APPLICATION = "(application source)"


def as_hit(item: Any) -> dict[str, Any]:
    """One item of the application's iterable as a search hit (``_id``, ``_source``,
    ``_routing``)."""
    if isinstance(item, Mapping) and "_id" in item and "_source" in item:
        hit = {"_id": str(item["_id"]), "_source": dict(item["_source"])}
        if item.get("_routing") is not None:
            hit["_routing"] = str(item["_routing"])
        return hit
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Mapping):
        return {"_id": str(item[0]), "_source": dict(item[1])}
    meta = getattr(item, "meta", None)
    to_dict = getattr(item, "to_dict", None)
    if meta is not None and callable(to_dict) and getattr(meta, "id", None) is not None:
        hit = {"_id": str(meta.id), "_source": dict(to_dict())}
        routing = getattr(meta, "routing", None)
        if routing is not None:
            hit["_routing"] = str(routing)
        return hit
    raise MigrationError(
        f"The source yielded a {type(item).__name__}, which is not a document: {item!r:.120}",
        hint='Yield {"_id": ..., "_source": {...}} dicts (with "_routing" if the index uses '
        "custom routing), (id, source) pairs, or Document instances with meta.id set.",
    )


def pages(documents: Iterable[Any], size: int) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """``(hits, yielded so far)`` pages of the application's documents (streamed: one page in
    memory at a time)."""
    page: list[dict[str, Any]] = []
    count = 0
    for item in documents:
        page.append(as_hit(item))
        count += 1
        if len(page) >= size:
            yield page, count
            page = []
    if page:
        yield page, count


class SourceFill:
    """The copy phase of a migration filled from ``documents`` (see the module docstring)."""

    def __init__(self, documents: Iterable[Any]) -> None:
        self.documents = documents

    def copy(
        self,
        cluster: Cluster,
        journal: Journal,
        copier: Copier,
        meter: Callable[..., Meter],
        *,
        check_failures: Callable[[], None],
    ) -> int:
        """Fill N from the documents, then copy from O what N lacks; the documents written.
        After a crash the fill runs again from the start (the caller passes a fresh iterable),
        unless it had completed; writes are by id, so a second fill converges."""
        state = journal.state
        written = 0
        if not state.filled:
            # Only a sequence's length is free: len() of a lazy query would load it whole.
            total = len(self.documents) if isinstance(self.documents, Sequence) else None
            fill = meter("fill", total=total)
            writer = PythonCopier(
                cluster,
                APPLICATION,
                state.target,
                None,
                copier.dead,
                page=copier.page_size,
                bucket=copier.bucket,
                cancel=copier.cancel,
            )
            stats = CopyStats()

            def counted() -> Iterator[tuple[list[dict[str, Any]], int]]:
                for hits, count in pages(self.documents, copier.page_size):
                    yield hits, count
                    fill.update(count)

            writer.copy_pages(counted(), stats)
            fill.update(message="fill complete")
            check_failures()
            state.filled = True
            written += stats.copied
            journal.save()
        gaps = meter("copy", total=state.copy_total)
        if state.mode == "reindex":
            # A started step restarts as op_type=create: the task copies only the documents N
            # lacks (what it holds came from the application or is caught up by _seq_no).
            state.copy.started = True
            written += copier.reindex(
                None,
                step=state.copy,
                excluded=state.excluded,
                meter=gaps,
                restart_create=True,
                cancel_strays=True,
                save=journal.save,
                after_rejections=check_failures,
            )
        else:
            written += self._gaps_in_python(cluster, journal, copier, gaps)
        gaps.update(message="gap copy complete")
        return written

    def _gaps_in_python(
        self, cluster: Cluster, journal: Journal, copier: Copier, meter: Meter
    ) -> int:
        """Copy mode python: every shard of O up to C0, keeping only what N lacks (nothing but
        esmigrate writes N before the cut-over, so what is missing now is missing when written);
        resumable from the per-shard cursors."""
        state = journal.state
        upto = dict(state.checkpoints or {})
        writer = PythonCopier(
            cluster,
            state.source,
            state.target,
            copier.transform,
            copier.dead,
            page=copier.page_size,
            bucket=copier.bucket,
            cancel=copier.cancel,
        )
        stats = CopyStats()
        read = 0
        last_save = time.monotonic()
        for shard in sorted(upto):
            start = state.cursors.get(shard, -1)

            def missing(shard: int = shard, start: int = start) -> Iterator[Any]:
                nonlocal read
                for hits, cursor in scan(cluster, state.source, shard, start, upto[shard],
                                         page=copier.page_size):  # fmt: skip
                    read += len(hits)
                    meter.update(read)
                    yield _lacking(cluster, state.target, hits), cursor

            def on_cursor(cursor: int, shard: int = shard) -> None:
                nonlocal last_save
                state.cursors[shard] = cursor
                if time.monotonic() - last_save >= 2.0:
                    last_save = time.monotonic()
                    journal.save()

            writer.copy_pages(missing(), stats, on_cursor=on_cursor)
            state.cursors[shard] = upto[shard]
            journal.save()
        return stats.copied


def _lacking(cluster: Cluster, index: str, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hits ``index`` holds no document for (looked up by id and routing)."""
    if not hits:
        return []
    refs = [
        {"_id": h["_id"], **({"routing": h["_routing"]} if h.get("_routing") else {})} for h in hits
    ]
    found = cluster.request(
        "POST", f"/{index}/_mget", body={"docs": refs}, params={"_source": "false"}
    )["docs"]
    return [h for h, doc in zip(hits, found, strict=True) if not doc.get("found")]
