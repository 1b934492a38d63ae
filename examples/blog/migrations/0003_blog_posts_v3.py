"""Blog posts 3.0 (the BlogPost Document class): metadata and engagement objects, clean text,
automatic categories, and created_date gone.

A removed field and new object fields: the live index cannot take this, so the data moves
blue-green to a new index, through the 2.0 → 3.0 rule set running as Painless inside
`_reindex`, while the application keeps writing through the alias.

Revision: 0003
Revises: 0002
"""

from __future__ import annotations

from blog_schema import BlogPost, v2_to_v3

from esmigrate.operations import Operations

revision = "0003"
down_revision = "0002"
message = "blog posts 3.0: metadata, engagement, no created_date"


def upgrade(op: Operations) -> None:
    op.migrate(
        "blog_posts",
        BlogPost,
        transform=v2_to_v3,
        settings={"number_of_shards": 2, "number_of_replicas": 0},
    )
