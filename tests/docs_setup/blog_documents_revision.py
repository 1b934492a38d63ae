"""Before docs/guide/migrations.md's first ``op.migrate`` revision: the project's module
``blog.documents`` with its Document class ``Post`` (``code`` a keyword, ``body`` become
``content``), and the alias ``blog-posts`` on an index of posts as revision 0002 left them
(``code`` a number, the text in ``body``).

After the script is defined, its ``upgrade(op)`` runs against the node as ``esmigrate upgrade``
runs it (its operations, each executed with the revision's context), and the posts are checked
in their new index."""

from pathlib import Path

from esmigrate import connect, load_config

cluster = connect(load_config().connection)

Path("blog").mkdir()
Path("blog/__init__.py").write_text("")
Path("blog/documents.py").write_text(
    "from opensearchpy import Document, Keyword, Text\n\n\n"
    "class Post(Document):\n"
    "    code = Keyword()\n"
    "    title = Text()\n"
    "    content = Text()\n\n"
    "    class Index:\n"
    '        name = "blog-posts"\n'
)
cluster.request(
    "PUT",
    "/blog-posts-2",
    body={
        "settings": {"number_of_replicas": 0},
        "mappings": {
            "properties": {
                "code": {"type": "long"},
                "title": {"type": "text"},
                "body": {"type": "text"},
            }
        },
        "aliases": {"blog-posts": {}},
    },
)
for _n in range(1, 31):
    _post = {"code": _n, "title": f"post {_n}", "body": f"the text of post {_n}"}
    cluster.request("PUT", f"/blog-posts-2/_doc/{_n}", body=_post)
cluster.request("POST", "/blog-posts-2/_refresh")

# -- after the block --
from esmigrate.operations import ExecContext, Operations  # noqa: E402

_op = Operations()
_revision = globals()["revision"]
globals()["upgrade"](_op)  # the page's script
for _operation in _op.operations:
    _operation.execute(cluster, ExecContext(revision=_revision, state_index=".esmigrate"))

(_new,) = cluster.request("GET", "/_alias/blog-posts")
assert _new != "blog-posts-2"
assert cluster.request("GET", f"/{_new}/_mapping")[_new]["mappings"]["properties"]["code"] == {
    "type": "keyword"
}
assert cluster.request("GET", "/blog-posts/_doc/7")["_source"] == {
    "code": 7,
    "title": "post 7",
    "content": "the text of post 7",
}
assert cluster.request("GET", "/blog-posts/_count")["count"] == 30
