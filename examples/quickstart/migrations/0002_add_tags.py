"""Add a `tags` keyword field and give existing posts an empty list."""

from __future__ import annotations

from esmigrate.operations import Operations

revision = "0002"
down_revision = "0001"
message = "add tags"


def upgrade(op: Operations) -> None:
    op.put_mapping("blog-posts-v1", {"properties": {"tags": {"type": "keyword"}}})
    op.update_by_query(
        "blog-posts-v1",
        query={"bool": {"must_not": {"exists": {"field": "tags"}}}},
        script="ctx._source.tags = []",
        conflicts="proceed",
    )


def downgrade(op: Operations) -> None:
    # A field cannot be removed from a mapping; the data change is undone.
    op.update_by_query("blog-posts-v1", script="ctx._source.remove('tags')", conflicts="proceed")
