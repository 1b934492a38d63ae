"""``esmigrate compare A B`` on the real node: counts, mapping diff and a sampled deep diff,
exit 3 when they differ."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import Config, load_config
from esmigrate.exceptions import ExitCode
from tests.conftest import run_cli

pytestmark = pytest.mark.integration

ONE = {"number_of_shards": 1, "number_of_replicas": 0}


def setup(tmp: Path, url: str, cluster: Cluster, prefix: str) -> Config:
    """``a``: 50 documents; ``same``: a copy; ``typed``: code as keyword strings."""
    (tmp / "esmigrate.toml").write_text(
        f'[esmigrate]\nhistory_index = "{prefix}-hist"\n[esmigrate.connection]\nurl = "{url}"\n'
    )
    (tmp / "appfns.py").write_text(
        "def code_to_str(doc):\n    return {**doc, 'code': str(doc['code'])}\n"
    )
    long = {"properties": {"code": {"type": "long"}, "title": {"type": "text"}}}
    keyword = {"properties": {"code": {"type": "keyword"}, "title": {"type": "text"}}}
    for name, mapping in (("a", long), ("same", long), ("typed", keyword)):
        cluster.request("PUT", f"/{prefix}-{name}", body={"settings": ONE, "mappings": mapping})
    lines = []
    for i in range(50):
        for name, code in (("a", i), ("same", i), ("typed", str(i))):
            lines += [
                orjson.dumps({"index": {"_index": f"{prefix}-{name}", "_id": str(i)}}),
                orjson.dumps({"code": code, "title": f"post {i}"}),
            ]
    cluster.bulk(b"\n".join(lines) + b"\n", refresh="true")
    return load_config(tmp / "esmigrate.toml")


def test_two_copies_are_the_same(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = setup(tmp_path, cluster_url, cluster, prefix)
    result = run_cli("--config", str(config.source), "compare", f"{prefix}-a", f"{prefix}-same")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "are the same" in result.stdout
    data = command.compare(config, f"{prefix}-a", f"{prefix}-same")
    assert data["same"] is True
    assert data["sample"] == {"size": 50, "different": 0, "differences": []}


def test_a_changed_document_and_a_missing_one_are_found(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = setup(tmp_path, cluster_url, cluster, prefix)
    same = f"{prefix}-same"
    cluster.request("PUT", f"/{same}/_doc/7", body={"code": 7, "title": "edited"})
    cluster.request("DELETE", f"/{same}/_doc/9")

    result = run_cli("--config", str(config.source), "--json", "compare", f"{prefix}-a", same)

    assert result.returncode == ExitCode.PROBLEM
    data = json.loads(result.stdout)
    assert data["same"] is False
    assert data["counts"] == {"a": 50, "b": 49, "same": False}
    assert data["mapping"]["same"] is True
    found = {d["id"]: d for d in data["sample"]["differences"]}
    assert set(found) == {"7", "9"}
    assert found["7"]["actual"]["title"] == "edited"
    assert found["9"]["actual"] is None


def test_through_a_transform_only_the_mapping_differs(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = setup(tmp_path, cluster_url, cluster, prefix)
    a, typed = f"{prefix}-a", f"{prefix}-typed"

    plain = command.compare(config, a, typed)
    assert plain["sample"]["different"] == 50

    through = command.compare(config, a, typed, transform="appfns:code_to_str")
    assert through["sample"]["different"] == 0
    assert through["counts"]["same"] is True
    assert [(c["path"], c["class"]) for c in through["mapping"]["changes"]] == [
        ("code", "needs_reindex")
    ]
    assert through["same"] is False


def test_comparing_with_a_missing_index_says_so(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = setup(tmp_path, cluster_url, cluster, prefix)
    result = run_cli(
        "--config", str(config.source), "--json", "compare", f"{prefix}-a", f"{prefix}-nope"
    )
    assert result.returncode == ExitCode.ERROR
    error = json.loads(result.stdout)["error"]
    assert error["message"] == f"There is no index or alias '{prefix}-nope' to compare."
