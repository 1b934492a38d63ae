"""The validation gate of a cut-over: run under the write block, before the alias swap.

Counts (allowing for dead-lettered documents the target lacks and for documents it keeps on
purpose), the target mapping, and a random sample of documents transformed again and
deep-compared with what the target holds. A painless transform is applied to the sample
server-side, in a small scratch index created before the block.

The sample is drawn before the block (a random score over the whole source is the costly part)
and transformed then; under the block each sampled document is read again from the source, and
only those written since are transformed again: what the gate compares is the source's state
under the block.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import ValidationFailed
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._layout import SCRATCH_SETTINGS, mapping_missing
from esmigrate.schema.mapping import live_mapping
from esmigrate.transform import Transform


def scratch_name(target: str) -> str:
    """The scratch index the painless transform runs on for the sample (hidden).

    Dot-prefixed, as the position index: named after the target (``posts-v2-validate``), a
    wildcard search over the application's indices (``posts-*``) would return the sample's
    transformed documents a second time, and an index template for them would apply to it.
    """
    return f".esmigrate-validate-{target}"


def _ref(doc_id: str, routing: str | None) -> dict[str, Any]:
    return {"_id": doc_id, **({"routing": routing} if routing is not None else {})}


def mget(
    cluster: Cluster, index: str, docs: list[dict[str, Any]], *, source: bool = False
) -> list[dict[str, Any]]:
    """``_mget`` of ``docs`` (``{"_id", "routing"}``: custom routing puts a document on another
    shard) in ``index``, answers in order; ``source``: with each ``_source``."""
    if not docs:
        return []
    result = cluster.request(
        "POST",
        f"/{index}/_mget",
        body={"docs": docs},
        params=None if source else {"_source": "false"},
    )
    found: list[dict[str, Any]] = result["docs"]
    return found


def refs_of(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``_mget`` references of search hits (id and routing)."""
    return [_ref(h["_id"], h.get("_routing")) for h in hits]


