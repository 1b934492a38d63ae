"""A keyword sub-field title.raw for sorting and aggregations.

Additive: the live index takes it in place, and documents already stored are backfilled by a
server-side `_update_by_query` (throttled, conflict-safe rounds) so they get the sub-field too.
Documents the application writes meanwhile get it from the mapping.

Revision: 0004
Revises: 0003
"""

from __future__ import annotations

import copy
from typing import Any

from blog_schema import BlogPost

from esmigrate.operations import Operations

revision = "0004"
down_revision = "0003"
message = "title.raw keyword sub-field"


def target() -> dict[str, Any]:
    mapping: dict[str, Any] = copy.deepcopy(BlogPost._doc_type.mapping.to_dict())
    mapping["properties"]["title"]["fields"] = {"raw": {"type": "keyword", "ignore_above": 256}}
    # The application's own counter (mapped dynamically since 3.0): part of the schema.
    mapping["properties"]["edits"] = {"type": "long"}
    return mapping


def upgrade(op: Operations) -> None:
    op.migrate("blog_posts", target())
