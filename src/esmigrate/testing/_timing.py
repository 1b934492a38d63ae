"""The timing helper of the test kit: durations and docs/s of migration steps, recorded only.

A test must not assert speed (the machine it runs on decides it); it records what a step took so
that a run's figures can be read, compared between runs, or written out for a dashboard. The
per-phase rates come from the migrator's own progress events (pass :meth:`Step.on_progress` as
``on_progress=``), so the figures are the ones ``esmigrate upgrade`` shows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.progress import ProgressEvent


@dataclass
class Step:
    """One timed step: wall-clock seconds, documents, and the phases the migrator reported."""

    name: str
    seconds: float = 0.0
    documents: int | None = None
    #: Per phase (``copy``, ``catchup``, ``backfill``, ``reindex``...): the last event's
    #: documents done and docs/s.
    phases: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float | None:
        if self.documents is None or self.seconds <= 0:
            return None
        return self.documents / self.seconds

    def on_progress(self, event: ProgressEvent) -> None:
        """A progress callback: keeps each phase's latest figures."""
        if event.done or event.docs_per_s:
            self.phases[event.phase] = {"done": event.done, "docs_per_s": event.docs_per_s}

    def to_dict(self) -> dict[str, Any]:
        rate = self.docs_per_second
        return {
            "name": self.name,
            "seconds": round(self.seconds, 3),
            "documents": self.documents,
            "docs_per_s": None if rate is None else round(rate, 1),
            "phases": self.phases,
        }

    def line(self) -> str:
        rate = self.docs_per_second
        docs = "" if self.documents is None else f", {self.documents} docs"
        speed = "" if rate is None else f", {rate:.1f} docs/s"
        return f"{self.name}: {self.seconds:.2f}s{docs}{speed}"


class Timings:
    """Steps timed in order. Records; never judges::

    timings = Timings()
    with timings.step("upgrade 0003", cluster=cluster, index="blog_posts") as step:
        command.upgrade(config, "0003", on_progress=step.on_progress)
    print(timings.report())
    """

    def __init__(self) -> None:
        self.steps: list[Step] = []

    @contextmanager
    def step(
        self,
        name: str,
        *,
        cluster: Cluster | None = None,
        index: str | None = None,
        documents: int | None = None,
    ) -> Iterator[Step]:
        """Time the block. Its documents: ``documents``, else the count of ``index`` on
        ``cluster`` once the block is done. A block that raises is recorded too (its time)."""
        step = Step(name, documents=documents)
        self.steps.append(step)
        started = time.monotonic()
        try:
            yield step
        finally:
            step.seconds = time.monotonic() - started
        if step.documents is None and cluster is not None and index is not None:
            cluster.refresh(index)
            step.documents = cluster.count(index)

    def report(self) -> str:
        """One line per step."""
        return "\n".join(step.line() for step in self.steps)

    def to_dict(self) -> list[dict[str, Any]]:
        return [step.to_dict() for step in self.steps]

    def write(self, path: Path | str) -> None:
        """The steps as JSON (for a CI artifact, or to compare runs)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
