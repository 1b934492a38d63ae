"""``plan --estimate`` on the real node: counts per schema version, documents to move, disk and a
duration from a timed sample copy into a scratch index that never outlives the estimate."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.command._estimate import SCRATCH_PREFIX, scratch_index
from esmigrate.config import Config, load_config
from esmigrate.exceptions import TransformError
from tests.conftest import run_cli
from tests.migrate_support import live_writer

pytestmark = pytest.mark.integration


def project(tmp: Path, url: str, prefix: str, transform: str = "") -> Config:
    """a1 creates ``{prefix}-posts``; a2 migrates it to a keyword ``code`` (through
    ``transform``, a function of the script, when given)."""
    (tmp / "migrations").mkdir()
    (tmp / "esmigrate.toml").write_text(
        f'[esmigrate]\nhistory_index = "{prefix}-hist"\n[esmigrate.connection]\nurl = "{url}"\n'
    )
    (tmp / "migrations" / "a1_create.py").write_text(
        "revision = 'a1'\ndown_revision = None\n\n"
        "def upgrade(op):\n"
        f"    op.create_index({prefix + '-posts-v1'!r}, mappings={{'properties': {{'code': {{'type': 'long'}}, 'schema_version': {{'type': 'keyword'}}}}}},\n"
        "                    settings={'number_of_shards': 1, 'number_of_replicas': 0},\n"
        f"                    aliases={{{prefix + '-posts'!r}: {{'is_write_index': True}}}})\n"
    )
    (tmp / "migrations" / "a2_keyword.py").write_text(
        "revision = 'a2'\ndown_revision = 'a1'\n\n"
        "def fails_on_seven(doc):\n"
        "    if doc['code'] == 7:\n"
        "        raise ValueError('seven')\n"
        "    return doc\n\n"
        "def upgrade(op):\n"
        f"    op.migrate({prefix + '-posts'!r}, {{'properties': {{'code': {{'type': 'keyword'}}}}}},\n"
        f"               settings={{'number_of_shards': 1, 'number_of_replicas': 1}}{transform})\n"
    )
    config = load_config(tmp / "esmigrate.toml")
    command.upgrade(config, "a1")
    return config


def fill(cluster: Cluster, alias: str) -> None:
    """300 documents: 200 at schema version 1.0, 100 without a version."""
    lines = []
    for i in range(300):
        doc: dict[str, object] = {"code": i}
        if i < 200:
            doc["schema_version"] = "1.0"
        lines += [orjson.dumps({"index": {"_index": alias, "_id": str(i)}}), orjson.dumps(doc)]
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")


def scratch_indices(cluster: Cluster) -> list[str]:
    rows = cluster.request(
        "GET",
        f"/_cat/indices/{SCRATCH_PREFIX}*",
        params={"format": "json", "h": "index", "expand_wildcards": "all"},
    )
    return [row["index"] for row in rows]


def test_the_estimate_counts_sizes_and_times_a_sample(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = project(tmp_path, cluster_url, prefix)
    fill(cluster, f"{prefix}-posts")
    # A scratch index left by a killed estimate an hour ago is deleted by the next one.
    cluster.request("PUT", f"/{SCRATCH_PREFIX}1000-killed", body={})

    plan = command.plan(config, estimate=True, sample_size=100)

    est = plan["estimate"]
    assert est["documents_to_move"] == 300
    (work,) = est["operations"]
    assert (work["revision"], work["source"], work["strategy"]) == (
        "a2",
        f"{prefix}-posts",
        "blue_green",
    )
    assert work["schema_versions"] == {"1.0": 200, "missing": 100}
    primary = cluster.request("GET", f"/{prefix}-posts/_stats/store")["_all"]["primaries"]
    # The new index keeps a replica: twice the primary store.
    assert work["disk_bytes"] == 2 * primary["store"]["size_in_bytes"] > 0
    assert est["disk_needed_bytes"] == work["disk_bytes"]
    assert est["disk_available_bytes"] > 0
    assert work["sample_documents"] == 100
    assert work["docs_per_s"] > 0
    # Every document at the rate of the sample.
    assert work["seconds"] == pytest.approx(300 / work["docs_per_s"], abs=0.1)
    # Nothing was changed: no scratch index is left, the cluster is still at a1.
    assert scratch_indices(cluster) == []
    assert command.status(config)["current"] == ["a1"]
    assert cluster.count(f"{prefix}-posts") == 300


def test_the_sample_copy_goes_to_a_hidden_index_deleted_after(cluster: Cluster) -> None:
    with scratch_index(cluster, {"properties": {"n": {"type": "long"}}}) as name:
        settings = cluster.request("GET", f"/{name}/_settings")[name]["settings"]["index"]
        assert settings["hidden"] == "true"
        # A wildcard over the application's indices does not expand to it.
        assert name not in cluster.request("GET", "/*/_settings")
    assert scratch_indices(cluster) == []


def test_a_python_transform_is_timed_through_the_copier_and_its_failure_leaves_nothing(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = project(tmp_path, cluster_url, prefix, transform=", transform=fails_on_seven")
    fill(cluster, f"{prefix}-posts")

    est = command.plan(config, estimate=True, sample_size=5)["estimate"]
    assert est["operations"][0]["sample_documents"] == 5
    assert est["operations"][0]["docs_per_s"] > 0

    # The sample meets document 7, on which the transform raises: the error is the
    # transform's, and the scratch index is gone all the same.
    with pytest.raises(TransformError, match="seven"):
        command.plan(config, estimate=True, sample_size=50)
    assert scratch_indices(cluster) == []


def test_with_max_failures_a_transform_error_is_counted_as_a_dead_letter(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = project(
        tmp_path, cluster_url, prefix, transform=", transform=fails_on_seven, max_failures=5"
    )
    fill(cluster, f"{prefix}-posts")

    # Every document sampled: document 7 is the one dead letter, of 300.
    (work,) = command.plan(config, estimate=True, sample_size=300)["estimate"]["operations"]
    assert (work["sample_documents"], work["sample_failures"]) == (300, 1)
    assert (work["failures"], work["max_failures"]) == (1, 5)
    assert work["docs_per_s"] > 0
    text = run_cli("--config", str(config.source), "plan", "--estimate", "--sample-size", "300")
    assert text.returncode == 0, text.stderr
    assert "dead letters: 1 of the 300 sampled, about 1 in all (max_failures 5)" in text.stdout
    # The sample's dead letters were written to a scratch index, gone with the other.
    assert scratch_indices(cluster) == []
    assert command.status(config)["current"] == ["a1"]


def test_plan_estimate_on_the_command_line(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = project(tmp_path, cluster_url, prefix)
    fill(cluster, f"{prefix}-posts")
    toml = str(config.source)

    text = run_cli("--config", toml, "plan", "--estimate", "--sample-size", "50")
    assert text.returncode == 0, text.stderr
    assert "Estimate: 300 document(s) to move" in text.stdout
    assert "schema versions: 1.0: 200, missing: 100" in text.stdout

    as_json = run_cli("--config", toml, "--json", "plan", "--estimate", "--sample-size", "0")
    assert as_json.returncode == 0, as_json.stderr
    work = json.loads(as_json.stdout)["estimate"]["operations"][0]
    assert (work["documents"], work["sample_documents"], work["docs_per_s"]) == (300, 0, None)

    offline = run_cli("--config", toml, "--json", "plan", "--estimate", "--offline")
    assert offline.returncode == 1
    assert "cannot run --offline" in json.loads(offline.stdout)["error"]["message"]


@pytest.mark.parametrize(
    "transform",
    ["", ", script={'source': 'ctx._source.seen = true'}"],
    ids=["no-script", "painless"],
)
def test_writes_during_the_estimate_all_land_and_none_is_refused(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path, transform: str
) -> None:
    config = project(tmp_path, cluster_url, prefix, transform=transform)
    alias = f"{prefix}-posts"
    initial = [f"d{i}" for i in range(200)]
    lines = []
    for doc_id in initial:
        lines += [orjson.dumps({"index": {"_index": alias, "_id": doc_id}}), b'{"code": 1}']
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")

    writer = live_writer(cluster_url, alias, len(initial))
    try:
        writer.wait_for(50)
        command.plan(config, estimate=True, sample_size=200)
        writer.wait_for(writer.count() + 50)  # and it goes on writing after
    finally:
        writer.stop()
    report = writer.report()

    # The sample only reads the live index: every write went through, none was refused.
    assert report.refused == 0
    assert report.verify(cluster, alias, initial) == []
    assert scratch_indices(cluster) == []


PAINLESS_FAILS_ON_SEVEN = (
    ", script={'source': \"if (ctx._source.code == 7) "
    "{ throw new IllegalArgumentException('seven'); }\"}"
)


def test_a_painless_script_that_fails_on_a_sampled_document_is_a_transform_error(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = project(tmp_path, cluster_url, prefix, transform=PAINLESS_FAILS_ON_SEVEN)
    fill(cluster, f"{prefix}-posts")

    # Document 7 is not in a sample of 5 (the first documents of the shard).
    (work,) = command.plan(config, estimate=True, sample_size=5)["estimate"]["operations"]
    assert (work["sample_documents"], work["sample_failures"]) == (5, 0)

    # As a migration would stop at it (max_failures 0), so does the estimate: the error names
    # the document and the script's exception, and the scratch indices are gone.
    with pytest.raises(TransformError, match="seven") as raised:
        command.plan(config, estimate=True, sample_size=50)
    assert raised.value.doc_id == "7"
    assert scratch_indices(cluster) == []
    failed = run_cli("--config", str(config.source), "--json", "plan", "--estimate")
    assert failed.returncode == 1
    error = json.loads(failed.stdout)["error"]
    assert "seven" in error["message"]
    assert "Traceback" not in failed.stderr
    assert command.status(config)["current"] == ["a1"]


def test_with_max_failures_a_painless_failure_is_counted_as_a_dead_letter(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = project(
        tmp_path, cluster_url, prefix, transform=PAINLESS_FAILS_ON_SEVEN + ", max_failures=5"
    )
    fill(cluster, f"{prefix}-posts")

    (work,) = command.plan(config, estimate=True, sample_size=300)["estimate"]["operations"]
    assert (work["sample_documents"], work["sample_failures"]) == (300, 1)
    assert work["failures"] == 1
    assert scratch_indices(cluster) == []
