"""Before docs/guide/migrations.md's ``upgrade_old_writes`` revision: the example project's
``blog_schema`` (examples/blog), whose ``v1_to_v2`` ends here with ``Set("schema_version",
"2.0.0")`` as the page's comment says (the demo's rule sets leave the version to the Document
class); ``V2``, the 2.0 mapping of the project's revision 0002; and the alias ``blog_posts`` on
an index of 1.0 posts, as its revision 0001 makes it.

After the script is defined, its ``upgrade(op)`` runs against the node as ``esmigrate upgrade``
runs it, and a post still written in the 1.0 shape after the cut-over is checked upgraded."""

import runpy
import sys
from pathlib import Path

import esmigrate
from esmigrate import connect, load_config
from esmigrate.transform import RuleSet, Set

cluster = connect(load_config().connection)

_blog = Path(esmigrate.__file__).resolve().parents[2] / "examples" / "blog"
assert _blog.is_dir(), f"{_blog}: the docs run from a checkout (pip install -e)"
sys.path.insert(0, str(_blog))
import blog_schema  # noqa: E402

blog_schema.v1_to_v2 = RuleSet(
    *blog_schema.v1_to_v2.rules, Set("schema_version", "2.0.0"), name="blog post 1.0 → 2.0"
)
_migrations = _blog / "migrations"
V2 = runpy.run_path(str(_migrations / "0002_blog_posts_v2.py"))["V2"]
cluster.request(
    "PUT",
    "/blog_posts-v1",
    body={
        "settings": {"number_of_replicas": 0},
        "mappings": runpy.run_path(str(_migrations / "0001_blog_posts_v1.py"))["V1"],
        "aliases": {"blog_posts": {"is_write_index": True}},
    },
)
for _n in range(1, 21):
    _post = {
        "title": f"post {_n}",
        "content": f"the text of post {_n} #search #python",
        "author": "ada",
        "created_date": "2026-01-02T03:04:05Z",
    }
    cluster.request("PUT", f"/blog_posts-v1/_doc/{_n}", body=_post)
cluster.request("POST", "/blog_posts-v1/_refresh")

# -- after the block --
from esmigrate.operations import ExecContext, Operations  # noqa: E402

_op = Operations()
globals()["upgrade"](_op)  # the page's script
for _operation in _op.operations:
    _operation.execute(cluster, ExecContext(revision="0002", state_index=".esmigrate"))

(_new,) = cluster.request("GET", "/_alias/blog_posts")
_pipeline = f"esmigrate-upgrade-{_new}"
_settings = cluster.request("GET", f"/{_new}/_settings")[_new]["settings"]["index"]
assert _settings["default_pipeline"] == _pipeline
_copied = cluster.request("GET", "/blog_posts/_doc/3")["_source"]
assert _copied["schema_version"] == "2.0.0"
assert _copied["tags"] == ["search", "python"]
# A writer still on 1.0 after the cut-over: its post is stored in the 2.0 shape.
_old = {"title": "late", "content": "written by an old writer #late", "author": "bob"}
_old["created_date"] = "2026-02-03T04:05:06Z"
cluster.request("PUT", "/blog_posts/_doc/late?refresh=true", body=_old)
_late = cluster.request("GET", "/blog_posts/_doc/late")["_source"]
assert _late["schema_version"] == "2.0.0", _late
assert _late["category"] == "general"
assert _late["published_date"] == _old["created_date"]
assert _late["tags"] == ["late"]
# The pipeline outlives the index the page's test deletes: the page's `old-writes remove`.
cluster.request("PUT", f"/{_new}/_settings", body={"index.default_pipeline": None})
cluster.request("DELETE", f"/_ingest/pipeline/{_pipeline}")
