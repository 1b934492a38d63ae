"""The migrator under faults: lost acknowledgements, stale clones, concurrent runs, routed
documents, overloaded targets, unknown throttles. All against the real node."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from esmigrate.cluster import Cluster, RetryPolicy
from esmigrate.exceptions import (
    ClusterUnavailable,
    MigrationError,
    MigrationLocked,
    RequestError,
    TooManyFailures,
)
from esmigrate.migrate import BlueGreen, Meter, ProgressEvent, adopt
from esmigrate.migrate._bluegreen_state import Journal
from esmigrate.migrate._cutover import CutOver
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._deletes import Deletes
from esmigrate.migrate._layout import is_write_blocked, resolve
from esmigrate.state import Checkpoint, Lease
from tests.fault_runs import assert_clean, fault_run, outcome
from tests.migrate_support import (
    TARGET_MAPPING,
    all_docs,
    check_final_state,
    create_source,
    diff,
    live_writer,
    migration,
    transform,
)

pytestmark = pytest.mark.integration


def bulk(cluster: Cluster, index: str, docs: dict[str, dict[str, Any]], **meta: Any) -> None:
    lines = []
    for doc_id, doc in docs.items():
        lines.append(orjson.dumps({"index": {"_index": index, "_id": doc_id, **meta}}))
        lines.append(orjson.dumps(doc))
    result = cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")
    assert not result["errors"], result


class FaultyCluster:
    """A thin wrapper that makes one kind of request fail ``times`` times: before it reaches the
    server (``applied=False``) or after the server applied it (``applied=True``, a lost answer)."""

    def __init__(
        self, cluster: Cluster, method: str, path: str, *, applied: bool, times: int = 1
    ) -> None:
        self._cluster = cluster
        self.method, self.path, self.applied = method, path, applied
        self._left = [times]  # shared with the fenced copies a migrator writes through

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def fenced(self, check: Any) -> FaultyCluster:
        fenced = FaultyCluster(
            self._cluster.fenced(check), self.method, self.path, applied=self.applied
        )
        fenced._left = self._left
        return fenced

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == self.method and path == self.path and self._left[0] > 0:
            self._left[0] -= 1
            if self.applied:
                self._cluster.request(method, path, **kwargs)
            raise ClusterUnavailable(f"{method} {path}: read timed out (injected)")
        return self._cluster.request(method, path, **kwargs)


# -- adopt ---------------------------------------------------------------------------------------


def test_adopt_after_a_failed_swap_keeps_the_writes_made_since(
    cluster: Cluster, prefix: str
) -> None:
    name = f"{prefix}-legacy"
    cluster.request(
        "PUT", f"/{name}", body={"settings": {"number_of_shards": 2, "number_of_replicas": 0}}
    )
    bulk(cluster, name, {str(i): {"v": i} for i in range(200)})
    flaky = FaultyCluster(cluster, "POST", "/_aliases", applied=False)
    with pytest.raises(ClusterUnavailable):
        adopt(flaky, name, state_index=f"{prefix}-hist")  # type: ignore[arg-type]
    assert not is_write_blocked(cluster, name)
    # Writers went back to the concrete index meanwhile.
    bulk(cluster, name, {str(i): {"v": i} for i in range(200, 260)})
    cluster.request("DELETE", f"/{name}/_doc/3", params={"refresh": "true"})
    result = adopt(cluster, name, state_index=f"{prefix}-hist")
    assert resolve(cluster, name).source == result.index
    docs = all_docs(cluster, result.index)
    assert set(docs) == {str(i) for i in range(260)} - {"3"}
    assert not is_write_blocked(cluster, result.index)


# -- blue-green: a swap applied but answered with an error ----------------------------------------


def test_swap_applied_but_reported_failed_keeps_new_writes(cluster: Cluster, prefix: str) -> None:
    alias, source, initial = create_source(cluster, prefix, 500)
    flaky = FaultyCluster(cluster, "POST", "/_aliases", applied=True)
    options: dict[str, Any] = {
        "settings": {"number_of_replicas": 0},
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
        "transform": transform,
    }
    migration = BlueGreen(flaky, alias, TARGET_MAPPING, **options)  # type: ignore[arg-type]
    # The lost answer is recognised: the alias points at the target, so the run is done.
    assert migration.run().target == resolve(cluster, alias).source
    target = Checkpoint(cluster, f"{prefix}-hist", f"blue-green:{alias}").load()["target"]
    assert resolve(cluster, alias).source == target
    assert not is_write_blocked(cluster, source)
    # The aliases moved: writers now write to the target.
    fresh = {f"new{i}": {"title": "t", "n": i, "n2": 2 * i, "code": "c1"} for i in range(50)}
    bulk(cluster, alias, fresh)
    result = BlueGreen(cluster, alias, TARGET_MAPPING, **options).run()
    assert result.target == target
    expected = {i: transform(json.loads(json.dumps(d))) for i, d in initial.items()}
    expected.update(fresh)
    assert diff(expected, all_docs(cluster, target)) == {}
    assert Checkpoint(cluster, f"{prefix}-hist", f"blue-green:{alias}").load()["phase"] == "done"


def test_reconcile_refuses_when_the_target_takes_writes(cluster: Cluster, prefix: str) -> None:
    alias, _source, _ = create_source(cluster, prefix, 100)
    options: dict[str, Any] = {
        "settings": {"number_of_replicas": 0},
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
    }
    done = BlueGreen(cluster, alias, TARGET_MAPPING, **options).run()
    _, journal = Journal.load(Checkpoint(cluster, f"{prefix}-hist", f"blue-green:{alias}"))
    assert journal is not None
    dead = DeadLetters(cluster, f"{prefix}-dl", f"blue-green:{alias}")
    lease = Lease.for_migration(cluster, f"{prefix}-hist", f"blue-green:{alias}")
    cutover = CutOver(cluster, journal, lease=lease, dead=dead, emit=lambda *a, **k: None)
    deletes = Deletes(
        cluster, journal, dead=dead, meter=lambda *a, **k: Meter("x", None), is_live=cutover.is_live
    )
    with pytest.raises(MigrationError, match="write index"):
        deletes.reconcile(exact=True)
    assert cluster.count(done.target) == 100


# -- two processes, one migration -----------------------------------------------------------------


def test_a_second_run_of_the_same_migration_is_refused_and_names_the_holder(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 3000)
    cfg: dict[str, Any] = {
        "url": cluster_url,
        "alias": alias,
        "path": "python",
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
    }
    second: list[BaseException | None] = []
    seen_blocked: list[bool] = []

    def run_second() -> None:
        seen_blocked.append(is_write_blocked(cluster, source))
        try:
            BlueGreen(
                cluster,
                alias,
                TARGET_MAPPING,
                settings={"number_of_replicas": 0},
                transform=transform,
                state_index=cfg["state_index"],
                dead_letter_index=cfg["dead_letter_index"],
                lock_timeout=0,
            ).run()
            second.append(None)
        except BaseException as exc:
            second.append(exc)

    def on_progress(event: ProgressEvent) -> None:
        # A job restart while the first run is in its final round, under the write block.
        if event.phase == "blocked" and not second:
            thread = threading.Thread(target=run_second)
            thread.start()
            thread.join()

    writer = live_writer(cluster_url, alias, len(initial))
    try:
        writer.wait_for(50)
        result = migration(cluster, cfg, on_progress).run()
        writer.wait_for(50, index=result.target)
    finally:
        writer.stop()
        ops = writer.operations()
    assert seen_blocked == [True]
    assert isinstance(second[0], MigrationLocked), second
    assert second[0].pid == os.getpid()
    assert "being run by another process" in str(second[0])
    check_final_state(cluster, alias, source, result.target, initial, ops)
    # The lease is released: a later run finds the migration done.
    again = migration(cluster, cfg).run()
    assert again.already_done


# -- painless from a rule set ---------------------------------------------------------------------

BLOG_DOCS: list[dict[str, Any]] = [
    {
        "title": "  How to  build an <b>API</b> ",
        "content": "Step by step #python #API guide",
        "author": "ann",
        "created_date": "2023-01-05",
    },
    {"title": "Release notes", "content": "", "author": "bob", "created_date": "2023-02-01"},
    {"title": "Untitled", "author": "cy", "created_date": "2023-03-01"},
    {"title": "Tips", "content": "#a #b #c #d #e #f #g", "published_date": "2024-01-01"},
]


def test_a_rule_set_compiled_to_painless_runs_as_the_blue_green_script(
    cluster: Cluster, prefix: str
) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "blog"
    sys.path.insert(0, str(example))
    try:
        import blog_schema
    finally:
        sys.path.remove(str(example))
    rules = blog_schema.server_side("1.0")
    script = rules.painless()
    assert script is not None
    assert script["source"].lstrip().startswith(("boolean", "def"))
    targets = {}
    for path in ("painless", "python"):
        alias = f"{prefix}-blog-{path}"
        index = f"{alias}-v1"
        cluster.request(
            "PUT",
            f"/{index}",
            body={"settings": {"number_of_replicas": 0}, "aliases": {alias: {}}},
        )
        bulk(cluster, index, {f"p{i}": doc for i, doc in enumerate(BLOG_DOCS * 50)})
        options: dict[str, Any] = {"script": script} if path == "painless" else {"transform": rules}
        result = BlueGreen(
            cluster,
            alias,
            {"properties": {"title": {"type": "text"}, "author": {"type": "keyword"}}},
            settings={"number_of_replicas": 0},
            state_index=f"{prefix}-hist",
            dead_letter_index=f"{prefix}-dl",
            **options,
        ).run()
        assert result.failures == 0
        targets[path] = all_docs(cluster, result.target)
    assert len(targets["python"]) == len(BLOG_DOCS) * 50
    assert diff(targets["python"], targets["painless"]) == {}
    assert targets["painless"]["p0"]["tags"] == ["python", "API"]


# -- validation of object fields ------------------------------------------------------------------


def test_object_fields_pass_the_mapping_check(cluster: Cluster, prefix: str) -> None:
    alias, _, initial = create_source(cluster, prefix, 200)
    mappings = {
        "properties": {
            **TARGET_MAPPING["properties"],
            "meta": {"type": "object", "properties": {"lang": {"type": "keyword"}}},
        }
    }
    result = BlueGreen(
        cluster,
        alias,
        mappings,
        settings={"number_of_replicas": 0},
        transform=transform,
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
    ).run()
    assert cluster.count(result.target) == len(initial)
    assert resolve(cluster, alias).source == result.target


# -- custom routing -------------------------------------------------------------------------------


@pytest.mark.engine_matrix
@pytest.mark.parametrize("path", ["reindex", "python"])
def test_custom_routing_with_dead_letters_validates(
    cluster: Cluster, prefix: str, path: str
) -> None:
    alias = f"{prefix}-routed"
    index = f"{alias}-v1"
    cluster.request(
        "PUT",
        f"/{index}",
        body={
            "settings": {"number_of_shards": 3, "number_of_replicas": 0},
            "mappings": {"_routing": {"required": True}, "properties": {"n": {"type": "long"}}},
            "aliases": {alias: {"is_write_index": True}},
        },
    )
    lines = []
    for i in range(300):
        # Routing keys chosen so that most documents live off their id's default shard.
        lines.append(orjson.dumps({"index": {"_index": index, "_id": f"r{i}", "routing": "k7"}}))
        extra = {"extra": "not a number"} if i % 50 == 0 else {"extra": i}
        lines.append(orjson.dumps({"n": i, **extra}))
    assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")["errors"]
    options: dict[str, Any] = {} if path == "reindex" else {"transform": lambda d: d}
    result = BlueGreen(
        cluster,
        alias,
        {"_routing": {"required": True}, "properties": {"extra": {"type": "long"}}},
        settings={"number_of_replicas": 0},
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        max_failures=6,
        **options,
    ).run()
    assert result.failures == 6
    assert cluster.count(result.target) == 294
    assert resolve(cluster, alias).source == result.target


# -- the failure budget stops the copy early ------------------------------------------------------


def always_fails(doc: dict[str, Any]) -> dict[str, Any]:
    raise ValueError("no")


@pytest.mark.parametrize("path", ["painless", "python"])
def test_a_transform_failing_everywhere_stops_early(
    cluster: Cluster, prefix: str, path: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 20_000)
    options: dict[str, Any] = (
        {"script": "throw new IllegalArgumentException('no');"}
        if path == "painless"
        else {"transform": always_fails}
    )
    with pytest.raises(TooManyFailures):
        BlueGreen(
            cluster,
            alias,
            TARGET_MAPPING,
            settings={"number_of_replicas": 0},
            state_index=f"{prefix}-hist",
            dead_letter_index=f"{prefix}-dl",
            max_failures=10,
            page_size=200,
            requests_per_second=4000 if path == "painless" else None,
            **options,
        ).run()
    cluster.refresh(f"{prefix}-dl")
    assert 10 < cluster.count(f"{prefix}-dl") < len(initial)
    assert resolve(cluster, alias).source == source
    assert not cluster.request("GET", "/_tasks", params={"actions": "*reindex"})["nodes"]


# -- overload is not a bad document; throttle needs a known migration ----------------------------


class AlwaysRejecting:
    """Answers 429 for every other bulk item, forever."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def bulk(self, body: bytes, *, refresh: str | bool | None = None) -> dict[str, Any]:
        lines = body.splitlines()
        pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines), 2)]
        kept = [p for n, p in enumerate(pairs) if n % 2 == 0]
        result = self._cluster.bulk(b"\n".join(b"\n".join(p) for p in kept) + b"\n")
        real = iter(result["items"])
        error = {"type": "es_rejected_execution_exception", "reason": "queue full"}
        return {
            "errors": True,
            "items": [
                next(real) if n % 2 == 0 else {"index": {"status": 429, "error": error}}
                for n in range(len(pairs))
            ],
        }


