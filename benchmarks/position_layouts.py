"""Position-index layouts: what one position per document costs the node, against the same
positions as nested entries of page documents (one indexed document per page of the copy).

Blue-green's position index holds one small document per document of the new index (keyed by
id; see ``esmigrate.migrate._positions``), and on two cores indexing it costs about as much as a
copy. Measured in one run, on the same node, for the same ``--docs`` positions (2 shards, two
bulk threads, as the copy writes them):

- ``one doc each``: the position index's layout today (explicit ids, one ``seq`` each);
- ``nested pages``: ``--page`` entries (id, seq) per document in a ``nested`` field;

and, for each, the first level of the delete reconciliation: one ``range`` aggregation of 4,000
ranges (for the nested layout, under a ``nested`` aggregation, which counts entries, not pages).

    python benchmarks/position_layouts.py [--docs 1000000] [--page 1000] [--url URL]

Without --url (or ESMIGRATE_URL) an embedded node is started for the run.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from esmigrate.cluster import Cluster, connect
from esmigrate.testing import cluster_for_tests, delete_prefixed, unique_prefix

RANGES = 4000
_KEYWORD = {"type": "keyword", "index": False, "doc_values": False}
FLAT = {
    "dynamic": "strict",
    "properties": {"id": _KEYWORD, "routing": _KEYWORD, "seq": {"type": "long"}},
}
NESTED = {
    "dynamic": "strict",
    "properties": {
        "entries": {
            "type": "nested",
            "properties": {"id": _KEYWORD, "routing": _KEYWORD, "seq": {"type": "long"}},
        }
    },
}


def _flat(index: str, n: int, per_bulk: int) -> Iterator[bytes]:
    for start in range(0, n, per_bulk):
        lines = []
        for i in range(start, min(start + per_bulk, n)):
            lines += [
                orjson.dumps({"index": {"_index": index, "_id": f"d{i}"}}),
                orjson.dumps({"id": f"d{i}", "seq": i}),
            ]
        yield b"\n".join(lines) + b"\n"


def _nested(index: str, n: int, page: int, pages_per_bulk: int = 10) -> Iterator[bytes]:
    for start in range(0, n, page * pages_per_bulk):
        lines = []
        for first in range(start, min(start + page * pages_per_bulk, n), page):
            entries = [{"id": f"d{i}", "seq": i} for i in range(first, min(first + page, n))]
            lines += [
                orjson.dumps({"index": {"_index": index}}),
                orjson.dumps({"entries": entries}),
            ]
        yield b"\n".join(lines) + b"\n"


def _load(cluster: Cluster, index: str, mapping: dict[str, Any], bodies: Iterator[bytes]) -> float:
    cluster.request(
        "PUT",
        f"/{index}",
        body={
            "settings": {"number_of_shards": 2, "number_of_replicas": 0, "refresh_interval": "-1"},
            "mappings": mapping,
        },
    )
    began = time.perf_counter()

    def send(body: bytes) -> None:
        answer = cluster.bulk(body)
        if answer.get("errors"):
            raise RuntimeError(f"bulk into {index} failed: {orjson.dumps(answer)[:300]!r}")

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(send, bodies))
    cluster.refresh(index)
    return time.perf_counter() - began


def _count(cluster: Cluster, index: str, n: int, nested: bool) -> tuple[float, int]:
    """The reconciliation's first level: 4,000 ranges counted in one search (best of three)."""
    width = max(1, n // RANGES)
    ranges = [{"from": a, "to": a + width} for a in range(0, n, width)]
    field = "entries.seq" if nested else "seq"
    aggs: dict[str, Any] = {"r": {"range": {"field": field, "ranges": ranges}}}
    if nested:
        aggs = {"n": {"nested": {"path": "entries"}, "aggs": aggs}}
    best, total = float("inf"), 0
    for _ in range(3):
        began = time.perf_counter()
        found = cluster.search(index, {"size": 0, "aggs": aggs})["aggregations"]
        best = min(best, time.perf_counter() - began)
        buckets = (found["n"] if nested else found)["r"]["buckets"]
        total = sum(b["doc_count"] for b in buckets)
    return best, total


def measure(cluster: Cluster, prefix: str, n: int, page: int) -> dict[str, Any]:
    """Index ``n`` positions in each layout and count them; seconds and the counts."""
    layouts: dict[str, tuple[dict[str, Any], Callable[[str], Iterator[bytes]], bool]] = {
        "one doc each": (FLAT, lambda index: _flat(index, n, 2 * page), False),
        "nested pages": (NESTED, lambda index: _nested(index, n, page), True),
    }
    result: dict[str, Any] = {}
    for name, (mapping, bodies, nested) in layouts.items():
        index = f"{prefix}-{'nested' if nested else 'flat'}"
        seconds = _load(cluster, index, mapping, bodies(index))
        counted, total = _count(cluster, index, n, nested)
        result[name] = {"index_s": seconds, "count_s": counted, "counted": total}
        cluster.request("DELETE", f"/{index}")
    return result


def run(settings: Any, n: int, page: int) -> None:
    with connect(settings) as cluster:
        prefix = unique_prefix()
        try:
            print(f"{cluster.engine}: {n:,} positions, 2 shards, pages of {page}\n")
            print(f"{'layout':<14}  {'indexing':>9}  {'4,000-range count':>17}  {'counted':>10}")
            for name, r in measure(cluster, prefix, n, page).items():
                print(
                    f"{name:<14}  {r['index_s']:>8.1f}s  {r['count_s'] * 1000:>15.0f}ms  "
                    f"{r['counted']:>10,}"
                )
        finally:
            delete_prefixed(cluster, prefix)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--url")
    args = parser.parse_args()
    with cluster_for_tests(url=args.url or os.environ.get("ESMIGRATE_URL")) as settings:
        run(settings, args.docs, args.page)


if __name__ == "__main__":
    main()