class Validation:
    """The gate between ``source`` and ``target`` (see the module docstring)."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        source: str,
        target: str,
        mappings: Mapping[str, Any],
        dead: DeadLetters,
        script: dict[str, Any] | None = None,
        transform: Transform | None = None,
        sample_size: int = 200,
        keep: Collection[tuple[str, str | None]] = (),
    ) -> None:
        self.cluster = cluster
        self.source = source
        self.target = target
        self.mappings = mappings
        self.dead = dead
        self.script = script
        self.transform = transform
        self.sample_size = sample_size
        self.keep = keep
        self.scratch = scratch_name(target)
        #: (id, routing) of dead-lettered documents the source has and the target lacks, found
        #: by the last :meth:`check`: a rollback must keep exactly these in the source.
        self.dead_lettered_missing: list[list[str | None]] = []
        # The sample drawn by prepare(): its hits, and what the target should hold for each at
        # the _seq_no it had then.
        self._drawn: list[dict[str, Any]] = []
        self._drawn_expected: dict[str, tuple[int, Any]] = {}

    # -- the scratch index ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Before the block: an empty index to run the painless transform on the sample, the
        sample drawn and transformed (see the module docstring)."""
        self.drop()
        if self.script is not None and self.sample_size > 0:
            self.cluster.request(
                "PUT",
                f"/{self.scratch}",
                body={"settings": SCRATCH_SETTINGS, "mappings": {"dynamic": False}},
            )
        self._drawn, self._drawn_expected = [], {}
        if self.sample_size > 0:
            self.cluster.refresh(self.source)
            self._draw()

    def _draw(self) -> None:
        drawn = draw_sample(self.cluster, self.source, self.sample_size)
        # Dead-lettered documents are not in the target, and the transform fails on them.
        skipped = self.dead.among([h["_id"] for h in drawn])
        self._drawn = [h for h in drawn if h["_id"] not in skipped]
        want = self._expected({h["_id"]: h["_source"] for h in self._drawn})
        self._drawn_expected = {
            h["_id"]: (int(h["_seq_no"]), want.get(h["_id"])) for h in self._drawn
        }

    def drop(self) -> None:
        if self.cluster.exists(self.scratch):
            self.cluster.request("DELETE", f"/{self.scratch}")

    # -- the checks ----------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`~esmigrate.exceptions.ValidationFailed` listing the differences."""
        source, target = self.source, self.target
        self.cluster.refresh(source)
        self.cluster.refresh(target)
        differences: list[dict[str, Any]] = []
        missing = self._dead_lettered_missing()
        self.dead_lettered_missing = missing
        kept = self._kept()
        count_o, count_n = self.cluster.count(source), self.cluster.count(target)
        if count_n - kept + len(missing) != count_o:
            differences.append(
                {
                    "check": "count",
                    "source": count_o,
                    "target": count_n,
                    "dead_lettered": len(missing),
                    **({"kept": kept} if self.keep else {}),
                }
            )
        unmapped = mapping_missing(live_mapping(self.cluster, target), self.mappings)
        if unmapped:
            differences.append({"check": "mapping", "paths": unmapped[:20]})
        if self.sample_size > 0 and count_o:
            if not self._drawn:
                self._draw()  # not drawn before (check() without prepare())
            differences.extend(self._sample())
        if differences:
            raise ValidationFailed(
                f"The validation gate found {len(differences)} difference(s) between "
                f"{source} and {target}; the aliases were not moved and writes are unblocked. "
                f"First: {json.dumps(differences[0], default=str)[:400]}",
                differences=differences,
                hint="Inspect the differences (ValidationFailed.differences); the target index "
                "is kept for inspection. Running again resumes with more catch-up rounds.",
            )

    def _dead_lettered_missing(self) -> list[list[str | None]]:
        """Dead-lettered documents the source has and the target lacks: the count allows for
        them, and a rollback must keep exactly these in the source (they never reached N)."""
        missing: list[list[str | None]] = []
        batch: list[dict[str, Any]] = []

        def find_missing(docs: list[dict[str, Any]]) -> None:
            in_o = self._mget(self.source, docs)
            in_n = self._mget(self.target, docs)
            for doc, a, b in zip(docs, in_o, in_n, strict=True):
                if a.get("found") and not b.get("found"):
                    missing.append([doc["_id"], doc.get("routing")])

        for doc_id, routing in self.dead.entries():
            batch.append(_ref(doc_id, routing or None))
            if len(batch) >= 1000:
                find_missing(batch)
                batch = []
        if batch:
            find_missing(batch)
        return missing

    def _kept(self) -> int:
        """Documents the target keeps on purpose although the source lacks them."""
        kept = 0
        refs = [_ref(i, r) for i, r in self.keep]
        for start in range(0, len(refs), 1000):
            chunk = refs[start : start + 1000]
            in_o, in_n = self._mget(self.source, chunk), self._mget(self.target, chunk)
            kept += sum(
                1 for a, b in zip(in_o, in_n, strict=True) if b.get("found") and not a.get("found")
            )
        return kept

    def _sample(self) -> list[dict[str, Any]]:
        """The drawn sample as the source holds it now (documents deleted since are left out:
        the counts and the reconciliation answer for them), compared with the target."""
        now = [
            d
            for d in mget(self.cluster, self.source, refs_of(self._drawn), source=True)
            if d.get("found")
        ]
        skipped = self.dead.among([d["_id"] for d in now])
        now = [d for d in now if d["_id"] not in skipped]
        want: dict[str, Any] = {}
        changed: dict[str, dict[str, Any]] = {}
        for doc in now:
            seq, expected = self._drawn_expected[doc["_id"]]
            if int(doc["_seq_no"]) == seq:
                want[doc["_id"]] = expected
            else:
                changed[doc["_id"]] = doc["_source"]
        if changed:
            want.update(self._expected(changed))
        return compare_sample(self.cluster, self.target, now, want)

    def _expected(self, sources: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """What the target should hold for these source documents: the transform applied."""
        if not sources:
            return {}
        if self.transform is not None:
            return {i: self.transform(json.loads(json.dumps(s))) for i, s in sources.items()}
        if self.script is None:
            return dict(sources)
        # Painless runs server-side: apply it to the sample through the scratch index (created
        # before the write block, see prepare).
        self.cluster.request(
            "POST",
            "/_reindex",
            params={"refresh": "true"},
            body={
                "source": {"index": self.source, "query": {"ids": {"values": list(sources)}}},
                "dest": {"index": self.scratch},
                "script": self.script,
            },
        )
        docs = self.cluster.request("POST", f"/{self.scratch}/_mget", body={"ids": list(sources)})
        return {doc["_id"]: doc["_source"] for doc in docs["docs"] if doc.get("found")}

    def _mget(
        self, index: str, docs: list[dict[str, Any]], *, source: bool = False
    ) -> list[dict[str, Any]]:
        return mget(self.cluster, index, docs, source=source)


def sampled_differences(
    cluster: Cluster,
    source: str,
    target: str,
    *,
    sample_size: int,
    expected: Callable[[dict[str, dict[str, Any]]], Mapping[str, Any]],
    leave_out: Callable[[list[str]], Collection[str]] = lambda _ids: (),
) -> list[dict[str, Any]]:
    """A random sample of ``source``'s documents (but those ``leave_out`` names), each
    deep-compared with the document of the same id and routing in ``target``: one
    ``{"check": "sample", "id", "expected", "actual"}`` per difference (``actual`` None: the
    target lacks it). ``expected(sources)`` maps ``id -> _source`` to what ``target`` should
    hold (the transform applied)."""
    hits = draw_sample(cluster, source, sample_size)
    skipped = leave_out([h["_id"] for h in hits])
    hits = [h for h in hits if h["_id"] not in skipped]
    if not hits:
        return []
    return compare_sample(cluster, target, hits, expected({h["_id"]: h["_source"] for h in hits}))


def draw_sample(cluster: Cluster, source: str, size: int) -> list[dict[str, Any]]:
    """``size`` documents of ``source`` at random (hits with ``_source``, ``_seq_no``)."""
    hits: list[dict[str, Any]] = cluster.search(
        source,
        {
            "size": size,
            "seq_no_primary_term": True,
            "query": {
                "function_score": {
                    "query": {"match_all": {}},
                    "random_score": {"seed": int(time.time()), "field": "_seq_no"},
                }
            },
        },
    )["hits"]["hits"]
    return hits


def compare_sample(
    cluster: Cluster, target: str, hits: list[dict[str, Any]], want_all: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One ``{"check": "sample", "id", "expected", "actual"}`` per document of ``hits`` (with
    id and routing) whose copy in ``target`` is not ``want_all[id]``."""
    if not hits:
        return []
    got = mget(cluster, target, refs_of(hits), source=True)
    differences: list[dict[str, Any]] = []
    for doc in got:
        want = want_all.get(doc["_id"])
        have = doc.get("_source") if doc.get("found") else None
        if want != have:
            differences.append(
                {"check": "sample", "id": doc["_id"], "expected": want, "actual": have}
            )
    return differences
