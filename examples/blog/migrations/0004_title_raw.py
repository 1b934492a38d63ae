"""A keyword sub-field title.raw for sorting and aggregations.

Additive: the live index takes it in place, and documents already stored are backfilled by a
server-side `_update_by_query` (throttled, conflict-safe rounds) so they get the sub-field too.
Documents the application writes meanwhile get it from the mapping.

Revision: 0004
Revises: 0003
"""

from __future__ import annotations

from blog_schema import BlogPost

from esmigrate.operations import Operations

revision = "0004"
down_revision = "0003"
message = "title.raw keyword sub-field"


def upgrade(op: Operations) -> None:
    # BlogPost is the 3.0 mapping with title.raw, and the application's own counter `edits`
    # (mapped dynamically since 3.0) made part of the schema.
    op.migrate("blog_posts", BlogPost)


def downgrade(op: Operations) -> None:
    # Nothing to undo: a field cannot be removed from a live index, and 3.0 code ignores
    # title.raw (documents keep their _source as it was).
    pass
