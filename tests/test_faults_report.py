"""docs/reliability.md is written from the recorded figures (scripts/faults_report.py): sums per
scenario and in all, where the kills landed, what the run did not cover, runs in which no fault
landed left out and failed runs counted as failed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from tests.migrate_support import ROOT


def report_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "faults_report", ROOT / "scripts/faults_report.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def line(scenario: str, ok: bool, lost: int, phases: list[str]) -> str:
    return json.dumps(
        {
            "kind": "kill",
            "scenario": scenario,
            "ok": ok,
            "faults": len(phases),
            "runs": len(phases) + 1,
            "documents_checked": 100,
            "lost": lost,
            "resurrected": 0,
            "reverted": 0,
            "write_blocks_left": 0,
            "write_block_longest_s": 0.25,
            "detail": {"kills": [{"phase": p} for p in phases]},
        }
    )


def test_the_page_sums_the_recorded_runs(tmp_path: Path) -> None:
    (tmp_path / "kill.jsonl").write_text(
        line("python", True, 0, ["copy", "catchup"])
        + "\n"
        + line("python", False, 2, ["copy"])
        + "\n"
        + line("rollback", True, 0, ["blocked"])
        + "\n"
    )
    module = report_module()
    page = module.render(module.load(tmp_path))
    rows = [r for r in page.splitlines() if r.startswith("| ")]
    # scenario, runs, passed, faults, processes, checked, lost, resurrected, reverted, blocks, longest
    assert "| python | 2 | 1 | 3 | 5 | 200 | 2 | 0 | 0 | 0 | 0.25 |" in rows
    assert "| **all** | 3 | 2 | 4 | 7 | 300 | 2 | 0 | 0 | 0 | 0.25 |" in rows
    assert "| scenario | blocked | catchup | copy |" in rows
    assert "| python | 0 | 1 | 2 |" in rows
    assert "not in it: lease-loss, concurrency, node-restart" in page


def test_without_figures_the_page_says_how_to_get_them(tmp_path: Path) -> None:
    module = report_module()
    assert "run `bash scripts/faults.sh`" in module.render(module.load(tmp_path))


def test_runs_without_a_landed_fault_are_left_out_and_failed_runs_counted(tmp_path: Path) -> None:
    failed = {"kind": "kill", "scenario": "python", "ok": False, "detail": {"error": "boom"}}
    (tmp_path / "kill.jsonl").write_text(
        line("python", True, 0, ["copy"])
        + "\n"
        # The kill moment came after the migration had finished: not a kill run.
        + line("python", True, 0, [])
        + "\n"
        # Failed before it counted its kills: a failed run all the same.
        + json.dumps(failed)
        + "\n"
    )
    module = report_module()
    page = module.render(module.load(tmp_path))
    rows = [r for r in page.splitlines() if r.startswith("| ")]
    # scenario, runs, passed, faults, processes, checked, lost, resurrected, reverted, ...
    assert "| python | 2 | 1 | 1 | 2 | 100 | 0 | 0 | 0 | 0 | 0.25 |" in rows
    assert "2 scenario runs, 1 passed" in page
    assert "Left out: 1 run(s) in which no fault landed" in page


def test_the_secrets_found_are_summed_over_the_processes_checked(tmp_path: Path) -> None:
    rows = [json.loads(line("python", True, 0, ["copy"])) for _ in range(2)]
    rows[0].update(outputs_checked=3, secrets_found=0)
    rows[1].update(outputs_checked=4, secrets_found=1)
    (tmp_path / "kill.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    module = report_module()
    page = module.render(module.load(tmp_path))
    assert "Secrets found: 1 (must be 0), in the output (stdout and stderr) of the 7 " in page
    # Without processes given a password, the page claims nothing about secrets.
    (tmp_path / "kill.jsonl").write_text(line("python", True, 0, ["copy"]) + "\n")
    assert "Secrets found" not in module.render(module.load(tmp_path))


def test_the_page_names_the_commit_and_time_the_run_recorded(tmp_path: Path) -> None:
    # Rendered again later, or from another checkout, the page still names the run's own.
    (tmp_path / "kill.jsonl").write_text(line("python", True, 0, ["copy"]) + "\n")
    (tmp_path / "run.json").write_text(
        json.dumps({"commit": "0123abc", "finished": "2026-01-02 03:04 UTC"})
    )
    module = report_module()
    page = module.render(module.load(tmp_path), module.recorded_run(tmp_path))
    assert "Last recorded run: 2026-01-02 03:04 UTC, commit `0123abc`, 1 scenario runs" in page
    assert module.recorded_run(tmp_path / "elsewhere") == {}
