"""What ``op.migrate`` keeps in the history for its report, next to the operation's log entry
(and ``rebuild`` in its rebuild record).

The migration's own events (:class:`~esmigrate.progress.Timeline`, fed by the one progress
channel) give the phases and the documents copied over time; at the end the checkpoint the
migrator wrote gives the figures only it knows (the write-block window and where it went, the
target's checkpoints at the swap), and the dead-letter index a few of its entries. Everything
is bounded: a few hundred points, the first dead letters, the first validation differences.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import TooManyFailures, ValidationFailed
from esmigrate.migrate import DeadLetters
from esmigrate.progress import ProgressCallback, ProgressEvent, Timeline
from esmigrate.state import Checkpoint

#: Dead letters and validation differences kept in the record (the index keeps them all).
KEEP = 20

#: Reports of the interrupted runs a resumed migration keeps (a job restarted in a loop adds one
#: each).
MAX_INTERRUPTED_RUNS = 3

#: How often a running migration's record is rewritten (besides its phase changes).
RECORD_EVERY_S = 5.0

#: Checkpoint fields the report shows, as the migrator stored them.
_FIGURES = (
    "strategy",
    "mode",
    "source",
    "target",
    "aliases",
    "copy_total",
    "copied",
    "round",
    "final_count",
    "reconciled_deletes",
    "failures",
    "blocked_seconds",
    "blocked_breakdown",
    "phase_seconds",
    "dead_letter_index",
    "started_at",
    "cut_over_at",
    "finished_at",
    "target_checkpoints",
)


def _clip(text: Any, limit: int = 400) -> Any:
    return text[:limit] + "…" if isinstance(text, str) and len(text) > limit else text


def _differences(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: _clip(repr(v) if k in ("expected", "actual") else v) for k, v in d.items()}
        for d in found[:KEEP]
    ]


def recording(
    timeline: Timeline, save: Callable[[dict[str, Any]], None], *, every: float = RECORD_EVERY_S
) -> ProgressCallback:
    """A progress callback that feeds ``timeline`` every event and hands ``save`` the progress
    and the report's record so far at each change of phase, and at most every ``every`` seconds
    otherwise: a run killed half-way leaves the record of what it did."""
    last: dict[str, Any] = {"phase": "", "at": 0.0}

    def on_progress(event: ProgressEvent) -> None:
        timeline(event)
        now = time.monotonic()
        if event.phase != last["phase"] or now - float(last["at"]) >= every:
            last.update(phase=event.phase, at=now)
            save(
                {
                    "progress": {
                        "phase": event.phase,
                        "done": event.done,
                        "total": event.total,
                        "docs_per_s": round(event.docs_per_s, 1),
                        "round": event.round,
                    },
                    "report": {"timeline": timeline.to_dict()},
                }
            )

    return on_progress


def failure_record(timeline: Timeline, exc: BaseException) -> dict[str, Any]:
    """What a failed run adds to its entry: the timeline, and the validation's differences or the
    dead letters' count when those stopped it (the runner records the error itself)."""
    data: dict[str, Any] = {"timeline": timeline.to_dict()}
    if isinstance(exc, ValidationFailed):
        data["validation"] = {
            "differences": _differences(exc.differences),
            "found": len(exc.differences),
        }
    if isinstance(exc, TooManyFailures):
        data["dead_letters"] = {
            "index": exc.dead_letter_index,
            "count": exc.failures,
            "first": [{k: _clip(v) for k, v in e.items()} for e in exc.samples[:KEEP]],
        }
    return data


def success_record(
    cluster: Cluster,
    timeline: Timeline,
    *,
    state_index: str,
    mid: str,
    sample_size: int,
    rollback_point: str | None,
) -> dict[str, Any]:
    """What a finished run adds to its entry: the timeline and the migrator's final figures."""
    stored: Mapping[str, Any] = Checkpoint(cluster, state_index, mid).load()
    figures = {k: stored[k] for k in _FIGURES if k in stored}
    data: dict[str, Any] = {"timeline": timeline.to_dict(), "figures": figures}
    index = stored.get("dead_letter_index")
    if index:
        dead = DeadLetters(cluster, str(index), mid)
        data["dead_letters"] = {
            "index": index,
            "count": dead.count(),
            "first": [{k: _clip(v) for k, v in e.items()} for e in dead.samples(KEEP)],
        }
    if stored.get("strategy") in ("blue-green", "catch-up"):
        data["validation"] = {"sample_size": sample_size, "differences": [], "found": 0}
    if rollback_point is not None and stored.get("cut_over_at"):
        data["rollback_point"] = {
            "name": rollback_point,
            "index": stored.get("source"),
            "target_checkpoints": stored.get("target_checkpoints"),
        }
    return data
