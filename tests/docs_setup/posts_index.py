"""Before docs/guide/zero-downtime.md's blue-green example: an index ``posts-1`` behind the
alias ``posts``, whose ``code`` is a number and ``body`` the text, with a few posts."""

from esmigrate import connect, load_config

with connect(load_config().connection) as _cluster:
    _cluster.request(
        "PUT",
        "/posts-1",
        body={
            "mappings": {"properties": {"code": {"type": "long"}, "body": {"type": "text"}}},
            "aliases": {"posts": {}},
        },
    )
    for _n in range(1, 21):
        _cluster.request(
            "PUT", f"/posts-1/_doc/{_n}", body={"code": _n, "body": f"post {_n}", "title": "t"}
        )
    _cluster.request("POST", "/posts-1/_refresh")
