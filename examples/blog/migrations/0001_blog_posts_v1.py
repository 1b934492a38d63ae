"""Blog posts 1.0: the physical index blog_posts-v1 behind the alias blog_posts.

Revision: 0001
Revises: (first revision)
"""

from __future__ import annotations

from esmigrate.operations import Operations

revision = "0001"
down_revision = None
message = "blog posts 1.0"

V1 = {
    "properties": {
        "title": {"type": "text"},
        "content": {"type": "text"},
        "author": {"type": "keyword"},
        "created_date": {"type": "date"},
        "edits": {"type": "integer"},
    }
}


def upgrade(op: Operations) -> None:
    op.create_index(
        "blog_posts-v1",
        mappings=V1,
        settings={"number_of_shards": 2, "number_of_replicas": 0},
        aliases={"blog_posts": {"is_write_index": True}},
    )


def downgrade(op: Operations) -> None:
    op.delete_index("blog_posts-v1")
