"""``deploy --rollback-all-on-failure`` on the real node: a later revision failing takes back the
earlier cut-overs of the same deploy, carrying the writes made since, or refusing and naming
them; the deployment log says what was done."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import Config, load_config
from esmigrate.deploy import deploy
from esmigrate.exceptions import DeployRolledBack, EsmigrateError, ExitCode
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def project(tmp: Path, url: str, prefix: str) -> Config:
    """c1 creates posts and tags; c2 migrates posts (a cut-over); c3 migrates tags through a
    transform that, on its first document, writes one more post through the alias (a write
    after c2's cut-over), then fails on every document."""
    posts, tags = f"{prefix}-posts", f"{prefix}-tags"
    (tmp / "migrations").mkdir()
    (tmp / "esmigrate.toml").write_text(
        f'[esmigrate]\nhistory_index = "{prefix}-hist"\n[esmigrate.connection]\nurl = "{url}"\n'
    )
    (tmp / "appcode.py").write_text(
        "def code_back_to_long(doc):\n    return {**doc, 'code': int(doc['code'])}\n"
    )
    common = (
        "LONG = {'properties': {'code': {'type': 'long'}}}\n"
        "KEYWORD = {'properties': {'code': {'type': 'keyword'}}}\n"
        "ONE = {'number_of_shards': 1, 'number_of_replicas': 0}\n"
    )
    (tmp / "migrations" / "c1.py").write_text(
        f"revision = 'c1'\ndown_revision = None\n{common}\n"
        "def upgrade(op):\n"
        + "".join(
            f"    op.create_index({name + '-v1'!r}, mappings=LONG, settings=ONE,\n"
            f"                    aliases={{{name!r}: {{'is_write_index': True}}}})\n"
            for name in (posts, tags)
        )
    )
    (tmp / "migrations" / "c2.py").write_text(
        f"revision = 'c2'\ndown_revision = 'c1'\n{common}\n"
        f"def upgrade(op):\n    op.migrate({posts!r}, KEYWORD, settings=ONE)\n"
    )
    (tmp / "migrations" / "c3.py").write_text(
        f"revision = 'c3'\ndown_revision = 'c2'\nimport urllib.request\n{common}\n"
        "WROTE = []\n\n"
        "def write_then_fail(doc):\n"
        "    if not WROTE:\n"
        "        WROTE.append(1)\n"
        f"        req = urllib.request.Request({url + '/' + posts + '/_doc/late?refresh=true'!r},\n"
        "            data=b'{\"code\": \"999\"}', method='PUT',\n"
        "            headers={'Content-Type': 'application/json'})\n"
        "        urllib.request.urlopen(req).read()\n"
        "    raise ValueError('tags cannot be migrated')\n\n"
        "def upgrade(op):\n"
        f"    op.migrate({tags!r}, KEYWORD, settings=ONE, transform=write_then_fail,\n"
        "               strategy='blue_green')\n"
    )
    config = load_config(tmp / "esmigrate.toml")
    command.upgrade(config, "c1")
    return config


def fill(cluster: Cluster, prefix: str) -> None:
    lines = []
    for alias in (f"{prefix}-posts", f"{prefix}-tags"):
        for i in range(100):
            lines += [
                orjson.dumps({"index": {"_index": alias, "_id": str(i)}}),
                orjson.dumps({"code": i}),
            ]
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")


def backing(cluster: Cluster, alias: str) -> list[str]:
    return sorted(cluster.request("GET", f"/_alias/{alias}"))


def test_a_failed_revision_rolls_back_the_earlier_cut_over_with_the_writes_made_since(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = project(tmp_path, cluster_url, prefix)
    fill(cluster, prefix)
    posts = f"{prefix}-posts"
    lines: list[str] = []

    with pytest.raises(DeployRolledBack) as rolled:
        deploy(
            config,
            rollback_all_on_failure=True,
            reverse_rules={posts: "appcode:code_back_to_long"},
            reporter=lines.append,
        )

    message = rolled.value.message
    assert "The upgrade failed" in message
    assert f"{posts} to before-c2-{posts}" in message
    assert isinstance(rolled.value.__cause__, EsmigrateError)
    # posts is back on its old index, with the post written after the cut-over carried back.
    assert backing(cluster, posts) == [f"{posts}-v1"]
    cluster.refresh(posts)
    assert cluster.count(posts) == 101
    late = cluster.request("GET", f"/{posts}-v1/_doc/late")
    assert late["_source"]["code"] == 999
    log = rolled.value.log
    assert log["outcome"] == "rolled back"
    assert [s["step"] for s in log["steps"]] == ["preflight", "upgrade", "rollback all"]
    assert "failed" in log["steps"][1]
    (entry,) = log["steps"][2]["points"]
    assert (entry["point"], entry["outcome"]) == (f"before-c2-{posts}", "rolled back")
    assert entry["result"]["carried"] == 1
    assert any("rolling back this deploy's cut-overs" in line for line in lines)


def test_a_rollback_that_would_drop_writes_is_refused_and_named_on_the_command_line(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = project(tmp_path, cluster_url, prefix)
    fill(cluster, prefix)
    posts = f"{prefix}-posts"

    result = run_cli(
        "--config", str(config.source), "--json", "deploy", "--rollback-all-on-failure"
    )

    assert result.returncode == ExitCode.PROBLEM, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "DeployRolledBack"
    assert f"Not rolled back: {posts} (before-c2-{posts}): WritesAtRisk" in error["message"]
    assert "esmigrate rollback POINT --reverse-rules" in error["hint"]
    # Nothing lost: posts stays on the new index, which holds the late write.
    assert backing(cluster, posts) != [f"{posts}-v1"]
    cluster.refresh(posts)
    assert cluster.count(posts) == 101
    (entry,) = error["log"]["steps"][-1]["points"]
    assert entry["outcome"] == "failed"


def test_without_the_option_the_earlier_cut_over_stays(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = project(tmp_path, cluster_url, prefix)
    fill(cluster, prefix)
    posts = f"{prefix}-posts"

    with pytest.raises(EsmigrateError) as failed:
        deploy(config)

    assert not isinstance(failed.value, DeployRolledBack)
    assert backing(cluster, posts) != [f"{posts}-v1"]
