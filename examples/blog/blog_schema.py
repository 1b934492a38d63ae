"""The guide's blog post, V1 → V2 → V3, as one versioned Document with declarative upgrades.

Each upgrade step is a :class:`~esmigrate.transform.RuleSet`: a pure ``doc -> doc`` function that
also compiles to Painless, so the same step upgrades a document lazily when the application reads
it and in bulk inside a server-side ``_reindex``.
"""

from __future__ import annotations

import os

import opensearchpy

from esmigrate.schema import VersionedDocument, upgrades
from esmigrate.transform import (
    Categorize,
    Copy,
    Default,
    Equals,
    ExtractHashtags,
    ExtractMetadata,
    Missing,
    NormalizeText,
    Remove,
    RuleSet,
    Set,
    When,
)

#: V1 → V2: categories, tags (from the content's hashtags) and a publication date.
v1_to_v2 = RuleSet(
    Default("category", "general"),
    When(Missing("published_date"), Copy("created_date", "published_date")),
    ExtractHashtags("content", "tags", limit=5),
    name="blog post 1.0 → 2.0",
)

#: V2 → V3: clean text, metadata and engagement objects, automatic categories; created_date goes.
v2_to_v3 = RuleSet(
    NormalizeText("title"),
    NormalizeText("content"),
    ExtractMetadata("metadata", content="content", title="title"),
    Default("metadata.language", "en"),
    Default("engagement", {"views": 0, "likes": 0, "shares": 0, "comments_count": 0}),
    When(Equals("category", "general"), Categorize("category", ["title", "content"])),
    Remove("created_date"),
    name="blog post 2.0 → 3.0",
)

#: V3 → V2, for a rollback past the 3.0 migration (`esmigrate rollback ... --reverse-rules
#: blog_schema:v3_to_v2`): the writes made since the cut-over go back to the 2.0 index in its
#: shape. created_date comes back from published_date (1.0 → 2.0 copied it there); the 3.0
#: objects go. The text normalisation is not undone: the 2.0 mapping takes the normalised text.
v3_to_v2 = RuleSet(
    When(Missing("created_date"), Copy("published_date", "created_date")),
    Remove("metadata"),
    Remove("engagement"),
    Set("schema_version", "2.0.0"),
    name="blog post 3.0 → 2.0",
)


class BlogPost(VersionedDocument, opensearchpy.Document):
    """Blog post schema 3.0. Documents without a version are 1.0 (written before versioning).

    The class is the schema at head: revision 0004 gave title a keyword sub-field and mapped
    the application's `edits` counter (revision 0003 froze the mapping it made).
    """

    __schema_version__ = "3.0"
    __schema_unversioned__ = "1.0"

    title = opensearchpy.Text(fields={"raw": opensearchpy.Keyword(ignore_above=256)})
    content = opensearchpy.Text()
    author = opensearchpy.Keyword()
    category = opensearchpy.Keyword()
    tags = opensearchpy.Keyword(multi=True)
    published_date = opensearchpy.Date()
    edits = opensearchpy.Long()
    metadata = opensearchpy.Object(
        properties={
            "word_count": opensearchpy.Integer(),
            "char_count": opensearchpy.Integer(),
            "reading_time": opensearchpy.Integer(),
            "has_title": opensearchpy.Boolean(),
            "language": opensearchpy.Keyword(),
        }
    )
    engagement = opensearchpy.Object(
        properties={
            "views": opensearchpy.Integer(),
            "likes": opensearchpy.Integer(),
            "shares": opensearchpy.Integer(),
            "comments_count": opensearchpy.Integer(),
        }
    )

    step_1_to_2 = upgrades("1.0", "2.0")(v1_to_v2)
    step_2_to_3 = upgrades("2.0", "3.0")(v2_to_v3)

    class Index:
        name = os.environ.get("BLOG_INDEX", "blog_posts")


def server_side(from_version: str) -> RuleSet:
    """The whole upgrade from ``from_version`` to 3.0 as one rule set (for a ``_reindex``)."""
    steps = BlogPost.upgrade_graph().path(from_version)
    rules = [rule for step in steps for rule in step.func.rules]  # type: ignore[attr-defined]
    return RuleSet(
        *rules,
        Set("schema_version", "3.0.0"),
        Set("migrated_from_version", from_version),
    )


#: For `esmigrate preview --rules blog_schema:v2_to_v3` and `--rules blog_schema:BlogPost`, and
#: `esmigrate rollback ... --reverse-rules blog_schema:v3_to_v2`.
__all__ = ["BlogPost", "server_side", "v1_to_v2", "v2_to_v3", "v3_to_v2"]
