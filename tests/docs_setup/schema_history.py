"""Before docs/guide/schemas.md's diff example: ``cluster``, an index ``posts`` created from the
first version of a Document class, ``BlogPost`` (its analyzer changed since) and the two
versions ``V1`` and ``V2`` as mapping dicts."""

from typing import Any

from opensearchpy import Document, Keyword, Text

from esmigrate import connect, load_config

cluster = connect(load_config().connection)

V1: dict[str, Any] = {"properties": {"title": {"type": "text"}, "category": {"type": "keyword"}}}
V2: dict[str, Any] = {
    "properties": {
        "title": {"type": "text", "analyzer": "english"},
        "category": {"type": "keyword"},
    }
}


class BlogPost(Document):
    title = Text(analyzer="english")
    category = Keyword()


if not cluster.exists("posts"):
    cluster.request("PUT", "/posts", body={"mappings": V1})
