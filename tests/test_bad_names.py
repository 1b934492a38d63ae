"""Names that are not one index or alias: refused before the first request, the cluster as it was.

A migration puts the names it is given into request paths. ``_all`` and ``*`` name every index,
``a,b`` two of them, ``../x`` and ``a/b`` another endpoint: each must be refused with the rule it
breaks, whatever the entry point (the strategies, ``adopt``, ``rebuild``, ``op.migrate`` in a
revision), and the cluster's indices, aliases, templates and settings must be exactly as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from esmigrate.cluster import Cluster, name_problem
from esmigrate.exceptions import PreflightError
from esmigrate.migrate import BlueGreen, Incremental, InPlace, adopt
from tests.conftest import run_cli
from tests.migrate_support import create_source

MALICIOUS = [
    "_all",
    "*",
    "posts,users",
    "../posts",
    "posts/_doc",
    "Posts",
    "posts ",
    "-posts",
    "..",
]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("_all", "starts with '_'"),
        ("+x", "starts with '+'"),
        ("*", "'*'"),
        ("a,b", "','"),
        ("../x", "'/'"),
        ("a:b", "':'"),
        ("a#b", "'#'"),
        ("a b", "space"),
        ("a\tb", "'\\t'"),
        ("Posts", "uppercase"),
        ("..", "not a name"),
        ("é" * 128, "255 bytes"),
    ],
)
def test_what_makes_a_name_invalid_is_named(name: str, problem: str) -> None:
    found = name_problem(name)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize("name", ["posts", "posts-v2-20240101", ".esmigrate", "a.b_c-d", "é"])
def test_index_and_alias_names_the_engines_accept_pass(name: str) -> None:
    assert name_problem(name) is None


def cluster_state(cluster: Cluster) -> dict[str, Any]:
    """What a refused run must leave as it was: every index (hidden ones too), every alias,
    the index templates and the cluster settings."""
    indices = cluster.request(
        "GET", "/_cat/indices", params={"format": "json", "h": "index", "expand_wildcards": "all"}
    )
    return {
        "indices": sorted(i["index"] for i in indices),
        "aliases": cluster.request("GET", "/_alias", params={"expand_wildcards": "all"}),
        "templates": cluster.request("GET", "/_index_template"),
        "settings": cluster.request("GET", "/_cluster/settings"),
    }


ENTRIES: dict[str, Callable[[Cluster, str, str], object]] = {
    "blue-green alias": lambda c, name, p: BlueGreen(c, alias=name, mappings={}).run(),
    "blue-green target": lambda c, name, p: BlueGreen(
        c, alias=f"{p}-posts", mappings={}, target=name
    ).run(),
    "blue-green dead letters": lambda c, name, p: BlueGreen(
        c, alias=f"{p}-posts", mappings={}, dead_letter_index=name
    ).run(),
    "blue-green state index": lambda c, name, p: BlueGreen(
        c, alias=f"{p}-posts", mappings={}, state_index=name
    ).plan(),
    "in-place": lambda c, name, p: InPlace(c, alias=name, mappings={}).run(),
    "incremental source": lambda c, name, p: Incremental(c, source=name, target=f"{p}-x").run(),
    "incremental target": lambda c, name, p: Incremental(c, source=f"{p}-posts", target=name).run(),
    "adopt": lambda c, name, p: adopt(c, name),
}


@pytest.mark.integration
@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_a_bad_name_is_refused_and_the_cluster_is_left_as_it_was(
    cluster: Cluster, prefix: str, entry: str
) -> None:
    create_source(cluster, prefix, 5)
    before = cluster_state(cluster)
    for name in MALICIOUS:
        with pytest.raises(PreflightError) as refused:
            ENTRIES[entry](cluster, name, prefix)
        assert refused.value.problem == "invalid_name", name
        assert repr(name) in refused.value.message
        assert refused.value.hint
    assert cluster_state(cluster) == before


@pytest.mark.integration
def test_the_cli_refuses_bad_names_as_json_and_writes_nothing(
    tmp_path: Path, cluster: Cluster, cluster_url: str, prefix: str
) -> None:
    create_source(cluster, prefix, 5)
    made = run_cli(
        "init", "proj", "--url", cluster_url, "--history-index", f"{prefix}-hist", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    root = tmp_path / "proj"
    before = cluster_state(cluster)
    # The example's document class, importable from the project folder.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # One name per kind of harm (every index, a list, another endpoint): each command starts a
    # process. A name starting with "-" is an unknown option there: a usage error (exit 2).
    for name in ("_all", "posts,users", "../posts"):
        for args in (
            ("rebuild", name, "--to", "examples.blog.blog_schema:BlogPost"),
            ("adopt", name),
        ):
            done = run_cli("--json", *args, cwd=root, env=env)
            assert done.returncode != 0
            error = json.loads(done.stdout)["error"]
            assert error["problem"] == "invalid_name", (args, error)
            assert "Traceback" not in done.stderr
    (root / "migrations" / "r1_bad.py").write_text(
        'revision = "r1"\ndown_revision = None\n\n\n'
        "def upgrade(op):\n"
        f'    op.create_index("{prefix}-made-first", settings={{"number_of_replicas": 0}})\n'
        '    op.migrate("_all", {"properties": {}})\n'
    )
    done = run_cli("--json", "upgrade", cwd=root)
    assert done.returncode != 0
    error = json.loads(done.stdout)["error"]
    assert "'_all' is not a valid alias name" in error["message"]
    assert cluster_state(cluster) == before
