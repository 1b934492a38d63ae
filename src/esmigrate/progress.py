"""How esmigrate tells what it is doing: progress events for numbers, lines for words.

- Progress: the migrator and every long server task (``op.reindex``, ``op.update_by_query``,
  ``op.migrate``) call ``on_progress(ProgressEvent)`` (a :data:`ProgressCallback`); a
  :class:`Meter` turns counts into events with docs/s and an ETA. Whoever runs them decides how
  to draw them: :func:`progress_display` gives rich bars on a terminal and plain log lines
  otherwise (the CLI uses it). The same numbers go into the history and the checkpoint.
- Lines: a :data:`Reporter` receives human-readable sentences (a revision applied, a lease
  waited for).
- Record: a :class:`Timeline` is one more receiver of the same events; it keeps, bounded in
  size, the phases and the documents copied over time, for the migration report.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

__all__ = [
    "Emit",
    "LogDisplay",
    "Meter",
    "ProgressCallback",
    "ProgressDisplay",
    "ProgressEvent",
    "Reporter",
    "RichDisplay",
    "Timeline",
    "emitter",
    "progress_display",
]

log = logging.getLogger("esmigrate.migrate")


@dataclass(frozen=True)
class ProgressEvent:
    """Where a migration stands.

    ``phase`` is one of ``preflight``, ``copy``, ``catchup``, ``reconcile``, ``blocked``,
    ``validate``, ``cutover``, ``done``, ``backfill``, ``incremental``, ``adopt`` for the
    migrator; ``reindex`` and ``update_by_query`` for those operations' server tasks.
    ``total`` is ``None`` when unknown (catch-up rounds learn their size as they go).
    """

    phase: str
    done: int = 0
    total: int | None = None
    docs_per_s: float = 0.0
    eta_s: float | None = None
    round: int = 0
    message: str = ""
    migration: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One plain log line."""
        parts = [f"[{self.migration}] {self.phase}" if self.migration else self.phase]
        if self.round:
            parts.append(f"round {self.round}")
        if self.phase in _STEPS:
            pass  # done/total complete a bar; they count no documents
        elif self.total is not None:
            pct = 100.0 * self.done / self.total if self.total else 100.0
            parts.append(f"{self.done}/{self.total} docs ({pct:.1f}%)")
        elif self.done:
            parts.append(f"{self.done} docs")
        if self.docs_per_s:
            parts.append(f"{self.docs_per_s:.0f} docs/s")
        if self.eta_s is not None:
            parts.append(f"ETA {self.eta_s:.0f}s")
        if self.message:
            parts.append(self.message)
        return " · ".join(parts)


ProgressCallback = Callable[[ProgressEvent], None]

#: Receives human-readable lines (``Applying 0002 ...``); see the module docstring.
Reporter = Callable[[str], None]


class ProgressDisplay(Protocol):
    """A progress callback that draws the events and may hold resources (a live display);
    close it when done."""

    def __call__(self, event: ProgressEvent) -> None: ...

    def close(self) -> None: ...


class LogDisplay:
    """Plain log lines (no terminal): at most one line per ``interval`` seconds per phase, and
    one when it completes (a task polled while it finishes reports 100% several times)."""

    def __init__(self, logger: logging.Logger | None = None, interval: float = 5.0) -> None:
        self._log = logger or log
        self._interval = interval
        self._last: dict[tuple[str, str, int], float] = {}
        self._finished: set[tuple[str, str, int]] = set()

    def __call__(self, event: ProgressEvent) -> None:
        key = (event.migration, event.phase, event.round)
        now = time.monotonic()
        finished = event.total is not None and event.done >= event.total
        if finished:
            if key in self._finished:
                return
            self._finished.add(key)
        elif key in self._last and now - self._last[key] < self._interval:
            return
        self._last[key] = now
        self._log.info("%s", event.line())

    def close(self) -> None:
        return None


class RichDisplay:
    """Rich progress bars: one bar per migration (or server task), phase and round, with the
    docs/s and the ETA of the events (the numbers the log lines and the history show)."""

    def __init__(self, console: Any = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}"),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[tuple[str, str, int], Any] = {}
        self._progress.start()

    @staticmethod
    def label(event: ProgressEvent) -> str:
        """What the bar is of: the migration (or the operation) and the phase."""
        what = event.migration if len(event.migration) <= 40 else event.migration[:39] + "…"
        phase = event.phase + (f" #{event.round}" if event.round else "")
        return f"{what} · {phase}" if what else phase

    def __call__(self, event: ProgressEvent) -> None:
        key = (event.migration, event.phase, event.round)
        rate = f"{event.docs_per_s:,.0f} docs/s" if event.docs_per_s else ""
        eta = f"ETA {_clock(event.eta_s)}" if event.eta_s is not None else ""
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(
                escape(self.label(event)), total=event.total, rate=rate, eta=eta
            )
        self._progress.update(
            self._tasks[key], completed=event.done, total=event.total, rate=rate, eta=eta
        )

    def close(self) -> None:
        self._progress.stop()


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def progress_display(*, interactive: bool | None = None, console: Any = None) -> ProgressDisplay:
    """Rich bars when stderr is a terminal (or ``interactive=True``), log lines otherwise."""
    if interactive is None:
        interactive = sys.stderr.isatty()
    return RichDisplay(console) if interactive else LogDisplay()


