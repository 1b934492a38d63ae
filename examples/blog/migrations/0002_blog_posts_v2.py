"""Blog posts 2.0: category, tags (from the content's hashtags) and a publication date.

The mapping change alone is additive, but every document is rewritten by the 1.0 → 2.0 rule set,
including those the application writes while this runs (it still writes 1.0 documents): so the
data moves blue-green through the rules, running as Painless inside `_reindex`, with catch-up.

Revision: 0002
Revises: 0001
"""

from __future__ import annotations

from blog_schema import v1_to_v2

from esmigrate.operations import Operations

revision = "0002"
down_revision = "0001"
message = "blog posts 2.0: category, tags, published_date"

V2 = {
    "properties": {
        "title": {"type": "text"},
        "content": {"type": "text"},
        "author": {"type": "keyword"},
        "created_date": {"type": "date"},
        "edits": {"type": "integer"},
        "category": {"type": "keyword"},
        "tags": {"type": "keyword"},
        "published_date": {"type": "date"},
    }
}


def upgrade(op: Operations) -> None:
    op.migrate(
        "blog_posts",
        V2,
        transform=v1_to_v2,
        settings={"number_of_shards": 2, "number_of_replicas": 0},
    )
