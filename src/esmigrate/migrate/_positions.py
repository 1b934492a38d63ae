"""Delete reconciliation by positions: find the documents of N that O no longer has.

A delete leaves nothing a search can find, so "which documents of N were deleted from O" is a
set difference over ids, and ``_id`` supports neither range nor prefix queries. Comparing the id
sets directly costs the size of the index — under the write block that would make the window
grow with the index instead of with the last delta.

So blue-green keeps a *position index* P next to N: one small document per document of N (keyed
by id and routing) holding the ``_seq_no`` its source document had in O when it was checked.
:meth:`Positions.record` checks every document written to N since the previous pass against O
(the first pass checks all of N, before the write block): present in O → its position is
recorded; gone → it is deleted from N. That keeps this invariant, because a document changed in
O after its check is copied again by a later catch-up round, which makes it due for a check:

    every document d of N either is in O with ``_seq_no == P[d]``, or was deleted from O — and
    then no document of O holds ``P[d]`` any more (sequence numbers are never reused on a shard).

The copy writes the positions of what it copies as *pages* instead (:meth:`Positions.place`):
one document of P per :data:`PAGE_ENTRIES` positions, as entries of a ``nested`` field, so the
node indexes a document per page, not one per document moved. An entry is never rewritten:
once its document is changed in O (and positioned again by a pass) or deleted, the
reconciliation *cancels* it with a small document counted against it (``xseq``). So P's
positions in a range are its documents' positions plus its live page entries less its cancels,
and the invariant holds of those.

With every document of O positioned as well (documents that were dead-lettered get a position
too), ``positions(P, R) - count(O, _seq_no in R)`` is, for any range R of sequence numbers,
the number of stale positions in R: of documents of N that O deleted, or entries superseded. :meth:`Positions.reconcile` counts
both sides in a few thousand ranges covering everything (one read of each index), splits the
ranges whose counts differ and lists only the small ones. Counting is one ``range`` aggregation
per side for up to thousands of ranges, listing one search per side for all the small ranges, so
the work under the block grows with the number of deletes since the last pass (times the log of
the index size), not with the index.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from esmigrate.cluster import Cluster, iter_bulk_errors
from esmigrate.exceptions import MigrationCancelled, MigrationError, RequestError
from esmigrate.migrate._shards import checkpoints, max_seq_nos, scan

log = logging.getLogger("esmigrate.migrate")

#: Ranges whose counts are at most this are listed and compared id by id.
LEAF = 32
#: A differing range is split into this many parts.
FANOUT = 16
#: Ranges counted by one ``range`` aggregation; the first level has this many.
RANGES_PER_SEARCH = 4000
#: Merged spans one count search selects. P's query has a ``range`` clause per span on each of
#: three fields, and the engines count two clauses per range (points and doc values) against
#: the default limit of 1024 clauses in one query: 170 spans at most (measured on 2.19).
MAX_SPANS = 160
#: Leaves one listing compares (one span each in P's query: the same limit).
MAX_LEAVES = MAX_SPANS

#: Entries per page document of the copy's positions: at most what one listing returns of a
#: document's nested entries (``inner_hits``, ``index.max_inner_result_window``), so a listing
#: never leaves an entry out.
PAGE_ENTRIES = 100

_UNINDEXED = {"type": "keyword", "index": False, "doc_values": False}
_MAPPING = {
    "dynamic": "strict",
    "properties": {
        # A position of one document (id: position_key), or with xseq, a cancelled entry.
        "id": _UNINDEXED,
        "routing": _UNINDEXED,
        "seq": {"type": "long"},
        "xseq": {"type": "long"},
        # A page of the copy's positions: one document per PAGE_ENTRIES entries. The id is
        # indexed: a dead-lettered document's entry is found by it (add_dead_letters).
        "e": {
            "type": "nested",
            "properties": {
                "id": {"type": "keyword", "doc_values": False},
                "routing": _UNINDEXED,
                "seq": {"type": "long"},
            },
        },
    },
}

#: A position: (id, routing, seq).
Key = tuple[str, str | None, int]


@dataclass
class PassStats:
    """What a pass did: documents checked against O, documents deleted from N, and (for
    :meth:`Positions.reconcile`) documents listed to compare ranges id by id."""

    checked: int = 0
    deleted: int = 0
    listed: int = 0


@dataclass(frozen=True)
class FirstLevelCounts:
    """O's documents per range of the reconciliation's first level
    (:meth:`Positions.count_first_level`), and the per-shard bounds (``_seq_no`` below them)
    they were counted under."""

    bounds: dict[int, int]
    ranges: list[tuple[int, int]]
    counts: list[int]


def positions_name(target: str) -> str:
    """The position index of a migration into ``target`` (hidden; dropped when it is done).

    Dot-prefixed: an index template for the application's indices (``posts-*``, say) could
    otherwise apply to it, alias included, and searches through the alias would return
    positions.
    """
    return f".esmigrate-positions-{target}"


def position_key(doc_id: str, routing: str | None) -> str:
    """P's ``_id`` for a document of N: its id, or a digest when custom routing is part of it
    (one id can live on several shards under different routings)."""
    if routing is None:
        return doc_id
    return "r:" + hashlib.sha256(orjson.dumps([doc_id, routing])).hexdigest()


def cancel_id(key: Key, nth: int) -> str:
    """P's ``_id`` for the ``nth`` cancel of the page entry ``key`` (a digest: an ``_id`` holds
    at most 512 bytes, and a document id may take nearly all of them)."""
    return f"x:{nth}:" + hashlib.sha256(orjson.dumps(list(key))).hexdigest()


def _ref(doc_id: str, routing: str | None) -> dict[str, Any]:
    return {"_id": doc_id, **({"routing": routing} if routing is not None else {})}


class Positions:
    """The position index ``name`` of a migration from ``source`` (O) to ``target`` (N)."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        source: str,
        target: str,
        name: str,
        parallelism: int = 4,
        page: int = 2000,
        leaf: int = LEAF,
        keep: Collection[tuple[str, str | None]] = (),
        cancel: threading.Event | None = None,
    ) -> None:
        self.cluster = cluster
        self.source = source
        self.target = target
        self.name = name
        self.parallelism = parallelism
        self.page = page
        self.leaf = min(leaf, 10_000)  # one search lists a leaf
        # Documents of N to keep although O lacks them (a rollback keeps what the forward
        # migration dead-lettered). They get no position, so the counts never see them.
        self.keep = frozenset(keep)
        self.cancel = cancel
        self._lock = threading.Lock()
        #: Whether P holds pages of the copy (None: not known yet; they are written only by a
        #: copy, before any pass reads them).
        self._pages: bool | None = None

    # -- the index -------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.cluster.exists(self.name)

    def create(self) -> None:
        # Never refreshed on a timer: reconcile() refreshes it first, the passes get positions
        # by id (no refresh needed) and look up the copy's pages, refreshed once at its end
        # (an entry a pass misses is found by the reconciliation instead).
        self._pages = None
        shards = len(checkpoints(self.cluster, self.target))
        self.cluster.request(
            "PUT",
            f"/{self.name}",
            body={
                "settings": {
                    "number_of_shards": shards,
                    "number_of_replicas": 0,
                    "refresh_interval": "-1",
                    "hidden": True,
                },
                "mappings": _MAPPING,
            },
        )

    def drop(self) -> None:
        self._pages = None
        if self.exists():
            self.cluster.request("DELETE", f"/{self.name}")

    # -- checking what was written to N --------------------------------------------------------

    def record(
        self,
        after: Mapping[int, int],
        *,
        on_cursor: Callable[[int, int], None] | None = None,
        on_progress: Callable[[PassStats], None] | None = None,
    ) -> tuple[dict[int, int], PassStats]:
        """Check every document of N written after ``after`` (N's per-shard ``_seq_no``).

        Returns N's checkpoints the pass covered (the next pass starts there) and its counts.
        ``on_cursor(shard, seq_no)`` reports resumable progress. Only esmigrate writes to N
        before the cut-over, so nothing is written to N while this runs except its own deletes.
        """
        self.cluster.refresh(self.target)
        upto = checkpoints(self.cluster, self.target)
        stats = PassStats()
        # Workers stop at their next page when this is set: on cancel, Ctrl-C or a failure.
        halt = threading.Event()

        def work(shard: int) -> None:
            for hits, cursor in scan(
                self.cluster,
                self.target,
                shard,
                after.get(shard, -1),
                upto[shard],
                source=False,
                with_seq=True,
                page=self.page,
            ):
                if hits:
                    deleted = self._check(hits)
                    with self._lock:
                        stats.checked += len(hits)
                        stats.deleted += deleted
                    if on_progress is not None:
                        on_progress(stats)
                if on_cursor is not None:
                    on_cursor(shard, cursor)
                if halt.is_set() or (self.cancel is not None and self.cancel.is_set()):
                    return

        shards = [s for s in sorted(upto) if after.get(s, -1) < upto[s]]
        with ThreadPoolExecutor(max_workers=max(1, min(self.parallelism, len(shards)))) as pool:
            futures = [pool.submit(work, s) for s in shards]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                halt.set()
                raise
        if self.cancel is not None and self.cancel.is_set():
            raise MigrationCancelled("The migration was cancelled.", hint="Run it again to resume.")
        if stats.deleted:
            self.cluster.refresh(self.target)
        return upto, stats

    def _check(self, hits: list[dict[str, Any]]) -> int:
        """Position the documents of N in ``hits`` that O has; delete the others from N."""
        refs = [(h["_id"], h.get("_routing")) for h in hits]
        found = self._mget_source(refs)
        # The copy's entries of these documents are superseded by what this writes: cancelled
        # here, so that the counts of their ranges keep agreeing (a document changed while
        # the copy ran is common under writes; finding each one by range counts is not cheap).
        lines: list[bytes] = self._cancel_entries(refs)
        for h, doc in zip(hits, found, strict=True):
            ref = (h["_id"], h.get("_routing"))
            # Found may be the same id under another routing (see _holds): positioned here,
            # it is one position too many, which the range counts show and _resolve removes.
            if doc.get("found"):
                lines += self._place(*ref, doc["_seq_no"])
                continue
            lines.append(self._unplace(*ref))
            if ref not in self.keep:
                # Only the copy seen, never a newer one written since.
                lines.append(self._delete(*ref, h))
        return self._apply(lines)

    def add_dead_letters(self, entries: Iterable[tuple[str, str | None]]) -> int:
        """Position documents of O that are not in N because they were dead-lettered (without
        a position, they would hide a stale document in the same range of the counts).

        A document whose *newest* version was dead-lettered may still be in N in an older
        version (its position then differs from O's ``_seq_no``, since the copy of every newer
        version failed): that copy is deleted, so N never serves an update reverted. Call it
        after the position pass of the last round. Returns the number of copies deleted.
        """
        batch: list[tuple[str, str | None]] = []
        deleted = 0

        def flush() -> None:
            nonlocal deleted
            lines: list[bytes] = []
            latest = self._latest(batch)
            outdated: list[tuple[str, str | None]] = []
            for (doc_id, routing), doc in zip(batch, self._mget_source(batch), strict=True):
                if not doc.get("found"):
                    continue
                last = latest.get((doc_id, routing))
                if last is not None and last != int(doc["_seq_no"]):
                    outdated.append((doc_id, routing))
                lines += self._place(doc_id, routing, doc["_seq_no"])
            lines += self._drop_copies(outdated)
            deleted += self._apply(lines)
            batch.clear()

        for entry in entries:
            batch.append(entry)
            if len(batch) >= self.page:
                flush()
        if batch:
            flush()
        if deleted:
            self.cluster.refresh(self.target)
        return deleted

    def _latest(self, refs: list[tuple[str, str | None]]) -> dict[tuple[str, str | None], int]:
        """The newest position P holds for each of ``refs`` that has one: its own, or an entry
        of the copy's pages (a cancelled entry is older than the position that replaced it)."""
        keys = [position_key(doc_id, routing) for doc_id, routing in refs]
        placed = self.cluster.request(
            "POST", f"/{self.name}/_mget", body={"ids": keys}, params={"_source": "seq"}
        )["docs"]
        latest = {
            ref: int(pos["_source"]["seq"])
            for ref, pos in zip(refs, placed, strict=True)
            if pos.get("found") and "seq" in pos.get("_source", {})
        }
        for doc_id, routing, seq in self._entries_of(refs):
            ref = (doc_id, routing)
            if seq > latest.get(ref, -1):
                latest[ref] = seq
        return latest

    def _entries_of(self, refs: list[tuple[str, str | None]]) -> list[Key]:
        """The copy's page entries of the documents ``refs`` (cancelled or not). Empty, without
        a request, while P holds no page (pages are written only by a copy from its start)."""
        if not refs or not self._has_pages():
            return []
        size = 10_000
        pages = self.cluster.msearch(
            [
                (
                    {"index": self.name},
                    {
                        "size": size,
                        "_source": False,
                        "track_total_hits": False,
                        "query": {
                            "nested": {
                                "path": "e",
                                "query": {"terms": {"e.id": sorted({i for i, _ in refs})}},
                                "inner_hits": {"size": PAGE_ENTRIES},
                            }
                        },
                    },
                )
            ]
        )[0]["hits"]["hits"]
        if len(pages) >= size and len(refs) > 1:
            # Maybe more pages than one answer holds (ids repeated under many routings): halve.
            half = len(refs) // 2
            return self._entries_of(refs[:half]) + self._entries_of(refs[half:])
        if len(pages) >= size:
            raise MigrationError(
                f"The position index {self.name} holds {size} or more pages with an entry of "
                f"document {refs[0][0]!r}: more than one answer returns.",
                hint="Report it: the copy's pages of one id should be a few.",
            )
        wanted = set(refs)
        _, entries, _, _ = _listed(pages)
        return [key for key in entries if key[:2] in wanted]

    def _cancel_entries(self, refs: list[tuple[str, str | None]]) -> list[bytes]:
        """Bulk lines cancelling the page entries of ``refs`` (each document's own position is
        about to be written, or it is gone). The first cancel of an entry: the one
        :meth:`_resolve` would write, so neither counts it twice."""
        lines: list[bytes] = []
        for key in dict.fromkeys(self._entries_of(refs)):
            lines += self._cancel(key, 0)
        return lines

    def _has_pages(self) -> bool:
        if self._pages is None:
            self.cluster.refresh(self.name)
            found = self.cluster.request(
                "POST",
                f"/{self.name}/_count",
                body={"query": {"nested": {"path": "e", "query": {"match_all": {}}}}},
            )
            self._pages = int(found["count"]) > 0
        return self._pages

    # -- positions established by the copy ------------------------------------------------------

    def place(self, entries: Iterable[tuple[str, str | None, int]]) -> int:
        """Record ``(id, routing, _seq_no)`` of documents of O as a copy read them. Returns
        how many were recorded.

        For a copy into an N that was empty when P was created, and whose every document is in
        these entries with the ``_seq_no`` it was read at, this is what a first :meth:`record`
        pass would find (a document changed or deleted since is read again by a catch-up
        round, or found by the reconciliation), without reading N or looking anything up in O.
        Entries for documents N does not hold (dead-lettered, left out) are harmless extra
        positions: the reconciliation finds them gone or positions them anyway.

        They are written as pages (:data:`PAGE_ENTRIES` nested entries per document): the node
        indexes one document per page, not one per document moved, and no id is looked up
        (a page's id is a digest of its entries, so a bulk sent again writes it again). An
        entry is never rewritten: when its document changes or goes, the reconciliation
        cancels it (:meth:`_resolve`).
        """
        lines: list[bytes] = []
        placed = 0
        page: list[dict[str, Any]] = []
        for doc_id, routing, seq in entries:
            page.append(
                {"id": doc_id, "seq": seq, **({"routing": routing} if routing is not None else {})}
            )
            if len(page) == PAGE_ENTRIES:
                lines += self._page(page)
                placed, page = placed + len(page), []
        if page:
            lines += self._page(page)
            placed += len(page)
        self._bulk(lines)
        if placed:
            self._pages = True
        return placed

    def snapshot(self, upto: Mapping[int, int]) -> Snapshot:
        """Open (now) a snapshot of O's documents with ``_seq_no <= upto[shard]`` on each
        shard, to be recorded with :meth:`Snapshot.record`; see :class:`Snapshot`."""
        return Snapshot(self, upto)

    # -- finding what O deleted ----------------------------------------------------------------

    def count_first_level(self) -> FirstLevelCounts:
        """Count O's documents in each range of :meth:`reconcile`'s first level, now.

        The counts stand for an exact reconciliation as long as O takes no write after them:
        taken as soon as the write block holds, this runs beside the final round and its
        position pass (which write N and P, never O), and the reconciliation's first level
        under the block then reads only P.
        """
        bounds = self._bounds()
        ranges = _first_level(max(bounds.values(), default=0))
        counts = [in_o for _, in_o, _ in self._counts(ranges, bounds, sides="O")]
        return FirstLevelCounts(bounds=bounds, ranges=ranges, counts=counts)

    def _bounds(self, copied: Mapping[int, int] | None = None) -> dict[int, int]:
        """Per shard of O, the ``_seq_no`` the counts stay below: everything O holds (O is
        refreshed first), or only what was ``copied`` and checked."""
        self.cluster.refresh(self.source)
        tops = max_seq_nos(self.cluster, self.source)
        bounds = {s: top + 1 for s, top in tops.items()}
        if copied is not None:
            bounds = {s: min(bounds[s], int(copied.get(s, -1)) + 1) for s in bounds}
        return bounds

    def reconcile(
        self,
        *,
        copied: Mapping[int, int] | None = None,
        counted: FirstLevelCounts | None = None,
        on_progress: Callable[[PassStats], None] | None = None,
    ) -> PassStats:
        """Delete from N the documents O no longer has, by comparing range counts.

        Exact once writes to O are blocked and :meth:`record` has covered N (and the dead
        letters are positioned); ``counted``, O's first level counted by
        :meth:`count_first_level` under the same block, saves reading all of O again. While O
        takes writes, pass ``copied``: per shard of O, the ``_seq_no`` up to which everything
        was copied and checked. Documents of O above it may have no position yet and are left
        out of the counts, so they cannot hide a deleted document; a delete they do not show is
        found by the next reconciliation.
        """
        if counted is not None and copied is not None:
            raise ValueError("counts of O's first level stand for an exact reconciliation only")
        self.cluster.refresh(self.name)
        if counted is None:
            bounds = self._bounds(copied)
            frontier = _first_level(max(bounds.values(), default=0))
        else:
            bounds, frontier = counted.bounds, counted.ranges
        stats = PassStats()
        ranges_counted = 0
        known = counted.counts if counted is not None else None  # O's side of the first level
        while frontier:
            split: list[tuple[int, int]] = []
            leaves: list[tuple[int, int, int, int]] = []
            if known is not None:
                positioned = self._counts(frontier, bounds, sides="P")
                counts = [(p, o, n) for (p, _, n), o in zip(positioned, known, strict=True)]
                known = None
            else:
                counts = self._counts(frontier, bounds)
            ranges_counted += len(frontier)
            for (lo, hi), (in_p, in_o, items) in zip(frontier, counts, strict=True):
                if in_p == in_o:
                    continue
                # One sequence number holds at most one document per shard of O, and P a
                # position, an entry and its cancel for it (so a leaf stays far under the
                # 10,000 hits a listing returns); a wider range holds up to that many per shard
                # and number: split it while what listing it returns exceeds a leaf.
                if max(items, in_o) <= self.leaf or hi - lo <= 1:
                    leaves.append((lo, hi, items, in_o))
                    continue
                split.extend(_split(lo, hi, FANOUT))
            if leaves:
                self._resolve(leaves, bounds, stats)
                if on_progress is not None:
                    on_progress(stats)
            frontier = split
        if stats.deleted:
            self.cluster.refresh(self.target)
        log.debug(
            "reconciled %s: %d ranges counted, %d documents listed, %d deleted",
            self.target,
            ranges_counted,
            stats.listed,
            stats.deleted,
        )
        return stats

    def _counts(
        self,
        ranges: list[tuple[int, int]],
        bounds: Mapping[int, int],
        *,
        sides: Literal["both", "P", "O"] = "both",
    ) -> list[tuple[int, int, int]]:
        """(positions in P, documents in O, P's items) per range ``[lo, hi)`` of sequence
        numbers; the side ``sides`` leaves out reads 0.

        P's positions are its documents' positions and page entries less the cancelled
        entries; its items count all three (what listing the range returns). One search per
        side (per shard of O when bounds apply) with a ``range`` aggregation per field: a
        search costs the same for one range or thousands, so a level of the split takes one
        request per :func:`_chunks` run (one for the first level).
        """
        out: list[tuple[int, int, int]] = []
        for chunk in _chunks(ranges):
            # Every search selects just the spans its ranges cover, so below the first level
            # the aggregation reads the documents of the few ranges that differed, not the whole
            # index (under the write block, the difference between a fraction of a second and
            # several).
            spans = _merged(chunk)
            searches: list[tuple[dict[str, Any], dict[str, Any]]] = []
            if sides != "O":
                searches.append(({"index": self.name}, _position_counts(chunk, spans)))
            if sides != "P" and all(b >= chunk[-1][1] for b in bounds.values()):
                body = _range_counts("_seq_no", chunk, spans)
                searches.append(({"index": self.source}, body))
            elif sides != "P":
                for shard, bound in sorted(bounds.items()):
                    body = _range_counts("_seq_no", chunk)
                    body["query"] = _any_range("_seq_no", spans, bound)
                    searches.append(
                        ({"index": self.source, "preference": f"_shards:{shard}"}, body)
                    )
            responses = self.cluster.msearch(searches)
            in_p = responses[0]["aggregations"] if sides != "O" else None
            in_o = [r["aggregations"]["r"]["buckets"] for r in responses[1 if in_p else 0 :]]
            for i in range(len(chunk)):
                key = str(i)
                positioned = items = 0
                if in_p is not None:
                    docs = int(in_p["d"]["buckets"][key]["doc_count"])
                    entries = int(in_p["n"]["r"]["buckets"][key]["doc_count"])
                    cancelled = int(in_p["x"]["buckets"][key]["doc_count"])
                    positioned = docs + entries - cancelled
                    items = docs + entries + cancelled
                out.append((positioned, sum(int(side[key]["doc_count"]) for side in in_o), items))
        return out

    def _resolve(
        self,
        leaves: list[tuple[int, int, int, int]],
        bounds: Mapping[int, int],
        stats: PassStats,
    ) -> None:
        """Compare small ranges ``(lo, hi, P's items, in O)`` id by id; delete from N what O
        does not have. Batched: one ``_msearch`` lists many ranges (a search per side), one
        ``_mget`` looks the suspects up, one ``_bulk`` applies the result.

        A position O does not hold at its ``_seq_no`` is a suspect: its document was changed
        (O holds it elsewhere: it is positioned there) or deleted (N's copy is deleted). A page
        entry is never rewritten: a stale one, or one counted twice, is cancelled (a document
        with ``xseq``, which the counts subtract), so the range agrees from then on.
        """
        groups: list[list[tuple[int, int, int, int]]] = [[]]
        for leaf in leaves:
            group = groups[-1]
            if group and (
                len(group) >= MAX_LEAVES
                or sum(g[2] for g in group) + leaf[2] > 10_000
                or sum(g[3] for g in group) + leaf[3] > 10_000
            ):
                groups.append([])
            groups[-1].append(leaf)
        # Per suspect document, the stale entries to cancel once its fate is applied.
        suspects: dict[tuple[str, str | None], list[tuple[Key, int]]] = {}
        counted_twice: list[tuple[Key, int]] = []  # held entries that another position holds
        for group in groups:
            spans = [(lo, hi) for lo, hi, _, _ in group]
            searches: list[tuple[dict[str, Any], dict[str, Any]]] = [
                (
                    {"index": self.name},
                    {
                        "size": 10_000,
                        "_source": ["id", "routing", "seq", "xseq"],
                        "query": _positioned_in(_merged(spans), listed=True),
                    },
                )
            ]
            listed = {"size": 10_000, "_source": False, "seq_no_primary_term": True}
            if all(b >= spans[-1][1] for b in bounds.values()):
                searches.append(
                    ({"index": self.source}, {**listed, "query": _any_range("_seq_no", spans)})
                )
            else:
                for shard, bound in sorted(bounds.items()):
                    searches.append(
                        (
                            {"index": self.source, "preference": f"_shards:{shard}"},
                            {**listed, "query": _any_range("_seq_no", spans, bound)},
                        )
                    )
            for _, body in searches:
                body["track_total_hits"] = False
            responses = self.cluster.msearch(searches)
            positions, entries, existing, cancel_ids = _listed(responses[0]["hits"]["hits"])
            in_o = [h for r in responses[1:] for h in r["hits"]["hits"]]
            stats.listed += len(positions) + len(entries) + len(in_o)
            held = {(h["_id"], h.get("_routing"), int(h["_seq_no"])) for h in in_o}
            seen: set[Key] = set()
            for key in positions:
                if key in held:
                    seen.add(key)
                else:
                    suspects.setdefault(key[:2], [])
            # Every entry and cancel of a key is in this listing (they share its seq).
            left = Counter(existing)
            taken = set(cancel_ids)
            for key in entries:
                if left[key]:
                    left[key] -= 1  # cancelled already
                    continue
                if key in held and key not in seen:
                    seen.add(key)
                    continue
                # Stale (the document changed or went) or counted twice: cancel it, under
                # the first cancel id not taken.
                nth = next(n for n in range(len(taken) + 1) if cancel_id(key, n) not in taken)
                taken.add(cancel_id(key, nth))
                if key in held:
                    counted_twice.append((key, nth))
                else:
                    suspects.setdefault(key[:2], []).append((key, nth))
        stats.checked += len(suspects)
        refs = list(suspects)
        for start in range(0, len(refs), self.page):
            chunk = refs[start : start + self.page]
            # First what a suspect's fate changes (its position moved, N's copy deleted), then,
            # once that is applied, what makes its range agree (cancels, positions removed): the
            # other way round, a failure in between would leave a deleted document in N with
            # nothing left to find it by.
            placed: list[bytes] = []
            gone: list[tuple[str, str | None]] = []
            found = self._mget_source(chunk, routings=True)
            for (doc_id, routing), doc in zip(chunk, found, strict=True):
                if _holds(doc, routing):
                    # Changed in O since its check (only while O takes writes): move it.
                    placed += self._place(doc_id, routing, doc["_seq_no"])
                else:
                    gone.append((doc_id, routing))
            stats.deleted += self._apply(placed + self._drop_copies(gone))
            settled: list[bytes] = [self._unplace(*ref) for ref in gone]
            for ref in chunk:
                for key, nth in suspects[ref]:
                    settled += self._cancel(key, nth)
            self._apply(settled)
        for start in range(0, len(counted_twice), self.page):
            lines: list[bytes] = []
            for key, nth in counted_twice[start : start + self.page]:
                lines += self._cancel(key, nth)
            self._apply(lines)

    # -- helpers -------------------------------------------------------------------------------

    def _place(self, doc_id: str, routing: str | None, seq: int) -> list[bytes]:
        """The bulk lines recording that this document of N has position ``seq`` in O."""
        key = position_key(doc_id, routing)
        return [
            orjson.dumps({"index": {"_index": self.name, "_id": key}}),
            orjson.dumps({"id": doc_id, "routing": routing, "seq": seq}),
        ]

    def _page(self, entries: list[dict[str, Any]]) -> list[bytes]:
        """The bulk lines writing one page of the copy's positions."""
        body = orjson.dumps({"e": entries})
        page_id = "p:" + hashlib.sha256(body).hexdigest()
        return [orjson.dumps({"index": {"_index": self.name, "_id": page_id}}), body]

    def _cancel(self, key: Key, nth: int) -> list[bytes]:
        """The bulk lines cancelling the ``nth`` page entry ``key`` (counted against it)."""
        doc_id, routing, seq = key
        return [
            orjson.dumps({"index": {"_index": self.name, "_id": cancel_id(key, nth)}}),
            orjson.dumps({"id": doc_id, "routing": routing, "xseq": seq}),
        ]

    def _unplace(self, doc_id: str, routing: str | None) -> bytes:
        key = position_key(doc_id, routing)
        return orjson.dumps({"delete": {"_index": self.name, "_id": key}})

    def _mget_source(
        self,
        refs: list[tuple[str, str | None]],
        index: str | None = None,
        *,
        routings: bool = False,
    ) -> list[dict[str, Any]]:
        """``_mget`` of O (or ``index``); with ``routings`` the answers carry ``_routing``,
        which ``_source=false`` drops (reading it costs a stored-fields read per document:
        only the reconciliation's few suspects need it)."""
        if not refs:
            return []
        docs: list[dict[str, Any]] = self.cluster.request(
            "POST",
            f"/{index or self.source}/_mget",
            body={"docs": [_ref(doc_id, routing) for doc_id, routing in refs]},
            params={"stored_fields": "_routing"} if routings else {"_source": "false"},
        )["docs"]
        return docs

    def _bulk(self, lines: list[bytes]) -> dict[str, Any]:
        if not lines:
            return {}
        result = self.cluster.bulk(b"\n".join(lines) + b"\n")
        for action, detail in iter_bulk_errors(result):
            if action == "delete" and int(detail.get("status", 0)) in (404, 409):
                continue  # gone already, or changed since it was looked at: not stale
            raise RequestError(
                f"Writing to {detail.get('_index')} failed for {detail.get('_id')}: "
                f"{detail.get('error')}",
                status=int(detail.get("status", 500)),
            )
        return result

    def _delete(self, doc_id: str, routing: str | None, copy: Mapping[str, Any]) -> bytes:
        """The bulk line deleting from N exactly the copy looked at (``if_seq_no``)."""
        meta = {
            "_index": self.target,
            **_ref(doc_id, routing),
            "if_seq_no": copy["_seq_no"],
            "if_primary_term": copy["_primary_term"],
        }
        return orjson.dumps({"delete": meta})

    def _drop_copies(self, refs: list[tuple[str, str | None]]) -> list[bytes]:
        """Bulk lines deleting N's copies of ``refs``.

        A delete by id and routing hits whatever N holds under that id on the routing's shard:
        with another shard count (or a routing moved within a shard of O) that can be the live
        copy of the same id under another routing. Only a copy under this routing is deleted,
        and only the one looked at.
        """
        copies = self._mget_source(refs, self.target, routings=True)
        return [
            self._delete(doc_id, routing, copy)
            for (doc_id, routing), copy in zip(refs, copies, strict=True)
            if _holds(copy, routing)
        ]

    def _apply(self, lines: list[bytes]) -> int:
        """Send the bulk lines; the number of documents deleted from N."""
        result = self._bulk(lines)
        return sum(
            1
            for item in result.get("items", [])
            if item.get("delete", {}).get("_index") == self.target
            and item["delete"].get("result") == "deleted"
        )


