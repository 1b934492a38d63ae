"""``esmigrate check``: do the code's Document classes and the cluster's mappings agree?"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import SchemaError
from esmigrate.schema.diff import MappingDiff, diff_mappings
from esmigrate.schema.mapping import index_name_of


@dataclass(frozen=True)
class IndexCheck:
    """One Document class against its live index."""

    document: str
    index: str
    exists: bool
    diff: MappingDiff | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exists and self.error is None and self.diff is not None and not self.diff

    def to_dict(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "index": self.index,
            "exists": self.exists,
            "ok": self.ok,
            "error": self.error,
            "diff": self.diff.to_dict() if self.diff is not None else None,
        }


@dataclass(frozen=True)
class CheckReport:
    checks: tuple[IndexCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "indices": [c.to_dict() for c in self.checks]}


def check_documents(cluster: Cluster, documents: Iterable[type]) -> CheckReport:
    """Diff each Document class (wanted) against its live index (current), in the engine's
    terms (see :func:`~esmigrate.schema.diff.diff_mappings`)."""
    checks: list[IndexCheck] = []
    for document in documents:
        name = f"{document.__module__}.{document.__qualname__}"
        index = index_name_of(document)
        if index is None:
            continue
        if not cluster.exists(index):
            checks.append(IndexCheck(name, index, exists=False))
            continue
        try:
            diff = diff_mappings(index, document, cluster=cluster)
        except SchemaError as exc:
            checks.append(IndexCheck(name, index, exists=True, error=exc.message))
            continue
        checks.append(IndexCheck(name, index, exists=True, diff=diff))
    return CheckReport(tuple(checks))
