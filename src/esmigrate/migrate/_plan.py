"""Steps as data: what a strategy will do, printable before it runs (``plan``, dry runs).

A step's requests are :class:`~esmigrate.cluster.PlannedRequest`\\ s, the one "request as
data" type of esmigrate (versioned-migration operations print the same objects).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from esmigrate.cluster import PlannedRequest


def _one_line(request: PlannedRequest) -> str:
    line = f"{request.method} {request.target}"
    if request.body is not None:
        text = json.dumps(request.body, default=str)
        line += " " + (text if len(text) <= 300 else text[:297] + "...")
    return line


@dataclass(frozen=True)
class PlanStep:
    """One step of a strategy: a kind (``create_index``, ``copy``, ``swap_aliases``...), a
    one-line summary, and the requests it sends."""

    kind: str
    summary: str
    requests: tuple[PlannedRequest, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"{self.kind}: {self.summary}"]
        lines.extend(f"    {_one_line(r)}" for r in self.requests)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "requests": [r.to_dict() for r in self.requests],
            "details": self.details,
        }


def describe_plan(steps: list[PlanStep]) -> str:
    """The numbered, human-readable form of a plan."""
    return "\n".join(f"{i}. {step.describe()}" for i, step in enumerate(steps, 1))