class Meter:
    """Turns (done, total) updates into events with docs/s and ETA."""

    def __init__(
        self,
        phase: str,
        callback: ProgressCallback | None,
        *,
        total: int | None = None,
        round: int = 0,
        migration: str = "",
        done: int = 0,
    ) -> None:
        self.phase = phase
        self.total = total
        self.round = round
        self.done = done
        self._start_done = done
        self._callback = callback
        self._migration = migration
        self._t0 = time.monotonic()

    def rate(self) -> float:
        elapsed = time.monotonic() - self._t0
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    def update(self, done: int | None = None, *, add: int = 0, message: str = "") -> None:
        if done is not None:
            self.done = done
        self.done += add
        rate = self.rate()
        eta = None
        if self.total is not None and rate > 0:
            eta = max(0.0, (self.total - self.done) / rate)
        if self._callback is not None:
            self._callback(
                ProgressEvent(
                    phase=self.phase,
                    done=self.done,
                    total=self.total,
                    docs_per_s=rate,
                    eta_s=eta,
                    round=self.round,
                    message=message,
                    migration=self._migration,
                )
            )

    def numbers(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "docs_per_s": round(self.rate(), 1),
            "round": self.round,
        }


#: ``emit(phase, message, done=..., total=..., round=...)``: one event of a migration.
Emit = Callable[..., None]


def emitter(on_progress: ProgressCallback | None, migration: str) -> Emit:
    """``emit(phase, message, done=..., total=..., round=...)``: one event to ``on_progress``."""

    def emit(phase: str, message: str = "", **numbers: Any) -> None:
        if on_progress is not None:
            on_progress(
                ProgressEvent(
                    phase=phase,
                    message=message,
                    migration=migration,
                    done=int(numbers.get("done", 0)),
                    total=numbers.get("total"),
                    round=int(numbers.get("round", 0)),
                )
            )

    return emit


#: Phases whose ``done``/``total`` count steps (the cut-over's one alias swap), not documents.
_STEPS = ("cutover",)

#: Phases whose ``done`` counts documents written to the target (summed for "copied").
COPYING = ("copy", "fill", "catchup", "backfill", "incremental", "reindex", "update_by_query")


class Timeline:
    """A record of one migration's events for its report, bounded whatever the index's size.

    It is a :data:`ProgressCallback` (events may come from worker threads): each change of
    (phase, round) opens a phase, and the documents copied so far (the sum of the copying
    phases' ``done``) are sampled over time. At most ``max_points`` samples are kept: when full,
    every other one is dropped and the sampling interval doubles, so a run of a minute and one
    of a day both end with a few hundred evenly spaced points. Phases beyond ``max_phases``
    (a run of many rounds) extend the last one and are counted in ``dropped_phases``.
    """

    def __init__(
        self,
        *,
        max_points: int = 300,
        max_phases: int = 200,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._clock = clock
        self._t0 = clock()
        self._max_points = max_points
        self._max_phases = max_phases
        self._interval = interval
        self._lock = threading.Lock()
        self._phases: list[dict[str, Any]] = []
        self._points: list[list[float]] = []
        self._copied: dict[tuple[str, int], int] = {}
        self._dropped = 0
        self._latest: list[float] | None = None

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            t = round(self._clock() - self._t0, 3)
            self._phase(event, t)
            if event.phase in COPYING:
                key = (event.phase, event.round)
                self._copied[key] = max(self._copied.get(key, 0), event.done)
                self._sample(t, force=False)

    def _phase(self, event: ProgressEvent, t: float) -> None:
        last = self._phases[-1] if self._phases else None
        if last is not None and (last["phase"], last["round"]) == (event.phase, event.round):
            last["end"] = t
            last["done"] = max(int(last["done"]), event.done)
            return
        if len(self._phases) >= self._max_phases and last is not None:
            last["end"] = t
            self._dropped += 1
            return
        if last is not None:
            last["end"] = t
        self._phases.append(
            {"phase": event.phase, "round": event.round, "start": t, "end": t, "done": event.done}
        )
        # A phase boundary is a point of the chart whatever the interval.
        self._sample(t, force=True)

    def _sample(self, t: float, *, force: bool) -> None:
        point = [t, float(sum(self._copied.values()))]
        self._latest = point
        if self._points and not force and t - self._points[-1][0] < self._interval:
            return  # kept as the latest: the record ends on it whatever comes
        if self._points and self._points[-1][0] == t:
            self._points[-1] = point
            return
        self._points.append(point)
        if len(self._points) > self._max_points:
            self._points = self._points[::2]
            self._interval *= 2

    def _all_points(self) -> list[list[float]]:
        if self._latest is not None and (not self._points or self._points[-1] != self._latest):
            return [*self._points, self._latest]
        return list(self._points)

    @property
    def copied(self) -> int:
        with self._lock:
            return sum(self._copied.values())

    def to_dict(self) -> dict[str, Any]:
        """The record as stored with the revision (plain JSON)."""
        with self._lock:
            return {
                "started_at": self.started_at,
                "elapsed_s": round(self._clock() - self._t0, 3),
                "copied": sum(self._copied.values()),
                "phases": [dict(p) for p in self._phases],
                "points": [list(p) for p in self._all_points()],
                "dropped_phases": self._dropped,
            }
