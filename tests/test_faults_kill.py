"""Randomised kills: the process that migrates (``esmigrate upgrade``, ``deploy``, ``rollback``, or
an incremental run) is SIGKILLed at seeded random moments while a live writer indexes, updates and
deletes through the alias, started again, killed again, then run until it is done.

Then the state must be exact: every acknowledged write present in its latest version
(transformed where the data moved), no deleted document back, no write block left, the history
saying the revision is applied with nothing failed. The fast subset (seed 1 of each scenario)
runs in the suite; ``ESMIGRATE_FAULTS=full`` runs ``ESMIGRATE_FAULTS_SEEDS`` seeds (default 6)
of each and records the figures (tests/fault_runs.py, kind ``kill``), a failed run as failed.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import Config
from esmigrate.migrate._layout import alias_targets, is_write_blocked, resolve
from esmigrate.testing import LiveWriter
from tests.conftest import env_without_esmigrate
from tests.fault_runs import FULL, assert_clean, fault_run, outcome
from tests.migrate_support import (
    ROOT,
    TARGET_MAPPING,
    all_docs,
    create_source,
    diff,
    expected_state,
    live_writer,
    transform,
)
from tests.random_kills import (
    DOCS,
    LEASE_TTL,
    REVISION,
    KillRun,
    MigrationWatch,
    Project,
    credentials_env,
    kill_until_done,
    migrate_revision,
    project,
    secrets_in,
)
from tests.rollback_support import expected_old_format, migrate_with_point

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SCENARIOS = ("painless", "python", "in-place", "incremental", "rollback", "deploy")
SEEDS = int(os.environ.get("ESMIGRATE_FAULTS_SEEDS", "6")) if FULL else 1
#: Kills per run in the full run (the fast subset kills once).
KILLS = int(os.environ.get("ESMIGRATE_FAULTS_KILLS", "3"))


def _params() -> list[Any]:
    # Seed by seed: a full run cut short has covered every scenario evenly.
    return [
        pytest.param(s, seed, id=f"{s}-{seed}") for seed in range(1, SEEDS + 1) for s in SCENARIOS
    ]


def writes_on(writer: LiveWriter) -> Callable[[], None]:
    """After a kill: the application writes on while nobody migrates, until the dead run's
    leases lapse (the next run would only wait for them)."""

    def wait() -> None:
        # Only time: a run killed under its write block leaves the writer refused until the
        # next run lifts the block, so waiting for its progress here would wait forever.
        time.sleep(LEASE_TTL)

    return wait


def history_is_true(config: Config) -> dict[str, Any]:
    """The history's account once done: the revision applied, nothing failed or pending, the
    lease free."""
    status = command.status(config)
    assert status["current"] == [REVISION], status
    assert not status["failed"], status
    assert not status["pending"], status
    return status


@pytest.mark.parametrize(("scenario", "seed"), _params())
def test_random_kills(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path, scenario: str, seed: int
) -> None:
    rnd = random.Random(f"{scenario}:{seed}")
    kills = KILLS if FULL else 1
    alias, source, initial = create_source(cluster, prefix, DOCS)
    proj = project(tmp_path, cluster_url, prefix)
    hist = f"{prefix}-hist"
    writer = live_writer(cluster_url, alias, len(initial), with_n2=scenario == "in-place")
    found: dict[str, Any]
    with fault_run("kill", scenario) as recorded:
        recorded.set(detail={"seed": seed})
        try:
            writer.wait_for(50)

            if scenario in ("painless", "python", "in-place", "deploy"):
                migrate_revision(
                    proj.config, alias, prefix, "python" if scenario == "deploy" else scenario
                )
                argv = (
                    ("deploy", "--monitor", "2", "--interval", "0.5")
                    if scenario == "deploy"
                    else ("upgrade", "--lock-timeout", "60")
                )
                run = kill_until_done(
                    proj.start(*argv),
                    rnd,
                    kills=kills,
                    window=(0.3, 4.0),
                    phase=MigrationWatch(cluster, hist, f"rev:{REVISION}:{alias}"),
                    between=writes_on(writer),
                )
                history_is_true(proj.config)
                target = resolve(cluster, alias).source
                writer.wait_for(writer.count() + 50)
                writer.stop()
                found = _final(cluster, scenario, alias, source, target, initial, writer)
            elif scenario == "incremental":
                run, found = _incremental(
                    cluster, cluster_url, prefix, alias, source, rnd, kills, writer, tmp_path
                )
            else:
                run, found = _rollback(
                    cluster, proj, prefix, alias, source, initial, rnd, kills, writer
                )
        finally:
            writer.stop()
        summary = writer.report()
        # The password the processes were given, in their output or in the history they wrote.
        cluster.refresh(hist)
        history = cluster.search(hist, {"size": 10_000})["hits"]["hits"]
        leaked = run.secrets_found + secrets_in(json.dumps(history))
        recorded.measured(
            found,
            summary.blocked_longest_s,
            # Kills that landed while the migration ran (none: it was over first).
            faults=len(run.kills),
            runs=run.runs,
            outputs_checked=run.outputs if credentials_env() else 0,
            secrets_found=leaked,
            detail={"kills": run.kills, "failed_runs": len(run.failures), "ran_s": run.ran_s},
        )
        print(f"\n[{scenario}-{seed}] kills {run.kills}; runs {run.runs} {run.ran_s}; {found}")
        if scenario == "in-place" or scenario == "incremental" or scenario == "rollback":
            assert (found["lost"], found["resurrected"], found["reverted"]) == (0, 0, 0), found
            assert found["write_blocks_left"] == 0, found
        else:
            assert_clean(found)
        assert leaked == 0, "the password showed in an output or in the history index"
        if not run.kills:
            # The seed's kill moment came after the migration ended (its final state was checked
            # all the same): a run without a fault, which the report leaves out.
            pytest.skip(f"{scenario}-{seed}: the run ended before its kill moment ({run})")


def _final(
    cluster: Cluster,
    scenario: str,
    alias: str,
    source: str,
    target: str,
    initial: dict[str, dict[str, Any]],
    writer: LiveWriter,
) -> dict[str, Any]:
    ops = writer.operations()
    if scenario != "in-place":
        return outcome(cluster, alias, source, target, initial, ops)
    # In place: the documents stay where they are, each with n2 = 2n (backfilled or written).
    assert target == source
    model = expected_state(initial, ops, source, "-", fn=lambda d: d)
    expected = {i: d if "n2" in d else {**d, "n2": d["n"] * 2} for i, d in model.items()}
    return _compare(expected, all_docs(cluster, source)) | {
        "write_blocks_left": int(is_write_blocked(cluster, source))
    }


def _compare(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    print(diff(expected, actual))
    return {
        "documents_checked": len(expected),
        "lost": len(set(expected) - set(actual)),
        "resurrected": len(set(actual) - set(expected)),
        "reverted": sum(1 for k in set(expected) & set(actual) if expected[k] != actual[k]),
    }


def _incremental(
    cluster: Cluster,
    url: str,
    prefix: str,
    alias: str,
    source: str,
    rnd: random.Random,
    kills: int,
    writer: LiveWriter,
    proj_root: Path,
) -> tuple[KillRun, dict[str, Any]]:
    """Incremental runs, killed and run again while the writer writes; once it stops, one last
    run: the target must mirror the source, transformed."""
    target = f"{prefix}-copy"
    cluster.request(
        "PUT",
        f"/{target}",
        body={"settings": {"number_of_replicas": 0}, "mappings": TARGET_MAPPING},
    )
    cfg: dict[str, Any] = {
        "url": url,
        "source": alias,
        "target": target,
        "path": rnd.choice(["painless", "python"]),
        "migration_id": f"inc-{prefix}",
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
        "rps": 1500,
        "page_size": 300,
        "lease_ttl": LEASE_TTL,
    }
    path = proj_root / "incremental.json"
    path.write_text(json.dumps(cfg))
    env = env_without_esmigrate() | {"PYTHONPATH": str(ROOT)} | credentials_env()

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.random_kills", "incremental", str(path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    phase = MigrationWatch(cluster, cfg["state_index"], cfg["migration_id"])
    run = kill_until_done(
        start,
        rnd,
        kills=kills,
        window=(0.5, 5.0),
        phase=phase,
        keep_killing=True,
        between=writes_on(writer),
    )
    writer.stop()
    last = kill_until_done(start, rnd, kills=0, window=(0, 0), phase=phase)
    run.runs += last.runs
    run.failures += last.failures
    expected = {i: transform(d) for i, d in all_docs(cluster, source).items()}
    found = _compare(expected, all_docs(cluster, target))
    return run, found | {"write_blocks_left": int(is_write_blocked(cluster, source))}


def _rollback(
    cluster: Cluster,
    proj: Project,
    prefix: str,
    alias: str,
    old: str,
    initial: dict[str, dict[str, Any]],
    rnd: random.Random,
    kills: int,
    writer: LiveWriter,
) -> tuple[KillRun, dict[str, Any]]:
    """A blue-green migration recording point ``cut``, the writer writing on to the new index,
    then ``esmigrate rollback cut`` killed and run again: the old index must hold every write,
    in the old format."""
    new = migrate_with_point(cluster, prefix, alias, "cut").target
    writer.wait_for(300, index=new)
    (proj.root / "revrules.py").write_text("from tests.rollback_support import reverse\n")
    run = kill_until_done(
        proj.start("rollback", "cut", "--reverse-rules", "revrules:reverse"),
        rnd,
        kills=kills,
        window=(0.02, 0.5),
        phase=MigrationWatch(cluster, f"{prefix}-hist", "rollback:cut"),
        between=writes_on(writer),
    )
    assert set(alias_targets(cluster, alias)) == {old}
    writer.wait_for(writer.count() + 50)
    writer.stop()
    expected = expected_old_format(initial, writer.operations(), (old, new))
    found = _compare(expected, all_docs(cluster, old))
    blocks = int(is_write_blocked(cluster, old)) + int(is_write_blocked(cluster, new))
    return run, found | {"write_blocks_left": blocks}
