"""The test kit of esmigrate.testing: script checks, integrity, round trip, drift, timings.

Each helper is shown failing with a message that names what differs; the blog project's own
tests (examples/blog/tests, run by tests/test_example_projects.py) show them passing.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from esmigrate import command
from esmigrate._livewriter import complete_lines
from esmigrate.cluster import Cluster
from esmigrate.config import Config, ConnectionSettings
from esmigrate.exceptions import EsmigrateError
from esmigrate.testing import (
    DocumentDifference,
    IntegrityReport,
    Timings,
    assert_downgrades_exist,
    assert_integrity,
    assert_no_drift,
    assert_round_trip,
    assert_single_head,
    check_integrity,
)
from esmigrate.transform import Rename, RuleSet
from tests.migration_project import make_project, write_script

# -- the scripts, without a cluster ----------------------------------------------------------------


def test_single_head_returns_it_and_names_unmerged_heads(tmp_path: Path) -> None:
    config = make_project(tmp_path, history_index=".h")
    write_script(config, "0001", None)
    write_script(config, "0002", "0001")
    assert assert_single_head(config) == "0002"
    write_script(config, "0003", "0001")
    with pytest.raises(AssertionError) as failed:
        assert_single_head(config)
    message = str(failed.value)
    assert "2 heads: 0002 (0002_x.py), 0003 (0003_x.py)" in message
    assert "esmigrate merge" in message


def test_downgrades_exist_names_the_revisions_without_one(tmp_path: Path) -> None:
    config = make_project(tmp_path, history_index=".h")
    write_script(config, "0001", None)
    write_script(config, "0002", "0001", downgrade=None)
    write_script(config, "0003", "0002", downgrade=None)
    with pytest.raises(AssertionError, match=r"2 revision\(s\) have no downgrade\(op\): 0002"):
        assert_downgrades_exist(config)
    with pytest.raises(AssertionError, match=r"0003 \(0003_x\.py\)"):
        assert_downgrades_exist(config, exempt={"0002"})
    assert_downgrades_exist(config, exempt={"0002", "0003"})
    with pytest.raises(AssertionError, match="exempt names no revision of the project: 0009"):
        assert_downgrades_exist(config, exempt={"0009"})


def test_integrity_messages_are_bounded() -> None:
    ids = tuple(f"d{i}" for i in range(20))
    report = IntegrityReport(
        "old", "new", 10_000, 9_000, 0, missing=ids, missing_count=1_000, extra=(), extra_count=0
    )
    assert not report.ok
    message = report.message()
    assert "1000 document(s) missing: d0, d1" in message
    assert "d9, ... (990 more)" in message
    assert "d10" not in message
    assert len(message) < 400

    wide = DocumentDifference("d1", tuple((f"f{i}", "changed", "x" * 500, i) for i in range(8)))
    line = wide.describe()
    assert line.startswith('d1: f0: "xxx')
    assert line.endswith(", and 3 more field(s)")
    assert len(line) < 600  # five fields, each value cut to 80 characters


def test_timings_record_steps_and_never_judge() -> None:
    timings = Timings()
    with timings.step("copy", documents=500) as step:
        pass
    with pytest.raises(RuntimeError), timings.step("failing"):
        raise RuntimeError("boom")
    assert [s.name for s in timings.steps] == ["copy", "failing"]
    assert step.documents == 500
    assert step.seconds >= 0
    assert timings.steps[1].docs_per_second is None  # no documents: no rate
    assert timings.report().splitlines()[0].startswith("copy: ")
    assert timings.to_dict()[0]["documents"] == 500


# -- on the cluster ------------------------------------------------------------------------------


def _index(cluster: Cluster, name: str, docs: dict[str, dict[str, Any]], **mapping: Any) -> None:
    cluster.request(
        "PUT",
        f"/{name}",
        body={"settings": {"number_of_replicas": 0, "number_of_shards": 2}, "mappings": mapping},
    )
    _write(cluster, name, docs)


def _write(cluster: Cluster, name: str, docs: dict[str, dict[str, Any]]) -> None:
    lines = []
    for doc_id, doc in docs.items():
        lines += [json.dumps({"index": {"_index": name, "_id": doc_id}}), json.dumps(doc)]
    if lines:
        assert not cluster.bulk(("\n".join(lines) + "\n").encode(), refresh="true")["errors"]


def test_the_live_writers_log_is_read_up_to_a_line_still_being_written() -> None:
    # A file read on past its end goes on with what was appended since: after the head of an
    # entry still being written comes the rest of it, which is no entry.
    head, rest = '{"op": "index", "id": "7", "index": "po', 'sts-v2"}\n'
    read = ['{"op": "delete", "id": "3"}\n', head, rest, '{"op": "index", "id": "8"}\n']
    assert list(complete_lines(read)) == read[:1]
    whole = [read[0], head + rest]
    assert list(complete_lines(whole)) == whole


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_integrity_names_missing_extra_and_differing_fields(cluster: Cluster, prefix: str) -> None:
    docs = {f"d{i}": {"title": f"t{i}", "meta": {"views": i}} for i in range(30)}
    _index(cluster, f"{prefix}-a", docs)
    assert assert_integrity(cluster, f"{prefix}-a", f"{prefix}-a", deep="all").compared == 30

    changed = {k: v for k, v in docs.items() if k != "d3"}
    changed["d5"] = {"title": "t5", "meta": {"views": 5.0}}  # 5 is not 5.0
    changed["d7"] = {"meta": {"views": 7}}
    changed["x1"] = {"title": "new"}
    _index(cluster, f"{prefix}-b", changed, properties={"meta": {"type": "object"}})
    report = check_integrity(cluster, f"{prefix}-a", f"{prefix}-b", deep="all")
    assert not report.ok
    assert (report.missing, report.extra) == (("d3",), ("x1",))
    assert {d.doc_id for d in report.documents} == {"d5", "d7"}
    message = report.message()
    assert f"{prefix}-b differs from {prefix}-a:" in message
    assert "1 document(s) missing: d3" in message
    assert "1 unexpected document(s): x1" in message
    assert "d5: meta.views: 5 → 5.0" in message
    assert 'd7: title: missing (expected "t7")' in message
    with pytest.raises(AssertionError, match="d3"):
        assert_integrity(cluster, f"{prefix}-a", f"{prefix}-b")

    # A document the transform drops must be absent.
    def drop_t0(doc: dict[str, Any]) -> dict[str, Any] | None:
        return None if doc["title"] == "t0" else doc

    _index(cluster, f"{prefix}-c", {k: v for k, v in docs.items() if k != "d0"})
    dropped = check_integrity(cluster, f"{prefix}-a", f"{prefix}-c", transform=drop_t0, deep="all")
    assert dropped.ok, dropped.message()
    assert (dropped.expected_count, dropped.compared) == (29, 29)
    kept = check_integrity(cluster, f"{prefix}-a", f"{prefix}-a", transform=drop_t0)
    assert (kept.extra, kept.missing) == (("d0",), ())


def _project(root: Path, settings: ConnectionSettings, prefix: str) -> Config:
    return make_project(root, history_index=f"{prefix}-history", connection=settings)


def _posts_revision(config: Config, prefix: str) -> None:
    write_script(
        config,
        "0001",
        None,
        f"""
        op.create_index("{prefix}-posts-v1", mappings={{"properties": {{"title": {{"type": "text"}}}}}},
                        settings={{"number_of_replicas": 0}}, aliases={{"{prefix}-posts": {{}}}})
        """,
        f'op.delete_index("{prefix}-posts-v1")',
    )


@pytest.mark.integration
@pytest.mark.engine_matrix
def test_round_trip_names_what_a_downgrade_does_not_restore(
    cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str, tmp_path: Path
) -> None:
    config = _project(tmp_path, cluster_settings, prefix)
    _posts_revision(config, prefix)
    # The round trip passes; the field a downgrade cannot remove is reported, not failed.
    write_script(
        config,
        "0002",
        "0001",
        f"""
        op.put_mapping("{prefix}-posts-v1", {{"properties": {{"tags": {{"type": "keyword"}}}}}})
        op.update_by_query("{prefix}-posts-v1", script="ctx._source.tags = []", conflicts="proceed")
        """,
        f"""op.update_by_query("{prefix}-posts-v1", script="ctx._source.remove('tags')",
            conflicts="proceed")""",
    )
    command.upgrade(config, "0001")
    _write(cluster, f"{prefix}-posts", {"p1": {"title": "Hello"}, "p2": {"title": "world"}})
    report = assert_round_trip(config, "head", compare=[f"{prefix}-posts"])
    assert report.left_in_mapping == {f"{prefix}-posts": ("tags",)}
    assert report.integrity[0].compared == 2

    # Now the upgrade also lower-cases titles, which the downgrade does not undo.
    write_script(
        config,
        "0002",
        "0001",
        f"""
        op.put_mapping("{prefix}-posts-v1", {{"properties": {{"tags": {{"type": "keyword"}}}}}})
        op.update_by_query("{prefix}-posts-v1", conflicts="proceed",
            script="ctx._source.tags = []; ctx._source.title = ctx._source.title.toLowerCase()")
        """,
        f"""op.update_by_query("{prefix}-posts-v1", script="ctx._source.remove('tags')",
            conflicts="proceed")""",
    )
    with pytest.raises(AssertionError) as failed:
        assert_round_trip(config, "head", compare=[f"{prefix}-posts"])
    message = str(failed.value)
    assert "The round trip 0001 → 0002 → 0001 (back: 0002 (downgrade))" in message
    assert f"{prefix}-posts differs from {prefix}-posts at the start" in message
    assert 'p1: title: "Hello" → "hello"' in message
    assert "p2" not in message  # unchanged: "world" is lower case already
    assert command.current(config).revisions[0].revision == "0001"


def _renaming_project(root: Path, settings: ConnectionSettings, prefix: str) -> Config:
    """0002 renames body → content blue-green (no downgrade: its rollback point is the way back);
    0003 then rewrites every document in place, so rolling 0002 back has writes to carry."""
    config = make_project(root, history_index=f"{prefix}-history", connection=settings)
    _posts_revision(config, prefix)
    write_script(
        config,
        "0002",
        "0001",
        f"""op.migrate("{prefix}-posts", {{"properties": {{"title": {{"type": "text"}},
            "content": {{"type": "text"}}}}}}, transform=RuleSet(Rename("body", "content")),
            settings={{"number_of_replicas": 0}})""",
        downgrade=None,
        header="from esmigrate.transform import Rename, RuleSet",
    )
    write_script(
        config,
        "0003",
        "0002",
        f'op.update_by_query("{prefix}-posts", script="ctx._source.seen = true", conflicts="proceed")',
        f"""op.update_by_query("{prefix}-posts", script="ctx._source.remove('seen')",
            conflicts="proceed")""",
    )
    return config


@pytest.mark.integration
def test_round_trip_carries_later_writes_back_through_the_reverse_transform(
    cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str, tmp_path: Path
) -> None:
    for name, reverse in (
        ("right", Rename("content", "body")),
        ("wrong", Rename("content", "text")),
    ):
        config = _renaming_project(tmp_path / name, cluster_settings, f"{prefix}-{name}")
        alias = f"{prefix}-{name}-posts"
        command.upgrade(config, "0001")
        _write(cluster, alias, {"p1": {"title": "a", "body": "x"}})
        if name == "right":
            report = assert_round_trip(config, "head", reverse_transforms={alias: RuleSet(reverse)})
            assert report.undone == (("0003", "downgrade"), ("0002", f"before-0002-{alias}"))
            assert report.integrity[0].compared == 1
            continue
        with pytest.raises(AssertionError) as failed:
            assert_round_trip(config, "head", reverse_transforms={alias: RuleSet(reverse)})
        message = str(failed.value)
        assert f"back: 0003 (downgrade) ← 0002 (before-0002-{alias})" in message
        assert 'p1: body: missing (expected "x"); text: unexpected "x"' in message


@pytest.mark.integration
def test_round_trip_refuses_a_revision_with_no_way_back(
    cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str, tmp_path: Path
) -> None:
    config = _project(tmp_path, cluster_settings, prefix)
    _posts_revision(config, prefix)
    write_script(
        config,
        "0002",
        "0001",
        f"""op.migrate("{prefix}-posts", {{"properties": {{"title": {{"type": "text"}},
            "tags": {{"type": "keyword"}}}}}})""",
        downgrade=None,
    )
    command.upgrade(config, "0001")
    with pytest.raises(AssertionError, match=r"Revision 0002 \(0002_x\.py\) cannot be undone"):
        assert_round_trip(config, "head")


@pytest.mark.integration
def test_no_drift_names_the_fields_the_migrations_do_not_make(
    cluster_settings: ConnectionSettings, prefix: str, tmp_path: Path
) -> None:
    config = _project(tmp_path, cluster_settings, prefix)
    _posts_revision(config, prefix)
    (tmp_path / "kit_schema.py").write_text(
        textwrap.dedent(
            f"""
            import opensearchpy

            class Post(opensearchpy.Document):
                title = opensearchpy.Text()
                tags = opensearchpy.Keyword()

                class Index:
                    name = "{prefix}-posts"
            """
        )
    )
    from dataclasses import replace

    config = replace(config, schema_modules=("kit_schema",))
    with pytest.raises(AssertionError) as failed:
        assert_no_drift(config)
    message = str(failed.value)
    assert f"kit_schema.Post vs {prefix}-posts (1 change(s)" in message
    assert "tags: added keyword" in message
    assert "esmigrate revision --autogenerate" in message


@pytest.mark.integration
def test_round_trip_from_base_names_an_index_left_behind(
    cluster: Cluster, cluster_settings: ConnectionSettings, prefix: str, tmp_path: Path
) -> None:
    config = _project(tmp_path, cluster_settings, prefix)
    create = f'op.create_index("{prefix}-posts", settings={{"number_of_replicas": 0}})'
    write_script(config, "0001", None, create, f'op.delete_index("{prefix}-posts")')
    report = assert_round_trip(config, "head", compare=[f"{prefix}-posts"])
    assert (report.start, report.applied, report.integrity) == (None, ("0001",), ())
    with pytest.raises(EsmigrateError, match="nothing to compare") as refused:
        assert_round_trip(config, "head")
    assert refused.value.hint == "Name the indices or aliases to compare: compare=['posts']."

    write_script(config, "0001", None, create, "pass")
    with pytest.raises(AssertionError) as failed:
        assert_round_trip(config, "head", compare=[f"{prefix}-posts"])
    assert str(failed.value).endswith(
        f"{prefix}-posts did not exist at the start and exists after the way back"
    )