def test_rejections_outlasting_the_retries_stop_resumably(cluster: Cluster, prefix: str) -> None:
    from esmigrate.migrate._deadletters import DeadLetters
    from esmigrate.migrate._python_copy import CopyStats, PythonCopier
    from esmigrate.migrate._shards import checkpoints

    _, source, _ = create_source(cluster, prefix, 300, shards=1)
    target = f"{prefix}-t"
    cluster.request("PUT", f"/{target}", body={"settings": {"number_of_replicas": 0}})
    dead = DeadLetters(cluster, f"{prefix}-dl", "m")
    dead.ensure()
    copier = PythonCopier(
        AlwaysRejecting(cluster),  # type: ignore[arg-type]
        source,
        target,
        None,
        dead,
        page=100,
        retry=RetryPolicy(retries=1, base=0.01),
    )
    cursors: list[int] = []
    with pytest.raises(RequestError) as refused:
        copier.copy_shard(
            0, -1, checkpoints(cluster, source)[0], CopyStats(), on_cursor=cursors.append
        )
    assert refused.value.status == 429
    assert dead.count() == 0
    assert cursors == []  # nothing flushed: a rerun starts from the beginning


def test_throttle_of_an_unknown_migration_names_the_known_ones(
    cluster: Cluster, prefix: str
) -> None:
    from esmigrate.migrate import throttle

    Checkpoint(cluster, f"{prefix}-hist", "blue-green:x").save(phase="copy")
    with pytest.raises(MigrationError, match="blue-green:x"):
        throttle(cluster, "blue-green:typo", 100, state_index=f"{prefix}-hist")
    cluster.refresh(f"{prefix}-hist")
    assert (
        not cluster.exists(f"{prefix}-hist")
        or cluster.count(f"{prefix}-hist", {"term": {"kind": "throttle"}}) == 0
    )