def _holds(doc: Mapping[str, Any], routing: str | None) -> bool:
    """Whether an ``_mget`` answer for (id, ``routing``) is that document. A get routed by
    ``routing`` also finds the same id indexed with another routing that falls on the same
    shard of O (it replaced this one there), while N may still hold both on different shards."""
    return bool(doc.get("found")) and doc.get("_routing") == routing


def _listed(hits: list[dict[str, Any]]) -> tuple[list[Key], list[Key], Counter[Key], set[str]]:
    """A listing of P: the positions of documents, the page entries (its inner hits), the
    cancelled entries (how many times each) and the ids of the cancels."""
    positions: list[Key] = []
    entries: list[Key] = []
    cancelled: Counter[Key] = Counter()
    cancels: set[str] = set()
    for hit in hits:
        src = hit.get("_source") or {}
        if "xseq" in src:
            cancelled[(src["id"], src.get("routing"), int(src["xseq"]))] += 1
            cancels.add(str(hit.get("_id")))
        elif "seq" in src:
            positions.append((src["id"], src.get("routing"), int(src["seq"])))
        for inner in hit.get("inner_hits", {}).get("e", {}).get("hits", {}).get("hits", []):
            e = inner["_source"]
            entries.append((e["id"], e.get("routing"), int(e["seq"])))
    return positions, entries, cancelled, cancels


