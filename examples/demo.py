"""The README demo: the guide's blog posts migrated v1 → v2 → v3 while an application writes.

1. `upgrade 0001` creates blog_posts-v1 behind the alias blog_posts; 20,000 posts are loaded.
2. A live writer (a separate process standing in for the application) starts indexing,
   updating and deleting posts through the alias, ~150 operations a second.
3. `preflight`, then `upgrade head`: 2.0 and 3.0 rewrite every post through their rule sets
   (blue-green: a copy through the rules as Painless inside `_reindex`, catch-up rounds, a short
   write block, one atomic alias swap); 4.0 adds a sub-field in place with a server-side
   backfill.
4. The writer stops; every write it was acknowledged is checked in the final index: nothing
   lost, no delete resurrected, no update reverted.
5. The migration report of the run (`upgrade --report`) is written to the temp folder
   (``ESMIGRATE_DEMO_REPORT`` to choose the file): open it in a browser.

Talks to ESMIGRATE_URL (scripts/demo.sh starts the embedded node). Re-runnable: it deletes the
demo's own indices (blog_posts-*, .esmigrate-blog) first.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

from esmigrate import EsmigrateError, command, connect, load_config
from esmigrate.testing import LiveWriter

PROJECT = Path(__file__).resolve().parent / "blog"
POSTS = 20_000
REPORT = Path(
    os.environ.get("ESMIGRATE_DEMO_REPORT")
    or Path(tempfile.gettempdir()) / "esmigrate-demo-report.html"
).resolve()
WORDS = [
    "python",
    "search",
    "schema",
    "alias",
    "shard",
    "replica",
    "mapping",
    "painless",
    "reindex",
    "cluster",
]


def say(text: str) -> None:
    print(text, flush=True)


def reset(cluster_url: str) -> None:
    config = load_config(PROJECT / "esmigrate.toml", url=cluster_url)
    with connect(config.connection) as cluster:
        rows = cluster.request(
            "GET",
            "/_cat/indices/blog_posts*,.esmigrate-blog*",
            params={"format": "json", "h": "index", "expand_wildcards": "all"},
        )
        for row in rows:
            cluster.request("PUT", f"/{row['index']}/_settings", body={"index.blocks.write": None})
            cluster.request("DELETE", f"/{row['index']}")


def load_posts(cluster_url: str) -> None:
    config = load_config(PROJECT / "esmigrate.toml", url=cluster_url)
    with connect(config.connection) as cluster:
        batch: list[bytes] = []
        for i in range(POSTS):
            word, other = WORDS[i % len(WORDS)], WORDS[(i * 7) % len(WORDS)]
            doc = {
                "title": f"  Post {i}:   notes on {word}  ",
                "content": f"Some thoughts on {word} and {other}. #{word} #{other} #blog",
                "author": f"author{i % 50}",
                "created_date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z",
            }
            batch.append(orjson.dumps({"index": {"_index": "blog_posts", "_id": f"d{i}"}}))
            batch.append(orjson.dumps(doc))
            if len(batch) >= 4000:
                cluster.bulk(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            cluster.bulk(b"\n".join(batch) + b"\n")
        cluster.refresh("blog_posts")
        say(
            f"Loaded {cluster.count('blog_posts'):,} blog posts (schema 1.0) through the alias blog_posts."
        )


def main() -> int:
    # Progress lines of the migrations (phase, docs/s, ETA, catch-up rounds).
    progress = logging.StreamHandler(sys.stdout)
    progress.setFormatter(logging.Formatter("    %(message)s"))
    logging.getLogger("esmigrate").addHandler(progress)
    logging.getLogger("esmigrate").setLevel(logging.INFO)
    cluster_url = os.environ.get("ESMIGRATE_URL", "http://127.0.0.1:9200")
    # Scripts import the project's schema module (blog_schema), as an application's would.
    sys.path.insert(0, str(PROJECT))
    os.chdir(PROJECT)
    config = load_config(PROJECT / "esmigrate.toml", url=cluster_url)
    info = command.info(config)
    say(f"Cluster: {info['engine']} {info['version']} at {info['url']} ({info['status']})\n")

    reset(cluster_url)
    command.upgrade(config, "0001", reporter=say)
    load_posts(cluster_url)

    say("\nWhat `esmigrate plan` says the rest will do:")
    for revision in command.plan(config, "head")["revisions"]:
        for op in revision["operations"]:
            say(f"  {revision['revision']}: {op['summary']}")

    report = command.preflight(config)
    say("\nPre-flight: " + ", ".join(f"{c.name} {c.status}" for c in report.checks))
    if not report.ok:
        say("Pre-flight failed; stopping.")
        return 1

    say("\nStarting the live writer, then `esmigrate upgrade head`:\n")
    began = time.monotonic()
    with LiveWriter(cluster_url, "blog_posts", rate=150, initial=POSTS) as writer:
        upgraded = command.upgrade(config, "head", reporter=say, report=REPORT)
        time.sleep(1.0)  # some writes after the cut-over too: they must land in the new index
    elapsed = time.monotonic() - began
    written = writer.report()

    with connect(config.connection) as cluster:
        problems = written.verify(cluster, "blog_posts", [f"d{i}" for i in range(POSTS)])
        indices = sorted(cluster.request("GET", "/_alias/blog_posts"))
        total = cluster.count("blog_posts")
        with_raw = cluster.count("blog_posts", {"exists": {"field": "title.raw"}})
        sample = cluster.request("GET", "/blog_posts/_doc/d3")["_source"]

    say(
        f"\nMigrated in {elapsed:.1f}s while the writer made {written.operations:,} acknowledged writes"
    )
    say(
        f"  ({len(written.created):,} new posts, {len(written.deleted):,} deletes, the rest updates)."
    )
    say(
        f"Writes refused during the cut-overs' write blocks: {written.refused} retries; the longest"
        f" wait was {written.blocked_longest_s:.2f}s (the write-block window the application saw)."
    )
    say(f"blog_posts now points to {', '.join(indices)} with {total:,} posts.")
    say(f"title.raw (4.0, backfilled in place) is on {with_raw:,} of {total:,} posts.")
    say("A post after the migration (schema 3.0):")
    say("  " + orjson.dumps(sample, option=orjson.OPT_INDENT_2).decode().replace("\n", "\n  "))
    if with_raw != total:
        problems.append(f"{total - with_raw} posts were not backfilled with title.raw")
    if problems:
        say(f"\nWRITES LOST OR CHANGED ({len(problems)}):")
        for problem in problems[:20]:
            say(f"  {problem}")
        return 1
    say(
        "\nEvery acknowledged write is in the new index: nothing lost, no delete resurrected, no update reverted."
    )
    status = command.status(config)
    say(
        f"History ({config.history_index}): current revision {', '.join(status['current'])}, "
        f"{len(status['applied'])} applied."
    )
    if upgraded["report"]["path"]:
        say(f"\nThe migration report: {REPORT.as_uri()} (open it in a browser).")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except EsmigrateError as exc:  # a user-facing error: one paragraph, no stack trace
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
