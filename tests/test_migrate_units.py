"""Pure logic of the migration engine (no cluster)."""

from __future__ import annotations

import io
import itertools
import json
import logging
from pathlib import Path

import pytest
from rich.console import Console

from esmigrate.migrate._inplace import new_leaf_fields
from esmigrate.migrate._layout import (
    contains,
    flatten_settings,
    nest_settings,
    next_index_name,
    unconfirmed_blocks,
    write_copies,
)
from esmigrate.migrate._plan import PlanStep, describe_plan
from esmigrate.migrate._positions import (
    MAX_SPANS,
    RANGES_PER_SEARCH,
    _chunks,
    _first_level,
    _merged,
    _range_counts,
)
from esmigrate.migrate._reindex_copy import guarded_script
from esmigrate.operations import PlannedRequest
from esmigrate.progress import LogDisplay, Meter, ProgressEvent, RichDisplay, progress_display
from esmigrate.testing import LiveWriter
from esmigrate.transform.painless import normalize_script


def test_next_index_name_continues_the_version() -> None:
    assert next_index_name("posts", "posts-v3-20240101000000").startswith("posts-v4-")
    assert next_index_name("posts", "posts").startswith("posts-v2-")


def test_contains_compares_mappings_as_subsets() -> None:
    actual = {"properties": {"a": {"type": "keyword", "ignore_above": 256}, "b": {"type": "long"}}}
    assert contains(actual, {"properties": {"a": {"type": "keyword"}}}) == []
    assert contains(actual, {"properties": {"a": {"type": "text"}}}) == ["/properties/a/type"]
    assert contains(actual, {"properties": {"c": {"type": "text"}}}) == ["/properties/c"]
    assert contains({"index": {"number_of_shards": "2"}}, {"index": {"number_of_shards": 2}}) == []


def test_settings_are_flattened_and_nested_back() -> None:
    flat = flatten_settings({"number_of_replicas": 1, "index": {"refresh_interval": "5s"}})
    assert flat == {"index.number_of_replicas": 1, "index.refresh_interval": "5s"}
    assert nest_settings(flat) == {"index": {"number_of_replicas": 1, "refresh_interval": "5s"}}


def test_guarded_script_keeps_the_user_script_and_params() -> None:
    script = normalize_script({"source": "ctx._source.x = params.k", "params": {"k": 1}})
    assert script is not None
    guarded = guarded_script(script, "dl", "m1", "target")
    assert guarded is not None
    assert "ctx._source.x = params.k" in guarded["source"]
    assert "catch (Exception" in guarded["source"]
    assert guarded["params"]["k"] == 1
    assert guarded["params"]["__esm_dl"] == "dl"
    assert normalize_script("ctx._source.y = 1") == {
        "lang": "painless",
        "source": "ctx._source.y = 1",
    }


def test_new_leaf_fields_include_sub_fields_and_objects() -> None:
    mapping = {
        "properties": {
            "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            "author": {"properties": {"name": {"type": "keyword"}}},
        }
    }
    assert new_leaf_fields(mapping) == ["title", "title.raw", "author.name"]


def test_operations_describe_themselves() -> None:
    op = PlanStep(
        "swap_aliases",
        "one atomic request",
        (
            PlannedRequest(
                "POST", "/_aliases", body={"actions": [{"add": {"index": "b", "alias": "a"}}]}
            ),
        ),
    )
    text = describe_plan([op])
    assert text.startswith("1. swap_aliases: one atomic request")
    assert 'POST /_aliases {"actions"' in text
    assert op.to_dict()["requests"][0]["path"] == "/_aliases"


def test_meter_computes_eta_and_events() -> None:
    events: list[ProgressEvent] = []
    meter = Meter("copy", events.append, total=100, migration="m")
    meter.update(50)
    assert events[-1].done == 50
    assert events[-1].total == 100
    assert events[-1].phase == "copy"
    line = events[-1].line()
    assert "50/100 docs (50.0%)" in line
    assert line.startswith("[m] copy")


def test_the_cut_over_line_counts_no_documents() -> None:
    line = ProgressEvent("cutover", done=1, total=1, message="aliases moved to n").line()
    assert line == "cutover · aliases moved to n"


def test_progress_displays_draw_bars_and_lines() -> None:
    stream = io.StringIO()
    rich = RichDisplay(Console(file=stream, force_terminal=True, width=120))
    rich(ProgressEvent("copy", done=10, total=20, docs_per_s=5.0))
    rich(ProgressEvent("catchup", done=3, round=1))
    rich.close()
    assert "copy" in stream.getvalue()
    assert "catchup #1" in stream.getvalue()
    logger = logging.getLogger("esmigrate.test")
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger.addHandler(Collect())
    logger.setLevel(logging.INFO)
    plain = LogDisplay(logger, interval=3600)
    plain(ProgressEvent("copy", done=1, total=10))
    plain(ProgressEvent("copy", done=2, total=10))  # within the interval: skipped
    plain(ProgressEvent("copy", done=10, total=10))  # finished: always shown
    assert len(records) == 2
    assert isinstance(progress_display(interactive=False), LogDisplay)