def _positioned_in(spans: list[tuple[int, int]], *, listed: bool = False) -> dict[str, Any]:
    """P's documents with a position, a cancel or a page entry in any of the ``[lo, hi)``
    spans; ``listed``: with the page entries in them as inner hits (all of them: a page holds
    at most :data:`PAGE_ENTRIES`)."""
    nested: dict[str, Any] = {"path": "e", "query": _any_range("e.seq", spans)}
    if listed:
        nested["inner_hits"] = {"size": PAGE_ENTRIES}
    return {
        "bool": {
            "should": [
                _any_range("seq", spans),
                _any_range("xseq", spans),
                {"nested": nested},
            ],
            "minimum_should_match": 1,
        }
    }


def _position_counts(ranges: list[tuple[int, int]], spans: list[tuple[int, int]]) -> dict[str, Any]:
    """Per range ``[lo, hi)``: P's positions of documents (``d``), page entries (``n``) and
    cancelled entries (``x``); only P's documents in ``spans`` are read."""
    keyed = [{"key": str(i), "from": lo, "to": hi} for i, (lo, hi) in enumerate(ranges)]

    def counts(field: str) -> dict[str, Any]:
        return {"range": {"field": field, "keyed": True, "ranges": keyed}}

    return {
        "size": 0,
        "track_total_hits": False,
        "query": _positioned_in(spans),
        "aggs": {
            "d": counts("seq"),
            "x": counts("xseq"),
            "n": {"nested": {"path": "e"}, "aggs": {"r": counts("e.seq")}},
        },
    }