# -- a crash between recording the copy phase and creating the target -----------------------------


def test_target_creation_lost_is_redone_on_resume(cluster: Cluster, prefix: str) -> None:
    alias, _, initial = create_source(cluster, prefix, 300)
    target = f"{prefix}-posts-new"
    options: dict[str, Any] = {
        "settings": {"number_of_replicas": 0},
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
        "target": target,
        "transform": transform,
    }
    flaky = FaultyCluster(cluster, "PUT", f"/{target}", applied=False)
    with pytest.raises(ClusterUnavailable):
        BlueGreen(flaky, alias, TARGET_MAPPING, **options).run()  # type: ignore[arg-type]
    assert Checkpoint(cluster, f"{prefix}-hist", f"blue-green:{alias}").load()["phase"] == "copy"
    result = BlueGreen(cluster, alias, TARGET_MAPPING, **options).run()
    assert result.resumed
    expected = {i: transform(json.loads(json.dumps(d))) for i, d in initial.items()}
    assert diff(expected, all_docs(cluster, target)) == {}


# -- a write-blocked target (the flood-stage disk watermark) --------------------------------------


@pytest.mark.engine_matrix
@pytest.mark.faults
@pytest.mark.parametrize("path", ["painless", "python"])
def test_a_write_blocked_target_stops_the_copy_and_the_next_run_resumes(
    cluster: Cluster, prefix: str, path: str
) -> None:
    alias, source, docs = create_source(cluster, prefix, 3000)
    cfg = {
        "alias": alias,
        "path": path,
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
        "rps": 300,  # a copy of ~10 s: the block lands while it runs
        "page_size": 100,
    }
    blocked: list[str] = []

    def flood_stage(event: ProgressEvent) -> None:
        # What the cluster does when a node passes the flood-stage watermark: every index with a
        # shard there gets read_only_allow_delete.
        if event.phase == "copy" and not blocked:
            target = next(
                i["index"]
                for i in cluster.request("GET", "/_cat/indices", params={"format": "json"})
                if i["index"].startswith(f"{alias}-v2")
            )
            cluster.request(
                "PUT", f"/{target}/_settings", body={"index.blocks.read_only_allow_delete": True}
            )
            blocked.append(target)

    with fault_run("pressure", f"flood-stage-{path}") as run:
        run.set(faults=1, runs=2)
        with pytest.raises(RequestError) as refused:
            migration(cluster, cfg, on_progress=flood_stage).run()
        assert blocked
        assert refused.value.error_type == "cluster_block_exception"
        assert "flood-stage disk watermark" in (refused.value.hint or "")
        assert resolve(cluster, alias).source == source  # the application still reads the source
        assert not is_write_blocked(cluster, source)
        assert not cluster.exists(f"{prefix}-dl") or cluster.count(f"{prefix}-dl") == 0

        cluster.request(
            "PUT", f"/{blocked[0]}/_settings", body={"index.blocks.read_only_allow_delete": None}
        )
        result = migration(cluster, cfg).run()
        assert result.resumed
        found = outcome(cluster, alias, source, result.target, docs, [])
        run.measured(found, 0.0, faults=1, runs=2)
        assert_clean(found)
        check_final_state(cluster, alias, source, result.target, docs, [])
