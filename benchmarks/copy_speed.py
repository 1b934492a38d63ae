"""Copy-speed benchmark: how fast documents move from one index to another with a transform.

Every approach is measured in the same run, on the same cluster and data, and reported as
docs/s and as a ratio against the guide's approach (one ``index`` request per document with
``refresh=wait_for``), so numbers from a noisy 2-core machine stay comparable.

    python benchmarks/copy_speed.py [--docs 20000] [--url URL]

Without --url (or ESMIGRATE_URL) an embedded node is started for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from esmigrate.cluster import Cluster, connect
from esmigrate.config import load_config
from esmigrate.testing import cluster_for_tests, delete_prefixed, unique_prefix

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "search",
    "index",
    "shard",
    "mapping",
    "alias",
    "migrate",
    "schema",
    "version",
]


def transform(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["title"] = doc["title"].strip().lower()
    out["word_count"] = len(doc["body"].split())
    return out


PAINLESS = (
    "ctx._source.title = ctx._source.title.trim().toLowerCase();"
    " ctx._source.word_count = / +/.split(ctx._source.body.trim()).length;"
)


def make_source(cluster: Cluster, index: str, n: int) -> None:
    cluster.request(
        "PUT",
        f"/{index}",
        body={
            "settings": {"number_of_shards": 2, "number_of_replicas": 0, "refresh_interval": "-1"}
        },
    )
    rng = random.Random(7)
    batch: list[bytes] = []
    for i in range(n):
        doc = {
            "title": f"  Post {i} {rng.choice(WORDS).upper()} ",
            "body": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 80))),
            "author": f"user{rng.randint(1, 500)}",
            "views": rng.randint(0, 10_000),
        }
        batch.append(
            orjson.dumps({"index": {"_index": index, "_id": str(i)}})
            + b"\n"
            + orjson.dumps(doc)
            + b"\n"
        )
        if len(batch) == 2000:
            cluster.bulk(b"".join(batch))
            batch.clear()
    if batch:
        cluster.bulk(b"".join(batch))
    cluster.request("PUT", f"/{index}/_settings", body={"index.refresh_interval": "1s"})
    cluster.refresh(index)


def fresh_target(cluster: Cluster, index: str) -> None:
    if cluster.exists(index):
        cluster.request("DELETE", f"/{index}")
    cluster.request(
        "PUT", f"/{index}", body={"settings": {"number_of_shards": 2, "number_of_replicas": 0}}
    )


def guide_baseline(cluster: Cluster, source: str, target: str, limit: int) -> int:
    """The guide's loop: read, transform, one index request per document with refresh=wait_for."""
    hits = cluster.search(source, {"size": limit, "query": {"match_all": {}}})["hits"]["hits"]
    for hit in hits:
        cluster.request(
            "PUT",
            f"/{target}/_doc/{hit['_id']}",
            params={"refresh": "wait_for"},
            body=transform(hit["_source"]),
        )
    return len(hits)


def naive_scroll_bulk(cluster: Cluster, source: str, target: str, limit: int) -> int:
    """A common hand-written loop: scroll pages, stdlib json, one bulk per page."""
    done = 0
    page = cluster.request(
        "POST", f"/{source}/_search", params={"scroll": "2m"}, body={"size": 500}
    )
    scroll_id = page["_scroll_id"]
    try:
        while page["hits"]["hits"] and done < limit:
            lines = []
            for hit in page["hits"]["hits"]:
                lines.append(json.dumps({"index": {"_index": target, "_id": hit["_id"]}}))
                lines.append(json.dumps(transform(hit["_source"])))
            cluster.bulk(("\n".join(lines) + "\n").encode())
            done += len(page["hits"]["hits"])
            page = cluster.request(
                "POST", "/_search/scroll", body={"scroll": "2m", "scroll_id": scroll_id}
            )
    finally:
        cluster.request("DELETE", "/_search/scroll", body={"scroll_id": [scroll_id]})
    return done


def server_reindex(cluster: Cluster, source: str, target: str, limit: int) -> int:
    """Server-side _reindex with the transform as painless, sliced, polled as a task."""
    started = cluster.request(
        "POST",
        "/_reindex",
        params={"wait_for_completion": "false", "slices": "auto"},
        body={
            "source": {"index": source},
            "dest": {"index": target},
            "script": {"source": PAINLESS},
        },
    )
    response = cluster.wait_task(started["task"], poll_interval=0.2)
    return int(response["created"]) + int(response["updated"])


Approach = Callable[[Cluster, str, str, int], int]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument(
        "--baseline-docs",
        type=int,
        default=20,
        help="docs for the slow guide loop (each waits for a refresh)",
    )
    parser.add_argument("--url")
    args = parser.parse_args()

    approaches: list[tuple[str, Approach, int]] = [
        ("guide: index per doc, refresh=wait_for", guide_baseline, args.baseline_docs),
        ("hand-written scroll + json + bulk", naive_scroll_bulk, args.docs),
        ("server _reindex + painless (slices=auto)", server_reindex, args.docs),
    ]

    url = args.url or os.environ.get("ESMIGRATE_URL")
    if url:
        run(load_config(url=url).connection, approaches, args.docs)
    else:
        with cluster_for_tests() as settings:
            run(settings, approaches, args.docs)


def run(settings: Any, approaches: list[tuple[str, Approach, int]], n: int) -> None:
    with connect(settings) as cluster:
        prefix = unique_prefix()
        source = f"{prefix}-source"
        try:
            make_source(cluster, source, n)
            print(f"{cluster.engine} — {n} source documents, 2 shards\n")
            results: list[tuple[str, float]] = []
            for name, approach, limit in approaches:
                target = f"{prefix}-target"
                fresh_target(cluster, target)
                began = time.perf_counter()
                moved = approach(cluster, source, target, limit)
                cluster.refresh(target)
                elapsed = time.perf_counter() - began
                results.append((name, moved / elapsed))
            base = results[0][1]
            width = max(len(name) for name, _ in results)
            for name, rate in results:
                print(f"{name:<{width}}  {rate:>10,.0f} docs/s  {rate / base:>8.1f}x")
        finally:
            delete_prefixed(cluster, prefix)


if __name__ == "__main__":
    main()