def _first_level(highest: int) -> list[tuple[int, int]]:
    """The ranges ``[lo, hi)`` that split ``[0, highest)`` first: as many as one search counts.

    Counting them reads every document once, as counting one range would; starting from one
    range instead costs a whole read per level until the ranges that differ are few (scattered
    deletes make every part of the first levels differ).
    """
    return _split(0, highest, RANGES_PER_SEARCH)


def _split(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` in at most ``parts`` touching ranges of equal width (the last narrower)."""
    if hi <= lo:
        return []
    step = -(-(hi - lo) // parts)
    return [(a, min(a + step, hi)) for a in range(lo, hi, step)]


def _chunks(ranges: list[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    """``ranges`` (in order) in runs one count search takes: at most ``RANGES_PER_SEARCH``
    ranges covering at most ``MAX_SPANS`` merged spans."""
    chunk: list[tuple[int, int]] = []
    spans = 0
    for lo, hi in ranges:
        opens = not chunk or lo > chunk[-1][1]
        if chunk and (len(chunk) == RANGES_PER_SEARCH or (opens and spans == MAX_SPANS)):
            yield chunk
            chunk, spans, opens = [], 0, True
        chunk.append((lo, hi))
        spans += opens
    if chunk:
        yield chunk


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges (in order) with touching ones joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if out and out[-1][1] >= lo:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _range_counts(
    field: str, ranges: list[tuple[int, int]], spans: list[tuple[int, int]] | None = None
) -> dict[str, Any]:
    """Documents per range ``[lo, hi)`` of ``field``: one keyed range aggregation; with
    ``spans`` (the ranges merged), only the documents in them are read."""
    body: dict[str, Any] = {
        "size": 0,
        "track_total_hits": False,
        "aggs": {
            "r": {
                "range": {
                    "field": field,
                    "keyed": True,
                    "ranges": [
                        {"key": str(i), "from": lo, "to": hi} for i, (lo, hi) in enumerate(ranges)
                    ],
                }
            }
        },
    }
    if spans is not None:
        body["query"] = _any_range(field, spans)
    return body


def _any_range(
    field: str, spans: list[tuple[int, int]], below: int | None = None
) -> dict[str, Any]:
    """Documents whose ``field`` is in any of the ``[lo, hi)`` spans (and under ``below``)."""
    query: dict[str, Any] = {
        "bool": {
            "should": [{"range": {field: {"gte": lo, "lt": hi}}} for lo, hi in spans],
            "minimum_should_match": 1,
        }
    }
    if below is not None:
        query["bool"]["filter"] = [{"range": {field: {"lt": below}}}]
    return query


class Snapshot:
    """The positions of O's documents with ``_seq_no <= upto[shard]``, read from one snapshot
    per shard taken when this is created: a scroll per shard (``_source: false``, sorted by
    ``_doc``), which Elasticsearch and OpenSearch of every supported version have.

    Opened *before* a ``_reindex`` task bounded by the same ``upto`` starts, it holds every
    document the task can copy: a document with ``_seq_no <= upto`` exists from before the
    snapshot, and after it can only be deleted (an update gives it a new, higher ``_seq_no``).
    A document deleted between the two snapshots gets a position the task never copies, which
    is harmless. :meth:`record` may run while the task copies.
    """

    def __init__(self, positions: Positions, upto: Mapping[int, int]) -> None:
        self.positions = positions
        self.upto = dict(upto)
        self._pages: dict[int, Iterator[list[dict[str, Any]]]] = {}
        self._first: dict[int, list[dict[str, Any]]] = {}
        try:
            for shard, top in sorted(self.upto.items()):
                pages = positions.cluster.scroll(
                    positions.source,
                    {
                        "size": positions.page,
                        "sort": ["_doc"],
                        "_source": False,
                        "seq_no_primary_term": True,
                        "query": {"range": {"_seq_no": {"lte": top}}},
                    },
                    keep_alive="10m",
                    preference=f"_shards:{shard}",
                )
                self._pages[shard] = pages
                # Reading the first page opens the scroll: the snapshot is taken now.
                self._first[shard] = next(pages, [])
        except BaseException:
            self.close()
            raise

    def record(self, halt: threading.Event | None = None) -> int:
        """Record the position of every document in the snapshot (shards in parallel); the
        number recorded. Stops early (returning what it recorded) once ``halt`` is set."""
        positions = self.positions
        recorded = 0
        lock = threading.Lock()

        def work(shard: int) -> None:
            nonlocal recorded
            page = self._first.pop(shard, [])
            pages = self._pages[shard]
            while page:
                n = positions.place((h["_id"], h.get("_routing"), int(h["_seq_no"])) for h in page)
                with lock:
                    recorded += n
                if halt is not None and halt.is_set():
                    return
                page = next(pages, [])

        shards = sorted(self._pages)
        workers = max(1, min(positions.parallelism, len(shards)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(work, s) for s in shards]:
                future.result()
        return recorded

    def close(self) -> None:
        """Clear the scrolls (they are cleared as they end; this clears the others)."""
        for pages in self._pages.values():
            close = getattr(pages, "close", None)
            if close is not None:
                close()
