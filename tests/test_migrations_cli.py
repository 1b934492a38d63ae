"""The migration verbs on the command line: exit codes, --json, one-paragraph errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esmigrate.exceptions import ExitCode
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def test_cli_project_lifecycle(tmp_path: Path, cluster_url: str, prefix: str) -> None:
    root = tmp_path / "proj"
    made = run_cli(
        "init", "proj", "--url", cluster_url, "--history-index", f"{prefix}-hist", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    assert (root / "esmigrate.toml").is_file()
    first = run_cli("--json", "revision", "-m", "create things", "--rev-id", "r1", cwd=root)
    assert json.loads(first.stdout)["path"] == "migrations/r1_create_things.py"
    with (root / "migrations" / "r1_create_things.py").open("a") as fh:
        fh.write(
            f"\n\ndef upgrade(op):\n"
            f'    op.create_index("{prefix}-things", settings={{"number_of_replicas": 0}})\n'
            f"\n\ndef downgrade(op):\n"
            f'    op.delete_index("{prefix}-things")\n'
        )
    assert run_cli("revision", "-m", "second", "--rev-id", "r2", cwd=root).returncode == 0

    dry = run_cli("upgrade", "--dry-run", cwd=root)
    assert dry.returncode == 0, dry.stderr
    assert f"PUT /{prefix}-things" in dry.stdout
    up = run_cli("upgrade", cwd=root)
    assert up.returncode == 0, up.stderr
    assert "Applied 2 revision(s)" in up.stdout
    assert "1/1 create index" in up.stderr  # progress goes to stderr

    status = json.loads(run_cli("--json", "status", cwd=root).stdout)
    assert status["current"] == ["r2"]
    assert status["up_to_date"] is True
    current = json.loads(run_cli("--json", "current", cwd=root).stdout)
    assert [c["revision"] for c in current["current"]] == ["r2"]
    assert current["current"][0]["is_head"] is True
    assert "r2 (head)" in run_cli("current", cwd=root).stdout

    down = run_cli("downgrade", "-1", cwd=root)  # a relative target, not an option
    assert down.returncode == 0, down.stderr
    assert "Reverted 1 revision(s)" in down.stdout
    history = json.loads(run_cli("history", "--json", cwd=root).stdout)
    assert [(h["revision"], h["state"]) for h in history] == [
        ("r1", "applied"),
        ("r2", "rolled_back"),
    ]

    with (root / "migrations" / "r1_create_things.py").open("a") as fh:
        fh.write("# edited\n")
    invalid = run_cli("validate", cwd=root)
    assert invalid.returncode == ExitCode.PROBLEM  # it ran and found a problem
    assert "r1" in invalid.stdout
    assert "checksum" in invalid.stdout
    not_ready = run_cli("--json", "preflight", cwd=root)
    assert not_ready.returncode == ExitCode.PROBLEM
    assert json.loads(not_ready.stdout)["ok"] is False
    refused = run_cli("upgrade", cwd=root)
    assert refused.returncode == ExitCode.ERROR  # it could not do what it was asked
    assert refused.stderr.count("\n") == 1, refused.stderr  # one paragraph
    assert refused.stderr.startswith("Error: Applied migration script(s) changed")
    assert "esmigrate repair" in refused.stderr
    as_json = run_cli("--json", "upgrade", cwd=root)
    assert as_json.returncode == ExitCode.ERROR
    error = json.loads(as_json.stdout)["error"]
    assert error["type"] == "ChecksumMismatch"
    assert error["exit_code"] == 1
    assert "esmigrate repair" in error["hint"]
    assert [p["revision"] for p in error["problems"]] == ["r1"]  # its structured fields
    repaired = run_cli("repair", cwd=root)
    assert repaired.returncode == 0
    assert "re-aligned the checksum" in repaired.stdout
    assert run_cli("validate", cwd=root).returncode == 0


def test_cli_bad_script_is_one_paragraph_and_writes_nothing(
    tmp_path: Path, cluster_url: str, prefix: str
) -> None:
    root = tmp_path / "proj"
    assert (
        run_cli(
            "init", "proj", "--url", cluster_url, "--history-index", f"{prefix}-hist", cwd=tmp_path
        ).returncode
        == 0
    )
    (root / "migrations" / "r1_bad.py").write_text(
        "revision = 'r1'\ndown_revision = None\nimport missing_dependency_xyz\n"
    )
    result = run_cli("upgrade", cwd=root)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "r1_bad.py" in result.stderr
    assert "line 3" in result.stderr
    status = run_cli("status", "--url", cluster_url, cwd=root)
    assert status.returncode == 1  # the scripts cannot be read, and it says so
    unknown = run_cli("downgrade", "nope", cwd=root)
    assert unknown.returncode == 1
    assert "Traceback" not in unknown.stderr
