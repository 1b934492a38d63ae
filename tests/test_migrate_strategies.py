"""Blue-green faults (dead letters, failure budget, validation gate, preflight errors), in-place
with a live writer, incremental, adopt, throttle and plans — all against the real node."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import PreflightError, TooManyFailures, ValidationFailed
from esmigrate.migrate import (
    BlueGreen,
    Incremental,
    InPlace,
    ProgressEvent,
    adopt,
    describe_plan,
    throttle,
)
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._layout import is_write_blocked, resolve
from esmigrate.migrate._validate import Validation, scratch_name
from esmigrate.preflight import check_health
from esmigrate.state import Checkpoint
from tests.conftest import run_cli
from tests.migrate_support import (
    PAINLESS,
    SOURCE_MAPPING,
    TARGET_MAPPING,
    all_docs,
    create_source,
    diff,
    expected_state,
    incremental_runs,
    live_writer,
    transform,
)

pytestmark = pytest.mark.integration


def bulk(cluster: Cluster, index: str, docs: dict[str, dict[str, Any]]) -> None:
    lines = []
    for doc_id, doc in docs.items():
        lines.append(orjson.dumps({"index": {"_index": index, "_id": doc_id}}))
        lines.append(orjson.dumps(doc))
    result = cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")
    assert not result["errors"]


def blue_green(cluster: Cluster, prefix: str, alias: str, **options: Any) -> BlueGreen:
    options.setdefault("settings", {"number_of_replicas": 0})
    return BlueGreen(
        cluster,
        alias,
        options.pop("mappings", TARGET_MAPPING),
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        **options,
    )


# -- dead letters and the failure budget --------------------------------------------------------

FAILING_PAINLESS = (
    "if (ctx._source.code % 100 == 0) { throw new IllegalArgumentException('bad code ' + "
    "ctx._source.code); }\n" + PAINLESS
)


def failing_transform(doc: dict[str, Any]) -> dict[str, Any]:
    code = doc["code"]
    transform(doc)  # changes its argument before it fails
    if code % 100 == 0:
        raise ValueError(f"bad code {code}")
    return doc


@pytest.mark.engine_matrix
@pytest.mark.parametrize("path", ["painless", "python"])
def test_transform_failures_are_dead_lettered_and_stop_the_cut_over(
    cluster: Cluster, prefix: str, path: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 2000)
    options: dict[str, Any] = (
        {"script": FAILING_PAINLESS} if path == "painless" else {"transform": failing_transform}
    )
    with pytest.raises(TooManyFailures) as refused:
        blue_green(cluster, prefix, alias, **options).run()
    # The budget stops the copy as soon as it is exceeded: how many of the 20 were met by then
    # depends on the machine's speed.
    assert 0 < refused.value.failures <= 20
    assert "bad code" in str(refused.value)
    assert resolve(cluster, alias).source == source
    assert not is_write_blocked(cluster, source)
    cluster.refresh(f"{prefix}-dl")
    hits = cluster.search(f"{prefix}-dl", {"size": 100})["hits"]["hits"]
    # The report counts those dead-lettered when the budget was checked; a task being
    # cancelled may still add a few.
    assert refused.value.failures <= len(hits) <= 20
    entry = hits[0]["_source"]
    # The original, before the transform touched it.
    assert entry["source"] == initial[entry["id"]]
    assert f"bad code {initial[entry['id']]['code']}" in entry["reason"]
    assert entry["stage"] == "transform"
    # An operator accepts them: the same migration resumes and completes.
    result = blue_green(cluster, prefix, alias, max_failures=20, **options).run()
    assert result.resumed
    assert result.failures == 20
    expected = {
        i: transform(json.loads(json.dumps(d))) for i, d in initial.items() if d["code"] % 100 != 0
    }
    assert diff(expected, all_docs(cluster, result.target)) == {}


@pytest.mark.engine_matrix
@pytest.mark.parametrize("path", ["reindex", "python"])
def test_mapping_rejections_are_dead_lettered(cluster: Cluster, prefix: str, path: str) -> None:
    alias, source, initial = create_source(cluster, prefix, 1500)
    bad = {f"d{i}": {**initial[f"d{i}"], "extra": "not a number"} for i in range(0, 1500, 300)}
    bulk(cluster, source, bad)
    initial.update(bad)
    mappings = {"properties": {**TARGET_MAPPING["properties"], "extra": {"type": "long"}}}
    options: dict[str, Any] = {"mappings": mappings}

    def touch(doc: dict[str, Any]) -> dict[str, Any]:
        doc["seen"] = 1  # in place: the dead letter must keep the original all the same
        return doc

    if path == "python":
        options["transform"] = touch
    with pytest.raises(TooManyFailures) as refused:
        blue_green(cluster, prefix, alias, **options).run()
    assert refused.value.failures >= 1
    assert not is_write_blocked(cluster, source)
    result = blue_green(cluster, prefix, alias, max_failures=5, **options).run()
    assert result.failures == 5
    cluster.refresh(f"{prefix}-dl")
    entries = cluster.search(f"{prefix}-dl", {"size": 10})["hits"]["hits"]
    assert {h["_source"]["id"] for h in entries} == set(bad)
    assert all("parse" in h["_source"]["reason"] for h in entries)
    assert all(h["_source"]["source"] == initial[h["_source"]["id"]] for h in entries)
    seen = {"seen": 1} if path == "python" else {}
    expected = {i: {**d, **seen} for i, d in initial.items() if i not in bad}
    assert diff(expected, all_docs(cluster, result.target)) == {}


# -- the validation gate -------------------------------------------------------------------------


def test_failed_validation_leaves_aliases_and_lifts_the_block(
    cluster: Cluster, prefix: str
) -> None:
    alias, source, _ = create_source(cluster, prefix, 500)
    calls = iter(range(10**9))

    def unstable(doc: dict[str, Any]) -> dict[str, Any]:
        doc["stamp"] = next(calls)  # not a pure function: the sample cannot match
        return doc

    migration = blue_green(cluster, prefix, alias, transform=unstable)
    with pytest.raises(ValidationFailed) as failed:
        migration.run()
    assert {d["check"] for d in failed.value.differences} == {"sample"}
    assert resolve(cluster, alias).source == source
    assert not is_write_blocked(cluster, source)
    state = Checkpoint(cluster, f"{prefix}-hist", migration.id).load()
    assert state["phase"] == "catchup"


@pytest.mark.parametrize("path", ["painless", "python"])
def test_an_empty_source_migrates_with_its_gate(cluster: Cluster, prefix: str, path: str) -> None:
    """Nothing to sample: the gate checks the counts and the mapping and cuts over."""
    alias, source, _ = create_source(cluster, prefix, 0)
    options: dict[str, Any] = (
        {"script": PAINLESS} if path == "painless" else {"transform": transform}
    )
    result = blue_green(cluster, prefix, alias, **options).run()
    assert resolve(cluster, alias).source == result.target != source
    assert cluster.count(result.target) == 0


def test_the_gate_compares_its_sample_as_the_source_holds_it_under_the_block(
    cluster: Cluster, prefix: str
) -> None:
    """The sample is drawn (and transformed) before the block; a sampled document written
    since is transformed again, one deleted since is left out, and a stale copy in the target
    is still found."""
    _, source, docs = create_source(cluster, prefix, 40)
    target = f"{prefix}-n"
    cluster.request(
        "PUT",
        f"/{target}",
        body={"settings": {"number_of_replicas": 0}, "mappings": TARGET_MAPPING},
    )
    bulk(cluster, target, {i: transform(json.loads(json.dumps(d))) for i, d in docs.items()})
    gate = Validation(
        cluster,
        source=source,
        target=target,
        mappings=TARGET_MAPPING,
        dead=DeadLetters(cluster, f"{prefix}-dl", "m"),
        transform=transform,
        sample_size=40,
    )
    gate.prepare()  # draws all 40
    # Written after the draw, copied as a migration's rounds would: no false difference.
    changed = {"d1": {**docs["d1"], "title": "  Changed After The Draw "}}
    bulk(cluster, source, changed)
    bulk(cluster, target, {"d1": transform(json.loads(json.dumps(changed["d1"])))})
    for index in (source, target):
        cluster.request("DELETE", f"/{index}/_doc/d2", params={"refresh": "true"})
    gate.check()
    # Written again in the source only: the target's copy is stale, and the gate says so.
    bulk(cluster, source, {"d1": {**docs["d1"], "title": "newest"}})
    with pytest.raises(ValidationFailed) as failed:
        gate.check()
    assert [(d["check"], d["id"]) for d in failed.value.differences] == [("sample", "d1")]
    assert failed.value.differences[0]["expected"]["title"] == "newest"


def test_the_painless_gates_scratch_index_is_hidden_from_the_applications_wildcards(
    cluster: Cluster, prefix: str
) -> None:
    """While the gate runs the painless transform on its sample, a search over the
    application's indices (``prefix-*``) finds each document once per index it migrates
    between, and no scratch index; the scratch is gone after the cut-over."""
    alias, source, _ = create_source(cluster, prefix, 50)
    target = f"{alias}-v2"
    scratch = scratch_name(target)
    seen: list[dict[str, Any]] = []

    def on_progress(event: ProgressEvent) -> None:
        if event.phase != "blocked" or seen:
            return
        settings = cluster.request("GET", f"/{scratch}/_settings", params={"flat_settings": "true"})
        listed = cluster.request("GET", f"/_cat/indices/{prefix}-*", params={"format": "json"})
        seen.append(
            {
                "hidden": settings[scratch]["settings"].get("index.hidden"),
                "listed": sorted(r["index"] for r in listed),
            }
        )

    result = blue_green(
        cluster, prefix, alias, script=PAINLESS, target=target, on_progress=on_progress
    ).run()
    assert seen, "the run reached the write block"
    assert seen[0]["hidden"] == "true"
    listed = set(seen[0]["listed"])
    assert (
        {source, result.target}
        <= listed
        <= {
            source,
            result.target,
            f"{prefix}-hist",
            f"{prefix}-dl",
        }
    )
    assert not cluster.exists(scratch_name(result.target))


# -- preflight ------------------------------------------------------------------------------------


def test_preflight_errors_before_anything_is_written(cluster: Cluster, prefix: str) -> None:
    def problem(name: str, **options: Any) -> str:
        with pytest.raises(PreflightError) as err:
            blue_green(cluster, prefix, name, **options).run()
        assert err.value.hint
        return err.value.problem

    assert problem(f"{prefix}-nothing") == "source_missing"
    cluster.request("PUT", f"/{prefix}-plain", body={"settings": {"number_of_replicas": 0}})
    assert problem(f"{prefix}-plain") == "not_an_alias"
    for n in (1, 2):
        cluster.request(
            "PUT",
            f"/{prefix}-multi-{n}",
            body={"settings": {"number_of_replicas": 0}, "aliases": {f"{prefix}-multi": {}}},
        )
    assert problem(f"{prefix}-multi") == "alias_ambiguous"
    alias, _, _ = create_source(cluster, prefix, 10)
    cluster.request(
        "PUT",
        f"/{prefix}-taken",
        body={
            "mappings": {"properties": {"code": {"type": "long"}}},
            "settings": {"number_of_replicas": 0},
        },
    )
    assert problem(alias, target=f"{prefix}-taken") == "target_exists"
    assert problem(alias, script=PAINLESS, transform=transform) == "two_transforms"
    cluster.request(
        "PUT",
        f"/{prefix}-nosrc-v1",
        body={
            "settings": {"number_of_replicas": 0},
            "mappings": {"_source": {"enabled": False}},
            "aliases": {f"{prefix}-nosrc": {}},
        },
    )
    assert problem(f"{prefix}-nosrc") == "source_disabled"
    # Writes waiting for one copy more than the cluster has data nodes could never be done.
    nodes = cluster.health()["number_of_data_nodes"]
    too_many = {"number_of_replicas": nodes, "index.write.wait_for_active_shards": "all"}
    assert problem(alias, settings=too_many) == "write_copies"
    # More copies than the index will have, or not a number of copies: refused now, not by
    # the engine after the copy (the new index is loaded with one copy).
    more = {"number_of_replicas": 0, "index.write.wait_for_active_shards": 2}
    assert problem(alias, settings=more) == "write_copies"
    assert problem(alias, settings={"index.write.wait_for_active_shards": "many"}) == "write_copies"
    # Nothing was created by the refused attempts, not even the state index.
    rows = cluster.request(
        "GET", f"/_cat/indices/{prefix}*", params={"format": "json", "h": "index"}
    )
    assert not [r for r in rows if "-v2-" in r["index"] or r["index"].endswith("-dl")]
    assert not cluster.exists(f"{prefix}-hist")


def test_a_refused_first_run_of_in_place_or_incremental_creates_no_state_index(
    cluster: Cluster, prefix: str
) -> None:
    state = f"{prefix}-hist"
    with pytest.raises(PreflightError) as err:
        InPlace(cluster, f"{prefix}-nothing", {"properties": {}}, state_index=state).run()
    assert err.value.problem == "source_missing"
    with pytest.raises(PreflightError) as err:
        Incremental(cluster, f"{prefix}-nothing", f"{prefix}-new", state_index=state).run()
    assert err.value.problem == "source_missing"
    assert not cluster.exists(state)


def test_a_template_that_would_alias_the_new_index_is_refused(
    cluster: Cluster, prefix: str
) -> None:
    """A template matching ``{alias}-*`` with the read alias would put the half-copied new index
    behind the alias at its creation: refused before anything is written."""
    alias, source, _ = create_source(cluster, prefix, 10)
    template = f"{prefix}-tpl"
    cluster.request(
        "PUT",
        f"/_index_template/{template}",
        body={"index_patterns": [f"{alias}-*"], "template": {"aliases": {alias: {}}}},
    )
    try:
        with pytest.raises(PreflightError) as err:
            blue_green(cluster, prefix, alias).run()
        assert err.value.problem == "template_aliases"
        assert alias in err.value.message
        assert resolve(cluster, alias).source == source
        rows = cluster.request(
            "GET", f"/_cat/indices/{alias}-*", params={"format": "json", "h": "index"}
        )
        assert [r["index"] for r in rows] == [source]
    finally:
        cluster.request("DELETE", f"/_index_template/{template}")


def test_a_red_index_elsewhere_does_not_stop_a_migration(cluster: Cluster, prefix: str) -> None:
    """The cluster is red because of an index the migration does not touch: the migration runs
    (``esmigrate preflight`` reports it as a warning naming the red index)."""
    alias, _, docs = create_source(cluster, prefix, 10)
    other = f"{prefix}-unassignable"
    cluster.request(
        "PUT",
        f"/{other}",
        params={"wait_for_active_shards": "0"},
        body={
            "settings": {
                "number_of_replicas": 0,
                "index.routing.allocation.require._name": "no-such-node",
            }
        },
    )
    try:
        assert cluster.health()["status"] == "red"
        found = check_health(cluster, [alias])
        assert found.status == "warn"
        assert other in found.detail
        assert check_health(cluster, [other]).status == "fail"
        assert check_health(cluster).status == "fail"
        result = blue_green(cluster, prefix, alias).run()
        assert resolve(cluster, alias).source == result.target
        assert cluster.count(alias) == len(docs)
    finally:
        cluster.request("DELETE", f"/{other}")


# -- plan, throttle --------------------------------------------------------------------------------


def test_plan_describes_indices_aliases_and_requests(cluster: Cluster, prefix: str) -> None:
    alias, source, _ = create_source(cluster, prefix, 10)
    ops = blue_green(cluster, prefix, alias, script=PAINLESS).plan()
    kinds = [op.kind for op in ops]
    assert kinds[:2] == ["preflight", "create_index"]
    assert "swap_aliases" in kinds
    assert kinds.index("write_block") < kinds.index("validate") < kinds.index("swap_aliases")
    text = describe_plan(ops)
    assert source in text
    assert "POST /_aliases" in text
    assert "_block/write" in text
    assert not cluster.exists(ops[1].requests[0].path.strip("/"))  # plan wrote nothing


def test_throttle_rethrottles_the_running_copy(cluster: Cluster, prefix: str) -> None:
    alias, _, initial = create_source(cluster, prefix, 3000)
    answers: list[dict[str, Any]] = []
    migration: BlueGreen

    def on_progress(event: ProgressEvent) -> None:
        if event.phase == "copy" and not answers:
            answers.append(throttle(cluster, migration.id, None, state_index=f"{prefix}-hist"))

    # At 50 docs/s the copy would take a minute; the throttle lifts it at the first poll.
    migration = blue_green(
        cluster, prefix, alias, script=PAINLESS, requests_per_second=50, on_progress=on_progress
    )
    result = migration.run()
    assert answers
    # The copy's tasks, one per shard of the source (each bounded by its checkpoint): those
    # started by the first progress report.
    assert 1 <= len(answers[0]["tasks"]) <= 2
    expected = {i: transform(json.loads(json.dumps(d))) for i, d in initial.items()}
    assert diff(expected, all_docs(cluster, result.target)) == {}


def test_cancel_stops_cleanly_and_resumes(cluster: Cluster, prefix: str) -> None:
    alias, source, initial = create_source(cluster, prefix, 3000)
    cancel = threading.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.phase == "copy" and event.done >= 500:
            cancel.set()

    from esmigrate.exceptions import MigrationCancelled

    with pytest.raises(MigrationCancelled):
        blue_green(
            cluster,
            prefix,
            alias,
            transform=transform,
            page_size=100,
            cancel=cancel,
            on_progress=on_progress,
        ).run()
    assert resolve(cluster, alias).source == source
    result = blue_green(cluster, prefix, alias, transform=transform).run()
    assert result.resumed
    expected = {i: transform(json.loads(json.dumps(d))) for i, d in initial.items()}
    assert diff(expected, all_docs(cluster, result.target)) == {}


def test_finished_migration_is_not_run_twice(cluster: Cluster, prefix: str) -> None:
    alias, _, _ = create_source(cluster, prefix, 100)
    first = blue_green(cluster, prefix, alias, transform=transform).run()
    again = blue_green(cluster, prefix, alias, transform=transform).run()
    assert again.already_done
    assert again.target == first.target


# -- in-place -------------------------------------------------------------------------------------


@pytest.mark.engine_matrix
def test_in_place_backfill_with_a_live_writer(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str
) -> None:
    alias, source, initial = create_source(cluster, prefix, 20_000)
    writer = live_writer(cluster_url, alias, len(initial), with_n2=True)
    try:
        writer.wait_for(100)
        result = InPlace(
            cluster,
            alias,
            {
                "properties": {
                    # long: the writer (the new application) may add n2 before the mapping does.
                    "n2": {"type": "long"},
                    "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                }
            },
            backfill="ctx._source.n2 = ctx._source.n * 2",
            state_index=f"{prefix}-hist",
            requests_per_second=8000,
        ).run()
        writer.wait_for(writer.count() + 100)
    finally:
        writer.stop()
        ops = writer.operations()
    assert result.rounds >= 1
    model = expected_state(initial, ops, source, "-", fn=lambda d: d)
    expected = {i: d if "n2" in d else {**d, "n2": d["n"] * 2} for i, d in model.items()}
    assert diff(expected, all_docs(cluster, source)) == {}
    # The new sub-field is indexed on every document.
    assert cluster.count(source, {"exists": {"field": "title.raw"}}) == len(expected)


def test_in_place_refuses_a_breaking_change(cluster: Cluster, prefix: str) -> None:
    alias, _, _ = create_source(cluster, prefix, 10)
    with pytest.raises(PreflightError) as err:
        InPlace(
            cluster,
            alias,
            {"properties": {"code": {"type": "keyword"}}},
            state_index=f"{prefix}-hist",
        ).run()
    assert err.value.problem == "not_additive"
    assert "code" in str(err.value)
    assert "blue-green" in str(err.value)


# -- incremental ----------------------------------------------------------------------------------


@pytest.mark.engine_matrix
@pytest.mark.parametrize("path", ["painless", "python"])
def test_incremental_copies_only_what_changed(cluster: Cluster, prefix: str, path: str) -> None:
    alias, source, docs = create_source(cluster, prefix, 3000)
    target, run = incremental_runs(cluster, alias, prefix, path)

    assert run().copied == 3000
    changed = {f"d{i}": {**docs[f"d{i}"], "n": 1} for i in range(0, 3000, 30)}
    changed.update(
        {f"new{i}": {"title": "new", "n": i, "code": 10**6 + i, "body": "b"} for i in range(50)}
    )
    bulk(cluster, source, changed)
    docs.update(changed)
    # Deletes are carried too: old documents, a changed one and a new one.
    gone = [f"d{i}" for i in range(7, 3000, 300)] + ["d30", "new3"]
    lines = [orjson.dumps({"delete": {"_index": source, "_id": i}}) for i in gone]
    assert not cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")["errors"]
    for i in gone:
        del docs[i]
    second = run()
    # The painless path reads a superset (one lower bound for all shards); never fewer.
    changed_left = len(changed) - 2
    assert second.copied == changed_left if path == "python" else second.copied >= changed_left
    assert second.deleted == len(gone) - 1  # new3 never reached the target
    expected = {i: transform(json.loads(json.dumps(d))) for i, d in docs.items()}
    assert diff(expected, all_docs(cluster, target)) == {}
    third = run()
    assert third.deleted == 0
    assert third.copied == 0 or path == "painless"


@pytest.mark.engine_matrix
def test_incremental_by_timestamp(cluster: Cluster, prefix: str) -> None:
    source, target = f"{prefix}-ts", f"{prefix}-ts2"
    mapping = {"properties": {"at": {"type": "date"}, "v": {"type": "integer"}}}
    for name in (source, target):
        cluster.request(
            "PUT", f"/{name}", body={"settings": {"number_of_replicas": 0}, "mappings": mapping}
        )
    bulk(cluster, source, {str(i): {"at": f"2024-01-01T00:00:{i:02d}Z", "v": i} for i in range(30)})
    inc = Incremental(cluster, source, target, since_field="at", state_index=f"{prefix}-hist")
    assert inc.run().copied == 30
    bulk(cluster, source, {"40": {"at": "2024-01-02T00:00:00Z", "v": 40}})
    second = Incremental(
        cluster, source, target, since_field="at", state_index=f"{prefix}-hist"
    ).run()
    assert second.copied == 2  # the new one, and the one sharing the previous boundary value
    assert cluster.count(target) == 31


# -- adopt ---------------------------------------------------------------------------------------


@pytest.mark.engine_matrix
def test_adopt_with_a_live_writer(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str
) -> None:
    name = f"{prefix}-legacy"
    cluster.request(
        "PUT",
        f"/{name}",
        body={
            "settings": {"number_of_shards": 2, "number_of_replicas": 0},
            "mappings": SOURCE_MAPPING,
        },
    )
    from tests.migrate_support import make_doc

    initial = {f"d{i}": make_doc(i) for i in range(3000)}
    bulk(cluster, name, initial)
    writer = live_writer(cluster_url, name, len(initial))
    try:
        writer.wait_for(100)
        result = adopt(cluster, name, state_index=f"{prefix}-hist")
        writer.wait_for(100, index=result.index)
    finally:
        writer.stop()
        ops = writer.operations()
    assert resolve(cluster, name).source == result.index
    assert not is_write_blocked(cluster, result.index)
    assert "alias" in result.explanation
    expected = expected_state(initial, ops, name, result.index, fn=lambda d: d)
    assert diff(expected, all_docs(cluster, result.index)) == {}
    assert adopt(cluster, name, state_index=f"{prefix}-hist").already
    # And the adopted layout migrates.
    migrated = blue_green(cluster, prefix, name, transform=transform).run()
    assert resolve(cluster, name).source == migrated.target


def test_adopt_resumes_after_a_crash_with_the_block_on(cluster: Cluster, prefix: str) -> None:
    name = f"{prefix}-legacy2"
    cluster.request("PUT", f"/{name}", body={"settings": {"number_of_replicas": 0}})
    bulk(cluster, name, {str(i): {"v": i} for i in range(100)})
    # A dead run: checkpoint written, block on, clone not made.
    state = Checkpoint(cluster, f"{prefix}-hist", f"adopt:{name}")
    state.load()
    state.save(strategy="adopt", phase="blocking", index=name, clone=f"{name}-v1-1")
    cluster.request("PUT", f"/{name}/_block/write")
    result = adopt(cluster, name, state_index=f"{prefix}-hist")
    assert result.index == f"{name}-v1-1"
    assert cluster.count(name) == 100
    assert not is_write_blocked(cluster, result.index)


def test_cli_adopt(cluster: Cluster, prefix: str, cluster_url: str, tmp_path: Path) -> None:
    import subprocess

    project = tmp_path / "esmigrate.toml"
    project.write_text(f'[esmigrate]\nhistory_index = "{prefix}-hist"\n')
    name = f"{prefix}-cli"
    cluster.request("PUT", f"/{name}", body={"settings": {"number_of_replicas": 0}})
    bulk(cluster, name, {str(i): {"v": i} for i in range(10)})
    env_args = ["--url", cluster_url]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        # Only the project file and the PATH: no ESMIGRATE_* variable of the test run.
        env = {"ESMIGRATE_CONFIG": str(project), "PATH": "/usr/bin:/bin"}
        return run_cli(*args, *env_args, env=env)

    planned = cli("adopt", name, "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "_clone" in planned.stdout
    assert not resolve_alias_exists(cluster, name)
    done = cli("adopt", name)
    assert done.returncode == 0, done.stderr
    assert "alias" in done.stdout
    assert resolve(cluster, name).source.startswith(f"{name}-v1-")
    assert cluster.count(name) == 10
    missing = cli("adopt", f"{prefix}-nope")
    assert missing.returncode == 1
    assert "no index called" in missing.stderr
    assert "Traceback" not in missing.stderr


def resolve_alias_exists(cluster: Cluster, name: str) -> bool:
    from esmigrate.migrate._layout import is_alias

    return is_alias(cluster, name)


def test_separate_read_and_write_aliases_move_together(cluster: Cluster, prefix: str) -> None:
    read, write = f"{prefix}-r", f"{prefix}-w"
    source = f"{prefix}-r-v1"
    cluster.request(
        "PUT",
        f"/{source}",
        body={
            "settings": {"number_of_replicas": 0},
            "mappings": SOURCE_MAPPING,
            "aliases": {read: {}, write: {"is_write_index": True}},
        },
    )
    from tests.migrate_support import make_doc

    docs = {f"d{i}": make_doc(i) for i in range(200)}
    bulk(cluster, source, docs)
    result = blue_green(cluster, prefix, read, write_alias=write, transform=transform).run()
    aliases = cluster.request("GET", f"/{result.target}/_alias")[result.target]["aliases"]
    assert set(aliases) == {read, write}
    assert aliases[write].get("is_write_index") is True
    assert cluster.request("GET", f"/{source}/_alias")[source]["aliases"] == {}
    expected = {i: transform(json.loads(json.dumps(d))) for i, d in docs.items()}
    assert diff(expected, all_docs(cluster, result.target)) == {}


def test_invalid_target_mapping_is_reported_and_not_resumed(cluster: Cluster, prefix: str) -> None:
    alias, _, _ = create_source(cluster, prefix, 10)
    with pytest.raises(PreflightError) as err:
        blue_green(
            cluster, prefix, alias, mappings={"properties": {"x": {"type": "no-such-type"}}}
        ).run()
    assert err.value.problem == "target_invalid"
    assert "no-such-type" in str(err.value)
    # The next run (fixed) starts afresh instead of resuming the failed one.
    result = blue_green(cluster, prefix, alias, transform=transform).run()
    assert not result.resumed
    assert resolve(cluster, alias).source == result.target


def test_throttle_reaches_the_python_pipeline(cluster: Cluster, prefix: str) -> None:
    alias, _, initial = create_source(cluster, prefix, 2000)
    migration: BlueGreen
    answers: list[dict[str, Any]] = []

    def on_progress(event: ProgressEvent) -> None:
        if event.phase == "copy" and not answers:
            answers.append(throttle(cluster, migration.id, None, state_index=f"{prefix}-hist"))

    # 20 docs/s would take minutes; the pipeline re-reads the throttle document and speeds up.
    migration = blue_green(
        cluster,
        prefix,
        alias,
        transform=transform,
        requests_per_second=20,
        page_size=20,
        on_progress=on_progress,
    )
    result = migration.run()
    assert answers
    assert answers[0]["tasks"] == []  # no server task: the pipeline reads the rate itself
    assert migration.bucket.rate is None
    expected = {i: transform(json.loads(json.dumps(d))) for i, d in initial.items()}
    assert diff(expected, all_docs(cluster, result.target)) == {}


class RejectingCluster:
    """A thin wrapper whose bulk answers 429 for every other item, then once for the whole
    request, for the first few calls (fault injection as elasticsearch-py does it)."""

    def __init__(self, cluster: Cluster, rejections: int) -> None:
        self._cluster = cluster
        self.rejections = rejections
        self.whole_request_refused = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def bulk(self, body: bytes, *, refresh: str | bool | None = None) -> dict[str, Any]:
        from esmigrate.exceptions import RequestError

        if self.rejections <= 0:
            return self._cluster.bulk(body, refresh=refresh)
        self.rejections -= 1
        if not self.whole_request_refused:
            self.whole_request_refused = True
            raise RequestError("POST /_bulk failed with 429", status=429)
        lines = body.splitlines()
        pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines), 2)]
        kept = [p for n, p in enumerate(pairs) if n % 2 == 0]
        result = self._cluster.bulk(b"\n".join(b"\n".join(p) for p in kept) + b"\n")
        real = iter(result["items"])
        items = []
        for n in range(len(pairs)):
            if n % 2 == 0:
                items.append(next(real))
            else:
                error = {"type": "es_rejected_execution_exception", "reason": "queue full"}
                items.append({"index": {"status": 429, "error": error}})
        return {"errors": True, "items": items}


def test_pipeline_retries_429_rejections(cluster: Cluster, prefix: str) -> None:
    from esmigrate.migrate._deadletters import DeadLetters
    from esmigrate.migrate._python_copy import CopyStats, PythonCopier
    from esmigrate.migrate._shards import checkpoints

    _, source, initial = create_source(cluster, prefix, 600, shards=1)
    target = f"{prefix}-t"
    cluster.request(
        "PUT",
        f"/{target}",
        body={"settings": {"number_of_replicas": 0}, "mappings": TARGET_MAPPING},
    )
    flaky = RejectingCluster(cluster, rejections=4)
    dead = DeadLetters(cluster, f"{prefix}-dl", "m")
    copier = PythonCopier(flaky, source, target, transform, dead, page=100, chunk_bytes=4000)  # type: ignore[arg-type]
    stats = CopyStats()
    copier.copy_shard(0, -1, checkpoints(cluster, source)[0], stats)
    assert flaky.rejections == 0
    assert stats.retries >= 4
    assert stats.copied == 600
    assert stats.failed == 0
    expected = {i: transform(json.loads(json.dumps(d))) for i, d in initial.items()}
    assert diff(expected, all_docs(cluster, target)) == {}


def test_hundreds_of_rejections_stay_under_the_clause_limit(cluster: Cluster, prefix: str) -> None:
    """More rejected documents than one (id, _seq_no) clause each would allow (1024 clauses)."""
    alias, source, initial = create_source(cluster, prefix, 1500)
    bad = {
        f"d{i}": {**initial[f"d{i}"], "extra": "not a number"}
        for i in range(1500)
        if i % 5 in (0, 1)
    }
    bulk(cluster, source, bad)
    initial.update(bad)
    # One rejected document is fixed after the first (refused) run: its new version must be
    # copied although its old one stays excluded.
    mappings = {"properties": {**TARGET_MAPPING["properties"], "extra": {"type": "long"}}}
    refused = blue_green(cluster, prefix, alias, mappings=mappings)
    with pytest.raises(TooManyFailures):
        refused.run()
    # The budget stops the per-shard copy tasks at their next check: whether d0's rejection
    # was dead-lettered before that depends on which shard got there first.
    dead = DeadLetters(cluster, f"{prefix}-dl", refused.id)
    d0_dead_lettered = ("d0", None) in dead.entries()
    fixed = {"d0": {**initial["d0"], "extra": 7}}
    bulk(cluster, source, fixed)
    initial.update(fixed)
    del bad["d0"]
    # The dead letter of d0's rejected version (if there is one) still counts as a failure that
    # happened.
    result = blue_green(cluster, prefix, alias, mappings=mappings, max_failures=len(bad) + 1).run()
    assert result.migration == dead.migration
    assert result.failures == len(bad) + d0_dead_lettered
    expected = {i: d for i, d in initial.items() if i not in bad}
    assert diff(expected, all_docs(cluster, result.target)) == {}
