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
from tests.migrate_support import TARGET_MAPPING, all_docs, create_source
from tests.migration_project import make_project, write_script
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


def test_a_rolled_back_revision_is_no_longer_current_and_upgrade_applies_it_again(
    cluster: Cluster, prefix: str, tmp_path: Path, cluster_url: str
) -> None:
    alias, old, _ = create_source(cluster, prefix, 50)
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=f"{prefix}-hist")
    write_script(config, "r1", None, f"op.migrate({alias!r}, {TARGET_MAPPING!r})")
    assert run_cli("upgrade", cwd=config.root, timeout=300).returncode == 0
    point = f"before-r1-{alias}"

    back = run_cli("rollback", point, cwd=config.root, timeout=300)
    assert back.returncode == 0, back.stderr
    assert "the history records revision r1 as rolled back" in back.stdout
    assert set(alias_targets(cluster, alias)) == {old}
    (row,) = json.loads(run_cli("--json", "history", cwd=config.root).stdout)
    assert row["state"] == "rolled_back"
    assert row["rolled_back_to"]["point"] == point
    assert f"(rolled back to {point} at " in run_cli("history", cwd=config.root).stdout
    status = json.loads(run_cli("--json", "status", cwd=config.root).stdout)
    assert status["current"] == []
    assert [p["revision"] for p in status["pending"]] == ["r1"]
    # Running the rollback again records nothing more.
    again = run_cli("--json", "rollback", point, cwd=config.root, timeout=300)
    assert json.loads(again.stdout)["recorded"] == {
        "kind": "revision",
        "id": "r1",
        "state": "rolled_back",
    }
    (row,) = json.loads(run_cli("--json", "history", "-v", cwd=config.root).stdout)
    assert [e["action"] for e in row["events"]].count("rollback") == 1

    # The next upgrade applies it again: the alias leaves the old index, the record is current.
    assert run_cli("upgrade", cwd=config.root, timeout=300).returncode == 0
    assert set(alias_targets(cluster, alias)) != {old}
    (row,) = json.loads(run_cli("--json", "history", cwd=config.root).stdout)
    assert (row["state"], row["rolled_back_to"]) == ("applied", None)

    # With a revision applied on top of it, it stays applied; the rollback is recorded on it.
    write_script(config, "r2", "r1", f"op.create_index({prefix + '-other'!r})")
    assert run_cli("upgrade", cwd=config.root, timeout=300).returncode == 0
    back = run_cli("rollback", point, cwd=config.root, timeout=300)
    assert back.returncode == 0, back.stderr
    assert "which stays applied" in back.stdout
    rows = {
        r["revision"]: r for r in json.loads(run_cli("--json", "history", cwd=config.root).stdout)
    }
    assert rows["r1"]["state"] == "applied"
    assert rows["r1"]["rolled_back_to"]["point"] == point
    assert json.loads(run_cli("--json", "status", cwd=config.root).stdout)["current"] == ["r2"]
