"""The migration verbs on the command line: exit codes, --json, one-paragraph errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def esmigrate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esmigrate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_project_lifecycle(tmp_path: Path, cluster_url: str, prefix: str) -> None:
    root = tmp_path / "proj"
    made = esmigrate(
        tmp_path, "init", "proj", "--url", cluster_url, "--history-index", f"{prefix}-hist"
    )
    assert made.returncode == 0, made.stderr
    assert (root / "esmigrate.toml").is_file()
    first = esmigrate(root, "--json", "revision", "-m", "create things", "--rev-id", "r1")
    assert json.loads(first.stdout)["path"] == "migrations/r1_create_things.py"
    with (root / "migrations" / "r1_create_things.py").open("a") as fh:
        fh.write(
            f"\n\ndef upgrade(op):\n"
            f'    op.create_index("{prefix}-things", settings={{"number_of_replicas": 0}})\n'
            f"\n\ndef downgrade(op):\n"
            f'    op.delete_index("{prefix}-things")\n'
        )
    assert esmigrate(root, "revision", "-m", "second", "--rev-id", "r2").returncode == 0

    dry = esmigrate(root, "upgrade", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"PUT /{prefix}-things" in dry.stdout
    up = esmigrate(root, "upgrade")
    assert up.returncode == 0, up.stderr
    assert "Applied 2 revision(s)" in up.stdout
    assert "1/1 create index" in up.stderr  # progress goes to stderr

    status = json.loads(esmigrate(root, "--json", "status").stdout)
    assert status["current"] == ["r2"]
    assert status["up_to_date"] is True

    down = esmigrate(root, "downgrade", "-1")  # a relative target, not an option
    assert down.returncode == 0, down.stderr
    assert "Reverted 1 revision(s)" in down.stdout
    history = json.loads(esmigrate(root, "history", "--json").stdout)
    assert [(h["revision"], h["state"]) for h in history] == [
        ("r1", "applied"),
        ("r2", "rolled_back"),
    ]

    with (root / "migrations" / "r1_create_things.py").open("a") as fh:
        fh.write("# edited\n")
    invalid = esmigrate(root, "validate")
    assert invalid.returncode == 1
    assert "r1" in invalid.stdout
    assert "checksum" in invalid.stdout
    refused = esmigrate(root, "upgrade")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1, refused.stderr  # one paragraph
    assert refused.stderr.startswith("Error: Applied migration script(s) changed")
    assert "esmigrate repair" in refused.stderr
    repaired = esmigrate(root, "repair")
    assert repaired.returncode == 0
    assert "re-aligned the checksum" in repaired.stdout
    assert esmigrate(root, "validate").returncode == 0


def test_cli_bad_script_is_one_paragraph_and_writes_nothing(
    tmp_path: Path, cluster_url: str, prefix: str
) -> None:
    root = tmp_path / "proj"
    assert (
        esmigrate(
            tmp_path, "init", "proj", "--url", cluster_url, "--history-index", f"{prefix}-hist"
        ).returncode
        == 0
    )
    (root / "migrations" / "r1_bad.py").write_text(
        "revision = 'r1'\ndown_revision = None\nimport missing_dependency_xyz\n"
    )
    result = esmigrate(root, "upgrade")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "r1_bad.py" in result.stderr
    assert "line 3" in result.stderr
    status = esmigrate(root, "status", "--url", cluster_url)
    assert status.returncode == 1  # the scripts cannot be read, and it says so
    unknown = esmigrate(root, "downgrade", "nope")
    assert unknown.returncode == 1
    assert "Traceback" not in unknown.stderr
