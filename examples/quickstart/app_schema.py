"""The application's document classes; migration scripts import them (the project root is on
sys.path while scripts load)."""

from __future__ import annotations

from typing import Any, ClassVar

from elasticsearch.dsl import Date, Document, Text


class Post(Document):
    title = Text()
    published = Date()

    class Index:
        name = "blog-posts-v1"
        settings: ClassVar[dict[str, Any]] = {"number_of_shards": 1, "number_of_replicas": 0}
