"""Shared pieces of the migration tests: a document model, one transform written twice (painless
and Python), a live writer process, and the exact expected final state.

The writer (``python -m tests.migrate_support writer ...``) indexes, partially updates and deletes
documents through the alias for as long as the test runs, retries writes refused by a write block
and logs every acknowledged operation with the ``_index`` the response names. From that log the
expected content of the new index follows exactly: per id, the operations that landed in the old
index build a document the migration must carry over (transformed); the ones that landed in the
new index then apply to it as they are.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings
from esmigrate.migrate._layout import is_write_blocked, resolve
from esmigrate.migrate._shards import checkpoints, scan
from esmigrate.testing._writer import send_operation as send_op

SOURCE_MAPPING: dict[str, Any] = {
    "properties": {
        "title": {"type": "text"},
        "n": {"type": "integer"},
        "code": {"type": "long"},
        "body": {"type": "text"},
    }
}
# Breaking: code long -> keyword; body renamed to content; n2 added.
TARGET_MAPPING: dict[str, Any] = {
    "properties": {
        "title": {"type": "text"},
        "n": {"type": "integer"},
        "n2": {"type": "integer"},
        "code": {"type": "keyword"},
        "content": {"type": "text"},
        "body": {"type": "text"},
    }
}

PAINLESS = (
    "if (ctx._source.containsKey('body')) { ctx._source.content = ctx._source.remove('body'); }\n"
    "ctx._source.code = 'c' + ctx._source.code;\n"
    "ctx._source.n2 = ctx._source.n * 2;"
)


def transform(doc: dict[str, Any]) -> dict[str, Any]:
    """The same transform as :data:`PAINLESS`, in Python."""
    if "body" in doc:
        doc["content"] = doc.pop("body")
    doc["code"] = f"c{doc['code']}"
    doc["n2"] = doc["n"] * 2
    return doc


def make_doc(i: int, rnd: random.Random | None = None) -> dict[str, Any]:
    r = rnd or random
    return {"title": f"post {i}", "n": r.randint(0, 10_000), "code": i, "body": f"body of {i}"}


def create_source(
    cluster: Cluster, prefix: str, n: int, *, shards: int = 2, alias: str | None = None
) -> tuple[str, str, dict[str, dict[str, Any]]]:
    """A versioned index with ``n`` documents behind ``{prefix}-posts``; returns (alias, index,
    docs)."""
    alias = alias or f"{prefix}-posts"
    index = f"{alias}-v1-20240101000000"
    cluster.request(
        "PUT",
        f"/{index}",
        body={
            "settings": {"number_of_shards": shards, "number_of_replicas": 0},
            "mappings": SOURCE_MAPPING,
            "aliases": {alias: {"is_write_index": True}},
        },
    )
    rnd = random.Random(7)
    docs = {f"d{i}": make_doc(i, rnd) for i in range(n)}
    batch: list[bytes] = []
    for doc_id, doc in docs.items():
        batch.append(orjson.dumps({"index": {"_index": index, "_id": doc_id}}))
        batch.append(orjson.dumps(doc))
        if len(batch) >= 10_000:
            assert not cluster.bulk(b"\n".join(batch) + b"\n")["errors"]
            batch = []
    if batch:
        assert not cluster.bulk(b"\n".join(batch) + b"\n")["errors"]
    cluster.refresh(index)
    return alias, index, docs


def all_docs(cluster: Cluster, index: str) -> dict[str, dict[str, Any]]:
    cluster.refresh(index)
    out: dict[str, dict[str, Any]] = {}
    for shard, top in checkpoints(cluster, index).items():
        for hits, _ in scan(cluster, index, shard, -1, top, page=2000):
            for h in hits:
                out[h["_id"]] = h["_source"]
    return out


# -- the live writer ---------------------------------------------------------------------------


def writer_main(
    url: str, alias: str, log_path: str, stop_path: str, rate: float, seed: int
) -> None:
    cluster = connect(ConnectionSettings(urls=(url,)))
    rnd = random.Random(seed)
    # Several writer processes share the initial ids by residue, so each id has one writer and
    # the order of its operations is the order of that writer's log.
    part, parts = (int(x) for x in os.environ.get("WRITER_PART", "0/1").split("/"))
    existing = [
        f"d{i}" for i in range(int(os.environ.get("WRITER_INITIAL", "0"))) if i % parts == part
    ]
    present = set(existing)
    new_id = 0
    blocked_total = 0.0
    blocked_longest = 0.0
    refused = 0
    # In-place mode: the application already writes the new field n2 (= 2n).
    in_place = os.environ.get("WRITER_MODE") == "inplace"
    with open(log_path, "w", encoding="utf-8") as log:
        next_at = time.monotonic()
        while not os.path.exists(stop_path):
            roll = rnd.random()
            if roll < 0.4 or not existing:
                if rnd.random() < 0.5 or not existing:
                    doc_id = f"w{seed}-{new_id}"
                    new_id += 1
                else:
                    doc_id = rnd.choice(existing)
                op: dict[str, Any] = {"op": "index", "id": doc_id, "doc": make_doc(new_id, rnd)}
                if in_place:
                    op["doc"]["n2"] = op["doc"]["n"] * 2
            elif roll < 0.75:
                doc_id = rnd.choice(existing)
                op = {
                    "op": "update",
                    "id": doc_id,
                    "doc": {"n": rnd.randint(0, 10_000), "title": f"upd {time.time()}"},
                }
                if in_place:
                    op["doc"]["n2"] = op["doc"]["n"] * 2
            else:
                doc_id = rnd.choice(existing)
                op = {"op": "delete", "id": doc_id}
            started = time.monotonic()
            # The same send-and-retry as the public live writer (through write blocks, and
            # conflicts with a concurrent backfill).
            resp, window, tries = send_op(cluster, alias, op, stop_path)
            refused += tries
            if tries:
                blocked_total += window
                blocked_longest = max(blocked_longest, window)
            op["index"] = resp.get("_index")
            op["result"] = resp.get("result")
            op["t"] = started
            log.write(json.dumps(op) + "\n")
            log.flush()
            if op["result"] in ("created", "updated", "noop") and op["op"] != "delete":
                if doc_id not in present:
                    present.add(doc_id)
                    existing.append(doc_id)
            elif op["op"] == "delete" and doc_id in present:
                present.discard(doc_id)
                existing.remove(doc_id)
            next_at += 1.0 / rate
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                next_at = time.monotonic()
        log.write(
            json.dumps(
                {
                    "op": "summary",
                    "blocked_total_s": blocked_total,
                    "blocked_longest_s": blocked_longest,
                    "refused": refused,
                }
            )
            + "\n"
        )
    cluster.close()


def read_log(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    ops, summary = [], {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry["op"] == "summary":
            summary = entry
        else:
            ops.append(entry)
    return ops, summary


def expected_state(
    initial: dict[str, dict[str, Any]],
    ops: list[dict[str, Any]],
    old: str,
    new: str,
    fn: Any = None,
) -> dict[str, dict[str, Any]]:
    """The new index's exact expected content after the migration (see the module docstring)."""
    transform_ = fn or transform
    in_old: dict[str, dict[str, Any] | None] = dict(initial)
    in_new: dict[str, dict[str, Any] | None] = {}
    for op in ops:
        doc_id, where, result = op["id"], op["index"], op["result"]
        if where is None or result == "not_found":
            continue  # refused or a no-op on a missing document: nothing changed
        assert where in (old, new), op
        if where == old:
            assert doc_id not in in_new, f"a write landed in the old index after the swap: {op}"
            model = in_old
        else:
            if doc_id not in in_new:
                prior = in_old.get(doc_id)
                in_new[doc_id] = transform_(json.loads(json.dumps(prior))) if prior else None
            model = in_new
        if op["op"] == "index":
            model[doc_id] = dict(op["doc"])
        elif op["op"] == "update":
            current = model.get(doc_id)
            assert current is not None, op
            model[doc_id] = {**current, **op["doc"]}
        else:
            model[doc_id] = None
    out: dict[str, dict[str, Any]] = {}
    for doc_id, doc in in_old.items():
        if doc_id not in in_new and doc is not None:
            out[doc_id] = transform_(json.loads(json.dumps(doc)))
    for doc_id, doc in in_new.items():
        if doc is not None:
            out[doc_id] = doc
    return out