def test_copy_scripts_that_skip_or_reroute_documents_are_refused() -> None:
    from esmigrate.exceptions import PreflightError
    from esmigrate.migrate._reindex_copy import refuse_rerouting

    for source in (
        "if (ctx._source.x == null) { ctx.op = 'noop' }",
        "ctx.op='delete'",
        "ctx._id = ctx._source.slug",
        "ctx['_routing'] = 'a'",
        "ctx . _index = 'other'",
    ):
        with pytest.raises(PreflightError) as err:
            refuse_rerouting({"source": source})
        assert err.value.problem == "script_reroutes"
    # Reading them, comparing them, and everything in _source are fine.
    for source in (
        "if (ctx.op == 'index') { ctx._source.id = ctx._id }",
        "ctx._source.op = 'x'; ctx._source._id2 = 1",
        "String r = ctx._routing;",
    ):
        refuse_rerouting({"source": source})
    refuse_rerouting(None)


def test_a_level_of_range_counts_reads_only_the_ranges_it_splits() -> None:
    ranges = [(0, 4), (4, 8), (20, 24), (24, 28), (40, 44)]
    spans = _merged(ranges)
    assert spans == [(0, 8), (20, 28), (40, 44)]
    body = _range_counts("seq", ranges, spans)
    should = body["query"]["bool"]["should"]
    assert [c["range"]["seq"] for c in should] == [
        {"gte": 0, "lt": 8},
        {"gte": 20, "lt": 28},
        {"gte": 40, "lt": 44},
    ]
    assert len(body["aggs"]["r"]["range"]["ranges"]) == len(ranges)
    assert "query" not in _range_counts("seq", ranges)


def test_the_first_level_splits_all_sequence_numbers_into_one_search_of_ranges() -> None:
    assert _first_level(0) == []
    assert _first_level(3) == [(0, 1), (1, 2), (2, 3)]
    ranges = _first_level(1_000_001)
    assert len(ranges) <= RANGES_PER_SEARCH
    assert ranges[0][0] == 0
    assert ranges[-1][1] == 1_000_001
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def test_count_searches_take_a_bounded_number_of_ranges_and_spans() -> None:
    # Many scattered differing ranges, each split in parts: one span per range split.
    scattered = [(lo + i, lo + i + 1) for lo in range(0, 1000 * 100, 100) for i in range(4)]
    chunks = list(_chunks(scattered))
    assert [r for chunk in chunks for r in chunk] == scattered
    assert all(len(_merged(chunk)) <= MAX_SPANS for chunk in chunks)
    assert len(chunks) == -(-1000 // MAX_SPANS)
    contiguous = [(i, i + 1) for i in range(RANGES_PER_SEARCH + 1)]
    assert [len(c) for c in _chunks(contiguous)] == [RANGES_PER_SEARCH, 1]


@pytest.mark.parametrize(
    ("settings", "copies"),
    [
        ({}, 1),
        ({"number_of_replicas": 2}, 1),
        ({"index.write.wait_for_active_shards": 2}, 2),
        ({"index": {"write": {"wait_for_active_shards": "3"}}}, 3),
        ({"number_of_replicas": 2, "index.write.wait_for_active_shards": "all"}, 3),
        ({"index.write.wait_for_active_shards": "ALL"}, 2),  # replicas default to 1
    ],
)
def test_write_copies_is_what_each_write_waits_for(
    settings: dict[str, object], copies: int
) -> None:
    assert write_copies(flatten_settings(settings)) == copies


@pytest.mark.parametrize("wanted", ["many", "-1", "", True, 1.5])
def test_write_copies_refuses_what_is_not_a_number_of_copies(wanted: object) -> None:
    with pytest.raises(ValueError, match="not a whole number"):
        write_copies({"index.write.wait_for_active_shards": wanted})


def test_the_live_writers_log_counts_an_entry_once_its_line_is_complete(tmp_path: Path) -> None:
    """The writer's process appends to its log while a test reads it: the last line may have
    reached the file only in part, and it counts once its newline is there."""
    writer = LiveWriter("http://127.0.0.1:1", "posts")
    done = {"op": "index", "id": "d1", "t": 1.0, "index": "posts-v1", "result": "created"}
    writer.log.write_text(json.dumps(done) + "\n" + '{"op": "delete", "id": "d2", "t": 2.')
    assert writer.count() == 1
    with writer.log.open("a", encoding="utf-8") as fh:
        fh.write('5, "index": "posts-v1", "result": "deleted"}\n')
    assert writer.count() == 2
    assert [op["id"] for op in writer.operations()] == ["d1", "d2"]


def test_a_write_block_answer_must_confirm_every_index() -> None:
    confirmed = {
        "acknowledged": True,
        "shards_acknowledged": True,
        "indices": [{"name": "posts-v1", "blocked": True}],
    }
    assert unconfirmed_blocks(confirmed) == []
    assert unconfirmed_blocks({"acknowledged": True}) == []  # an engine that says no more
    failed = {
        "acknowledged": False,
        "shards_acknowledged": False,
        "indices": [
            {"name": "posts-v1", "blocked": True},
            {"name": "posts-v2", "failed_shards": [{"id": 0, "failure": {"type": "x"}}]},
            {"name": "posts-v3", "exception": {"type": "index_closed_exception"}},
        ],
    }
    assert unconfirmed_blocks(failed) == ["posts-v2", "posts-v3"]
    assert unconfirmed_blocks({"acknowledged": False}) == ["the index"]
    # An index blocked already: not listed, shards_acknowledged false (OpenSearch 2.19).
    again = {"acknowledged": True, "shards_acknowledged": False, "indices": []}
    assert unconfirmed_blocks(again) == []
