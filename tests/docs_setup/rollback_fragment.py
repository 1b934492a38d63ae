"""Before docs/guide/rollback.md's Python example: ``cluster``; the index ``posts-2`` behind the
alias ``posts`` with posts in their 2.0 shape (``body``); ``new_mapping`` (3.0: ``body`` became
``content``), ``upgrade`` and ``downgrade`` (the transform and its reverse) and ``my_query``
(the search the application runs).

The page's watch lasts ``duration=600`` s, sampled every 5 s; here ``auto_rollback`` watches
with the same checks for 3 s, sampled every 0.5 s, so the page runs in seconds.
"""

import functools
from typing import Any

import esmigrate.rollback
from esmigrate import connect, load_config

cluster = connect(load_config().connection)

new_mapping: dict[str, Any] = {
    "properties": {"title": {"type": "text"}, "content": {"type": "text"}}
}
my_query: dict[str, Any] = {"query": {"match": {"title": "post"}}}


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc["content"] = doc.pop("body", "")
    return doc


def downgrade(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc["body"] = doc.pop("content", "")
    return doc


cluster.request(
    "PUT",
    "/posts-2",
    body={
        "settings": {"number_of_replicas": 0},
        "mappings": {"properties": {"title": {"type": "text"}, "body": {"type": "text"}}},
        "aliases": {"posts": {}},
    },
)
for _n in range(1, 51):
    cluster.request("PUT", f"/posts-2/_doc/{_n}", body={"title": f"post {_n}", "body": "text"})
cluster.request("POST", "/posts-2/_refresh")

_auto_rollback = esmigrate.rollback.auto_rollback


@functools.wraps(_auto_rollback)
def _short_watch(*args: Any, **kwargs: Any) -> Any:
    kwargs.update(duration=min(kwargs["duration"], 3.0), interval=min(kwargs["interval"], 0.5))
    return _auto_rollback(*args, **kwargs)


esmigrate.rollback.auto_rollback = _short_watch

# -- after the block --
# The rollback took the alias back to the old index, which has every post in its 2.0 shape; the
# watch that followed found the alias healthy and rolled nothing back.
assert list(cluster.request("GET", "/_alias/posts")) == ["posts-2"]
assert cluster.request("GET", "/posts/_doc/7")["_source"] == {"title": "post 7", "body": "text"}
_report = globals()["report"]  # the page's watch
assert _report.healthy
assert _report.rollback is None
