"""Shared pieces of the fault tests that break the cluster rather than esmigrate (node restarts,
network faults, cluster pressure, a real multi-node cluster): which run they belong to,
resuming a migration until it is done, the exact outcome, and the figures for the reliability
report.

The fast subset runs in the normal suite; the rest only in the full fault run
(``ESMIGRATE_FAULTS=full``), marked :data:`full_only`.

Figures: with ``ESMIGRATE_FAULTS=full`` (or ``ESMIGRATE_FAULTS_RESULTS`` naming a folder) every
scenario appends one JSON line to ``<results>/<kind>.jsonl``, ``<results>`` being
``ESMIGRATE_FAULTS_RESULTS`` or ``build/faults``; kinds ``kill``, ``lease-loss``,
``node-restart``, ``network``, ``pressure``, ``concurrency`` and ``multi-node``. A line is the fault report's
(``kind``, ``scenario``, ``test``, ``ok``, ``faults``, ``runs``, ``documents_checked``, ``lost``,
``resurrected``, ``reverted``, ``write_block_longest_s``, ``write_blocks_left``, ``detail``);
the fast subset records nothing.
A run is recorded when it ends (:func:`fault_run`), ``ok`` saying whether it passed: a failed
run is recorded too, with what it had measured. ``faults`` counts the faults that landed while
the migration ran; the report leaves out runs with none (the migration was over first).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import EsmigrateError
from esmigrate.migrate import MigrationResult
from esmigrate.migrate._layout import is_write_blocked, resolve
from tests.migrate_support import ROOT, all_docs, expected_state

FULL = os.environ.get("ESMIGRATE_FAULTS", "").strip().lower() == "full"
#: Marks for a test that runs in the full fault run only.
full_only = [
    pytest.mark.skipif(not FULL, reason="the full fault run only (ESMIGRATE_FAULTS=full)"),
]


def results_dir() -> Path | None:
    named = os.environ.get("ESMIGRATE_FAULTS_RESULTS")
    if named:
        return Path(named)
    return ROOT / "build" / "faults" if FULL else None


def record(kind: str, scenario: str, *, ok: bool, **figures: Any) -> dict[str, Any]:
    """Append one scenario's figures to ``<results>/<kind>.jsonl``; returns the line."""
    line = {
        "kind": kind,
        "scenario": scenario,
        "ok": ok,
        "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0],
        **figures,
    }
    folder = results_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{kind}.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
    return line


class FaultRun:
    """One scenario run's figures, written when the run ends (see :func:`fault_run`)."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}

    def set(self, **figures: Any) -> None:
        """Add or replace figures (``faults``, ``runs``, ``lost``...; ``detail`` is merged)."""
        detail = {**self.figures.get("detail", {}), **figures.pop("detail", {})}
        self.figures.update(figures, detail=detail)

    def measured(self, found: Mapping[str, Any], blocked_longest_s: float, **figures: Any) -> None:
        """The exact outcome's figures (:func:`outcome`) and the longest write block the writer
        met, with ``figures`` (``runs``, ``faults``, ``detail``...)."""
        if found.get("examples"):
            self.set(detail={"examples": found["examples"]})
        self.set(
            documents_checked=found["documents_checked"],
            lost=found["lost"],
            resurrected=found["resurrected"],
            reverted=found["reverted"],
            write_blocks_left=found["write_blocks_left"],
            write_block_longest_s=round(blocked_longest_s, 3),
            **figures,
        )


@contextmanager
def fault_run(kind: str, scenario: str) -> Iterator[FaultRun]:
    """Record one scenario run's figures when it ends, whatever the ending: ``ok`` is whether
    it passed; a run that failed is recorded as failed with the figures it had gathered and the
    error (a failed run is a figure of the report, not a gap in it). A skipped run records
    nothing."""
    run = FaultRun()
    try:
        yield run
    except pytest.skip.Exception:
        raise
    except BaseException as exc:
        run.set(detail={"error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        record(kind, scenario, ok=False, **run.figures)
        raise
    record(kind, scenario, ok=True, **run.figures)


def run_until_done(
    make: Callable[[], Any], *, attempts: int = 6, between: Callable[[int], None] | None = None
) -> tuple[MigrationResult, list[EsmigrateError]]:
    """Run ``make().run()`` until it returns, as an operator reruns a failed migration; the
    errors of the failed runs, in order. An error that is not esmigrate's fails the test (it
    would reach the user as a traceback)."""
    errors: list[EsmigrateError] = []
    for attempt in range(attempts):
        try:
            return make().run(), errors
        except EsmigrateError as exc:
            errors.append(exc)
            if between is not None:
                between(attempt)
    raise AssertionError(f"not done after {attempts} runs: {[str(e) for e in errors]}")


def outcome(
    cluster: Cluster,
    alias: str,
    source: str,
    target: str,
    initial: Mapping[str, dict[str, Any]],
    ops: list[dict[str, Any]],
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What the migration left, measured against the exact expected state: documents checked,
    lost (expected, missing), resurrected (present, not expected), reverted (present with other
    content), where the alias points and whether the source is still write-blocked."""
    expected = expected_state(dict(initial), ops, source, target, transform)
    actual = all_docs(cluster, target)
    lost = sorted(set(expected) - set(actual))
    resurrected = sorted(set(actual) - set(expected))
    reverted = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    found: dict[str, Any] = {
        "documents_checked": len(expected),
        "lost": len(lost),
        "resurrected": len(resurrected),
        "reverted": len(reverted),
        "alias_on_target": resolve(cluster, alias).source == target,
        "write_blocks_left": int(is_write_blocked(cluster, source)),
    }
    wrong = [("lost", k) for k in lost] + [("resurrected", k) for k in resurrected]
    wrong += [("reverted", k) for k in reverted]
    if wrong:
        found["examples"] = [
            _example(cluster, source, what, doc_id, expected, actual, ops)
            for what, doc_id in wrong[:5]
        ]
    return found


def _example(
    cluster: Cluster,
    source: str,
    what: str,
    doc_id: str,
    expected: Mapping[str, Any],
    actual: Mapping[str, Any],
    ops: list[dict[str, Any]],
) -> dict[str, Any]:
    """One wrong document, for the report's detail: what the writer's log says, what the new
    index holds and what the old one does (was it lost by the cluster or by the migration?)."""
    try:
        held = cluster.request("GET", f"/{source}/_doc/{doc_id}")
        in_source: Any = {"seq_no": held.get("_seq_no"), "doc": held.get("_source")}
    except EsmigrateError as exc:
        in_source = f"{type(exc).__name__}"
    return {
        "what": what,
        "id": doc_id,
        "expected": expected.get(doc_id),
        "target": actual.get(doc_id),
        "source": in_source,
        "last_ops": [o for o in ops if o.get("id") == doc_id][-3:],
    }


def sum_outcomes(founds: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several migrations' outcomes (:func:`outcome`) as one scenario run's figures."""
    rows = list(founds)
    summed: dict[str, Any] = {
        key: sum(int(r[key]) for r in rows)
        for key in ("documents_checked", "lost", "resurrected", "reverted", "write_blocks_left")
    }
    summed["alias_on_target"] = all(r["alias_on_target"] for r in rows)
    return summed


def assert_clean(found: Mapping[str, Any]) -> None:
    assert found["alias_on_target"], found
    assert (found["lost"], found["resurrected"], found["reverted"]) == (0, 0, 0), found
    assert found["write_blocks_left"] == 0, found
