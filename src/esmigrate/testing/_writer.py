"""A live writer: an application stand-in that keeps indexing, updating and deleting through an
alias while a migration runs, and logs every acknowledged operation, so a test (or the demo) can
prove afterwards that no write was lost, no delete resurrected and no update reverted.

It runs in its own process (a migration in the test process must not slow it down through the
GIL, nor the other way round). Writes refused by a write block (403) are retried until they go
through, as an application with a retry policy would; the longest refusal is the write-block
window the application saw.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings, Secret
from esmigrate.exceptions import BlockedError, ConflictError, NotFoundError

WORDS = [
    "search",
    "index",
    "shard",
    "mapping",
    "alias",
    "schema",
    "version",
    "cluster",
    "replica",
    "segment",
]


def default_document(n: int, rnd: random.Random) -> dict[str, Any]:
    """The writer's documents: a title and content with a hashtag, an author, an edit counter."""
    word = rnd.choice(WORDS)
    return {
        "title": f"Live post {n} about {word}",
        "content": f"Written while migrating #{word} #live",
        "author": f"writer{rnd.randint(1, 20)}",
        "edits": 0,
    }


def _run(args: argparse.Namespace) -> None:
    settings = ConnectionSettings(
        urls=(args.url,),
        username=os.environ.get("ESMIGRATE_USERNAME") or None,
        password=Secret(os.environ["ESMIGRATE_PASSWORD"])
        if os.environ.get("ESMIGRATE_PASSWORD")
        else None,
    )
    cluster = connect(settings)
    rnd = random.Random(args.seed)
    existing = [f"{args.initial_prefix}{i}" for i in range(args.initial)]
    present = set(existing)
    edits: dict[str, int] = {}
    created = 0
    longest = total = 0.0
    refused = 0
    interval = 1.0 / args.rate
    with open(args.log, "w", encoding="utf-8") as log:
        next_at = time.monotonic()
        while not os.path.exists(args.stop):
            roll = rnd.random()
            op: dict[str, Any]
            if roll < 0.35 or not existing:
                doc_id = f"live-{args.seed}-{created}"
                created += 1
                op = {"op": "index", "id": doc_id, "doc": default_document(created, rnd)}
            elif roll < 0.8:
                doc_id = rnd.choice(existing)
                edits[doc_id] = edits.get(doc_id, 0) + 1
                op = {
                    "op": "update",
                    "id": doc_id,
                    "doc": {"edits": edits[doc_id], "author": f"editor{rnd.randint(1, 9)}"},
                }
            else:
                doc_id = rnd.choice(existing)
                op = {"op": "delete", "id": doc_id}
            answer, window, tries = send_operation(cluster, args.alias, op, args.stop)
            refused += tries
            longest = max(longest, window)
            total += window
            op["index"] = answer.get("_index")
            op["result"] = answer.get("result")
            log.write(json.dumps(op) + "\n")
            log.flush()
            if op["result"] in ("created", "updated", "noop") and doc_id not in present:
                present.add(doc_id)
                existing.append(doc_id)
            elif op["op"] == "delete" and op["result"] == "deleted":
                present.discard(doc_id)
                existing.remove(doc_id)
            next_at += interval
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                next_at = time.monotonic()
        log.write(
            json.dumps(
                {
                    "op": "summary",
                    "blocked_longest_s": longest,
                    "blocked_total_s": total,
                    "refused": refused,
                }
            )
            + "\n"
        )
    cluster.close()


def send_operation(
    cluster: Cluster, alias: str, op: dict[str, Any], stop: str
) -> tuple[dict[str, Any], float, int]:
    first_refusal: float | None = None
    tries = 0
    while True:
        try:
            if op["op"] == "index":
                answer = cluster.request("PUT", f"/{alias}/_doc/{op['id']}", body=op["doc"])
            elif op["op"] == "update":
                answer = cluster.request(
                    "POST", f"/{alias}/_update/{op['id']}", body={"doc": op["doc"]}
                )
            else:
                answer = cluster.request("DELETE", f"/{alias}/_doc/{op['id']}")
            break
        except BlockedError:
            if os.path.exists(stop):
                answer = {"result": "abandoned"}
                break
            tries += 1
            first_refusal = first_refusal or time.monotonic()
            time.sleep(0.005)
        except ConflictError:
            continue  # another writer (a backfill) changed it in between: re-read and retry
        except NotFoundError:
            answer = {"result": "not_found"}
            break
    window = time.monotonic() - first_refusal if first_refusal is not None else 0.0
    return answer, window, tries


