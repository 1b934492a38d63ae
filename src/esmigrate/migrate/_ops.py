"""Operations as data: what a strategy will do, printable before it runs (``plan``, dry runs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """One REST request an operation sends (bodies may be abridged for display)."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None

    def describe(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        line = f"{self.method} {self.path}" + (f"?{query}" if query else "")
        if self.body is not None:
            text = json.dumps(self.body, default=str)
            line += " " + (text if len(text) <= 300 else text[:297] + "...")
        return line


@dataclass(frozen=True)
class Operation:
    """One step of a strategy: a kind (``create_index``, ``copy``, ``swap_aliases``...), a
    one-line summary, and the requests it sends."""

    kind: str
    summary: str
    requests: tuple[Request, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"{self.kind}: {self.summary}"]
        lines.extend(f"    {r.describe()}" for r in self.requests)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "requests": [
                {"method": r.method, "path": r.path, "params": r.params, "body": r.body}
                for r in self.requests
            ],
            "details": self.details,
        }


def describe_plan(operations: list[Operation]) -> str:
    """The numbered, human-readable form of a plan."""
    return "\n".join(f"{i}. {op.describe()}" for i, op in enumerate(operations, 1))
