"""Blog posts 3.0 (the BlogPost Document class): metadata and engagement objects, clean text,
automatic categories, and created_date gone.

A removed field and new object fields: the live index cannot take this, so the data moves
blue-green to a new index, through the 2.0 → 3.0 rule set running as Painless inside
`_reindex`, while the application keeps writing through the alias.

Revision: 0003
Revises: 0002
"""

from __future__ import annotations

from blog_schema import v2_to_v3

from esmigrate.operations import Operations

revision = "0003"
down_revision = "0002"
message = "blog posts 3.0: metadata, engagement, no created_date"

_INT = {"type": "integer"}
_KEYWORD = {"type": "keyword"}
_DATE = {"type": "date"}

#: The 3.0 mapping as this revision made it. Frozen here rather than read from the BlogPost class,
#: which keeps evolving (0004 adds title.raw): a script must make the same index every time.
V3 = {
    "properties": {
        "title": {"type": "text"},
        "content": {"type": "text"},
        "author": _KEYWORD,
        "category": _KEYWORD,
        "tags": _KEYWORD,
        "published_date": _DATE,
        "metadata": {
            "properties": {
                "word_count": _INT,
                "char_count": _INT,
                "reading_time": _INT,
                "has_title": {"type": "boolean"},
                "language": _KEYWORD,
            }
        },
        "engagement": {
            "properties": {"views": _INT, "likes": _INT, "shares": _INT, "comments_count": _INT}
        },
        "schema_version": _KEYWORD,
        "created_at": _DATE,
        "updated_at": _DATE,
        "migrated_from_version": _KEYWORD,
        "migration_timestamp": _DATE,
    }
}


def upgrade(op: Operations) -> None:
    op.migrate(
        "blog_posts",
        V3,
        transform=v2_to_v3,
        settings={"number_of_shards": 2, "number_of_replicas": 0},
    )
