"""Before docs/guide/zero-downtime.md's in-place and incremental example: ``cluster``, a ``fn``
(a document transformation), the ``posts`` alias (made by the page's blue-green example) and a
``logs`` index whose documents carry ``@timestamp``, and the two incremental targets."""

from typing import Any

from esmigrate import connect, load_config

cluster = connect(load_config().connection)


def fn(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "archived": True}


if not cluster.exists("posts"):
    cluster.request("PUT", "/posts-1", body={"aliases": {"posts": {}}})
    cluster.request("PUT", "/posts-1/_doc/1?refresh=true", body={"title": "t"})
for _n in range(1, 11):
    _cluster_doc = {"@timestamp": f"2026-12-0{1 + _n % 5}T10:00:00Z", "message": f"line {_n}"}
    cluster.request("PUT", f"/logs/_doc/{_n}", body=_cluster_doc)
cluster.request("POST", "/logs/_refresh")
# Incremental copies into a target that exists, with its mapping.
for _target in ("posts-archive", "logs-copy"):
    cluster.request("PUT", f"/{_target}")