@dataclass
class WriterReport:
    """What the writer did and what must therefore be true of the index afterwards."""

    operations: int
    refused: int
    blocked_longest_s: float
    #: id -> the fields the writer last wrote (documents it created: the whole document).
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ids the writer deleted (and did not write again afterwards).
    deleted: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)

    def expected_ids(self, initial: Iterable[str]) -> set[str]:
        return (set(initial) | self.created) - self.deleted

    def verify(self, cluster: Cluster, index: str, initial: Iterable[str]) -> list[str]:
        """Problems found in ``index`` (empty: nothing lost, nothing resurrected, no update
        reverted for the fields the writer owns). Streams the index; memory holds the ids."""
        cluster.refresh(index)
        expected = self.expected_ids(initial)
        seen: set[str] = set()
        problems: list[str] = []
        for page in cluster.scan(index, page_size=2000):
            for hit in page:
                doc_id = hit["_id"]
                seen.add(doc_id)
                if doc_id in self.deleted:
                    problems.append(f"{doc_id}: deleted by the writer, but present (resurrected)")
                    continue
                for key, value in self.written.get(doc_id, {}).items():
                    if hit["_source"].get(key) != value:
                        problems.append(
                            f"{doc_id}: {key} is {hit['_source'].get(key)!r}, the writer last wrote {value!r}"
                        )
        for doc_id in sorted(expected - seen)[:20]:
            problems.append(f"{doc_id}: written (or pre-existing) and not deleted, but missing")
        return problems


class LiveWriter:
    """Start with ``with LiveWriter(url, alias, rate=150) as writer: ...``; ``writer.report()``
    after the block (or after :meth:`stop`) reads what it did.

    ``initial``/``initial_prefix`` name documents that exist before it starts (``d0``...), which
    it also updates and deletes.
    """

    def __init__(
        self,
        url: str,
        alias: str,
        *,
        rate: float = 150.0,
        seed: int = 1,
        initial: int = 0,
        initial_prefix: str = "d",
    ) -> None:
        self.url, self.alias, self.rate, self.seed = url, alias, rate, seed
        self.initial, self.initial_prefix = initial, initial_prefix
        self._dir = Path(tempfile.mkdtemp(prefix="esmigrate-writer-"))
        self.log = self._dir / "ops.jsonl"
        self._stop = self._dir / "stop"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveWriter:
        self._proc = subprocess.Popen(
            [
                # -c rather than -m: the package has already imported this module.
                sys.executable, "-c", "import sys; from esmigrate.testing._writer import main; main(sys.argv[1:])",
                "--url", self.url, "--alias", self.alias, "--log", str(self.log),
                "--stop", str(self._stop), "--rate", str(self.rate), "--seed", str(self.seed),
                "--initial", str(self.initial), "--initial-prefix", self.initial_prefix,
            ]
        )  # fmt: skip
        # Wait for the first acknowledged write, so "during the migration" really is.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self._proc.poll() is None:
            if self.log.exists() and self.log.stat().st_size > 0:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"the live writer did not start (exit {self._proc.poll()})")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._stop.touch()
        try:
            code = self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._proc = None
        if code != 0:
            # A writer that died stopped writing: whatever it would have proved, it did not.
            raise RuntimeError(f"the live writer exited with {code} before it was stopped")

    def __enter__(self) -> LiveWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def report(self) -> WriterReport:
        written: dict[str, dict[str, Any]] = {}
        deleted: set[str] = set()
        created: set[str] = set()
        summary: Mapping[str, Any] = {}
        operations = 0
        with contextlib.suppress(FileNotFoundError), self.log.open(encoding="utf-8") as fh:
            for line in fh:
                entry = json.loads(line)
                if entry["op"] == "summary":
                    summary = entry
                    continue
                if entry["result"] in (None, "abandoned", "not_found"):
                    continue
                operations += 1
                doc_id = entry["id"]
                if entry["op"] == "delete":
                    deleted.add(doc_id)
                    written.pop(doc_id, None)
                    created.discard(doc_id)
                elif entry["op"] == "index":
                    deleted.discard(doc_id)
                    written[doc_id] = dict(entry["doc"])
                    created.add(doc_id)
                else:
                    written.setdefault(doc_id, {}).update(entry["doc"])
        return WriterReport(
            operations=operations,
            refused=int(summary.get("refused", 0)),
            blocked_longest_s=float(summary.get("blocked_longest_s", 0.0)),
            written=written,
            deleted=deleted,
            created=created,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="esmigrate live writer (see esmigrate.testing)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--stop", required=True)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--initial", type=int, default=0)
    parser.add_argument("--initial-prefix", default="d")
    _run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
