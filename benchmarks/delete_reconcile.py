"""Delete-reconciliation benchmark: the work under blue-green's write block for deletes.

After a copy, some documents are deleted from the source; the target must lose them. Measured in
the same run, on the same data, for two index sizes:

- baseline: read every id of the target and look it up in the source (``_mget``) — what any
  id-set comparison costs, and what esmigrate did under the block before positions;
- positions: range counts over the position index (``esmigrate.migrate._positions``).

Also reported, for the price paid before the block: the one-time position pass over the target,
next to the server-side copy of the same documents.

    python benchmarks/delete_reconcile.py [--docs 100000] [--deletes 20] [--url URL]

Without --url (or ESMIGRATE_URL) an embedded node is started for the run.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any

import orjson

from esmigrate.bench import make_source
from esmigrate.cluster import Cluster, connect
from esmigrate.migrate._positions import Positions
from esmigrate.migrate._shards import checkpoints, scan
from esmigrate.testing import cluster_for_tests, delete_prefixed, unique_prefix


def copy(cluster: Cluster, source: str, target: str) -> float:
    began = time.perf_counter()
    cluster.request(
        "PUT", f"/{target}", body={"settings": {"number_of_shards": 2, "number_of_replicas": 0}}
    )
    started = cluster.request(
        "POST",
        "/_reindex",
        params={"wait_for_completion": "false", "slices": "auto"},
        body={"source": {"index": source}, "dest": {"index": target}},
    )
    cluster.wait_task(started["task"], poll_interval=0.2)
    cluster.refresh(target)
    return time.perf_counter() - began


def id_scan(cluster: Cluster, source: str, target: str) -> int:
    """The baseline: every id of the target looked up in the source; returns the stale count."""
    stale = 0
    for shard, top in checkpoints(cluster, target).items():
        for hits, _ in scan(cluster, target, shard, -1, top, source=False, page=5000):
            if not hits:
                continue
            docs = cluster.request(
                "POST",
                f"/{source}/_mget",
                body={"ids": [h["_id"] for h in hits]},
                params={"_source": "false"},
            )["docs"]
            stale += sum(1 for d in docs if not d.get("found"))
    return stale


def delete(cluster: Cluster, index: str, ids: list[str]) -> None:
    lines = [orjson.dumps({"delete": {"_index": index, "_id": i}}) for i in ids]
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")


def measure(cluster: Cluster, prefix: str, n: int, k: int) -> dict[str, Any]:
    source, target = f"{prefix}-{n}-source", f"{prefix}-{n}-target"
    make_source(cluster, source, n)
    copied = copy(cluster, source, target)
    positions = Positions(cluster, source=source, target=target, name=f"{target}-positions")
    positions.create()
    began = time.perf_counter()
    positions.record({})
    recorded = time.perf_counter() - began
    delete(cluster, source, random.Random(n).sample([str(i) for i in range(n)], k))

    began = time.perf_counter()
    found = id_scan(cluster, source, target)
    baseline = time.perf_counter() - began
    assert found == k, (found, k)

    began = time.perf_counter()
    stats = positions.reconcile()
    reconciled = time.perf_counter() - began
    assert stats.deleted == k, stats
    return {
        "docs": n,
        "copy": copied,
        "record": recorded,
        "baseline": baseline,
        "positions": reconciled,
        "listed": stats.listed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--deletes", type=int, default=20)
    parser.add_argument("--url")
    args = parser.parse_args()
    with cluster_for_tests(url=args.url or os.environ.get("ESMIGRATE_URL")) as settings:
        run(settings, args.docs, args.deletes)


def run(settings: Any, n: int, k: int) -> None:
    with connect(settings) as cluster:
        prefix = unique_prefix()
        try:
            print(f"{cluster.engine} — {k} deletes after the copy, 2 shards\n")
            rows = [measure(cluster, prefix, size, k) for size in (max(n // 4, k * 10), n)]
            print(
                f"{'docs':>8}  {'id scan (baseline)':>18}  {'positions':>9}  {'ratio':>7}  "
                f"{'listed':>7}  {'one-time pass':>13}  {'copy':>6}"
            )
            for r in rows:
                print(
                    f"{r['docs']:>8,}  {r['baseline']:>17.3f}s  {r['positions']:>8.3f}s  "
                    f"{r['baseline'] / r['positions']:>6.1f}x  {r['listed']:>7,}  "
                    f"{r['record']:>12.2f}s  {r['copy']:>5.2f}s"
                )
        finally:
            delete_prefixed(cluster, prefix)


if __name__ == "__main__":
    main()