def diff(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """A small report of what differs (empty when equal)."""
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    out: dict[str, Any] = {}
    if missing:
        out["missing"] = [*missing[:10], f"... {len(missing)} in all"]
    if extra:
        out["resurrected_or_extra"] = [*extra[:10], f"... {len(extra)} in all"]
    if changed:
        out["changed"] = [(k, expected[k], actual[k]) for k in changed[:5]] + [
            f"... {len(changed)} in all"
        ]
    return out


def iter_lines(path: Path) -> Iterator[dict[str, Any]]:
    if path.exists():
        for line in path.read_text().splitlines():
            yield json.loads(line)


def run_main(config_path: str) -> None:
    """Run a blue-green migration that SIGKILLs itself on reaching ``kill_at`` (a kill test)."""
    import signal

    from esmigrate.migrate import ProgressEvent

    cfg = json.loads(Path(config_path).read_text())
    cluster = connect(ConnectionSettings(urls=(cfg["url"],)))

    def on_progress(event: ProgressEvent) -> None:
        phase, fraction = cfg["kill_at"], cfg.get("fraction", 0.0)
        if event.phase != phase:
            return
        if phase == "copy" and (event.total is None or event.done < event.total * fraction):
            return
        if phase == "cutover" and event.done < 1:
            return
        os.kill(os.getpid(), signal.SIGKILL)

    migration(cluster, cfg, on_progress).run()
    # Reaching this line means the kill point was never met: the test fails on exit code 3.
    sys.exit(3)


def migration(cluster: Cluster, cfg: dict[str, Any], on_progress: Any = None) -> Any:
    from esmigrate.migrate import BlueGreen

    return BlueGreen(
        cluster,
        cfg["alias"],
        TARGET_MAPPING,
        settings={"number_of_replicas": 0},
        script=PAINLESS if cfg["path"] == "painless" else None,
        transform=transform if cfg["path"] == "python" else None,
        state_index=cfg["state_index"],
        dead_letter_index=cfg["dead_letter_index"],
        requests_per_second=cfg.get("rps"),
        page_size=cfg.get("page_size", 1000),
        on_progress=on_progress,
        lease_ttl=cfg.get("lease_ttl", 30.0),
    )


ROOT = Path(__file__).resolve().parent.parent


class Writer:
    """The live writer: ``processes`` subprocesses (see :func:`writer_main`), disjoint ids."""

    def __init__(
        self,
        url: str,
        alias: str,
        tmp: Path,
        initial: int,
        rate: float = 300,
        mode: str = "",
        processes: int = 2,
    ) -> None:
        self.logs = [tmp / f"writer-{k}.log" for k in range(processes)]
        self.stop_file = tmp / "writer.stop"
        self.procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.migrate_support",
                    "writer",
                    url,
                    alias,
                    str(log),
                    str(self.stop_file),
                    str(rate / processes),
                    str(11 + k),
                ],
                cwd=ROOT,
                env={
                    "WRITER_INITIAL": str(initial),
                    "WRITER_PART": f"{k}/{processes}",
                    "WRITER_MODE": mode,
                    "PATH": "/usr/bin:/bin",
                },
            )
            for k, log in enumerate(self.logs)
        ]

    def count(self, index: str | None = None) -> int:
        return sum(
            1
            for log in self.logs
            for op in iter_lines(log)
            if op["op"] != "summary" and (index is None or op["index"] == index)
        )

    def wait_for(self, n: int, index: str | None = None, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.count(index) < n:
            assert all(p.poll() is None for p in self.procs), "a writer died"
            assert time.monotonic() < deadline, "the writers made no progress"
            time.sleep(0.2)

    def stop(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """All acknowledged operations in time order (each id's in its writer's order), and the
        combined summary."""
        self.stop_file.touch()
        for proc in self.procs:
            assert proc.wait(timeout=60) == 0
        ops: list[dict[str, Any]] = []
        summary = {"blocked_longest_s": 0.0, "blocked_total_s": 0.0, "refused": 0}
        for log in self.logs:
            part_ops, part = read_log(log)
            ops.extend(part_ops)
            summary["blocked_longest_s"] = max(
                summary["blocked_longest_s"], part["blocked_longest_s"]
            )
            summary["blocked_total_s"] += part["blocked_total_s"]
            summary["refused"] += part["refused"]
        ops.sort(key=lambda op: op["t"])  # stable: one writer's ops keep their order
        return ops, summary


def check_final_state(
    cluster: Cluster,
    alias: str,
    source: str,
    target: str,
    initial: dict[str, dict[str, Any]],
    ops: list[dict[str, Any]],
) -> None:
    assert resolve(cluster, alias).source == target
    assert not is_write_blocked(cluster, source), "the write block was left on"
    expected = expected_state(initial, ops, source, target)
    actual = all_docs(cluster, target)
    assert diff(expected, actual) == {}


def report(summary: dict[str, Any], ops: list[dict[str, Any]], label: str) -> None:
    span = ops[-1]["t"] - ops[0]["t"] if len(ops) > 1 else 0.0
    kinds = {k: sum(1 for o in ops if o["op"] == k) for k in ("index", "update", "delete")}
    print(
        f"\n[{label}] writer: {len(ops)} ops ({kinds}) at {len(ops) / span:.0f} ops/s; "
        f"write-block window: longest {summary['blocked_longest_s'] * 1000:.0f} ms, "
        f"{summary['refused']} refused attempts"
    )


if __name__ == "__main__":
    if sys.argv[1] == "writer":
        writer_main(
            sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6]), int(sys.argv[7])
        )
    elif sys.argv[1] == "run":
        run_main(sys.argv[2])
