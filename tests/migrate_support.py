"""Shared pieces of the migration tests: a document model, one transform written twice (painless
and Python), a live writer of that model, and the exact expected final state.

The writer (:class:`esmigrate.testing.LiveWriter`, shaped by :func:`live_writer`) indexes,
partially updates and deletes documents through the alias for as long as the test runs, retries
writes refused by a write block and logs every acknowledged operation with the ``_index`` the
response names. From that log the expected content of the new index follows exactly: per id,
the operations that landed in the old index build a document the migration must carry over
(transformed); the ones that landed in the new index then apply to it as they are.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings
from esmigrate.migrate import BlueGreen, Incremental, IncrementalResult
from esmigrate.migrate._layout import is_write_blocked, resolve
from esmigrate.migrate._shards import checkpoints, scan
from esmigrate.testing import LiveWriter, WriterReport

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


#: Documents :func:`pausing_transform` transforms before its process stops itself (unset: never).
PAUSE_AFTER = "PAUSE_AFTER_DOCS"
_transformed = [0]


def pausing_transform(doc: dict[str, Any]) -> dict[str, Any]:
    """:func:`transform`, in a process that SIGSTOPs itself once, in the middle of a page of the
    copy, after ``$PAUSE_AFTER_DOCS`` documents (a lease-loss test; SIGCONT wakes it)."""
    _transformed[0] += 1
    if str(_transformed[0]) == os.environ.get(PAUSE_AFTER):
        import signal

        os.kill(os.getpid(), signal.SIGSTOP)
    return transform(doc)


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


def update_doc(doc_id: str, edit: int, rnd: random.Random) -> dict[str, Any]:
    """The writer's partial updates of this document model."""
    return {"n": rnd.randint(0, 10_000), "title": f"upd {doc_id} {edit}"}


def make_doc_with_n2(i: int, rnd: random.Random) -> dict[str, Any]:
    """A document as an application already writing the new field n2 (= 2n) writes it."""
    doc = make_doc(i, rnd)
    doc["n2"] = doc["n"] * 2
    return doc


def update_doc_with_n2(doc_id: str, edit: int, rnd: random.Random) -> dict[str, Any]:
    update = update_doc(doc_id, edit, rnd)
    update["n2"] = update["n"] * 2
    return update


def live_writer(
    url: str, alias: str, initial: int, *, rate: float = 300, with_n2: bool = False
) -> LiveWriter:
    """The application during a migration test: two writer processes indexing (half of them
    rewriting an existing document), updating and deleting documents of this model through
    ``alias``; ``with_n2``: it already writes the field an in-place migration adds."""
    shape = "make_doc_with_n2" if with_n2 else "make_doc"
    update = "update_doc_with_n2" if with_n2 else "update_doc"
    return LiveWriter(
        url,
        alias,
        rate=rate,
        seed=11,
        initial=initial,
        documents=f"tests.migrate_support:{shape}",
        updates=f"tests.migrate_support:{update}",
        mix=(0.4, 0.35),
        replace=0.5,
        processes=2,
    ).start()


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
        if where is None:
            continue  # refused: nothing changed
        if result == "not_found" and not (op["op"] == "delete" and where == old):
            # An update of a missing document changed nothing. A delete the new index answered
            # "not found" for a document the writer left present is not taken as a delete: the
            # document stays expected, and the new index lacking it is counted as lost.
            continue
        # A delete the old index answered "not found": the old index no longer holds the
        # document (the cluster already applied this delete: after a primary's node dies, the
        # coordinating node sends the write again to the new primary). The migration carries
        # the old index's state, so the new index must not hold it either.
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


def run_main(config_path: str) -> None:
    """Run a blue-green migration that SIGKILLs itself on reaching ``kill_at`` (a kill test), or
    with ``"signal": "stop"`` SIGSTOPs itself there (a lease-loss test; SIGCONT wakes it)."""
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
        os.kill(os.getpid(), signal.SIGSTOP if cfg.get("signal") == "stop" else signal.SIGKILL)

    migration(cluster, cfg, on_progress).run()
    # Reaching this line means the kill point was never met: the test fails on exit code 3.
    sys.exit(3)


def migration(cluster: Cluster, cfg: dict[str, Any], on_progress: Any = None) -> Any:
    from esmigrate.migrate import BlueGreen

    return BlueGreen(
        cluster,
        cfg["alias"],
        TARGET_MAPPING,
        settings=cfg.get("settings", {"number_of_replicas": 0}),
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


def run_killed(config: Path, cfg: dict[str, Any]) -> None:
    """Run the migration ``cfg`` describes in a child process that SIGKILLs itself at
    ``cfg["kill_at"]`` (see :func:`run_main`); fails when it was not killed there."""
    config.write_text(json.dumps(cfg))
    killed = subprocess.run(
        [sys.executable, "-m", "tests.migrate_support", "run", str(config)],
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -9, "the kill point was not reached"


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


def report(summary: WriterReport, ops: list[dict[str, Any]], label: str) -> None:
    span = ops[-1]["t"] - ops[0]["t"] if len(ops) > 1 else 0.0
    kinds = {k: sum(1 for o in ops if o["op"] == k) for k in ("index", "update", "delete")}
    print(
        f"\n[{label}] writer: {len(ops)} ops ({kinds}) at {len(ops) / span:.0f} ops/s; "
        f"write-block window: longest {summary.blocked_longest_s * 1000:.0f} ms, "
        f"{summary.refused} refused attempts"
    )


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run_main(sys.argv[2])


def blue_green_on(
    cluster: Cluster, prefix: str, alias: str, path: str, **options: Any
) -> BlueGreen:
    """A blue-green migration of ``alias`` to the target mapping on ``path`` (painless or
    python), with the test's state and dead-letter indices."""
    return BlueGreen(
        cluster,
        alias,
        TARGET_MAPPING,
        settings={"number_of_replicas": 0},
        script=PAINLESS if path == "painless" else None,
        transform=transform if path == "python" else None,
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        **options,
    )


def incremental_runs(
    cluster: Cluster, alias: str, prefix: str, path: str
) -> tuple[str, Callable[[], IncrementalResult]]:
    """A target index ``{prefix}-copy`` with the target mapping, and a function that runs one
    incremental migration of ``alias`` into it on ``path`` (painless or python)."""
    target = f"{prefix}-copy"
    cluster.request(
        "PUT",
        f"/{target}",
        body={"settings": {"number_of_replicas": 0}, "mappings": TARGET_MAPPING},
    )
    options: dict[str, Any] = (
        {"script": PAINLESS} if path == "painless" else {"transform": transform}
    )

    def run() -> IncrementalResult:
        return Incremental(cluster, alias, target, state_index=f"{prefix}-hist", **options).run()

    return target, run
