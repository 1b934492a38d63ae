"""The rollback verbs on the command line: --json, the refusal as one paragraph, a rollback
with reverse rules named module:attr, cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import ExitCode
from esmigrate.migrate._layout import alias_targets
from tests.conftest import run_cli
from tests.migrate_support import all_docs, create_source
from tests.rollback_support import migrate_with_point

pytestmark = pytest.mark.integration

REVERSE = """
def reverse(doc):
    if "content" in doc:
        doc["body"] = doc.pop("content")
    if isinstance(doc.get("code"), str) and doc["code"].startswith("c"):
        doc["code"] = int(doc["code"][1:])
    doc.pop("n2", None)
    return doc
"""


def test_cli_rollback(cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str) -> None:
    (tmp_path / "esmigrate.toml").write_text(
        f'history_index = "{prefix}-hist"\n[connection]\nurl = "{cluster_url}"\n'
    )
    (tmp_path / "revrules.py").write_text(REVERSE)
    alias, old, initial = create_source(cluster, prefix, 100)
    made = run_cli("--json", "rollback-point", "create", "manual", alias, cwd=tmp_path, timeout=300)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["indices"][old]["count"] == 100
    new = migrate_with_point(cluster, prefix, alias, "cut").target
    for i in range(4):
        cluster.request("PUT", f"/{alias}/_doc/n{i}", body={"title": "t", "n": i, "code": i})
    listed = json.loads(
        run_cli("--json", "rollback-point", "list", cwd=tmp_path, timeout=300).stdout
    )
    assert [p["name"] for p in listed] == ["manual", "cut"]
    shown = json.loads(
        run_cli("--json", "rollback-point", "show", "cut", cwd=tmp_path, timeout=300).stdout
    )
    assert shown["cut_over"]["to"] == new

    dry = json.loads(
        run_cli("--json", "rollback", "cut", "--dry-run", cwd=tmp_path, timeout=300).stdout
    )
    assert dry["writes_at_risk"] == 4
    assert dry["mode"] == "swap"
    refused = run_cli("rollback", "cut", cwd=tmp_path, timeout=300)
    assert refused.returncode == ExitCode.PROBLEM  # nothing changed: it found writes at risk
    assert "4 operation(s)" in refused.stderr
    assert "--discard-writes" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    done = run_cli(
        "--json",
        "rollback",
        "cut",
        "--reverse-rules",
        "revrules:reverse",
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["mode"] == "carry"
    assert set(alias_targets(cluster, alias)) == {old}
    expected = dict(initial)
    expected.update({f"n{i}": {"title": "t", "n": i, "code": i} for i in range(4)})
    assert all_docs(cluster, old) == expected

    missing = run_cli("rollback", "nope", cwd=tmp_path, timeout=300)
    assert missing.returncode == 1
    assert "no rollback point 'nope'" in missing.stderr

    clean = json.loads(
        run_cli(
            "--json", "rollback-point", "cleanup", "--keep", "0", "--dry-run", cwd=tmp_path
        ).stdout
    )
    assert clean["points_deleted"] == ["manual", "cut"]
    assert clean["indices_deleted"] == [new]  # the old index is aliased again: protected
    assert clean["protected"] == {old: "an alias points to it"}
