"""Create the posts index from the Post document class, behind the alias `blog-posts`."""

from __future__ import annotations

from app_schema import Post

from esmigrate.operations import Operations

revision = "0001"
down_revision = None
message = "create posts"


def upgrade(op: Operations) -> None:
    op.create_index(Post)
    op.add_alias("blog-posts-v1", "blog-posts", is_write_index=True)


def downgrade(op: Operations) -> None:
    op.delete_index("blog-posts-v1")
