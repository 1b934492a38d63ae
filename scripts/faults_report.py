"""Write docs/reliability.md from the figures a fault run recorded (tests/fault_runs.py): one
JSON line per scenario run in ``<results>/<kind>.jsonl``.

Usage: ``python scripts/faults_report.py [RESULTS=build/faults] > docs/reliability.md``
(scripts/faults.sh runs it after the full fault run). Nothing in the page is written by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: The order of the kinds in the page, and what each one's faults are.
KINDS = {
    "kill": "SIGKILL of the migrating process at a seeded random moment",
    "lease-loss": "a runner paused (SIGSTOP) past its lease, another taking over",
    "concurrency": "runners beside the first at the same time: five `esmigrate upgrade` "
    "processes on one project (started together, and staggered), two projects sharing one "
    "cluster, two migrations of different aliases at once",
    "node-restart": "the node stopped (SIGTERM) and started again on the same data path, "
    "during the copy (both copy modes), the catch-up or under the write block",
    "network": "network fault injected by the proxy",
    "pressure": "cluster pressure: a circuit-breaker storm refusing the copy's bulks (the "
    "faults: requests refused), a primary of the source failing mid-copy, the flood-stage disk "
    "watermark's block on the new index (both copy modes), a red source",
    "multi-node": "in a three-node cluster (dev-server --nodes 3): the node holding a primary of "
    "the source stopped (SIGTERM) or crashed (SIGKILL) and started again, during the copy (both "
    "copy modes), the catch-up or under the write block; a primary relocated to another node "
    "mid-copy; a node crashed mid-copy while the new index's writes wait for a copy on every "
    "node (index.write.wait_for_active_shards)",
}
#: What a kind's scenarios do beyond the fault itself, where that needs saying.
ABOUT = {
    "node-restart": "The node is the test's own (a dev-server on its own port and data path). "
    "While it is down the live writer's writes go unanswered and are sent again once it is "
    "back. The migration either rides the restart out or fails with an error naming the node "
    "(or the `_reindex` task that vanished with it) and is run again until done; the lost task "
    "is started again, not waited for. Its longest write block includes the writes the "
    "restarting node itself refused (503) while its shards started.",
    "multi-node": "When a primary's node crashes after a write reached the replica but before "
    "the answer, the node that coordinated the write sends it again to the new primary, which "
    "already applied it: a delete of a document that existed is then answered 404 (seen on a "
    "three-node dev-server cluster: 2 of 21,109 deletes under a SIGKILL). The writer logs such "
    "a delete with the index that answered. One the old index answered counts as a delete (the "
    "old index no longer holds the document, so the new index must not either); one the new "
    "index answered does not, and the document missing there counts as lost.",
}
SUMS = ("faults", "runs", "documents_checked", "lost", "resurrected", "reverted")


def load(results: Path) -> dict[str, list[dict[str, Any]]]:
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(results.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                lines[str(row["kind"])].append(row)
    return lines


def landed(row: dict[str, Any]) -> bool:
    """Whether the run's fault was injected while the migration ran. A run that recorded
    ``faults: 0`` (a kill whose moment came after the migration had finished) is not a run of
    its kind; one that failed before it could count its faults is kept, as failed."""
    return "faults" not in row or int(row.get("faults") or 0) > 0


def split(
    lines: dict[str, list[dict[str, Any]]],
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """(the runs in which a fault landed, by kind; the runs in which none did)."""
    counted: dict[str, list[dict[str, Any]]] = defaultdict(list)
    idle: list[dict[str, Any]] = []
    for kind, rows in lines.items():
        for row in rows:
            if landed(row):
                counted[kind].append(row)
            else:
                idle.append(row)
    return counted, idle


def recorded_run(results: Path) -> dict[str, str]:
    """What scripts/faults.sh wrote of the run itself (``run.json``: the commit it ran and when
    it finished), so that a page rendered again later names that run, not the checkout's HEAD
    and the time of rendering; ``{}`` when it is not there."""
    path = results / "run.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: str(v) for k, v in data.items() if k in ("commit", "finished")}


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(rows: list[dict[str, Any]], key: str) -> list[str]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row[key])].append(row)
    out = [
        _row(
            [
                key,
                "runs",
                "passed",
                "faults",
                "processes",
                "documents checked",
                "lost",
                "resurrected",
                "reverted",
                "write blocks left",
                "longest write block (s)",
            ]
        ),
        _row(["---"] + ["--:"] * 10),
    ]
    for name, group in [*sorted(groups.items()), ("**all**", rows)]:
        sums = {k: sum(int(r.get(k) or 0) for r in group) for k in SUMS}
        out.append(
            _row(
                [
                    name,
                    len(group),
                    sum(1 for r in group if r.get("ok")),
                    sums["faults"],
                    sums["runs"],
                    sums["documents_checked"],
                    sums["lost"],
                    sums["resurrected"],
                    sums["reverted"],
                    sum(int(r.get("write_blocks_left") or 0) for r in group),
                    max(float(r.get("write_block_longest_s") or 0) for r in group),
                ]
            )
        )
    return out


def _phases(rows: list[dict[str, Any]]) -> list[str]:
    """Where the kills landed: the phase the migration's checkpoint named right after each."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        for kill in (row.get("detail") or {}).get("kills", []):
            per[str(row["scenario"])][str(kill.get("phase"))] += 1
    if not per:
        return []
    phases = sorted({p for c in per.values() for p in c})
    out = [_row(["scenario", *phases]), _row(["---"] + ["--:"] * len(phases))]
    for scenario, counts in sorted(per.items()):
        out.append(_row([scenario, *(counts.get(p, 0) for p in phases)]))
    return out


