"""`title` gets a keyword sub-field: a new index, a server-side copy, an atomic alias swap.

Writers are blocked on the old index during the copy (they get a 403 and retry), so no write
can be lost between the copy and the swap. For a copy without blocking writers, use the
live-data migration engine instead.
"""

from __future__ import annotations

from esmigrate.operations import Operations

revision = "0003"
down_revision = "0002"
message = "title keyword sub-field"

MAPPINGS = {
    "properties": {
        "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
        "published": {"type": "date"},
        "tags": {"type": "keyword"},
    }
}


def upgrade(op: Operations) -> None:
    op.create_index(
        "blog-posts-v2",
        settings={"number_of_shards": 1, "number_of_replicas": 0},
        mappings=MAPPINGS,
    )
    op.update_settings("blog-posts-v1", {"index.blocks.write": True})
    op.reindex("blog-posts-v1", "blog-posts-v2")
    op.swap_alias("blog-posts", old="blog-posts-v1", new="blog-posts-v2", is_write_index=True)


def downgrade(op: Operations) -> None:
    # Posts written since the upgrade live only in v2: copy them back before dropping it.
    op.update_settings("blog-posts-v2", {"index.blocks.write": True})
    op.update_settings("blog-posts-v1", {"index.blocks.write": False})
    op.reindex("blog-posts-v2", "blog-posts-v1")
    op.swap_alias("blog-posts", old="blog-posts-v2", new="blog-posts-v1", is_write_index=True)
    op.delete_index("blog-posts-v2")
