"""The blog project's migration tests, as a project of yours would keep them.

Run `pytest` in examples/blog: installing esmigrate registers the pytest plugin, whose fixtures
give each test the project's config on a real cluster (`esmigrate_config`, with a history index
of its own; every index a test creates is deleted after it).
"""

from __future__ import annotations

import json
from typing import Any

from blog_schema import v1_to_v2

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import Config
from esmigrate.testing import (
    Timings,
    assert_downgrades_exist,
    assert_integrity,
    assert_no_drift,
    assert_round_trip,
    assert_single_head,
)

POSTS: list[dict[str, Any]] = [
    {"title": "Hello", "content": "First post #intro", "author": "ann", "created_date": "2024-01-01"},
    {"title": "Tips", "content": "Use #python and #search", "author": "bob", "created_date": "2024-02-01"},
    {"title": "Draft", "content": "", "author": "cy", "created_date": "2024-03-01", "edits": 2},
]  # fmt: skip


def write_posts(cluster: Cluster, posts: list[dict[str, Any]]) -> None:
    lines = []
    for i, post in enumerate(posts):
        lines += [json.dumps({"index": {"_index": "blog_posts", "_id": f"p{i}"}}), json.dumps(post)]
    result = cluster.bulk(("\n".join(lines) + "\n").encode(), refresh="true")
    assert not result["errors"], result


def test_one_head(esmigrate_config: Config) -> None:
    assert assert_single_head(esmigrate_config) == "0004"


def test_every_revision_can_be_undone(esmigrate_config: Config) -> None:
    # 0002 and 0003 move the data blue-green: their way back is the rollback point they record.
    assert_downgrades_exist(esmigrate_config, exempt={"0002", "0003"})


def test_the_document_classes_match_the_migrations(esmigrate_config: Config) -> None:
    assert_no_drift(esmigrate_config)


def test_round_trip_from_1_0_restores_every_post(
    esmigrate_config: Config, esmigrate_cluster: Cluster
) -> None:
    command.upgrade(esmigrate_config, "0001")
    write_posts(esmigrate_cluster, POSTS)
    report = assert_round_trip(esmigrate_config, "head")
    assert report.applied == ("0002", "0003", "0004")
    assert [how for _, how in report.undone] == [
        "downgrade",
        "before-0003-blog_posts",
        "before-0002-blog_posts",
    ]
    assert report.integrity[0].compared == len(POSTS)


def test_the_2_0_copy_holds_every_post_upgraded(
    esmigrate_config: Config, esmigrate_cluster: Cluster, esmigrate_timings: Timings
) -> None:
    command.upgrade(esmigrate_config, "0001")
    write_posts(esmigrate_cluster, POSTS)
    with esmigrate_timings.step("blog 0002", cluster=esmigrate_cluster, index="blog_posts") as step:
        command.upgrade(esmigrate_config, "0002", on_progress=step.on_progress)
    assert step.documents == len(POSTS)
    # The 1.0 index is kept for the rollback point; the alias now points at the 2.0 copy.
    report = assert_integrity(
        esmigrate_cluster, "blog_posts-v1", "blog_posts", transform=v1_to_v2, deep="all"
    )
    assert report.compared == len(POSTS)