def render(recorded: dict[str, list[dict[str, Any]]], run: dict[str, str] | None = None) -> str:
    lines, idle = split(recorded)
    every = [r for rows in lines.values() for r in rows]
    run = run or {}
    finished = run.get("finished") or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = run.get("commit") or _commit()
    out = [
        "# Reliability",
        "",
        "<!-- Generated by scripts/faults_report.py from the figures of the last recorded fault",
        "     run (scripts/faults.sh); do not edit by hand. -->",
        "",
        "The fault suite breaks things on purpose while a live writer indexes, updates and "
        "deletes documents through the alias, resumes the migration until it is done, then checks "
        "the exact final state against the writer's log of acknowledged operations: every write "
        "present in its latest version (transformed where the data moved), no deleted document "
        "back, no write block left, the history telling what happened. This page holds the "
        "figures of its last recorded run; how each mechanism behaves is described in "
        "[Versioned migrations](guide/migrations.md) (resume, the lease) and "
        '[Zero-downtime migrations](guide/zero-downtime.md) ("Bad input and faults").',
        "",
        f"Last recorded run: {finished}, commit `{commit}`, {len(every)} scenario runs, "
        f"{sum(1 for r in every if r.get('ok'))} passed; kinds of fault in it: "
        f"{', '.join(sorted(lines)) or 'none'}"
        + (
            f"; not in it: {', '.join(k for k in KINDS if k not in lines)}."
            if any(k not in lines for k in KINDS)
            else "."
        ),
        "",
        *(
            [
                f"Secrets found: {sum(int(r.get('secrets_found') or 0) for r in every)} (must "
                "be 0), in the output (stdout and stderr) of the "
                f"{sum(int(r.get('outputs_checked') or 0) for r in every)} migrating processes "
                "that were given a password, killed or not, and in the history indices they "
                "wrote.",
                "",
            ]
            if any(r.get("outputs_checked") for r in every)
            else []
        ),
        *(
            [
                f"Left out: {len(idle)} run(s) in which no fault landed (the migration was over "
                f"before its fault moment), {sum(1 for r in idle if not r.get('ok'))} of them "
                "failed. A run that failed is counted as failed, with what it had measured.",
                "",
            ]
            if idle
            else [
                "A run that failed is counted as failed, with what it had measured; runs in "
                "which no fault landed are left out.",
                "",
            ]
        ),
        "## Reproduce",
        "",
        "<!-- not-run: the full fault run takes about 45 minutes; CI runs its fast subset -->",
        "```console",
        "$ bash scripts/faults.sh                            # every scenario, then this page",
        "$ ESMIGRATE_FAULTS_SEEDS=20 bash scripts/faults.sh -k random_kills   # more kill seeds",
        "```",
        "",
        "The suite's fast subset (one seed per kill scenario, the lease-loss, concurrency and "
        "pressure tests, a few network faults, one node restart, and three of the multi-node "
        "scenarios) runs with the rest of the tests (`pytest -m faults`). A kill run is "
        "reproduced by its test id (`test_random_kills[python-3]`: scenario and seed; the seed "
        "fixes the kill moments, the machine's speed where they land).",
        "",
    ]
    if not every:
        out += ["No figures recorded yet: run `bash scripts/faults.sh`.", ""]
    for kind in [*KINDS, *sorted(set(lines) - set(KINDS))]:
        rows = lines.get(kind)
        if not rows:
            continue
        out += [f"## {kind}", "", f"Faults: {KINDS.get(kind, kind)}.", ""]
        if kind in ABOUT:
            out += [ABOUT[kind], ""]
        out += _table(rows, "scenario")
        out += [
            "",
            "Runs: scenario runs (a seed each); faults: kills, pauses, restarts or proxy "
            "faults injected; processes: migrating runs started, the killed or failed ones "
            "included; longest write block: the longest time the live writer saw its writes "
            "refused by a write block, which, when a kill or a restart lands under the block, "
            "lasts until the next run lifts it.",
            "",
        ]
        phases = _phases(rows)
        if phases:
            out += ["Where the kills landed (the migration's phase right after the kill):", ""]
            out += [*phases, ""]
    return "\n".join(out)


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "build/faults")
    sys.stdout.write(render(load(results), recorded_run(results)))


if __name__ == "__main__":
    main()
